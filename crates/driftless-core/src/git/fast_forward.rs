//! Move a checkout from one commit to another by writing only the paths that differ.
//!
//! gix has no `pull` or `checkout` over an existing worktree, and checking out the whole tree
//! would rewrite every file. So the move is done here, in an order that a crash cannot turn
//! into lost work:
//!
//! 1. [`Plan::new`] diffs the two commits' trees into a list of [`Change`]s.
//! 2. [`Plan::obstacles`] finds untracked or ignored files the update would overwrite; callers
//!    refuse (or, with `--force`, preserve them) before anything is written.
//! 3. [`apply`] records a journal (`.git/driftless-sync.json`), writes each changed file to a temp
//!    name and renames it into place, writes the index, moves the branch with a compare-and-swap
//!    on its old value (plus reflog), and removes the journal.
//!
//! Files are written as `git checkout` writes them, through gix's filter pipeline
//! ([`super::filters`]), and compared the way `git status` compares them. A sparse checkout
//! keeps its cone ([`super::sparse`]): paths outside it get the skip-worktree bit and are not
//! written; assume-unchanged and intent-to-add entries survive an update.
//!
//! A run killed half-way leaves the journal behind; the next run sees it and resumes: every
//! changed path is either still the old version or already the new one (temp-and-rename makes
//! that so), which [`Plan::verify_resumable`] checks before finishing the job.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use gix::bstr::{BStr, BString, ByteSlice};
use gix::index::entry::Mode;

use super::ObjectId;
use super::checkout::Checkout;
use super::filters::Filters;

/// One side of a change: a blob (or link target, or submodule commit) and its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Side {
    /// The object id.
    pub id: ObjectId,
    /// The index mode (file, executable, symlink, submodule).
    pub mode: Mode,
}

/// What happens to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The path is new.
    Added,
    /// The content (or the kind: file, symlink) changes.
    Modified,
    /// The path goes away.
    Deleted,
    /// Only the executable bit flips.
    Mode,
    /// A submodule's recorded commit (its gitlink) moves. Only the index records it: as with
    /// `git merge --ff-only` without `--recurse-submodules`, the submodule's own worktree is
    /// left where it is (with `submodules: recurse`, sync-repo moves it afterwards, see
    /// `sync::submodules`).
    Submodule,
}

/// One path that differs between the old and new commit.
#[derive(Debug, Clone)]
pub struct Change {
    /// Repo-relative path.
    pub path: BString,
    /// What happens to it.
    pub kind: ChangeKind,
    /// Before, if the path existed.
    pub old: Option<Side>,
    /// After, if the path still exists.
    pub new: Option<Side>,
}

/// Something in the worktree that the update would destroy.
#[derive(Debug, Clone)]
pub struct Obstacle {
    /// Repo-relative path of the file or directory in the way.
    pub path: BString,
    /// What it is, for the message.
    pub what: &'static str,
}

/// The paths to change to go from `old` to `new`, and the index to write afterwards.
pub struct Plan {
    /// The commit the checkout is at.
    pub old: ObjectId,
    /// The commit it moves to.
    pub new: ObjectId,
    /// Changed paths, sorted.
    pub changes: Vec<Change>,
    new_index: gix::index::File,
    /// Paths the new index marks skip-worktree (outside a sparse cone): never written.
    skipped: HashSet<BString>,
}

