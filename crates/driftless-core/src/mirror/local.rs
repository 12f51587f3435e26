//! The native mirror engine for a local destination (a backup disk, an NFS or `rclone mount`).
//!
//! A file is copied when its size, mtime or mode differ (or its content, with `checksum`).
//! Each copy is written under `.driftless-partial/` at the destination's top and renamed into
//! place, so neither a reader nor a crash ever sees a half file under a final name; a run
//! removes whatever a killed run left there. Files are copied on `jobs` threads.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::Policy;
use super::filter::Excludes;
use super::source::{Content, Entry, Kind, Source};
use crate::git::checkout::{path_from_bytes, path_to_bytes};

/// Files up to this size are copied with one read and one write through [`SMALL_BUF`].
const SMALL_FILE: u64 = 1 << 20;

thread_local! {
    /// Each copy thread's buffer for small files.
    static SMALL_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The staging directory for partial files, at the top of the destination.
pub const PARTIAL_DIR: &str = ".driftless-partial";

/// What to do with symbolic links.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Links {
    /// Copy them as links (never followed).
    #[default]
    Copy,
    /// Leave them out.
    Skip,
}

/// How to copy.
#[derive(Debug, Clone)]
pub struct Options {
    /// What to keep in line.
    pub policy: Policy,
    /// Count what would change; write nothing.
    pub dry_run: bool,
    /// Copy threads.
    pub jobs: usize,
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

fn run(
    source: &Source,
    entries: &[Entry],
    dest: &Path,
    staging: &Path,
    excludes: &Excludes,
    options: &Options,
) -> Result<Stats, Error> {
    let mut stats = Stats::default();

    // Deletions are decided first, so --max-delete aborts before anything is touched.
    let doomed = if options.policy.delete {
        to_delete(entries, dest, excludes, options.policy.links)
    } else {
        Vec::new()
    };
    if let Some(max) = options.policy.max_delete {
        let files = doomed.iter().filter(|(_, is_dir)| !is_dir).count();
        if files > max {
            return Err(Error::TooManyDeletes {
                path: dest.to_owned(),
                count: files,
                max,
            });
        }
    }

    if options.dry_run {
        return Ok(dry_run(source, entries, dest, &doomed, options));
    }

    // Deletions first (as rsync's default), so a directory the source turned into a file is
    // empty by the time the file arrives. Excluded content keeps its directory.
    for (path, is_dir) in doomed.iter().rev() {
        let removed = if *is_dir {
            std::fs::remove_dir(path)
        } else {
            std::fs::remove_file(path)
        };
        match removed {
            Ok(()) if !is_dir => stats.deleted += 1,
            Ok(()) => {}
            // Gone already, or a parent was; a directory still holding excluded files stays.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound || err.raw_os_error() == Some(20) => {}
            Err(err) if *is_dir && err.raw_os_error() == Some(39) => {}
            Err(err) => stats.failed.push(format!("{}: cannot delete: {err}", path.display())),
        }
    }

    // Directories, parents first; a file or link in the way of one is replaced.
    let repo = if options.policy.checksum {
        source.open_repo()
    } else {
        None
    };
    let mut work = Vec::new();
    for entry in entries {
        let target = dest.join(path_from_bytes(&entry.path));
        let current = std::fs::symlink_metadata(&target).ok();
        let dir_in_the_way = current.as_ref().is_some_and(|m| m.is_dir());
        match &entry.kind {
            Kind::Dir => {
                if dir_in_the_way {
                    continue;
                }
                if current.is_some() {
                    std::fs::remove_file(&target).map_err(|e| write_error(dest, &target, e))?;
                }
                std::fs::create_dir(&target).map_err(|e| write_error(dest, &target, e))?;
            }
            Kind::Symlink { .. } if options.policy.links == Links::Skip => stats.links_skipped += 1,
            Kind::Symlink { .. } | Kind::File { .. }
                if up_to_date(
                    source,
                    repo.as_ref(),
                    entry,
                    &target,
                    current.as_ref(),
                    options.policy.checksum,
                ) =>
            {
                stats.unchanged += 1;
            }
            _ if dir_in_the_way => {
                // The old directory may hold files the source never had: only --delete clears it
                // (rsync and rclone refuse too). The rest of the run goes on.
                if options.policy.delete {
                    stats.deleted += count_files(&target);
                    std::fs::remove_dir_all(&target).map_err(|e| write_error(dest, &target, e))?;
                    work.push(entry);
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

    copy_all(source, &work, dest, staging, options.jobs, &mut stats)?;
    Ok(stats)
}

/// What a run would do, touching nothing.
fn dry_run(source: &Source, entries: &[Entry], dest: &Path, doomed: &[(PathBuf, bool)], options: &Options) -> Stats {
    let mut stats = Stats {
        deleted: doomed.iter().filter(|(_, is_dir)| !is_dir).count(),
        ..Stats::default()
    };
    let repo = if options.policy.checksum {
        source.open_repo()
    } else {
        None
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
                repo.as_ref(),
                entry,
                &target,
                current.as_ref(),
                options.policy.checksum,
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
    repo: Option<&gix::Repository>,
    entry: &Entry,
    target: &Path,
    current: Option<&std::fs::Metadata>,
    checksum: bool,
) -> bool {
    match &entry.kind {
        Kind::Dir => false,
        Kind::Symlink { target: link } => {
            current.is_some_and(|m| m.file_type().is_symlink())
                && std::fs::read_link(target).is_ok_and(|t| path_to_bytes(&t) == link.as_slice())
        }
        Kind::File { size, mtime, mode, .. } => {
            current.is_some_and(|m| {
                m.is_file()
                    && m.size() == *size
                    && m.modified().is_ok_and(|t| t == *mtime)
                    && m.permissions().mode() & 0o7777 == *mode
            }) && (!checksum || same_content(source, repo, entry, target))
        }
    }
}

fn count_files(dir: &Path) -> usize {
    let Ok(read) = std::fs::read_dir(dir) else { return 0 };
    read.flatten()
        .map(|e| {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

fn copy_all(
    source: &Source,
    work: &[&Entry],
    dest: &Path,
    staging: &Path,
    jobs: usize,
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
                let repo = source.open_repo();
                // Each worker stages in its own directory: creating and renaming files out of
                // one shared directory would serialize the workers on its lock.
                let staging = staging.join(worker.to_string());
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
                    let tmp = staging.join(i.to_string());
                    let target = dest.join(path_from_bytes(&entry.path));
                    match copy_one(source, repo.as_ref(), entry, &tmp, &target) {
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
    repo: Option<&gix::Repository>,
    entry: &Entry,
    tmp: &Path,
    target: &Path,
) -> Result<u64, CopyError> {
    match &entry.kind {
        Kind::Symlink { target: link } => {
            std::os::unix::fs::symlink(path_from_bytes(link), tmp).map_err(CopyError::Write)?;
            std::fs::rename(tmp, target).map_err(CopyError::Write)?;
            Ok(0)
        }
        Kind::File { mtime, mode, size, .. } => {
            let written = match source.read(entry, repo).map_err(CopyError::Read)? {
                Content::Path(from) => {
                    let mut input = std::fs::File::open(&from).map_err(CopyError::Read)?;
                    let mut output = std::fs::File::create(tmp).map_err(CopyError::Write)?;
                    let n = if *size <= SMALL_FILE {
                        // Most files of a repo are small: one read and one write, where
                        // std::io::copy would probe both files and try copy_file_range first.
                        SMALL_BUF.with_borrow_mut(|buf| {
                            buf.clear();
                            input.read_to_end(buf).map_err(CopyError::Read)?;
                            output.write_all(buf).map_err(CopyError::Write)?;
                            Ok::<u64, CopyError>(buf.len() as u64)
                        })?
                    } else {
                        // Large files: copy_file_range lets the kernel move the bytes.
                        std::io::copy(&mut input, &mut output).map_err(|e| classify(e, &from))?
                    };
                    finish(&output, *mode, *mtime)?;
                    n
                }
                Content::Bytes(data) => {
                    let mut output = std::fs::File::create(tmp).map_err(CopyError::Write)?;
                    output.write_all(&data).map_err(CopyError::Write)?;
                    finish(&output, *mode, *mtime)?;
                    data.len() as u64
                }
            };
            std::fs::rename(tmp, target).map_err(CopyError::Write)?;
            Ok(written)
        }
        Kind::Dir => Ok(0),
    }
}

fn finish(file: &std::fs::File, mode: u32, mtime: std::time::SystemTime) -> Result<(), CopyError> {
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(CopyError::Write)?;
    file.set_modified(mtime).map_err(CopyError::Write)
}

/// A failed `io::copy` is the source's fault when the source can no longer be read.
fn classify(err: std::io::Error, from: &Path) -> CopyError {
    if std::fs::File::open(from).is_err() {
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

fn same_content(source: &Source, repo: Option<&gix::Repository>, entry: &Entry, target: &Path) -> bool {
    let Ok(theirs) = std::fs::read(target) else {
        return false;
    };
    match source.read(entry, repo) {
        Ok(Content::Path(p)) => std::fs::read(p).is_ok_and(|ours| ours == theirs),
        Ok(Content::Bytes(ours)) => ours == theirs,
        Err(_) => false,
    }
}

/// Paths under `dest` that the source does not have (not counting excluded ones, which a
/// mirror leaves alone), deepest last; `true` marks directories.
fn to_delete(entries: &[Entry], dest: &Path, excludes: &Excludes, links: Links) -> Vec<(PathBuf, bool)> {
    let keep: HashSet<&[u8]> = entries
        .iter()
        .filter(|e| links == Links::Copy || !matches!(e.kind, Kind::Symlink { .. }))
        .map(|e| e.path.as_slice())
        .collect();
    let mut out = Vec::new();
    walk_dest(dest, Vec::new(), &keep, excludes, links, &mut out);
    out
}

fn walk_dest(
    dir: &Path,
    prefix: Vec<u8>,
    keep: &HashSet<&[u8]>,
    excludes: &Excludes,
    links: Links,
    out: &mut Vec<(PathBuf, bool)>,
) {
    let Ok(read) = std::fs::read_dir(dir) else { return };
    for entry in read.flatten() {
        let mut rela = prefix.clone();
        if !rela.is_empty() {
            rela.push(b'/');
        }
        rela.extend_from_slice(path_to_bytes(Path::new(&entry.file_name())));
        if rela == PARTIAL_DIR.as_bytes() {
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
        if is_dir {
            let gone = !keep.contains(rela.as_slice());
            if gone {
                out.push((entry.path(), true));
            }
            walk_dest(&entry.path(), rela, keep, excludes, links, out);
        } else if !keep.contains(rela.as_slice()) {
            out.push((entry.path(), false));
        }
    }
}
