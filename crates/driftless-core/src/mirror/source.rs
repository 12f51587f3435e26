//! What a mirror copies: the checkout's working tree, or the tree of the committed HEAD read
//! straight from the object database (exactly what is in git, no local stray files).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gix::ObjectId;

use super::filter::Excludes;
use crate::git::checkout::{path_from_bytes, path_to_bytes};

/// The permission bits a mirror keeps: read, write and execute, never setuid, setgid or sticky.
pub const PERMISSIONS: u32 = 0o777;

/// One file, link or directory of the source, by repo-relative path (`/`-separated).
#[derive(Debug, Clone)]
pub struct Entry {
    /// Repo-relative path.
    pub path: Vec<u8>,
    /// What it is.
    pub kind: Kind,
    /// Permission bits of a file or directory (`0o755`, `0o644`, ...; 0 for a link), never
    /// setuid, setgid or sticky: a mirror written by root must not hand out a setuid-root copy
    /// of a user's file.
    pub mode: u32,
}

/// The kind of a source entry and what the quick check compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory (its mode is [`Entry::mode`], applied after its contents).
    Dir,
    /// A regular file.
    File {
        /// Size in bytes.
        size: u64,
        /// Modification time (for `--from commit`: the commit's time).
        mtime: SystemTime,
        /// The blob, for `--from commit`.
        blob: Option<ObjectId>,
    },
    /// A symbolic link, copied as a link (never followed).
    Symlink {
        /// The link's target, as stored.
        target: Vec<u8>,
    },
}

/// Where entries come from.
pub enum Source {
    /// The working tree at this path.
    Worktree(PathBuf),
    /// The tree of a commit in the repository at `repo` (opened per thread: gix handles are
    /// not shared across threads in this build).
    Commit { repo: PathBuf, commit: ObjectId },
}

/// A source listing: entries in walk order (a directory before what it holds), and the paths
/// that could not be read.
#[derive(Debug, Default)]
pub struct Listing {
    pub entries: Vec<Entry>,
    pub unreadable: Vec<(Vec<u8>, String)>,
}

/// Why the source could not be listed at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the source {path}", path = path.display())]
    Root { path: PathBuf, source: std::io::Error },
    #[error("cannot read commit {commit} to mirror it")]
    Commit { commit: ObjectId, source: gix::Error },
}

impl Source {
    /// List every entry not excluded by `excludes`.
    pub fn list(&self, excludes: &Excludes) -> Result<Listing, Error> {
        let mut listing = Listing::default();
        match self {
            Source::Worktree(root) => {
                let read = std::fs::read_dir(root).map_err(|source| Error::Root {
                    path: root.clone(),
                    source,
                })?;
                walk_dir(Vec::new(), read, excludes, &mut listing);
            }
            Source::Commit { repo, commit } => {
                let err = |source| Error::Commit {
                    commit: *commit,
                    source,
                };
                let repo = gix::open(repo).map_err(err)?;
                let commit_obj = repo.find_commit(*commit).map_err(err)?;
                let seconds = commit_obj.time().map_err(err)?.seconds;
                let mtime = UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
                let tree = commit_obj.tree_id().map_err(err)?.detach();
                walk_tree(&repo, tree, Vec::new(), mtime, excludes, &mut listing).map_err(err)?;
            }
        }
        Ok(listing)
    }

    /// What [`Source::read`] reads through, one per thread: the working tree's top directory
    /// (files are opened below it), or the repository (gix handles are not shared across
    /// threads in this build).
    pub fn reader(&self) -> Reader {
        match self {
            Source::Worktree(root) => Reader {
                root: std::fs::File::open(root).ok(),
                repo: None,
            },
            Source::Commit { repo, .. } => Reader {
                root: None,
                repo: gix::open(repo).ok(),
            },
        }
    }

    /// Open the content of a file entry for copying.
    ///
    /// A working tree belongs to someone who may swap a file or a parent directory for a
    /// symlink (to `/etc/shadow`) between listing and copy: the file is opened relative to the
    /// top directory's handle, following no symlink on the way, and must still be a regular
    /// file.
    pub fn read(&self, entry: &Entry, reader: &Reader) -> std::io::Result<Content> {
        match (self, &entry.kind) {
            (Source::Worktree(_), Kind::File { .. }) => {
                let root = reader
                    .root
                    .as_ref()
                    .ok_or_else(|| std::io::Error::other("the top of the working tree could not be opened"))?;
                open_beneath(root, &entry.path).map(Content::File)
            }
            (Source::Commit { .. }, Kind::File { blob: Some(id), .. }) => {
                let repo = reader
                    .repo
                    .as_ref()
                    .ok_or_else(|| std::io::Error::other("no repository handle"))?;
                let object = repo.find_object(*id).map_err(std::io::Error::other)?;
                Ok(Content::Bytes(object.detach().data))
            }
            _ => Err(std::io::Error::other("not a file")),
        }
    }
}

/// A thread's handle on the source, from [`Source::reader`].
#[derive(Default)]
pub struct Reader {
    root: Option<std::fs::File>,
    repo: Option<gix::Repository>,
}

/// A file's content: an open file (the kernel copies it), or bytes from git.
pub enum Content {
    File(std::fs::File),
    Bytes(Vec<u8>),
}

