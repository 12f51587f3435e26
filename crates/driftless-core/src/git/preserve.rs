//! Save everything local before `--force` takes the remote state, so nothing is ever lost.
//!
//! Local commits stay reachable from the preserved commit's history. Uncommitted work becomes
//! up to two commits on top of HEAD, like `git stash`: the staged state (if it differs from
//! HEAD), then the worktree state including untracked files that were in the update's way.
//! One ref, `refs/driftless/preserved/<time>`, points at the result.

use std::path::Path;

use gix::bstr::{BString, ByteSlice};
use gix::objs::tree::EntryKind;

use super::ObjectId;
use super::checkout::Checkout;

/// Where the local work went.
#[derive(Debug, Clone)]
pub struct Preserved {
    /// The ref holding it, `refs/driftless/preserved/<time>`.
    pub reference: String,
    /// The commit it points at.
    pub commit: ObjectId,
}

/// Why the work could not be preserved (and so nothing was changed).
#[derive(Debug, thiserror::Error)]
#[error("cannot preserve local work in {path}; nothing was changed", path = path.display())]
pub struct Error {
    path: std::path::PathBuf,
    source: gix::Error,
}

/// What to save.
pub struct Work<'a> {
    /// The commit HEAD is at (local commits are reachable from it).
    pub head: ObjectId,
    /// Tracked paths modified in the index or worktree.
    pub modified: &'a [BString],
    /// Untracked or ignored files or directories the update would overwrite.
    pub in_the_way: &'a [BString],
    /// Another commit to keep reachable (the branch's tip when HEAD was elsewhere).
    pub also: Option<ObjectId>,
}

