//! The native mirror engine for a local destination (a backup disk, an NFS or `rclone mount`).
//!
//! A file is copied when its size, mtime or mode differ (or its content, with `checksum`).
//! Each copy is written under `.driftless-partial/` at the destination's top and renamed into
//! place (beside the file instead, in the same-named directory, where a mount point inside the
//! destination puts it on another file system), so neither a reader nor a crash ever sees a
//! half file under a final name; a run removes whatever a killed run left there. Files are
//! copied on `jobs` threads. Directories get their modes last, files never setuid, setgid or
//! sticky; one run at a time writes to a destination.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::Policy;
use super::filter::Excludes;
use super::source::{Content, Entry, Kind, Reader, Source};
use crate::config::Links;
use crate::git::checkout::{path_from_bytes, path_to_bytes};

/// Files up to this size are copied with one read and one write through [`SMALL_BUF`].
const SMALL_FILE: u64 = 1 << 20;

thread_local! {
    /// Each copy thread's buffer for small files.
    static SMALL_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The staging directory for partial files, at the top of the destination.
pub const PARTIAL_DIR: &str = ".driftless-partial";

/// How to copy.
#[derive(Debug, Clone)]
pub struct Options {
    /// What to keep in line.
    pub policy: Policy,
    /// Count what would change; write nothing.
    pub dry_run: bool,
    /// Copy threads.
    pub jobs: usize,
    /// How long to wait for another run writing to the same destination.
    pub wait_lock: std::time::Duration,
    /// Modification times this close are equal; `None`: detected from the destination's file
    /// system (2 s on FAT-like ones, else exact).
    pub modify_window: Option<std::time::Duration>,
    /// Permission bits are not compared, and failing to set them is no error (also the default
    /// on FAT-like file systems, which have none).
    pub no_perms: bool,
}

/// How the destination keeps times and modes: what "up to date" can mean there.
#[derive(Debug, Clone, Copy, Default)]
struct Settle {
    window: std::time::Duration,
    perms: bool,
    /// A FAT-like or FUSE destination: the time is set again by name once the copy is closed
    /// and renamed into place, since a FUSE file system may stamp the time of the close or of
    /// the rename (fusefat does both).
    retime: bool,
}

impl Settle {
    /// From the options, else from the destination's file system type: FAT keeps times to 2 s
    /// and no modes; exFAT, NTFS (ntfs3, ntfs-3g is FUSE), SMB and FUSE mounts (rclone mount)
    /// are taken the same way.
    fn for_dest(dest: &Path, options: &Options) -> Settle {
        const FAT_LIKE: [u64; 7] = [
            0x4d44,      // msdos, vfat
            0x2011_bab0, // exfat
            0x7366_746e, // ntfs3
            0x517b,      // smb
            0xfe53_4d42, // smb2
            0xff53_4d42, // cifs
            0x6573_5546, // fuse (rclone mount, ntfs-3g)
        ];
        let fat_like = rustix::fs::statfs(dest).is_ok_and(|st| FAT_LIKE.contains(&(st.f_type as u64)));
        Settle {
            window: options.modify_window.unwrap_or(if fat_like {
                std::time::Duration::from_secs(2)
            } else {
                std::time::Duration::ZERO
            }),
            perms: !options.no_perms && !fat_like,
            retime: fat_like,
        }
    }

    /// Whether a destination time is the source's, within the window.
    fn same_time(&self, theirs: std::time::SystemTime, ours: std::time::SystemTime) -> bool {
        let diff = theirs.duration_since(ours).or_else(|e| Ok::<_, ()>(e.duration()));
        diff.is_ok_and(|d| d <= self.window)
    }
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    pub copied: usize,
    pub unchanged: usize,
    pub deleted: usize,
    pub bytes: u64,
    pub links_skipped: usize,
    /// Source paths that could not be read or copied, with why; the rest was still copied.
    pub failed: Vec<String>,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "destination {path} does not exist or is not a directory; is the backup disk mounted? \
         (driftless does not create it, so a missing mount never fills the root disk)",
        path = path.display()
    )]
    DestinationMissing { path: PathBuf },
    #[error(
        "another mirror-copy run is writing to {path}; wait for it (or pass --wait-lock SECONDS) \
         and run again",
        path = path.display()
    )]
    DestinationBusy { path: PathBuf },
    #[error("destination {path} is full; free space there and run again (no partial file was left)", path = path.display())]
    DestinationFull { path: PathBuf },
    #[error("cannot write {path}", path = path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error(
        "{count} files would be deleted from {path}, more than --max-delete {max}; nothing was deleted. \
         Check the source, then raise --max-delete or run without --delete",
        path = path.display()
    )]
    TooManyDeletes { path: PathBuf, count: usize, max: usize },
}