/// Open the regular file at `rel` below the directory `root` without following any symlink
/// (`openat2` with `RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH`; before Linux 5.6, one `openat`
/// with `O_NOFOLLOW` per component). A FIFO or device put there is not opened for reading
/// (`O_NONBLOCK`, then refused by type).
fn open_beneath(root: &std::fs::File, rel: &[u8]) -> std::io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    let resolve = ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    let fd = match rustix::fs::openat2(root, path_from_bytes(rel), flags, Mode::empty(), resolve) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOSYS) => {
            let mut parts = rel.split(|&b| b == b'/').peekable();
            let mut dir: Option<rustix::fd::OwnedFd> = None;
            loop {
                let part = parts.next().unwrap_or_default();
                if part.is_empty() || part == b"." || part == b".." {
                    return Err(std::io::Error::other("not a plain relative path"));
                }
                let at = dir
                    .as_ref()
                    .map_or_else(|| rustix::fd::AsFd::as_fd(root), rustix::fd::AsFd::as_fd);
                if parts.peek().is_none() {
                    break rustix::fs::openat(at, path_from_bytes(part), flags, Mode::empty())?;
                }
                let next = rustix::fs::openat(
                    at,
                    path_from_bytes(part),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                dir = Some(next);
            }
        }
        Err(err) => return Err(err.into()),
    };
    let file = std::fs::File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other(
            "no longer a regular file (replaced since it was listed); not read",
        ));
    }
    Ok(file)
}

fn walk_dir(prefix: Vec<u8>, read: std::fs::ReadDir, excludes: &Excludes, out: &mut Listing) {
    for entry in read {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                out.unreadable.push((prefix.clone(), err.to_string()));
                continue;
            }
        };
        let mut path = prefix.clone();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(path_to_bytes(Path::new(&entry.file_name())));
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(err) => {
                out.unreadable.push((path, err.to_string()));
                continue;
            }
        };
        if file_type.is_dir() {
            if excludes.excludes_dir(&path) {
                continue;
            }
            let mode = match entry.metadata() {
                Ok(meta) => meta.permissions().mode() & PERMISSIONS,
                Err(err) => {
                    out.unreadable.push((path, err.to_string()));
                    continue;
                }
            };
            match std::fs::read_dir(entry.path()) {
                Ok(read) => {
                    out.entries.push(Entry {
                        path: path.clone(),
                        kind: Kind::Dir,
                        mode,
                    });
                    walk_dir(path, read, excludes, out);
                }
                Err(err) => out.unreadable.push((path, err.to_string())),
            }
            continue;
        }
        if excludes.excludes_file(&path) {
            continue;
        }
        if file_type.is_symlink() {
            match std::fs::read_link(entry.path()) {
                Ok(target) => out.entries.push(Entry {
                    path,
                    kind: Kind::Symlink {
                        target: path_to_bytes(&target).to_vec(),
                    },
                    mode: 0,
                }),
                Err(err) => out.unreadable.push((path, err.to_string())),
            }
        } else if file_type.is_file() {
            match entry.metadata() {
                Ok(meta) => out.entries.push(Entry {
                    path,
                    kind: Kind::File {
                        size: meta.size(),
                        mtime: meta.modified().unwrap_or(UNIX_EPOCH),
                        blob: None,
                    },
                    mode: meta.permissions().mode() & PERMISSIONS,
                }),
                Err(err) => out.unreadable.push((path, err.to_string())),
            }
        }
        // Sockets, fifos and devices have no place in a mirror of a repo.
    }
}

/// What git checks of a tree entry's name on Linux (`core.protectNTFS` is on by default, and
/// `.git` is refused in any case).
const GIT_ON_LINUX: gix::validate::path::component::Options = gix::validate::path::component::Options {
    protect_windows: false,
    protect_hfs: false,
    protect_ntfs: true,
};

fn walk_tree(
    repo: &gix::Repository,
    tree: ObjectId,
    prefix: Vec<u8>,
    mtime: SystemTime,
    excludes: &Excludes,
    out: &mut Listing,
) -> Result<(), gix::Error> {
    use gix::objs::tree::EntryKind;
    let tree = repo.find_tree(tree)?;
    for entry in tree.iter() {
        let entry = entry?;
        let mut path = prefix.clone();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(entry.filename());
        // A crafted tree can name an entry `..`, `.git` or `a/b`: git refuses to check such a
        // tree out, and so does a mirror (it would write outside the destination).
        let leaf = (entry.mode().kind() == EntryKind::Link).then_some(gix::validate::path::component::Mode::Symlink);
        if let Err(err) = gix::validate::path::component(entry.filename(), leaf, GIT_ON_LINUX) {
            out.unreadable
                .push((path, format!("invalid name in commit tree, not mirrored: {err}")));
            continue;
        }
        let id = entry.object_id();
        match entry.mode().kind() {
            EntryKind::Tree => {
                if !excludes.excludes_dir(&path) {
                    out.entries.push(Entry {
                        path: path.clone(),
                        kind: Kind::Dir,
                        mode: 0o755,
                    });
                    walk_tree(repo, id, path, mtime, excludes, out)?;
                }
            }
            EntryKind::Commit => {} // Submodules are not part of this repo's content.
            _ if excludes.excludes_file(&path) => {}
            EntryKind::Link => {
                let target = repo.find_object(id)?.detach().data;
                out.entries.push(Entry {
                    path,
                    kind: Kind::Symlink { target },
                    mode: 0,
                });
            }
            kind @ (EntryKind::Blob | EntryKind::BlobExecutable) => {
                let size = repo.find_header(id)?.size();
                let mode = if kind == EntryKind::BlobExecutable {
                    0o755
                } else {
                    0o644
                };
                out.entries.push(Entry {
                    path,
                    kind: Kind::File {
                        size,
                        mtime,
                        blob: Some(id),
                    },
                    mode,
                });
            }
        }
    }
    Ok(())
}