/// Why planning or applying failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read commit {id} from the repository")]
    Object { id: ObjectId, source: gix::Error },
    #[error("cannot write {path}", path = path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot write the index of {path}", path = path.display())]
    Index { path: PathBuf, source: gix::Error },
    #[error("branch {name} moved while syncing (expected {expected}); another process changed it, run again")]
    RefMoved {
        name: String,
        expected: String,
        source: gix::Error,
    },
    #[error(transparent)]
    Locks(#[from] super::locks::Error),
    #[error("cannot record progress in {path}", path = path.display())]
    Journal { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Filters(#[from] super::filters::Error),
}

impl Error {
    /// Whether the failure is about local storage (disk full, permissions) rather than git data.
    pub fn is_io(&self) -> bool {
        match self {
            Error::Write { .. } | Error::Index { .. } | Error::Journal { .. } => true,
            Error::Filters(err) => matches!(err, super::filters::Error::Io { .. }),
            Error::Locks(err) => !err.is_held(),
            Error::Object { .. } | Error::RefMoved { .. } => false,
        }
    }
}

impl Plan {
    /// Diff `old` and `new`. `extra` are paths that must be reset to `new` even if the two commits
    /// agree on them (locally modified paths when `--force` takes the remote state).
    pub fn new(checkout: &Checkout, old: ObjectId, new: ObjectId, extra: &[BString]) -> Result<Plan, Error> {
        let repo = &checkout.repo;
        let old_index = index_of_commit(repo, old)?;
        let mut new_index = index_of_commit(repo, new)?;
        let old_entries = entries(&old_index);
        let new_entries = entries(&new_index);

        let mut changes = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < old_entries.len() || j < new_entries.len() {
            let order = match (old_entries.get(i), new_entries.get(j)) {
                (Some(a), Some(b)) => a.0.cmp(b.0),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, _) => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    let (path, side) = old_entries[i];
                    changes.push(Change {
                        path: path.to_owned(),
                        kind: ChangeKind::Deleted,
                        old: Some(side),
                        new: None,
                    });
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    let (path, side) = new_entries[j];
                    changes.push(Change {
                        path: path.to_owned(),
                        kind: ChangeKind::Added,
                        old: None,
                        new: Some(side),
                    });
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    let ((path, a), (_, b)) = (old_entries[i], new_entries[j]);
                    if a != b {
                        let kind = if a.id == b.id && is_file(a.mode) && is_file(b.mode) {
                            ChangeKind::Mode
                        } else if a.mode == Mode::COMMIT && b.mode == Mode::COMMIT {
                            ChangeKind::Submodule
                        } else {
                            ChangeKind::Modified
                        };
                        changes.push(Change {
                            path: path.to_owned(),
                            kind,
                            old: Some(a),
                            new: Some(b),
                        });
                    }
                    i += 1;
                    j += 1;
                }
            }
        }

        let listed: HashSet<BString> = changes.iter().map(|c| c.path.clone()).collect();
        let old_map: HashMap<&BStr, Side> = old_entries.iter().copied().collect();
        let new_map: HashMap<&BStr, Side> = new_entries.iter().copied().collect();
        for path in extra {
            if listed.contains(path) {
                continue;
            }
            let (old, new) = (
                old_map.get(path.as_bstr()).copied(),
                new_map.get(path.as_bstr()).copied(),
            );
            let kind = match new {
                Some(_) => ChangeKind::Modified,
                None => ChangeKind::Deleted,
            };
            changes.push(Change {
                path: path.clone(),
                kind,
                old,
                new,
            });
        }
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        let trees: HashSet<BString> = old_map.keys().chain(new_map.keys()).map(|p| (*p).to_owned()).collect();
        drop((old_map, new_map));
        let skipped = carry_index_state(repo, &mut new_index, &trees);
        Ok(Plan {
            old,
            new,
            changes,
            new_index,
            skipped,
        })
    }

    /// The filters for writing this plan's files (attributes of the new tree first).
    fn filters<'repo>(&self, checkout: &'repo Checkout) -> Result<super::filters::Filters<'repo>, Error> {
        Ok(super::filters::Filters::new(&checkout.repo, self.new_index.clone())?)
    }

    /// The changes that write a file or link into the worktree (not those outside a sparse cone).
    fn written(&self) -> impl Iterator<Item = (&Change, Side)> {
        self.changes
            .iter()
            .filter(|c| !self.skipped.contains(&c.path))
            .filter_map(|c| c.new.map(|new| (c, new)))
    }

    /// Filter drivers the files to write need and this host cannot run (git-lfs not installed):
    /// the update is refused rather than deploying the stored blobs (pointer files) as content.
    pub fn missing_drivers(&self, checkout: &Checkout) -> Result<Vec<super::filters::MissingDriver>, Error> {
        let mut filters = self.filters(checkout)?;
        let mut missing: Vec<super::filters::MissingDriver> = Vec::new();
        for (change, new) in self.written() {
            if is_file(new.mode)
                && let Some(driver) = filters.missing_driver(change.path.as_bstr())
                && !missing.iter().any(|m| m.name == driver.name)
            {
                missing.push(driver);
            }
        }
        Ok(missing)
    }

    /// Untracked or ignored files and directories that writing this plan would overwrite or
    /// delete. A file that already holds exactly the new content is not an obstacle.
    pub fn obstacles(&self, checkout: &Checkout) -> Vec<Obstacle> {
        let removed: HashSet<&BStr> = self
            .changes
            .iter()
            .filter(|c| c.new.is_none() && c.old.is_some())
            .map(|c| c.path.as_bstr())
            .collect();
        let tracked_before: HashSet<&BStr> = self
            .changes
            .iter()
            .filter(|c| c.old.is_some())
            .map(|c| c.path.as_bstr())
            .collect();
        let mut found = Vec::new();
        let mut filters = self.filters(checkout).ok();
        for (change, new) in self.written() {
            // A directory on the way to the path must be a real directory, never a file or a
            // symlink (writing through a symlink could land outside the checkout).
            let mut blocked = false;
            for end in change.path.find_iter("/") {
                let prefix = change.path[..end].as_bstr();
                match std::fs::symlink_metadata(checkout.worktree_path(prefix)) {
                    Err(_) => break,
                    Ok(meta) if meta.is_dir() => {}
                    Ok(_) if removed.contains(prefix) => break,
                    Ok(_) => {
                        found.push(Obstacle {
                            path: prefix.to_owned(),
                            what: "an untracked file where it needs a directory",
                        });
                        blocked = true;
                        break;
                    }
                }
            }
            if blocked || change.old.is_some() {
                continue;
            }
            let abs = checkout.worktree_path(change.path.as_bstr());
            match std::fs::symlink_metadata(&abs) {
                Err(_) => {}
                Ok(meta) if crate::safe_fs::special_kind(meta.file_type()).is_some() => found.push(Obstacle {
                    path: change.path.clone(),
                    what: "a FIFO, socket or device file where it puts a file",
                }),
                Ok(meta) if meta.is_dir() => {
                    if new.mode == Mode::COMMIT {
                        continue;
                    }
                    let mut stray = Vec::new();
                    untracked_below(&checkout.workdir, &abs, &tracked_before, &mut stray);
                    if !stray.is_empty() {
                        found.push(Obstacle {
                            path: change.path.clone(),
                            what: "a directory holding untracked files where it puts a file",
                        });
                    }
                }
                Ok(_) => {
                    let side = filters
                        .as_mut()
                        .and_then(|f| worktree_side(f, change.path.as_bstr(), &abs).ok().flatten());
                    if side != Some(new) {
                        found.push(Obstacle {
                            path: change.path.clone(),
                            what: "untracked or ignored files it would overwrite",
                        });
                    }
                }
            }
        }
        found
    }

    /// After an interrupted run: every changed path must hold its old or its new version, so
    /// finishing the job loses nothing, and every other path must be unmodified (`modified`:
    /// the paths status finds changed). Returns the paths that break either rule.
    pub fn verify_resumable(&self, checkout: &Checkout, modified: Vec<BString>) -> Vec<BString> {
        let planned: std::collections::HashSet<&BString> = self.changes.iter().map(|c| &c.path).collect();
        let unplanned = modified.into_iter().filter(|p| !planned.contains(p));
        let mut foreign = Vec::new();
        let Ok(mut filters) = self.filters(checkout) else {
            foreign.extend(self.changes.iter().map(|c| c.path.clone()));
            foreign.extend(unplanned);
            return foreign;
        };
        for change in self.changes.iter().filter(|c| !self.skipped.contains(&c.path)) {
            let abs = checkout.worktree_path(change.path.as_bstr());
            let state = match worktree_side(&mut filters, change.path.as_bstr(), &abs) {
                Ok(state) => state,
                Err(_) => {
                    foreign.push(change.path.clone());
                    continue;
                }
            };
            let ok = state == change.old
                || state == change.new
                // A directory where a deleted file used to be: the new tree's files below it were
                // already written.
                || (state.is_some_and(|s| s.mode == Mode::DIR) && change.new.is_none())
                // A submodule is a directory (or nothing, once removed) whatever commit it
                // records: its worktree is not this update's to write.
                || (state.is_none_or(|s| s.mode == Mode::DIR) && (is_gitlink(change.old) || is_gitlink(change.new)));
            if !ok {
                foreign.push(change.path.clone());
            }
        }
        foreign.extend(unplanned);
        foreign
    }

    /// The number of commits is not known here; this is the number of changed paths.
    pub fn files(&self) -> usize {
        self.changes.len()
    }
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Files and links written.
    pub written: usize,
    /// Paths removed.
    pub removed: usize,
}

