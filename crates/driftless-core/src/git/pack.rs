//! Packs written by driftless: the objects a local remote has and a checkout lacks, as one
//! pack, as `git fetch` from a path does, instead of one loose file per object; and the small
//! packs fetches leave behind merged into one ([`consolidate`]), as `git gc --auto` does.
//!
//! The walk, the pack and its index are one stream: each missing object is read once from the
//! remote, deflated and appended to a temp pack beside the others, and the index is built from
//! those entries as they go by. Only ids and offsets stay in memory, never object data. The pack
//! is renamed into place before its index, so a reader never sees an index without its pack; a
//! run killed before the renames leaves only a temp file no reader looks at.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use gix::odb::pack;

use super::ObjectId;
use crate::safe_fs;

/// What one copy wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Objects in the new pack.
    pub objects: u32,
    /// The new pack, `objects/pack/pack-<hash>.pack`, with its `.idx` beside it.
    pub pack: PathBuf,
}

/// Write every object reachable from `tip` that `dst` lacks into one new pack in `dst`'s
/// `objects/pack`. Returns `None` when `dst` already has `tip` (and so, by connectivity,
/// everything below it).
pub fn copy_missing(
    src: &gix::Repository,
    dst: &gix::Repository,
    tip: ObjectId,
) -> Result<Option<Written>, gix::Error> {
    if dst.has_object(tip) {
        return Ok(None);
    }
    let pack_dir = dst.objects.store_ref().path().join("pack");
    std::fs::create_dir_all(&pack_dir).map_err(|e| at(&pack_dir, e))?;
    let src = with_delta_cache(src);
    write_pack(dst.object_hash(), &pack_dir, Missing::new(&src, dst, tip)).map(Some)
}

/// git's `gc.autoPackLimit` default: with more packs than this, `git gc --auto` (which every
/// `git fetch` runs) merges them.
const DEFAULT_PACK_LIMIT: i64 = 50;

/// A pack at least this big is left as it is: merging it would rewrite a clone's worth of
/// objects, which is `git gc`'s job, not a sync's.
const SMALL_PACK: u64 = 64 << 20;

/// What [`consolidate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consolidated {
    /// Packs merged (and removed).
    pub packs: usize,
    /// Objects in the new pack (those the packs held that the largest pack lacks).
    pub objects: u32,
}

/// Merge the small packs of `repo` into one, once there are more packs than git's
/// `gc.autoPackLimit` (50; `gc.auto=0` or `gc.autoPackLimit=0` turns it off, as for git).
///
/// Every fetch adds a pack, and every lookup of an object that is not there (each tick asks
/// whether it has the remote's tip) opens every index: without this a checkout updated a few
/// times a day gets slower by the month. `git gc --auto` runs after each `git fetch` for the
/// same reason; this does the part of it a sync needs, nothing more: the largest pack, packs
/// of 64 MiB or more, kept packs (`.keep`) and repos with a multi-pack-index are left alone,
/// and nothing unreachable is dropped. The new pack and its index are in place before any old
/// one is removed, so a kill at any point leaves every object readable.
pub fn consolidate(repo: &gix::Repository) -> Result<Option<Consolidated>, gix::Error> {
    let config = repo.config_snapshot();
    let limit = config.integer("gc.autoPackLimit").unwrap_or(DEFAULT_PACK_LIMIT);
    if config.integer("gc.auto") == Some(0) || limit <= 0 {
        return Ok(None);
    }
    let pack_dir = repo.objects.store_ref().path().join("pack");
    if std::fs::symlink_metadata(pack_dir.join("multi-pack-index")).is_ok() {
        return Ok(None);
    }
    let mut packs = list_packs(&pack_dir).map_err(|e| at(&pack_dir, e))?;
    if packs.len() as i64 <= limit {
        return Ok(None);
    }
    packs.sort_by(|a, b| (a.size, &a.stem).cmp(&(b.size, &b.stem)));
    let Some(base) = packs.pop() else { return Ok(None) };
    packs.retain(|p| !p.kept && p.size < SMALL_PACK);
    if packs.len() < 2 {
        return Ok(None);
    }
    let hash = repo.object_hash();
    let index = |stem: &str| {
        let path = pack_dir.join(format!("{stem}.idx"));
        pack::index::File::at(&path, hash)
            .map_err(|e| gix::Error::from_error(std::io::Error::other(format!("{}: {e}", path.display()))))
    };
    let base = index(&base.stem)?;
    let mut seen = gix::hashtable::HashSet::default();
    let mut ids = Vec::new();
    for small in &packs {
        for entry in index(&small.stem)?.iter() {
            if base.lookup(entry.oid).is_none() && seen.insert(entry.oid) {
                ids.push(entry.oid);
            }
        }
    }
    drop(seen);
    let written = if ids.is_empty() {
        None
    } else {
        let src = with_delta_cache(repo);
        let listed = Listed {
            repo: &src,
            ids: ids.into_iter(),
            encoder: Encoder::new(),
            failed: false,
        };
        Some(write_pack(hash, &pack_dir, listed)?)
    };
    let new_stem = written
        .as_ref()
        .and_then(|w| w.pack.file_stem())
        .map(|stem| stem.to_string_lossy().into_owned());
    for small in packs.iter().filter(|p| Some(&p.stem) != new_stem.as_ref()) {
        // The index first: a reader may find a pack without its index, never the reverse.
        for ext in ["idx", "pack", "rev", "bitmap", "mtimes"] {
            let path = pack_dir.join(format!("{}.{ext}", small.stem));
            match std::fs::remove_file(&path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(at(&pack_dir, err)),
                _ => {}
            }
        }
    }
    Ok(Some(Consolidated {
        packs: packs.len(),
        objects: written.map_or(0, |w| w.objects),
    }))
}