/// Save `work` under a new preserved ref. Returns `None` when there was nothing to save
/// beyond what `keep_if_reachable` (the new remote tip) already contains.
pub fn preserve(checkout: &Checkout, work: &Work<'_>, keep_if_reachable: ObjectId) -> Result<Option<Preserved>, Error> {
    let err = |source| Error {
        path: checkout.workdir.clone(),
        source,
    };
    let repo = &checkout.repo;
    let (name, email) = super::identity(repo);
    let time = super::signature_time();
    let sig = gix::actor::SignatureRef {
        name: name.as_bytes().as_bstr(),
        email: email.as_bytes().as_bstr(),
        time: &time,
    };

    let has_local_commits = !super::history::is_ancestor(repo, work.head, keep_if_reachable);
    let has_other_tip = work
        .also
        .is_some_and(|tip| !super::history::is_ancestor(repo, tip, keep_if_reachable));
    let operation = operation_state(checkout).map_err(err)?;
    if work.modified.is_empty()
        && work.in_the_way.is_empty()
        && !has_local_commits
        && !has_other_tip
        && operation.is_none()
    {
        return Ok(None);
    }

    let head_tree = repo
        .find_commit(work.head)
        .map_err(err)?
        .tree_id()
        .map_err(err)?
        .detach();
    let mut tip = work.head;
    let mut parents = vec![work.head];
    if let Some(other) = work.also.filter(|_| has_other_tip) {
        parents.push(other);
    }
    if let Some(tree) = operation {
        // A commit of its own, as the last parent: `git show REF^N:rebase-apply/0002` gives the
        // patches a stopped `git am` had not applied yet.
        let state = write_commit(repo, sig, OPERATION_MESSAGE, tree, &[]).map_err(err)?;
        parents.push(state);
    }

    // The staged state, when it differs from HEAD.
    let index = repo.open_index().ok();
    let mut staged_tree = head_tree;
    if let Some(index) = &index {
        let mut editor = repo.edit_tree(head_tree).map_err(err)?;
        for path in work.modified {
            match index.entry_by_path(path.as_bstr()) {
                Some(entry) => match entry.mode.to_tree_entry_mode() {
                    Some(mode) => {
                        editor.upsert(path, mode.kind(), entry.id).map_err(err)?;
                    }
                    None => continue,
                },
                None => {
                    editor.remove(path).map_err(err)?;
                }
            }
        }
        staged_tree = editor.write().map_err(err)?.detach();
        if staged_tree != head_tree {
            tip = write_commit(
                repo,
                sig,
                "driftless: staged changes before --force",
                staged_tree,
                &parents,
            )
            .map_err(err)?;
            parents = vec![tip];
        }
    }

    // The worktree state, plus whatever was in the update's way.
    let mut editor = repo.edit_tree(staged_tree).map_err(err)?;
    let mut files = Vec::new();
    for path in work.modified.iter().chain(work.in_the_way) {
        let abs = checkout.worktree_path(path.as_bstr());
        collect_files(&checkout.workdir, &abs, &mut files);
        if std::fs::symlink_metadata(&abs).is_err() {
            editor.remove(path).map_err(err)?;
        }
    }
    for rela in &files {
        let abs = checkout.workdir.join(super::checkout::path_from_bytes(rela));
        let Ok(meta) = std::fs::symlink_metadata(&abs) else {
            continue;
        };
        let (kind, data) = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&abs).map_err(|e| err(gix::Error::from_error(e)))?;
            (EntryKind::Link, super::checkout::path_to_bytes(&target).to_vec())
        } else {
            use std::os::unix::fs::PermissionsExt;
            let exec = meta.permissions().mode() & 0o100 != 0;
            // Streamed, never read whole; a FIFO or device is refused by type, not opened.
            let file = crate::safe_fs::open_regular(&abs).map_err(|e| err(gix::Error::from_error(e)))?;
            let blob = repo.write_blob_stream(file).map_err(err)?.detach();
            let kind = if exec {
                EntryKind::BlobExecutable
            } else {
                EntryKind::Blob
            };
            editor.upsert(rela, kind, blob).map_err(err)?;
            continue;
        };
        let blob = repo.write_blob(&data).map_err(err)?.detach();
        editor.upsert(rela, kind, blob).map_err(err)?;
    }
    let worktree_tree = editor.write().map_err(err)?.detach();
    if worktree_tree != staged_tree || parents.len() > 1 {
        tip = write_commit(
            repo,
            sig,
            "driftless: uncommitted work before --force",
            worktree_tree,
            &parents,
        )
        .map_err(err)?;
    }

    let reference = unique_ref_name(repo);
    super::set_reference(
        repo,
        &reference,
        tip,
        gix::refs::transaction::PreviousValue::MustNotExist,
        "sync-repo --force: preserve local work",
    )
    .map_err(|e| err(gix::Error::from_error(e)))?;
    Ok(Some(Preserved { reference, commit: tip }))
}

/// The message of the commit that holds a stopped operation's state.
pub const OPERATION_MESSAGE: &str =
    "driftless: state of the git operation in progress (.git/rebase-apply, MERGE_HEAD, ...) before --force";

/// What a stopped `git am`, rebase, merge, cherry-pick or revert keeps in `.git`, which
/// `--force` removes when it aborts the operation.
pub const OPERATION_STATE: [&str; 9] = [
    "rebase-apply",
    "rebase-merge",
    "sequencer",
    "MERGE_HEAD",
    "MERGE_MSG",
    "MERGE_MODE",
    "CHERRY_PICK_HEAD",
    "REVERT_HEAD",
    "AUTO_MERGE",
];