/// How to move the branch once the worktree and index are written.
pub enum RefUpdate<'a> {
    /// HEAD is on `branch` at the plan's old commit: compare-and-swap it to the new one.
    FastForward { branch: &'a str },
    /// `--force`: set `branch` to the new commit whatever it was, and point HEAD at it.
    Reset { branch: &'a str },
    /// A resumed run whose branch had already moved before the crash.
    AlreadyMoved,
    /// A submodule: HEAD detached at the new commit whatever it was on, as
    /// `git submodule update` leaves it.
    Detach,
}

/// Write `plan` into the checkout (see the module docs for the order), then move the branch.
pub fn apply(checkout: &Checkout, plan: &Plan, update: RefUpdate<'_>, reflog: &str) -> Result<Applied, Error> {
    let repo = &checkout.repo;
    // Held until the new index is in place, as git holds it while it checks out: a person's
    // `git pull` (or a second sync-repo under another state dir) fails on it instead of
    // writing files and index in between, which would leave three commits' worth of state.
    let index_lock = IndexLock::take(checkout)?;
    let journal = Journal::path(checkout);
    Journal {
        old: plan.old.to_string(),
        new: plan.new.to_string(),
        started_at: crate::time::now_unix(),
    }
    .write(&journal)?;

    let mut applied = Applied::default();
    let mut filters = plan.filters(checkout)?;
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Write { path, source }
    };

    // Deletions first, deepest paths first, so a file can become a directory and back.
    let mut emptied_dirs = Vec::new();
    for change in plan.changes.iter().rev().filter(|c| c.new.is_none()) {
        let abs = checkout.worktree_path(change.path.as_bstr());
        if is_gitlink(change.old) {
            // A removed submodule: git removes its directory only when empty (not populated);
            // a populated one keeps its files and history, and shows as untracked.
            let _ = std::fs::remove_dir(&abs);
        } else {
            remove_path(&abs).map_err(write_err(&abs))?;
        }
        applied.removed += 1;
        if let Some(parent) = abs.parent() {
            emptied_dirs.push(parent.to_owned());
        }
    }
    emptied_dirs.sort();
    emptied_dirs.dedup();
    for dir in emptied_dirs.iter().rev() {
        let mut dir = dir.as_path();
        // Remove directories that became empty, never the worktree root; a directory that
        // still holds untracked files stays.
        while dir != checkout.workdir && dir.starts_with(&checkout.workdir) && std::fs::remove_dir(dir).is_ok() {
            match dir.parent() {
                Some(parent) => dir = parent,
                None => break,
            }
        }
    }

    // Then every added or changed path, each through a temp file renamed into place.
    for (change, new) in plan.written() {
        let abs = checkout.worktree_path(change.path.as_bstr());
        remove_stale_temps(&abs);
        if already_holds(&mut filters, change.path.as_bstr(), &abs, new) {
            continue; // Already there: a resumed run, or an identical untracked file.
        }
        if change.kind == ChangeKind::Mode && set_executable(&abs, new.mode == Mode::FILE_EXECUTABLE).is_ok() {
            applied.written += 1;
            continue;
        }
        if let Some(parent) = abs.parent() {
            std::fs::create_dir_all(parent).map_err(write_err(parent))?;
        }
        write_entry(repo, &mut filters, change.path.as_bstr(), &abs, new)?;
        applied.written += 1;
    }

    write_index(checkout, plan, index_lock)?;
    move_branch(checkout, plan, update, reflog)?;
    Journal::remove(&journal)?;
    Ok(applied)
}