/// One pack of `objects/pack`.
struct PackFile {
    /// `pack-<hash>`.
    stem: String,
    size: u64,
    /// A `.keep` (or `.promisor`) file stands beside it: git never repacks it, nor do we.
    kept: bool,
}

/// The packs of `dir` with both a pack and an index that are plain files (a link is no pack
/// of ours to merge or remove).
fn list_packs(dir: &Path) -> std::io::Result<Vec<PackFile>> {
    let mut packs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".idx")) else {
            continue;
        };
        if !stem.starts_with("pack-") || !entry.file_type()?.is_file() {
            continue;
        }
        let Ok(pack) = std::fs::symlink_metadata(dir.join(format!("{stem}.pack"))) else {
            continue;
        };
        if !pack.is_file() {
            continue;
        }
        let kept = ["keep", "promisor"]
            .iter()
            .any(|ext| std::fs::symlink_metadata(dir.join(format!("{stem}.{ext}"))).is_ok());
        packs.push(PackFile {
            stem: stem.to_owned(),
            size: pack.len(),
            kept,
        });
    }
    Ok(packs)
}

/// Listed objects as pack entries, each whole.
struct Listed<'a> {
    repo: &'a gix::Repository,
    ids: std::vec::IntoIter<ObjectId>,
    encoder: Encoder,
    failed: bool,
}

impl Iterator for Listed<'_> {
    type Item = Result<pack::data::input::Entry, gix::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let id = self.ids.next()?;
        let entry = match self.repo.find_object(id) {
            Ok(object) => self.encoder.entry(object.kind, &object.data),
            Err(err) => Err(err),
        };
        self.failed = entry.is_err();
        Some(entry)
    }
}

/// An I/O error naming the directory it happened in (a read-only checkout outside the unit's
/// `ReadWritePaths=` must be named), keeping its kind for the exit code.
fn at(dir: &Path, err: std::io::Error) -> gix::Error {
    gix::Error::from_error(std::io::Error::new(err.kind(), format!("{}: {err}", dir.display())))
}

/// `src` with a cache of decoded delta bases: the packs hold deltas in chains (up to 50 long);
/// without a cache every object decodes its chain from the base again, which made a
/// 2,000-commit copy 4x slower than git.
fn with_delta_cache(src: &gix::Repository) -> gix::Repository {
    let mut src = src.clone();
    src.objects.set_pack_cache(|| Box::new(DeltaBases::default()));
    src
}

