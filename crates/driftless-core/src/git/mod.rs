//! Everything driftless does with git, through gix only (no `git` subprocess in product code).
//!
//! - [`checkout`]: open a checkout and read its state (branch, operations in progress, dirt).
//! - [`fetch`]: fetch one branch from the remote into a tracking ref.
//! - [`history`]: how the local and remote tips relate (behind, ahead, diverged).
//! - [`http`]: a keep-alive HTTP/1.1 client for plain `http://` remotes.
//! - [`fast_forward`]: move a clean checkout forward, writing only the paths that changed.
//! - [`export`]: part of a commit's tree written into a fresh directory (a rollback's files).
//! - [`filters`]: blobs to worktree files and back, as git converts them (attributes, eol, drivers).
//! - [`sparse`]: which paths a sparse checkout keeps out of the worktree.
//! - [`pack`]: copy what a remote on this host has and a checkout lacks, as one pack.
//! - [`locks`]: the lock files a run takes in `.git`, and taking back those a killed run left.
//! - [`preserve`]: save local commits and uncommitted work before `--force` takes the remote state.

pub mod checkout;
pub mod export;
pub mod fast_forward;
pub mod fetch;
pub mod filters;
pub mod history;
pub mod http;
pub mod locks;
pub mod pack;
pub mod preserve;
pub mod sparse;

pub use gix::ObjectId;

/// The short form of a commit id used in messages (`3f2a9c1`).
pub fn short(id: &ObjectId) -> String {
    id.to_hex_with_len(7).to_string()
}

/// `text` as one shell word, for the commands messages tell people to run.
pub fn shell_quote(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@=".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Why `branch` cannot be a branch name, by git's ref-name rules (`git check-ref-format
/// --branch`): `None` when it can. Checked before any fetch, so a name like `a:b` or `x..y`
/// never reaches a refspec.
pub fn branch_name_error(branch: &str) -> Option<String> {
    if branch.starts_with('-') {
        return Some("a branch name cannot start with `-`".to_owned());
    }
    if branch == "HEAD" {
        return Some("`HEAD` is not a branch".to_owned());
    }
    let full = format!("refs/heads/{branch}");
    gix::validate::reference::branch_name(full.as_str().into())
        .err()
        .map(|err| err.to_string().replace("Reference name", "a branch name"))
}

/// Git's blob id of `len` bytes read from `file` as a stream, a block at a time. The length is
/// fixed up front by git's blob header: a file that grows while it is read is hashed as its
/// first `len` bytes, one that shrinks is an error.
pub(crate) fn hash_blob(file: std::fs::File, len: u64, kind: gix::hash::Kind) -> std::io::Result<ObjectId> {
    use std::io::Read;
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, file.take(len));
    gix::objs::compute_stream_hash(
        kind,
        gix::object::Kind::Blob,
        &mut reader,
        len,
        &mut gix::progress::Discard,
        &std::sync::atomic::AtomicBool::new(false),
    )
    .map_err(|err| std::io::Error::other(err.to_string()))
}

/// The identity driftless writes reflogs and preserved commits as, when git has none configured.
pub(crate) fn signature_time() -> String {
    format!("{} +0000", crate::time::now_unix())
}

/// The committer name and email for reflogs and preserve commits: the repo's configured
/// identity if any, else `driftless <driftless@HOST>`.
pub(crate) fn identity(repo: &gix::Repository) -> (String, String) {
    if let Some(Ok(sig)) = repo.committer() {
        return (sig.name.to_string(), sig.email.to_string());
    }
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    ("driftless".to_owned(), format!("driftless@{host}"))
}

/// Point `name` at `id` with a reflog entry written as [`identity`]: gix's own `reference()`
/// needs a configured committer, which root under systemd or cron usually lacks. The ref's locks
/// are noted first ([`locks`]), so a kill while they are held does not block later runs.
pub(crate) fn set_reference(
    repo: &gix::Repository,
    name: &str,
    id: ObjectId,
    expected: gix::refs::transaction::PreviousValue,
    message: &str,
) -> Result<(), locks::Error> {
    use gix::bstr::ByteSlice;
    use gix::refs::transaction::{Change, LogChange, RefEdit, RefLog};
    let (who, email) = identity(repo);
    let time = signature_time();
    let signature = gix::actor::SignatureRef {
        name: who.as_bytes().as_bstr(),
        email: email.as_bytes().as_bstr(),
        time: &time,
    };
    let edit = RefEdit {
        change: Change::Update {
            log: LogChange {
                mode: RefLog::AndReference,
                force_create_reflog: false,
                message: message.into(),
            },
            expected,
            new: gix::refs::Target::Object(id),
        },
        name: name.try_into().map_err(|e| locks::Error::Edit {
            names: name.to_owned(),
            source: gix::Error::from_error(e),
        })?,
        deref: false,
    };
    locks::edit_refs(repo, vec![edit], signature)
}