/// The new index: entries of the new tree, with stat data taken from the old index where the
/// entry did not change (so `git status` stays fast) and read fresh for written paths.
fn write_index(checkout: &Checkout, plan: &Plan, lock: IndexLock) -> Result<(), Error> {
    let changed: HashSet<&BStr> = plan.changes.iter().map(|c| c.path.as_bstr()).collect();
    let moved: HashSet<&BStr> = plan
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Submodule)
        .map(|c| c.path.as_bstr())
        .collect();
    let on_disk = checkout.repo.open_index().ok();
    let mut index = plan.new_index.clone();
    let (entries, paths) = index.entries_mut_and_pathbacking();
    for entry in entries.iter_mut() {
        let path = entry.path_in(paths);
        let abs = checkout.worktree_path(path);
        let previous = (!changed.contains(path))
            .then(|| on_disk.as_ref()?.entry_by_path(path))
            .flatten()
            .filter(|old| old.id == entry.id && old.mode == entry.mode);
        entry.stat = match previous {
            Some(old) => old.stat,
            // git records no stat for a submodule whose gitlink moved: nothing was checked out.
            None if moved.contains(path) => gix::index::entry::Stat::default(),
            None => gix::index::fs::Metadata::from_path_no_follow(&abs)
                .ok()
                .and_then(|meta| gix::index::entry::Stat::from_fs(&meta).ok())
                .unwrap_or_default(),
        };
    }
    lock.commit(checkout, &index)
}