/// Write `entries` as one new pack with its index into `pack_dir`.
fn write_pack(
    hash: gix::hash::Kind,
    pack_dir: &Path,
    entries: impl Iterator<Item = Result<pack::data::input::Entry, gix::Error>>,
) -> Result<Written, gix::Error> {
    let io = gix::Error::from_error;
    // git's modes for packs and their indices: read-only, since they never change.
    let (pack_file, pack_tmp) =
        safe_fs::create_temp_beside(&pack_dir.join("pack"), "tmp_pack", 0o444).map_err(|e| at(pack_dir, e))?;
    let pack_tmp = Temp(Some(pack_tmp));
    let (idx_file, idx_tmp) =
        safe_fs::create_temp_beside(&pack_dir.join("idx"), "tmp_idx", 0o444).map_err(|e| at(pack_dir, e))?;
    let idx_tmp = Temp(Some(idx_tmp));

    let mut pack_out = Buffered(BufWriter::with_capacity(64 * 1024, pack_file));
    let mut entries = pack::data::input::EntriesToBytesIter::new(entries, &mut pack_out, pack::data::Version::V2, hash);
    let mut idx = BufWriter::new(idx_file);
    let outcome = pack::index::write_data_iter_to_stream(
        pack::index::Version::V2,
        || {
            // Called once the last entry is written: the pack is complete on disk by now.
            let pack = pack::data::File::at(pack_tmp.path(), hash).map_err(std::io::Error::other)?;
            Ok((entry_slice, pack))
        },
        &mut entries,
        // One thread: the objects of one update are few, and a spawn can fail under a limit.
        Some(1),
        &mut gix::progress::Discard,
        &mut idx,
        &AtomicBool::new(false),
        hash,
        None,
        pack::data::Version::V2,
    )?;
    drop(entries);
    let pack_file = pack_out.0.into_inner().map_err(|e| io(e.into_error()))?;
    pack_file.sync_all().map_err(io)?;
    let idx_file = idx.into_inner().map_err(|e| io(e.into_error()))?;
    idx_file.sync_all().map_err(io)?;

    let name = format!("pack-{}", outcome.data_hash.to_hex());
    let pack_path = pack_dir.join(format!("{name}.pack"));
    // The pack first, then its index: git's order, so an index never names a missing pack.
    // rename(2) replaces whatever stands at the name (a link included) and never follows it.
    pack_tmp.rename(&pack_path).map_err(io)?;
    idx_tmp.rename(&pack_dir.join(format!("{name}.idx"))).map_err(io)?;
    Ok(Written {
        objects: outcome.num_objects,
        pack: pack_path,
    })
}

/// The bytes of one entry of the pack being indexed.
fn entry_slice(range: pack::data::EntryRange, pack: &pack::data::File) -> Option<&[u8]> {
    pack.entry_slice(range)
}

/// The objects reachable from a tip that `dst` lacks, as pack entries in walk order (a commit,
/// then what it points to). The walk stops at every object `dst` has: `dst` is connected, so
/// it has everything below it too.
struct Missing<'a> {
    src: &'a gix::Repository,
    dst: &'a gix::Repository,
    stack: Vec<ObjectId>,
    seen: gix::hashtable::HashSet<ObjectId>,
    encoder: Encoder,
    failed: bool,
}

impl<'a> Missing<'a> {
    fn new(src: &'a gix::Repository, dst: &'a gix::Repository, tip: ObjectId) -> Self {
        let mut seen = gix::hashtable::HashSet::default();
        seen.insert(tip);
        Missing {
            src,
            dst,
            stack: vec![tip],
            seen,
            encoder: Encoder::new(),
            failed: false,
        }
    }

    fn push(&mut self, id: ObjectId) {
        if self.seen.insert(id) {
            self.stack.push(id);
        }
    }

    fn entry(&mut self, id: ObjectId) -> Result<pack::data::input::Entry, gix::Error> {
        use gix::objs::Kind;
        let object = self.src.find_object(id)?;
        let entry = self.encoder.entry(object.kind, &object.data)?;
        match object.kind {
            Kind::Commit => {
                let commit = object.into_commit();
                self.push(commit.tree_id()?.detach());
                for parent in commit.parent_ids() {
                    self.push(parent.detach());
                }
            }
            Kind::Tree => {
                for entry in object.into_tree().iter() {
                    let entry = entry?;
                    // A gitlink names a commit of another repository.
                    if !entry.mode().is_commit() {
                        self.push(entry.object_id());
                    }
                }
            }
            Kind::Tag => self.push(object.into_tag().target_id()?.detach()),
            Kind::Blob => {}
        }
        Ok(entry)
    }
}

/// Turns objects into pack entries, one after the other.
struct Encoder {
    /// Where the next entry starts in the pack.
    offset: u64,
    /// One deflate stream, reset per object: a new one per object costs more (its tables and
    /// window are set up and zeroed again) than deflating a small object does. zlib's fastest
    /// level: git reuses the remote's compressed deltas where this recompresses every object,
    /// and level 6 made a 2,000-commit copy 1.5x slower than `git pull` (the pack is 15%
    /// bigger than at level 6; `git gc` repacks it anyway).
    deflate: gix::zlib::stream::deflate::Compress,
}

impl Encoder {
    fn new() -> Self {
        Encoder {
            // Entries start behind the 12-byte pack header.
            offset: 12,
            deflate: gix::zlib::stream::deflate::Compress::new(gix::zlib::Compression::BEST_SPEED),
        }
    }

