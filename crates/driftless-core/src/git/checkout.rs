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

/// A submodule (a gitlink in the index) and what its own worktree has checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submodule {
    /// Repo-relative path.
    pub path: BString,
    /// The commit the index records for it.
    pub recorded: ObjectId,
    /// What is checked out there.
    pub checked_out: SubmoduleHead,
}

/// What a submodule's directory holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmoduleHead {
    /// Not populated (an empty directory, or nothing): `git status` shows nothing for it.
    Unpopulated,
    /// A repository at this commit.
    At(ObjectId),
    /// A repository whose HEAD could not be read, and why.
    Unreadable(String),
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
        // `git add -N` entries are plans, not changes: git's merge keeps them, and so do we.
        let intent_to_add: std::collections::HashSet<BString> = self
            .repo
            .open_index()
            .map(|index| {
                index
                    .entries()
                    .iter()
                    .filter(|e| e.flags.contains(gix::index::entry::Flags::INTENT_TO_ADD))
                    .map(|e| e.path(&index).to_owned())
                    .collect()
            })
            .unwrap_or_default();
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
            if counts && !intent_to_add.contains(item.location()) {
                paths.push(item.location().to_owned());
            }
        }
        paths.extend(self.hidden_edits()?);
        paths.sort();
        paths.dedup();
        Ok(paths)
    }

    /// Every submodule in the index (except those a sparse checkout leaves out) with the commit
    /// its directory has checked out, read without recursing further.
    pub fn submodules(&self) -> Result<Vec<Submodule>, Error> {
        use gix::index::entry::{Flags, Mode};
        let index = self.repo.open_index().map_err(|err| Error::Read {
            path: self.workdir.clone(),
            source: gix::Error::from_error(err),
        })?;
        let mut found = Vec::new();
        for entry in index.entries() {
            if entry.mode != Mode::COMMIT || entry.flags.contains(Flags::SKIP_WORKTREE) {
                continue;
            }
            let path = entry.path(&index);
            let dir = self.worktree_path(path);
            // A `.git` file (or directory) makes it populated, as `git submodule update` leaves it.
            let checked_out = if std::fs::symlink_metadata(dir.join(".git")).is_err() {
                SubmoduleHead::Unpopulated
            } else {
                match gix::open_opts(&dir, gix::open::Options::isolated())
                    .map(|repo| repo.head_id().map(|id| id.detach()))
                {
                    Ok(Ok(id)) => SubmoduleHead::At(id),
                    Ok(Err(err)) => SubmoduleHead::Unreadable(err.to_string()),
                    Err(err) => SubmoduleHead::Unreadable(err.to_string()),
                }
            };
            found.push(Submodule {
                path: path.to_owned(),
                recorded: entry.id,
                checked_out,
            });
        }
        Ok(found)
    }

    /// Tracked files whose local edits `git status` does not show: entries marked
    /// `--assume-unchanged` or `--skip-worktree` whose file is present and differs from the
    /// index (compared through git's filters). An update would overwrite them unseen, so they
    /// count as modified: refused, or preserved by `--force`. Entries a sparse checkout keeps
    /// out of the worktree are absent and count for nothing.
    pub fn hidden_edits(&self) -> Result<Vec<BString>, Error> {
        use gix::index::entry::Flags;
        let Ok(index) = self.repo.open_index() else {
            return Ok(Vec::new());
        };
        let hidden: Vec<(BString, super::fast_forward::Side)> = index
            .entries()
            .iter()
            .filter(|e| e.flags.intersects(Flags::ASSUME_VALID | Flags::SKIP_WORKTREE))
            .map(|e| {
                (
                    e.path(&index).to_owned(),
                    super::fast_forward::Side { id: e.id, mode: e.mode },
                )
            })
            .collect();
        if hidden.is_empty() {
            return Ok(Vec::new());
        }
        let mut filters = super::filters::Filters::new(&self.repo, index).map_err(|err| Error::Read {
            path: self.workdir.clone(),
            source: gix::Error::from_error(err),
        })?;
        let mut edited = Vec::new();
        for (path, side) in hidden {
            let abs = self.worktree_path(path.as_bstr());
            match super::fast_forward::worktree_side(&mut filters, path.as_bstr(), &abs) {
                Ok(None) => {}
                Ok(Some(found)) if found == side => {}
                // Different content, or something that is no file git could hold (a FIFO).
                _ => edited.push(path),
            }
        }
        Ok(edited)
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

    /// Symlinks standing where a run writes in `.git` (the index, HEAD, the `refs` given and
    /// their reflogs, driftless's journal and lock note), or on a directory on the way there.
    /// git never makes one there; gix appends reflogs through them, so a checkout's owner could
    /// make a root run write into any file. Found by `lstat`, nothing is opened.
    pub fn planted_links(&self, refs: &[&str]) -> Vec<PathBuf> {
        let git_dir = self.repo.git_dir();
        let common = self.repo.common_dir();
        let mut written = vec![
            git_dir.join("index"),
            git_dir.join("HEAD"),
            git_dir.join("logs").join("HEAD"),
            git_dir.join("driftless-sync.json"),
            git_dir.join("driftless-locks"),
            common.join("packed-refs"),
        ];
        for name in refs {
            written.push(common.join(name));
            written.push(common.join("logs").join(name));
        }
        let mut found = Vec::new();
        for path in &written {
            let base = if path.starts_with(git_dir) { git_dir } else { common };
            for at in path.ancestors().take_while(|a| *a != base && a.starts_with(base)) {
                if std::fs::symlink_metadata(at).is_ok_and(|m| m.file_type().is_symlink())
                    && !found.contains(&at.to_owned())
                {
                    found.push(at.to_owned());
                }
            }
        }
        found.sort();
        found
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