/// `index.lock`, taken for a whole update with its lock noted first ([`super::locks`]), so a
/// kill while it is held does not block later runs. Dropped without [`IndexLock::commit`], the
/// lock is removed and the index stays as it was.
struct IndexLock {
    lock: gix::lock::File,
    /// Dropped after `lock` (fields drop in order): the note outlives the lock it names.
    _taking: super::locks::Taking,
}

impl IndexLock {
    fn take(checkout: &Checkout) -> Result<IndexLock, Error> {
        let repo = &checkout.repo;
        let taking = super::locks::Taking::new(repo, &["index"])?;
        let lock = gix::lock::File::acquire_to_update_resource(
            repo.index_path(),
            gix::lock::acquire::Fail::Immediately,
            None,
            0,
        )
        .map_err(|err| {
            super::locks::held_or(repo, &["index"], gix::Error::from_error(err), |source| Error::Index {
                path: checkout.workdir.clone(),
                source,
            })
        })?;
        Ok(IndexLock { lock, _taking: taking })
    }

    /// Write `index` into the lock and rename it into place.
    fn commit(self, checkout: &Checkout, index: &gix::index::File) -> Result<(), Error> {
        let failed = |source: gix::Error| Error::Index {
            path: checkout.workdir.clone(),
            source,
        };
        let IndexLock { lock, _taking } = self;
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, lock);
        index
            .write_to(&mut out, gix::index::write::Options::default())
            .map_err(|err| failed(gix::Error::from_error(err)))?;
        let lock = out
            .into_inner()
            .map_err(|err| failed(gix::Error::from_error(err.into_error())))?;
        lock.commit().map_err(|err| failed(gix::Error::from_error(err.error)))?;
        Ok(())
    }
}