/// Make `dest` match `entries` from `source`.
pub fn mirror(
    source: &Source,
    entries: &[Entry],
    dest: &Path,
    excludes: &Excludes,
    options: &Options,
) -> Result<Stats, Error> {
    if !dest.is_dir() {
        return Err(Error::DestinationMissing { path: dest.to_owned() });
    }
    // One destination, one writer: two runs (other repos, other state dirs) would delete each
    // other's staging directory and race on every file.
    let _writer = if options.dry_run {
        None
    } else {
        lock_destination(dest, options.wait_lock)?
    };
    let staging = dest.join(PARTIAL_DIR);
    if !options.dry_run {
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir(&staging).map_err(|source| write_error(dest, &staging, source))?;
    }
    // The staging name is the engine's: a source entry by that name cannot be mirrored.
    let reserved = |e: &&Entry| {
        e.path == PARTIAL_DIR.as_bytes()
            || e.path.starts_with(PARTIAL_DIR.as_bytes()) && e.path.get(PARTIAL_DIR.len()) == Some(&b'/')
    };
    let clash = entries.iter().any(|e| reserved(&e));
    let owned: Vec<Entry>;
    let entries = if clash {
        owned = entries.iter().filter(|e| !reserved(e)).cloned().collect();
        &owned[..]
    } else {
        entries
    };
    let mut result = run(source, entries, dest, &staging, excludes, options);
    if !options.dry_run {
        let _ = std::fs::remove_dir_all(&staging);
    }
    if let (true, Ok(stats)) = (clash, &mut result) {
        stats.failed.push(format!(
            "{PARTIAL_DIR}: this top-level name is reserved for mirror-copy's partial files and is not mirrored; rename it"
        ));
    }
    result
}

/// Take the writer's lock on the destination directory itself (`flock`, released when the
/// process ends, however it ends: a killed run never leaves it held), so nothing is created
/// in the destination for it. A file system without `flock` (some network mounts) is written
/// unlocked, as before.
fn lock_destination(dest: &Path, wait: std::time::Duration) -> Result<Option<std::fs::File>, Error> {
    let Ok(dir) = std::fs::File::open(dest) else {
        return Ok(None);
    };
    let deadline = std::time::Instant::now() + wait;
    loop {
        match dir.try_lock() {
            Ok(()) => return Ok(Some(dir)),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::DestinationBusy { path: dest.to_owned() });
            }
            Err(std::fs::TryLockError::Error(err)) => {
                tracing::warn!("cannot lock {}: {err}; writing without a lock", dest.display());
                return Ok(None);
            }
        }
    }
}

