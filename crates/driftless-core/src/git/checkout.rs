//! Open a checkout and read the state that decides whether it may be moved.

use std::path::{Path, PathBuf};

use gix::bstr::{BString, ByteSlice};

use super::ObjectId;

/// An opened, non-bare checkout.
pub struct Checkout {
    /// The repository.
    pub repo: gix::Repository,
    /// The top of the working tree.
    pub workdir: PathBuf,
}

/// Where HEAD points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// On a branch (short name) with its commit, `None` when the branch has no commit yet.
    Branch { name: String, id: Option<ObjectId> },
    /// Detached at a commit.
    Detached(ObjectId),
}

/// Why a checkout could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path} is not a git checkout (expected the top of a working tree, with .git inside)", path = path.display())]
    NotARepo { path: PathBuf, source: gix::Error },
    #[error("{path} is a bare repository; driftless syncs checkouts with a working tree", path = path.display())]
    Bare { path: PathBuf },
    #[error("cannot read the state of {path}", path = path.display())]
    Read { path: PathBuf, source: gix::Error },
}

impl Checkout {
    /// Open the checkout whose working tree is at `path`.
    pub fn open(path: &Path) -> Result<Checkout, Error> {
        // Network waits are bounded in git/http.rs, by defaults that git config can override
        // (overrides here would win over the host's own http.lowSpeedLimit and friends).
        let repo = gix::open_opts(path, gix::open::Options::default()).map_err(|source| Error::NotARepo {
            path: path.to_owned(),
            source,
        })?;
        let workdir = repo
            .workdir()
            .ok_or_else(|| Error::Bare { path: path.to_owned() })?
            .to_owned();
        Ok(Checkout { repo, workdir })
    }

    fn read_err(&self) -> impl Fn(gix::Error) -> Error + '_ {
        |source| Error::Read {
            path: self.workdir.clone(),
            source,
        }
    }

    /// Where HEAD points.
    pub fn head(&self) -> Result<Head, Error> {
        let head = self.repo.head().map_err(self.read_err())?;
        Ok(match head.kind {
            gix::head::Kind::Symbolic(reference) => Head::Branch {
                name: reference.name.shorten().to_string(),
                id: reference.target.try_id().map(ToOwned::to_owned),
            },
            gix::head::Kind::Unborn(name) => Head::Branch {
                name: name.shorten().to_string(),
                id: None,
            },
            gix::head::Kind::Detached { target, .. } => Head::Detached(target),
        })
    }

    /// A merge, rebase, cherry-pick, revert, bisect or `git am` that was started and not finished.
    pub fn operation_in_progress(&self) -> Option<&'static str> {
        use gix::state::InProgress::*;
        self.repo.state().map(|op| match op {
            ApplyMailbox | ApplyMailboxRebase => "am",
            Bisect => "bisect",
            CherryPick | CherryPickSequence => "cherry-pick",
            Merge => "merge",
            Rebase | RebaseInteractive => "rebase",
            Revert | RevertSequence => "revert",
        })
    }

    /// Remove partial pack files (`.tmp*`, `tmp_pack_*`, `tmp_idx_*`) older than `age` that a
    /// fetch killed mid-way left behind, so a repo whose runs keep timing out does not pile them
    /// up. Call it while holding the repo's lock; a git process of the user's own would be
    /// younger than `age`.
    pub fn remove_stale_temp_packs(&self, age: std::time::Duration) -> usize {
        let dir = self.repo.objects.store_ref().path().join("pack");
        let Ok(read) = std::fs::read_dir(&dir) else { return 0 };
        let mut removed = 0;
        for entry in read.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let temp = name.starts_with(".tmp") || name.starts_with("tmp_pack_") || name.starts_with("tmp_idx_");
            let old = entry
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|m| m.elapsed().ok())
                >= Some(age);
            if temp && old && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    /// Tracked paths whose content differs from HEAD: staged changes, unstaged modifications,
    /// deletions, type changes and conflicts. Untracked files are not counted.
    pub fn modified_paths(&self) -> Result<Vec<BString>, Error> {
        let mut paths = Vec::new();
        let iter = self
            .repo
            .status(gix::progress::Discard)
            .map_err(self.read_err())?
            .untracked_files(gix::status::UntrackedFiles::None)
            .index_worktree_rewrites(None)
            .index_worktree_submodules(gix::status::Submodule::Given {
                ignore: gix::submodule::config::Ignore::All,
                check_dirty: false,
            })
            .into_iter(Vec::<BString>::new())
            .map_err(self.read_err())?;
        for item in iter {
            let item = item.map_err(self.read_err())?;
            let counts = match &item {
                gix::status::Item::IndexWorktree(gix::status::index_worktree::Item::Modification {
                    status, ..
                }) => !matches!(
                    status,
                    gix::status::plumbing::index_as_worktree::EntryStatus::NeedsUpdate(_)
                ),
                gix::status::Item::IndexWorktree(gix::status::index_worktree::Item::DirectoryContents { .. }) => false,
                _ => true,
            };
            if counts {
                paths.push(item.location().to_owned());
            }
        }
        paths.sort();
        paths.dedup();
        Ok(paths)
    }

    /// Untracked paths (directories collapsed, ignored files left out), as `git status` shows them.
    pub fn untracked_paths(&self) -> Result<Vec<BString>, Error> {
        let mut paths = Vec::new();
        let iter = self
            .repo
            .status(gix::progress::Discard)
            .map_err(self.read_err())?
            .untracked_files(gix::status::UntrackedFiles::Collapsed)
            .index_worktree_rewrites(None)
            .index_worktree_submodules(gix::status::Submodule::Given {
                ignore: gix::submodule::config::Ignore::All,
                check_dirty: false,
            })
            .into_index_worktree_iter(Vec::<BString>::new())
            .map_err(self.read_err())?;
        for item in iter {
            if let gix::status::index_worktree::Item::DirectoryContents { entry, .. } = item.map_err(self.read_err())?
                && entry.status == gix::dir::entry::Status::Untracked
            {
                paths.push(entry.rela_path);
            }
        }
        paths.sort();
        Ok(paths)
    }

    /// The absolute path of a repo-relative git path.
    pub fn worktree_path(&self, rela: &gix::bstr::BStr) -> PathBuf {
        self.workdir.join(path_from_bytes(rela))
    }

    /// A repo-relative path for messages.
    pub fn display(rela: &gix::bstr::BStr) -> String {
        rela.to_str_lossy().into_owned()
    }
}

/// A git path (bytes) as a filesystem path; on Unix both are plain bytes.
pub fn path_from_bytes(bytes: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(bytes))
}

/// A filesystem path as git path bytes.
pub fn path_to_bytes(path: &Path) -> &[u8] {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes()
}