fn move_branch(checkout: &Checkout, plan: &Plan, update: RefUpdate<'_>, reflog: &str) -> Result<(), Error> {
    use gix::refs::Target;
    use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};

    let repo = &checkout.repo;
    let (name, email) = super::identity(repo);
    let time = super::signature_time();
    let signature = gix::actor::SignatureRef {
        name: name.as_bytes().as_bstr(),
        email: email.as_bytes().as_bstr(),
        time: &time,
    };
    let log = LogChange {
        mode: RefLog::AndReference,
        force_create_reflog: false,
        message: reflog.into(),
    };
    let (branch, expected, head_too) = match update {
        RefUpdate::AlreadyMoved => return Ok(()),
        RefUpdate::FastForward { branch } => (
            branch,
            PreviousValue::MustExistAndMatch(Target::Object(plan.old)),
            false,
        ),
        RefUpdate::Reset { branch } => (branch, PreviousValue::Any, true),
        RefUpdate::Detach => {
            let head = RefEdit {
                change: Change::Update {
                    log,
                    expected: PreviousValue::Any,
                    new: Target::Object(plan.new),
                },
                name: "HEAD".try_into().map_err(|e| Error::RefMoved {
                    name: "HEAD".to_owned(),
                    expected: plan.old.to_string(),
                    source: gix::Error::from_error(e),
                })?,
                deref: false,
            };
            return super::locks::edit_refs(repo, vec![head], signature).map_err(Error::from);
        }
    };
    let full = format!("refs/heads/{branch}");
    let moved = |source| Error::RefMoved {
        name: full.clone(),
        expected: plan.old.to_string(),
        source,
    };
    let branch_name: gix::refs::FullName = full.as_str().try_into().map_err(|e| moved(gix::Error::from_error(e)))?;
    let mut edits = vec![RefEdit {
        change: Change::Update {
            log: log.clone(),
            expected,
            new: Target::Object(plan.new),
        },
        name: branch_name.clone(),
        deref: false,
    }];
    if head_too {
        edits.push(RefEdit {
            change: Change::Update {
                log,
                expected: PreviousValue::Any,
                new: Target::Symbolic(branch_name),
            },
            name: "HEAD".try_into().map_err(|e| moved(gix::Error::from_error(e)))?,
            deref: false,
        });
    }
    match super::locks::edit_refs(repo, edits, signature) {
        Ok(()) => {}
        // The expected old value no longer matched: someone moved the branch under us.
        Err(super::locks::Error::Edit { source, .. }) => return Err(moved(source)),
        Err(err) => return Err(err.into()),
    }
    // git also logs the move in HEAD's reflog when HEAD points at the branch.
    if !head_too {
        append_head_reflog(checkout, plan, &signature, reflog);
    }
    Ok(())
}

/// Add the fast-forward to `.git/logs/HEAD`, as `git merge --ff-only` does. Best effort: the
/// branch's own reflog is the authoritative record.
fn append_head_reflog(checkout: &Checkout, plan: &Plan, sig: &gix::actor::SignatureRef<'_>, message: &str) {
    let path = checkout.repo.git_dir().join("logs").join("HEAD");
    if !path.exists() {
        return;
    }
    let line = format!(
        "{} {} {} <{}> {}\t{}\n",
        plan.old, plan.new, sig.name, sig.email, sig.time, message
    );
    // Appended only to the reflog file itself, never through a link planted in its place.
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
    {
        let _ = file.write_all(line.as_bytes());
    }
}

/// The record of an unfinished fast-forward, in the git dir.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Journal {
    /// Commit the run started from.
    pub old: String,
    /// Commit it was moving to.
    pub new: String,
    /// When it started (Unix seconds).
    pub started_at: u64,
}

impl Journal {
    /// Where the journal lives for `checkout`.
    pub fn path(checkout: &Checkout) -> PathBuf {
        checkout.repo.git_dir().join("driftless-sync.json")
    }

    /// The journal of an interrupted run, if there is one.
    pub fn read(checkout: &Checkout) -> Option<(ObjectId, ObjectId)> {
        let bytes = std::fs::read(Self::path(checkout)).ok()?;
        let journal: Journal = serde_json::from_slice(&bytes).ok()?;
        Some((
            ObjectId::from_hex(journal.old.as_bytes()).ok()?,
            ObjectId::from_hex(journal.new.as_bytes()).ok()?,
        ))
    }

    fn write(&self, path: &Path) -> Result<(), Error> {
        let bytes = serde_json::to_vec(self).map_err(|e| Error::Journal {
            path: path.to_owned(),
            source: e.into(),
        })?;
        crate::atomic_file::write(path, &bytes, crate::atomic_file::Durability::Atomic).map_err(|source| {
            Error::Journal {
                path: path.to_owned(),
                source,
            }
        })
    }

    /// Remove the journal once the run finished (or was found stale).
    pub fn remove(path: &Path) -> Result<(), Error> {
        match std::fs::remove_file(path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(Error::Journal {
                path: path.to_owned(),
                source: err,
            }),
            _ => Ok(()),
        }
    }
}