fn run(
    source: &Source,
    entries: &[Entry],
    dest: &Path,
    staging: &Path,
    excludes: &Excludes,
    options: &Options,
) -> Result<Stats, Error> {
    let mut stats = Stats::default();
    let settle = Settle::for_dest(dest, options);

    // Deletions are decided first, so --max-delete aborts before anything is touched.
    let doomed = if options.policy.delete {
        to_delete(entries, dest, excludes, options.policy.links)
    } else {
        Vec::new()
    };
    if let Some(max) = options.policy.max_delete {
        let count = removals(&doomed);
        if count > max {
            return Err(Error::TooManyDeletes {
                path: dest.to_owned(),
                count,
                max,
            });
        }
    }

    if options.dry_run {
        return Ok(dry_run(source, entries, dest, &doomed, options, &settle));
    }

    // Deletions first (as rsync's default), so a directory the source turned into a file is
    // empty by the time the file arrives. Excluded content keeps its directory.
    for doomed in doomed.iter().rev() {
        let removed = if doomed.is_dir {
            std::fs::remove_dir(&doomed.path)
        } else {
            std::fs::remove_file(&doomed.path)
        };
        match removed {
            Ok(()) if doomed.counts() => stats.deleted += 1,
            Ok(()) => {}
            // Gone already, or a parent was; a directory still holding excluded files stays
            // (one standing where the source has a file is reported when the file is copied).
            Err(err) if err.kind() == std::io::ErrorKind::NotFound || err.raw_os_error() == Some(20) => {}
            Err(err) if doomed.is_dir && err.raw_os_error() == Some(39) => {}
            Err(err) => stats
                .failed
                .push(format!("{}: cannot delete: {err}", doomed.path.display())),
        }
    }

    // Directories, parents first; a file or link in the way of one is replaced.
    let reader = if options.policy.checksum {
        source.reader()
    } else {
        Reader::default()
    };
    let mut work = Vec::new();
    // Directories on another file system than the destination's top (a mount point inside
    // it): a file is renamed into place from a staging directory on its own file system.
    let top_dev = std::fs::metadata(dest).map(|m| m.dev()).ok();
    let mut foreign = Foreign {
        top: staging.to_owned(),
        dirs: HashMap::new(),
    };
    for entry in entries {
        let target = dest.join(path_from_bytes(&entry.path));
        let current = std::fs::symlink_metadata(&target).ok();
        let dir_in_the_way = current.as_ref().is_some_and(|m| m.is_dir());
        match &entry.kind {
            Kind::Dir => {
                if !dir_in_the_way {
                    if current.is_some() {
                        std::fs::remove_file(&target).map_err(|e| write_error(dest, &target, e))?;
                    }
                    // Private until its contents are in place; its own mode comes last.
                    std::fs::DirBuilder::new()
                        .mode(0o700)
                        .create(&target)
                        .map_err(|e| write_error(dest, &target, e))?;
                }
                let dev = std::fs::symlink_metadata(&target).map(|m| m.dev()).ok();
                if dev.is_some() && dev != top_dev {
                    let staging = target.join(PARTIAL_DIR);
                    // A killed run's leftovers first, as for the top staging directory.
                    let _ = std::fs::remove_dir_all(&staging);
                    std::fs::create_dir(&staging).map_err(|e| write_error(dest, &staging, e))?;
                    foreign.dirs.insert(entry.path.clone(), staging);
                }
            }
            Kind::Symlink { .. } if options.policy.links == Links::Skip => stats.links_skipped += 1,
            Kind::Symlink { .. } | Kind::File { .. }
                if up_to_date(
                    source,
                    &reader,
                    entry,
                    &target,
                    current.as_ref(),
                    options.policy.checksum,
                    &settle,
                ) =>
            {
                settle_time(entry, &target, current.as_ref(), &settle);
                stats.unchanged += 1;
            }
            _ if dir_in_the_way => {
                // The old directory may hold files the source never had: only --delete clears it
                // (rsync and rclone refuse too), and it did so above, counted against
                // --max-delete. What is left holds excluded files, which a mirror never removes.
                // The rest of the run goes on.
                if options.policy.delete {
                    stats.failed.push(format!(
                        "{}: the destination has a directory holding excluded files where the source has a {}; \
                         nothing excluded is deleted: move those files away, then run again",
                        String::from_utf8_lossy(&entry.path),
                        if matches!(entry.kind, Kind::Symlink { .. }) {
                            "symlink"
                        } else {
                            "file"
                        }
                    ));
                } else {
                    stats.failed.push(format!(
                        "{}: the destination has a directory where the source has a {} (use --delete)",
                        String::from_utf8_lossy(&entry.path),
                        if matches!(entry.kind, Kind::Symlink { .. }) {
                            "symlink"
                        } else {
                            "file"
                        }
                    ));
                }
            }
            _ => work.push(entry),
        }
    }

    let copied = copy_all(source, &work, dest, &foreign, options.jobs, settle, &mut stats);
    for staging in foreign.dirs.values() {
        let _ = std::fs::remove_dir_all(staging);
    }
    copied?;
    set_dir_modes(entries, dest, settle, &mut stats);
    Ok(stats)
}

