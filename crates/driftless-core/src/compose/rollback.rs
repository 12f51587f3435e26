//! `rollback: true`: when a stack's apply fails, its last good revision is applied again. That
//! revision is the files of the last commit the stack was applied from, exported from git into
//! the state directory, and resolved there as compose would resolve them, under the stack's own
//! project name: compose sees the same relative paths, `.env` and override files it saw then.
//!
//! Inputs git did not track then (a gitignored data directory, a host-only env file) are not in
//! the commit: the export links to them where they live, so a rollback keeps a service's data.

use std::path::{Component, Path, PathBuf};

use gix::bstr::BStr;

use super::StackRecord;
use super::stacks::{self, Stack};
use crate::config::StackEntry;
use crate::git::ObjectId;
use crate::git::checkout::{Checkout, path_to_bytes};

/// The directory of a repo's state that holds its rollback exports, one per stack and commit.
pub const DIR: &str = "rollback";

/// Why a stack could not be rolled back.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("it was never applied successfully, so there is no good revision to roll back to")]
    NoGoodCommit,
    #[error("the state's last good commit {commit:?} is not a commit id")]
    BadCommit { commit: String },
    #[error("cannot export commit {commit} to {path}", path = path.display())]
    Export {
        commit: String,
        path: PathBuf,
        source: crate::git::export::Error,
    },
    #[error("cannot prepare {path}", path = path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("commit {commit} has no stack in {dir} that compose would find")]
    NotAStack { commit: String, dir: String },
    #[error("at commit {commit}")]
    Resolve { commit: String, source: stacks::Error },
}

/// The stack as it was at its last good commit (`record.applied_commit`), materialised under
/// `dir/<project>/<commit>` (reused when an earlier rollback left it: its files are that
/// commit's, and containers running from it keep their bind mounts), and that commit.
pub fn materialise(
    checkout: &Checkout,
    stack: &Stack,
    record: &StackRecord,
    entries: &[StackEntry],
    dir: &Path,
) -> Result<(Stack, ObjectId), Error> {
    let hex = record.applied_commit.as_deref().ok_or(Error::NoGoodCommit)?;
    let commit = ObjectId::from_hex(hex.as_bytes()).map_err(|_| Error::BadCommit { commit: hex.to_owned() })?;
    let root = &checkout.workdir;
    let rela_dir = stack.path.strip_prefix(root).unwrap_or(Path::new(""));
    let project_dir = dir.join(&stack.project);
    let export = project_dir.join(commit.to_string());
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    if !std::fs::symlink_metadata(&export).is_ok_and(|m| m.is_dir()) {
        std::fs::create_dir_all(&project_dir).map_err(io(&project_dir))?;
        let partial = project_dir.join(format!(".{commit}.partial-{:016x}", crate::safe_fs::random()));
        let made = fill(checkout, commit, rela_dir, record, &partial)
            .and_then(|()| std::fs::rename(&partial, &export).map_err(io(&export)));
        if let Err(err) = made {
            // Links to live data inside are removed as links, never followed.
            let _ = std::fs::remove_dir_all(&partial);
            return Err(err);
        }
    }
    // Older exports of this stack no longer back any container once this one runs.
    if let Ok(read) = std::fs::read_dir(&project_dir) {
        for old in read.flatten().filter(|e| e.path() != export) {
            let _ = std::fs::remove_dir_all(old.path());
        }
    }
    let (found, errors) = stacks::discover_all(&export, entries);
    let want = export.join(rela_dir);
    let mut good = match found.into_iter().find(|s| s.path == want) {
        Some(good) => good,
        None => {
            return Err(match errors.into_iter().find(|(path, _)| *path == want) {
                Some((_, source)) => Error::Resolve {
                    commit: hex.to_owned(),
                    source,
                },
                None => Error::NotAStack {
                    commit: hex.to_owned(),
                    dir: stack.dir.clone(),
                },
            });
        }
    };
    good.project = stack.project.clone();
    Ok((good, commit))
}

/// Remove a stack's rollback exports once it runs from the checkout again.
pub fn forget(dir: &Path, project: &str) {
    let path = dir.join(project);
    if path.exists()
        && let Err(err) = std::fs::remove_dir_all(&path)
    {
        tracing::warn!("[{project}] cannot remove the rollback copy {}: {err}", path.display());
    }
}

/// Export the stack directory and its tracked inputs at `commit` into `dest`, then link the
/// inputs that were not tracked to where they live.
fn fill(
    checkout: &Checkout,
    commit: ObjectId,
    rela_dir: &Path,
    record: &StackRecord,
    dest: &Path,
) -> Result<(), Error> {
    let inputs: Vec<&Path> = record
        .applied_inputs
        .keys()
        .map(Path::new)
        // The state is data: only plain paths inside the repo.
        .filter(|p| p.components().all(|c| matches!(c, Component::Normal(_))))
        .collect();
    let mut paths: Vec<&BStr> = vec![path_to_bytes(rela_dir).into()];
    paths.extend(inputs.iter().map(|p| BStr::new(path_to_bytes(p))));
    crate::git::export::export(&checkout.repo, commit, &paths, dest).map_err(|source| Error::Export {
        commit: commit.to_string(),
        path: dest.to_owned(),
        source,
    })?;
    for rela in inputs {
        let link = dest.join(rela);
        let live = checkout.workdir.join(rela);
        if std::fs::symlink_metadata(&live).is_err() || !plain_dirs_to(dest, rela)? {
            continue;
        }
        std::os::unix::fs::symlink(&live, &link).map_err(|source| Error::Io { path: link, source })?;
    }
    Ok(())
}

/// Make the directories above `rela` below `dest` where they are missing, and say whether a
/// link may be put at `rela`: never below a link (an exported one may point anywhere), and
/// never over something already there.
fn plain_dirs_to(dest: &Path, rela: &Path) -> Result<bool, Error> {
    let mut at = dest.to_owned();
    let mut parts = rela.components().peekable();
    while let Some(part) = parts.next() {
        at.push(part);
        let last = parts.peek().is_none();
        match std::fs::symlink_metadata(&at) {
            Ok(_) if last => return Ok(false),
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Ok(false),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && last => return Ok(true),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&at).map_err(|source| Error::Io {
                    path: at.clone(),
                    source,
                })?;
            }
            Err(source) => return Err(Error::Io { path: at, source }),
        }
    }
    Ok(false)
}