/// Carry the checkout's own index state into `new_index` (the new tree's), as
/// `git merge --ff-only` does: a sparse checkout's skip-worktree bits (from its rules, so new
/// paths outside the cone stay out), `git update-index --skip-worktree` and `--assume-unchanged`
/// on entries the update leaves alone, and `git add -N` (intent-to-add) entries that neither
/// tree has. Returns the paths that are skip-worktree in the new index.
fn carry_index_state(
    repo: &gix::Repository,
    new_index: &mut gix::index::File,
    trees: &HashSet<BString>,
) -> HashSet<BString> {
    use gix::index::entry::Flags;
    let on_disk = repo.open_index().ok();
    let sparse = super::sparse::Sparse::of(repo);
    let mut skipped = HashSet::new();
    let (entries, paths) = new_index.entries_mut_and_pathbacking();
    for entry in entries.iter_mut() {
        let path = entry.path_in(paths);
        let before = on_disk.as_ref().and_then(|index| index.entry_by_path(path));
        let unchanged = before.is_some_and(|b| b.id == entry.id && b.mode == entry.mode);
        let skip = match &sparse {
            Some(sparse) => !sparse.includes(path),
            None => unchanged && before.is_some_and(|b| b.flags.contains(Flags::SKIP_WORKTREE)),
        };
        if skip {
            // EXTENDED makes gix write the extended flags word (index v3), where the bit lives.
            entry.flags.insert(Flags::SKIP_WORKTREE | Flags::EXTENDED);
            skipped.insert(path.to_owned());
        }
        if unchanged && before.is_some_and(|b| b.flags.contains(Flags::ASSUME_VALID)) {
            entry.flags.insert(Flags::ASSUME_VALID);
        }
    }
    if let Some(on_disk) = &on_disk {
        let mut added = false;
        for entry in on_disk.entries() {
            let path = entry.path(on_disk);
            if entry.flags.contains(Flags::INTENT_TO_ADD) && !trees.contains(path) {
                new_index.dangerously_push_entry(entry.stat, entry.id, entry.flags, entry.mode, path);
                added = true;
            }
        }
        if added {
            new_index.sort_entries();
        }
    }
    skipped
}

fn index_of_commit(repo: &gix::Repository, id: ObjectId) -> Result<gix::index::File, Error> {
    let object = |source| Error::Object { id, source };
    let tree = repo.find_commit(id).map_err(object)?.tree_id().map_err(object)?;
    repo.index_from_tree(&tree).map_err(object)
}

fn entries(index: &gix::index::File) -> Vec<(&BStr, Side)> {
    index
        .entries()
        .iter()
        .map(|e| (e.path(index), Side { id: e.id, mode: e.mode }))
        .collect()
}

fn is_file(mode: Mode) -> bool {
    mode == Mode::FILE || mode == Mode::FILE_EXECUTABLE
}

fn is_gitlink(side: Option<Side>) -> bool {
    side.is_some_and(|s| s.mode == Mode::COMMIT)
}

/// What is at `path` (repo-relative `rela`) in the worktree, as a [`Side`]: the blob id git
/// would store for a file (cleaned by `filters`, as `git status` compares) or a link, and its
/// mode; `Mode::DIR` for a directory; `None` when nothing is there. A FIFO, socket or device is
/// an error, found by type without opening it.
pub fn worktree_side(filters: &mut Filters<'_>, rela: &BStr, path: &Path) -> std::io::Result<Option<Side>> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound || err.raw_os_error() == Some(20) => {
            return Ok(None); // ENOTDIR: a parent is a file, so the path cannot exist.
        }
        Err(err) => return Err(err),
    };
    let object_hash = filters.object_hash();
    if meta.is_dir() {
        return Ok(Some(Side {
            id: ObjectId::null(object_hash),
            mode: Mode::DIR,
        }));
    }
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path)?;
        let id = gix::objs::compute_hash(
            object_hash,
            gix::object::Kind::Blob,
            super::checkout::path_to_bytes(&target),
        )
        .map_err(std::io::Error::other)?;
        return Ok(Some(Side {
            id,
            mode: Mode::SYMLINK,
        }));
    }
    // Refuses a FIFO or device by type, and a file swapped for one since the stat above.
    let file = crate::safe_fs::open_regular(path)?;
    let len = file.metadata()?.len();
    let id = filters.blob_id(rela, file, len).map_err(std::io::Error::other)?;
    let mode = if meta.permissions().mode() & 0o100 != 0 {
        Mode::FILE_EXECUTABLE
    } else {
        Mode::FILE
    };
    Ok(Some(Side { id, mode }))
}