/// Where temp files go: the top's staging directory, and one in each of the destination's
/// directories on another file system.
struct Foreign {
    /// `.driftless-partial` at the destination's top.
    top: PathBuf,
    /// Repo-relative directory on another file system -> its staging directory.
    dirs: HashMap<Vec<u8>, PathBuf>,
}

impl Foreign {
    /// Where to stage `entry`'s temp file: beside it when its directory is on another file
    /// system (a rename cannot cross one), else in the worker's `staging`.
    fn staging_for<'a>(&'a self, entry: &Entry, staging: &'a Path) -> &'a Path {
        let parent = entry.path.iter().rposition(|&b| b == b'/').map(|i| &entry.path[..i]);
        match parent.and_then(|p| self.dirs.get(p)) {
            Some(dir) => dir,
            None => staging,
        }
    }
}

/// Give each directory its source mode, deepest first and after its contents: a `0700`
/// directory of the source is `0700` in the mirror, and one without write permission was
/// still written into.
fn set_dir_modes(entries: &[Entry], dest: &Path, settle: Settle, stats: &mut Stats) {
    for entry in entries.iter().rev() {
        if entry.kind != Kind::Dir {
            continue;
        }
        let mode = entry.mode;
        let target = dest.join(path_from_bytes(&entry.path));
        let Ok(meta) = std::fs::symlink_metadata(&target) else {
            continue;
        };
        if !meta.is_dir() || meta.permissions().mode() & 0o7777 == mode {
            continue;
        }
        if let Err(err) = std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
            && settle.perms
        {
            stats.failed.push(format!(
                "{}: cannot set the directory's mode {mode:o}: {err}",
                String::from_utf8_lossy(&entry.path)
            ));
        }
    }
}

/// What a run would do, touching nothing.
fn dry_run(
    source: &Source,
    entries: &[Entry],
    dest: &Path,
    doomed: &[Doomed],
    options: &Options,
    settle: &Settle,
) -> Stats {
    let mut stats = Stats {
        deleted: removals(doomed),
        ..Stats::default()
    };
    let reader = if options.policy.checksum {
        source.reader()
    } else {
        Reader::default()
    };
    for entry in entries {
        let target = dest.join(path_from_bytes(&entry.path));
        let current = std::fs::symlink_metadata(&target).ok();
        let same = match &entry.kind {
            Kind::Dir => continue,
            Kind::Symlink { .. } if options.policy.links == Links::Skip => {
                stats.links_skipped += 1;
                continue;
            }
            _ => up_to_date(
                source,
                &reader,
                entry,
                &target,
                current.as_ref(),
                options.policy.checksum,
                settle,
            ),
        };
        if same {
            stats.unchanged += 1;
        } else {
            stats.copied += 1;
            if let Kind::File { size, .. } = entry.kind {
                stats.bytes += size;
            }
        }
    }
    stats
}

/// The quick check: the destination already holds `entry` (same link target; or a file of the
/// same size, mtime and mode, and with `checksum` the same content).
fn up_to_date(
    source: &Source,
    reader: &Reader,
    entry: &Entry,
    target: &Path,
    current: Option<&std::fs::Metadata>,
    checksum: bool,
    settle: &Settle,
) -> bool {
    match &entry.kind {
        Kind::Dir => false,
        Kind::Symlink { target: link } => {
            current.is_some_and(|m| m.file_type().is_symlink())
                && std::fs::read_link(target).is_ok_and(|t| path_to_bytes(&t) == link.as_slice())
        }
        Kind::File { size, mtime, blob } => {
            let Some(m) = current.filter(|m| {
                m.is_file() && m.size() == *size && (!settle.perms || m.permissions().mode() & 0o7777 == entry.mode)
            }) else {
                return false;
            };
            if m.modified().is_ok_and(|t| settle.same_time(t, *mtime)) {
                return !checksum || same_content(source, reader, entry, target);
            }
            // `--from commit` stamps each file with the commit's time, so after a new commit
            // every file's time differs: one whose content is still the commit's blob is the
            // same file (read without following, never whole), and is not copied again.
            blob.is_some_and(|id| same_blob(target, id))
        }
    }
}