/// A tree of the [`OPERATION_STATE`] files present in the git dir (mailbox patches included),
/// or `None` when no operation left any.
fn operation_state(checkout: &Checkout) -> Result<Option<ObjectId>, gix::Error> {
    let repo = &checkout.repo;
    let git_dir = repo.git_dir();
    let mut editor = repo.edit_tree(ObjectId::empty_tree(repo.object_hash()))?;
    let mut found = false;
    let mut stack: Vec<BString> = OPERATION_STATE.iter().map(|name| BString::from(*name)).collect();
    while let Some(rela) = stack.pop() {
        let abs = git_dir.join(super::checkout::path_from_bytes(&rela));
        let Ok(meta) = std::fs::symlink_metadata(&abs) else {
            continue;
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(&abs).map_err(gix::Error::from_error)?.flatten() {
                let mut child = rela.clone();
                child.push(b'/');
                child.extend_from_slice(super::checkout::path_to_bytes(Path::new(&entry.file_name())));
                stack.push(child);
            }
        } else if meta.is_file() {
            let file = crate::safe_fs::open_regular(&abs).map_err(gix::Error::from_error)?;
            let blob = repo.write_blob_stream(file)?.detach();
            editor.upsert(rela.as_bstr(), EntryKind::Blob, blob)?;
            found = true;
        }
    }
    Ok(if found { Some(editor.write()?.detach()) } else { None })
}

fn write_commit(
    repo: &gix::Repository,
    sig: gix::actor::SignatureRef<'_>,
    message: &str,
    tree: ObjectId,
    parents: &[ObjectId],
) -> Result<ObjectId, gix::Error> {
    let commit = gix::objs::Commit {
        tree,
        parents: parents.iter().copied().collect(),
        author: sig.to_owned()?,
        committer: sig.to_owned()?,
        encoding: None,
        message: message.into(),
        extra_headers: Vec::new(),
    };
    Ok(repo.write_object(&commit)?.detach())
}

/// `refs/driftless/preserved/20261124T040355Z`, with a `-2`, `-3` ... suffix if taken.
fn unique_ref_name(repo: &gix::Repository) -> String {
    let base = format!(
        "refs/driftless/preserved/{}",
        crate::time::compact(crate::time::now_unix())
    );
    let mut name = base.clone();
    let mut n = 2;
    while repo.try_find_reference(name.as_str()).ok().flatten().is_some() {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// The first thing at or below repo-relative `path` that preserving cannot hold and removing
/// would destroy: a nested repository (its own `.git` and history), a mount point, or a FIFO,
/// socket or device. `None` when only files, links and directories are there.
pub fn unpreservable(checkout: &Checkout, path: &gix::bstr::BStr) -> Option<(BString, &'static str)> {
    use std::os::unix::fs::MetadataExt;
    let device = std::fs::symlink_metadata(&checkout.workdir).ok()?.dev();
    let mut stack = vec![path.to_owned()];
    while let Some(rela) = stack.pop() {
        let abs = checkout.worktree_path(rela.as_bstr());
        let Ok(meta) = std::fs::symlink_metadata(&abs) else {
            continue;
        };
        if let Some(kind) = crate::safe_fs::special_kind(meta.file_type()) {
            return Some((rela, kind));
        }
        if !meta.is_dir() {
            continue;
        }
        if meta.dev() != device {
            return Some((rela, "a mount point"));
        }
        if std::fs::symlink_metadata(abs.join(".git")).is_ok() {
            return Some((rela, "a nested git repository"));
        }
        for entry in std::fs::read_dir(&abs).ok()?.flatten() {
            let mut child = rela.clone();
            child.push(b'/');
            child.extend_from_slice(super::checkout::path_to_bytes(std::path::Path::new(&entry.file_name())));
            stack.push(child);
        }
    }
    None
}

/// Repo-relative paths of the files and links at or below `abs`.
fn collect_files(root: &Path, abs: &Path, out: &mut Vec<BString>) {
    let Ok(meta) = std::fs::symlink_metadata(abs) else {
        return;
    };
    if meta.is_dir() {
        if abs.join(".git").exists() {
            return; // A nested repository (submodule) keeps its own history.
        }
        let Ok(read) = std::fs::read_dir(abs) else {
            return;
        };
        for entry in read.flatten() {
            collect_files(root, &entry.path(), out);
        }
    } else if let Ok(rela) = abs.strip_prefix(root) {
        out.push(super::checkout::path_to_bytes(rela).into());
    }
}