/// Whether the worktree already holds `side` at `path`: a resumed run, or an identical
/// untracked file.
fn already_holds(filters: &mut Filters<'_>, rela: &BStr, path: &Path, side: Side) -> bool {
    worktree_side(filters, rela, path).ok().flatten() == Some(side)
}

/// The prefix of the temp names files are written under before the rename.
const TEMP_PREFIX: &str = "driftless-tmp";

/// Remove what a killed run left beside `dest` while writing it (`.driftless-tmp-*`): temp
/// names are random, so the names are found by listing. Unlinking never follows a link.
fn remove_stale_temps(dest: &Path) {
    let Some(dir) = dest.parent() else { return };
    let Ok(read) = std::fs::read_dir(dir) else { return };
    let prefix = format!(".{TEMP_PREFIX}-");
    for entry in read.flatten() {
        if entry.file_name().as_encoded_bytes().starts_with(prefix.as_bytes())
            && entry.file_type().is_ok_and(|t| !t.is_dir())
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn write_entry(
    repo: &gix::Repository,
    filters: &mut Filters<'_>,
    rela: &BStr,
    dest: &Path,
    side: Side,
) -> Result<(), Error> {
    let write_err = |source| Error::Write {
        path: dest.to_owned(),
        source,
    };
    if side.mode == Mode::COMMIT {
        // A submodule: like `git clone` without --recursive, an empty directory. A tracked file
        // or link that stood there goes first (its local edits were refused or preserved).
        if std::fs::symlink_metadata(dest).is_ok_and(|m| !m.is_dir()) {
            std::fs::remove_file(dest).map_err(write_err)?;
        }
        return std::fs::create_dir_all(dest).map_err(write_err);
    }
    let object = repo
        .find_object(side.id)
        .map_err(|source| Error::Object { id: side.id, source })?;
    let mut tmp = None;
    let result = (|| {
        if side.mode == Mode::SYMLINK {
            let link = loop {
                let candidate = dest.with_file_name(format!(".{TEMP_PREFIX}-{:016x}", crate::safe_fs::random()));
                match std::os::unix::fs::symlink(super::checkout::path_from_bytes(&object.data), &candidate) {
                    Ok(()) => break candidate,
                    Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(err) => {
                        return Err(Error::Write {
                            path: dest.to_owned(),
                            source: err,
                        });
                    }
                }
            };
            tmp = Some(link);
        } else {
            let mode = if side.mode == Mode::FILE_EXECUTABLE {
                0o777
            } else {
                0o666
            };
            let (file, path) = crate::safe_fs::create_temp_beside(dest, TEMP_PREFIX, mode).map_err(write_err)?;
            tmp = Some(path);
            let mut out = std::io::BufWriter::new(file);
            filters.to_worktree(rela, side.id, &object.data, &mut out)?;
            out.into_inner().map_err(|err| write_err(err.into_error()))?;
        }
        let tmp = tmp.as_deref().unwrap_or(dest);
        if std::fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir()) {
            // A directory whose tracked files were all deleted, now replaced by a file.
            std::fs::remove_dir(dest).map_err(write_err)?;
        }
        std::fs::rename(tmp, dest).map_err(write_err)
    })();
    if result.is_err()
        && let Some(tmp) = &tmp
    {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

fn remove_path(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()), // Already replaced by a directory, or a submodule.
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    }
}

fn set_executable(path: &Path, executable: bool) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mode = meta.permissions().mode();
    // Like git: add x where r is set, or drop every x.
    let mode = if executable {
        mode | ((mode & 0o444) >> 2)
    } else {
        mode & !0o111
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Collect files below `dir` that are not among `tracked` (repo-relative paths).
fn untracked_below(root: &Path, dir: &Path, tracked: &HashSet<&BStr>, out: &mut Vec<PathBuf>) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in read.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            untracked_below(root, &path, tracked, out);
        } else if let Ok(rela) = path.strip_prefix(root)
            && !tracked.contains(super::checkout::path_to_bytes(rela).as_bstr())
        {
            out.push(path);
        }
    }
}