    /// The next entry: an object of `kind` holding `data`, whole (no delta).
    fn entry(&mut self, kind: gix::objs::Kind, data: &[u8]) -> Result<pack::data::input::Entry, gix::Error> {
        use gix::objs::Kind;
        let header = match kind {
            Kind::Commit => pack::data::entry::Header::Commit,
            Kind::Tree => pack::data::entry::Header::Tree,
            Kind::Blob => pack::data::entry::Header::Blob,
            Kind::Tag => pack::data::entry::Header::Tag,
        };
        let size = data.len() as u64;
        let compressed = self.deflate(data)?;
        let mut entry = pack::data::input::Entry {
            header,
            header_size: header.size(size) as u16,
            pack_offset: self.offset,
            compressed_size: compressed.len() as u64,
            compressed: Some(compressed),
            crc32: None,
            decompressed_size: size,
            trailer: None,
        };
        entry.crc32 = Some(entry.compute_crc32());
        self.offset += entry.bytes_in_pack();
        Ok(entry)
    }

    /// `data` as one complete zlib stream.
    fn deflate(&mut self, data: &[u8]) -> Result<Vec<u8>, gix::Error> {
        use gix::zlib::Status;
        use gix::zlib::stream::deflate::FlushCompress;
        self.deflate.reset();
        let (start_in, start_out) = (self.deflate.total_in(), self.deflate.total_out());
        // Room for incompressible data and zlib's framing in one go, for most objects.
        let mut out = vec![0u8; data.len() + data.len() / 64 + 64];
        loop {
            let consumed = (self.deflate.total_in() - start_in) as usize;
            let produced = (self.deflate.total_out() - start_out) as usize;
            if produced == out.len() {
                out.resize(out.len() * 2, 0);
            }
            let status = self
                .deflate
                .compress(&data[consumed..], &mut out[produced..], FlushCompress::Finish)
                .map_err(gix::Error::from_error)?;
            if status == Status::StreamEnd {
                out.truncate((self.deflate.total_out() - start_out) as usize);
                return Ok(out);
            }
        }
    }
}

impl Iterator for Missing<'_> {
    type Item = Result<pack::data::input::Entry, gix::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        while let Some(id) = self.stack.pop() {
            // Without a refresh: in the default mode every miss (and here nearly every lookup
            // misses) would list the pack directory again. `copy_missing` looked up the tip with
            // a refresh, so every pack on disk is known by now.
            if self.dst.objects.exists_without_refresh(&id) {
                continue;
            }
            let entry = self.entry(id);
            self.failed = entry.is_err();
            return Some(entry);
        }
        None
    }
}

/// Decoded delta bases, to resolve the next object of a chain from its neighbour instead of
/// from the chain's start: at most [`DeltaBases::LIMIT`] bytes, the oldest evicted first.
#[derive(Default)]
struct DeltaBases {
    entries: std::collections::HashMap<(u32, u64), (gix::objs::Kind, Vec<u8>)>,
    order: std::collections::VecDeque<(u32, u64)>,
    bytes: usize,
}

impl DeltaBases {
    const LIMIT: usize = 4 * 1024 * 1024;
}

impl pack::cache::DecodeEntry for DeltaBases {
    fn put(&mut self, pack_id: u32, offset: u64, data: &[u8], kind: gix::objs::Kind, _compressed_size: usize) {
        if data.len() > Self::LIMIT / 4 || self.entries.contains_key(&(pack_id, offset)) {
            return;
        }
        while self.bytes + data.len() > Self::LIMIT {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some((_, old)) = self.entries.remove(&oldest) {
                self.bytes -= old.len();
            }
        }
        self.bytes += data.len();
        self.order.push_back((pack_id, offset));
        self.entries.insert((pack_id, offset), (kind, data.to_vec()));
    }

    fn get(&mut self, pack_id: u32, offset: u64, out: &mut Vec<u8>) -> Option<(gix::objs::Kind, usize)> {
        let (kind, data) = self.entries.get(&(pack_id, offset))?;
        out.clear();
        out.extend_from_slice(data);
        Some((*kind, data.len()))
    }
}

/// A buffered pack file that can also be read back: the pack writer rewrites the header and
/// hashes the whole file once the entries are written.
struct Buffered(BufWriter<File>);

impl Write for Buffered {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl Seek for Buffered {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
    }
}

impl Read for Buffered {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.flush()?;
        self.0.get_mut().read(buf)
    }
}

/// A temp file, removed when dropped unless it was renamed into place.
struct Temp(Option<PathBuf>);

impl Temp {
    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    fn rename(mut self, dest: &Path) -> std::io::Result<()> {
        if let Some(path) = self.0.take()
            && let Err(err) = std::fs::rename(&path, dest)
        {
            self.0 = Some(path);
            return Err(err);
        }
        Ok(())
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}