/// Whether the file at `target` hashes to blob `id`, as git would store it: opened without
/// following a link and refused unless regular, read a block at a time.
fn same_blob(target: &Path, id: gix::ObjectId) -> bool {
    crate::safe_fs::open_regular(target)
        .and_then(|file| {
            let len = file.metadata()?.len();
            crate::git::hash_blob(file, len, id.kind())
        })
        .is_ok_and(|hash| hash == id)
}

/// After [`up_to_date`] found a file the same by its blob: give it the listing's time, so the
/// next run's quick check passes without reading it again.
fn settle_time(entry: &Entry, target: &Path, current: Option<&std::fs::Metadata>, settle: &Settle) {
    let Kind::File {
        mtime, blob: Some(_), ..
    } = &entry.kind
    else {
        return;
    };
    if current.is_some_and(|m| m.modified().is_ok_and(|t| settle.same_time(t, *mtime))) {
        return;
    }
    // A failure only means reading it again next run.
    let _ = set_mtime(target, *mtime);
}

/// Set `path`'s access and modification times to `mtime`, on a link itself, never through one.
fn set_mtime(path: &Path, mtime: std::time::SystemTime) -> std::io::Result<()> {
    let since = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(std::io::Error::other)?;
    let time = rustix::fs::Timespec {
        tv_sec: since.as_secs() as i64,
        tv_nsec: since.subsec_nanos() as _,
    };
    let times = rustix::fs::Timestamps {
        last_access: time,
        last_modification: time,
    };
    rustix::fs::utimensat(rustix::fs::CWD, path, &times, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

fn copy_all(
    source: &Source,
    work: &[&Entry],
    dest: &Path,
    foreign: &Foreign,
    jobs: usize,
    settle: Settle,
    stats: &mut Stats,
) -> Result<(), Error> {
    let next = AtomicUsize::new(0);
    let copied = AtomicUsize::new(0);
    let bytes = AtomicU64::new(0);
    let failed = Mutex::new(Vec::new());
    let fatal: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for worker in 0..jobs.clamp(1, work.len().max(1)) {
            let (next, copied, bytes, failed, fatal) = (&next, &copied, &bytes, &failed, &fatal);
            scope.spawn(move || {
                let reader = source.reader();
                // Each worker stages in its own directory: creating and renaming files out of
                // one shared directory would serialize the workers on its lock.
                let staging = foreign.top.join(worker.to_string());
                if let Err(err) = std::fs::create_dir(&staging)
                    && let Ok(mut fatal) = fatal.lock()
                {
                    fatal.get_or_insert(write_error(dest, &staging, err));
                }
                loop {
                    if fatal.lock().map(|f| f.is_some()).unwrap_or(true) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(entry) = work.get(i) else { break };
                    let tmp = foreign.staging_for(entry, &staging).join(format!("{worker}-{i}"));
                    let target = dest.join(path_from_bytes(&entry.path));
                    match copy_one(source, &reader, entry, &tmp, &target, settle) {
                        Ok(n) => {
                            copied.fetch_add(1, Ordering::Relaxed);
                            bytes.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(CopyError::Read(err)) => {
                            if let Ok(mut failed) = failed.lock() {
                                failed.push(format!("{}: cannot read: {err}", String::from_utf8_lossy(&entry.path)));
                            }
                        }
                        Err(CopyError::Write(err)) => {
                            let _ = std::fs::remove_file(&tmp);
                            if let Ok(mut fatal) = fatal.lock() {
                                fatal.get_or_insert(write_error(dest, &target, err));
                            }
                        }
                    }
                }
            });
        }
    });
    stats.copied += copied.into_inner();
    stats.bytes += bytes.into_inner();
    stats.failed.extend(failed.into_inner().unwrap_or_default());
    match fatal.into_inner().ok().flatten() {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

enum CopyError {
    /// The source could not be read: reported, the run goes on.
    Read(std::io::Error),
    /// The destination could not be written: the run stops.
    Write(std::io::Error),
}

fn copy_one(
    source: &Source,
    reader: &Reader,
    entry: &Entry,
    tmp: &Path,
    target: &Path,
    settle: Settle,
) -> Result<u64, CopyError> {
    match &entry.kind {
        Kind::Symlink { target: link } => {
            std::os::unix::fs::symlink(path_from_bytes(link), tmp).map_err(CopyError::Write)?;
            std::fs::rename(tmp, target).map_err(CopyError::Write)?;
            Ok(0)
        }
        Kind::File { mtime, size, .. } => {
            let mode = &entry.mode;
            let written = match source.read(entry, reader).map_err(CopyError::Read)? {
                Content::File(mut input) => {
                    let mut output = std::fs::File::create(tmp).map_err(CopyError::Write)?;
                    let n = if *size <= SMALL_FILE {
                        // Most files of a repo are small: one read and one write, where
                        // std::io::copy would probe both files and try copy_file_range first.
                        // Bounded by the listed size (plus one byte to see it grew): a file
                        // growing under the copy is never read whole into memory.
                        SMALL_BUF.with_borrow_mut(|buf| {
                            buf.clear();
                            (&mut input)
                                .take(SMALL_FILE + 1)
                                .read_to_end(buf)
                                .map_err(CopyError::Read)?;
                            if buf.len() as u64 > SMALL_FILE {
                                output.write_all(buf).map_err(CopyError::Write)?;
                                let rest = std::io::copy(&mut input, &mut output).map_err(|e| classify(e, &input))?;
                                return Ok::<u64, CopyError>(buf.len() as u64 + rest);
                            }
                            output.write_all(buf).map_err(CopyError::Write)?;
                            Ok::<u64, CopyError>(buf.len() as u64)
                        })?
                    } else {
                        // Large files: copy_file_range lets the kernel move the bytes.
                        std::io::copy(&mut input, &mut output).map_err(|e| classify(e, &input))?
                    };
                    finish(&output, *mode, *mtime, settle)?;
                    n
                }
                Content::Bytes(data) => {
                    let mut output = std::fs::File::create(tmp).map_err(CopyError::Write)?;
                    output.write_all(&data).map_err(CopyError::Write)?;
                    finish(&output, *mode, *mtime, settle)?;
                    data.len() as u64
                }
            };
            std::fs::rename(tmp, target).map_err(CopyError::Write)?;
            // Closed and in place by now: a failure only means copying it again next run.
            if settle.retime {
                let _ = set_mtime(target, *mtime);
            }
            Ok(written)
        }
        Kind::Dir => Ok(0),
    }
}

fn finish(file: &std::fs::File, mode: u32, mtime: std::time::SystemTime, settle: Settle) -> Result<(), CopyError> {
    // Set even without `perms`: a 0600 file must not stay at the umask's 0644 where modes work.
    if let Err(err) = file.set_permissions(std::fs::Permissions::from_mode(mode))
        && settle.perms
    {
        return Err(CopyError::Write(err));
    }
    file.set_modified(mtime).map_err(CopyError::Write)
}

/// A failed `io::copy` is the source's fault when the source can no longer be read.
fn classify(err: std::io::Error, input: &std::fs::File) -> CopyError {
    use std::os::unix::fs::FileExt;
    if input.read_at(&mut [0u8; 1], 0).is_err() {
        CopyError::Read(err)
    } else {
        CopyError::Write(err)
    }
}

fn write_error(dest: &Path, path: &Path, source: std::io::Error) -> Error {
    // ENOSPC and EDQUOT: say so plainly.
    if matches!(source.raw_os_error(), Some(28) | Some(122)) {
        Error::DestinationFull { path: dest.to_owned() }
    } else {
        Error::Write {
            path: path.to_owned(),
            source,
        }
    }
}

fn same_content(source: &Source, reader: &Reader, entry: &Entry, target: &Path) -> bool {
    // The destination is opened without following a link; neither side is read whole.
    let Ok(theirs) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(target)
    else {
        return false;
    };
    match source.read(entry, reader) {
        Ok(Content::File(ours)) => same_bytes(ours, theirs),
        Ok(Content::Bytes(ours)) => same_bytes(ours.as_slice(), theirs),
        Err(_) => false,
    }
}

/// Whether two streams hold the same bytes, compared a block at a time.
fn same_bytes(mut a: impl Read, mut b: impl Read) -> bool {
    let mut left = vec![0u8; 64 * 1024];
    let mut right = vec![0u8; 64 * 1024];
    loop {
        let Ok(n) = read_full(&mut a, &mut left) else {
            return false;
        };
        let Ok(m) = read_full(&mut b, &mut right) else {
            return false;
        };
        if n != m || left[..n] != right[..m] {
            return false;
        }
        if n == 0 {
            return true;
        }
    }
}

/// Fill `buf` as far as the stream goes.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// A path of the destination that `--delete` removes.
#[derive(Debug)]
struct Doomed {
    path: PathBuf,
    is_dir: bool,
    /// A directory standing where the source has a file or link.
    in_the_way: bool,
}

impl Doomed {
    /// Whether removing it counts as a deletion (for `--max-delete` and the report): every
    /// file and link, and a directory the source replaced by a file. A directory the source no
    /// longer has is counted by its files.
    fn counts(&self) -> bool {
        !self.is_dir || self.in_the_way
    }
}

/// How many deletions `doomed` makes.
fn removals(doomed: &[Doomed]) -> usize {
    doomed.iter().filter(|d| d.counts()).count()
}

/// Paths under `dest` that the source does not have, or has as another kind (not counting
/// excluded ones, which a mirror leaves alone), parents before what they hold.
fn to_delete(entries: &[Entry], dest: &Path, excludes: &Excludes, links: Links) -> Vec<Doomed> {
    let keep: HashMap<&[u8], bool> = entries
        .iter()
        .filter(|e| links == Links::Copy || !matches!(e.kind, Kind::Symlink { .. }))
        .map(|e| (e.path.as_slice(), e.kind == Kind::Dir))
        .collect();
    let mut out = Vec::new();
    walk_dest(dest, Vec::new(), &keep, excludes, links, &mut out);
    out
}

fn walk_dest(
    dir: &Path,
    prefix: Vec<u8>,
    keep: &HashMap<&[u8], bool>,
    excludes: &Excludes,
    links: Links,
    out: &mut Vec<Doomed>,
) {
    let Ok(read) = std::fs::read_dir(dir) else { return };
    for entry in read.flatten() {
        let mut rela = prefix.clone();
        if !rela.is_empty() {
            rela.push(b'/');
        }
        rela.extend_from_slice(path_to_bytes(Path::new(&entry.file_name())));
        // The top's staging directory, and those of mount points inside the destination.
        if entry.file_name() == PARTIAL_DIR {
            continue;
        }
        let file_type = entry.file_type().ok();
        if links == Links::Skip && file_type.is_some_and(|t| t.is_symlink()) {
            continue; // --skip-links leaves links in the mirror alone, as rsync --no-links does.
        }
        let is_dir = file_type.is_some_and(|t| t.is_dir());
        if is_dir && excludes.excludes_dir(&rela) || !is_dir && excludes.excludes_file(&rela) {
            continue;
        }
        let wanted = keep.get(rela.as_slice()).copied();
        if is_dir {
            if wanted != Some(true) {
                out.push(Doomed {
                    path: entry.path(),
                    is_dir: true,
                    in_the_way: wanted == Some(false),
                });
            }
            walk_dest(&entry.path(), rela, keep, excludes, links, out);
        } else if wanted != Some(false) {
            // Gone from the source, or a directory there now.
            out.push(Doomed {
                path: entry.path(),
                is_dir: false,
                in_the_way: false,
            });
        }
    }
}
