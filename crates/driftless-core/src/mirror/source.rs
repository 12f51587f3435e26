//! What a mirror copies: the checkout's working tree, or the tree of the committed HEAD read
//! straight from the object database (exactly what is in git, no local stray files).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gix::ObjectId;

use super::filter::Excludes;
use crate::git::checkout::{path_from_bytes, path_to_bytes};

/// One file, link or directory of the source, by repo-relative path (`/`-separated).
#[derive(Debug, Clone)]
pub struct Entry {
    /// Repo-relative path.
    pub path: Vec<u8>,
    /// What it is.
    pub kind: Kind,
}

/// The kind of a source entry and what the quick check compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File {
        /// Size in bytes.
        size: u64,
        /// Modification time (for `--from commit`: the commit's time).
        mtime: SystemTime,
        /// Permission bits (`0o755`, `0o644`, ...).
        mode: u32,
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

    /// A repository handle for [`Source::read`] on this thread; `None` for a working tree.
    pub fn open_repo(&self) -> Option<gix::Repository> {
        match self {
            Source::Commit { repo, .. } => gix::open(repo).ok(),
            Source::Worktree(_) => None,
        }
    }

    /// Open the content of a file entry for copying.
    pub fn read(&self, entry: &Entry, repo: Option<&gix::Repository>) -> std::io::Result<Content> {
        match (self, &entry.kind) {
            (Source::Worktree(root), _) => Ok(Content::Path(root.join(path_from_bytes(&entry.path)))),
            (Source::Commit { .. }, Kind::File { blob: Some(id), .. }) => {
                let repo = repo.ok_or_else(|| std::io::Error::other("no repository handle"))?;
                let object = repo.find_object(*id).map_err(std::io::Error::other)?;
                Ok(Content::Bytes(object.detach().data))
            }
            _ => Err(std::io::Error::other("not a file")),
        }
    }
}

/// A file's content: a path to copy from (the kernel copies it), or bytes from git.
pub enum Content {
    Path(PathBuf),
    Bytes(Vec<u8>),
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
            match std::fs::read_dir(entry.path()) {
                Ok(read) => {
                    out.entries.push(Entry {
                        path: path.clone(),
                        kind: Kind::Dir,
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
                        mode: meta.permissions().mode() & 0o7777,
                        blob: None,
                    },
                }),
                Err(err) => out.unreadable.push((path, err.to_string())),
            }
        }
        // Sockets, fifos and devices have no place in a mirror of a repo.
    }
}

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
        let id = entry.object_id();
        match entry.mode().kind() {
            EntryKind::Tree => {
                if !excludes.excludes_dir(&path) {
                    out.entries.push(Entry {
                        path: path.clone(),
                        kind: Kind::Dir,
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
                        mode,
                        blob: Some(id),
                    },
                });
            }
        }
    }
    Ok(())
}
