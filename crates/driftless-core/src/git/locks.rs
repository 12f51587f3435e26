//! The lock files a run takes inside `.git`, and taking back the ones a killed run left.
//!
//! git and gix write the index and every ref through `<file>.lock`, renamed over `<file>` when
//! done. A SIGKILL in between leaves the lock behind, and every later writer, git's or ours,
//! fails on it for good. So before taking such locks a run writes a note
//! (`.git/driftless-locks`) naming them, and removes it once they are released. The next run
//! holds driftless's repo lock, so a note it finds was written by a run that is dead: the listed
//! lock files created while that run lived are its leftovers, and are removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A listed lock file is taken back only if it was created during the dead run: no earlier than
/// its note (less mtime granularity) and no later than this after it. A lock created later may
/// belong to a git process of the user's that is still working.
const DEAD_RUN_SPAN: Duration = Duration::from_secs(300);

/// The note of the locks a run is about to take; removed when dropped, i.e. unless killed.
pub(crate) struct Taking {
    note: PathBuf,
}

impl Taking {
    /// Write the note naming `locks` (from [`index_lock`] and [`ref_locks`]) before taking them.
    pub(crate) fn new(repo: &gix::Repository, locks: &[PathBuf]) -> std::io::Result<Taking> {
        let note = note_path(repo);
        // Not atomic on purpose: a note cut short by a kill does not parse and is dropped, and
        // by then no lock had been taken yet.
        let json = serde_json::to_vec(locks).map_err(std::io::Error::other)?;
        std::fs::write(&note, json)?;
        Ok(Taking { note })
    }
}

impl Drop for Taking {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.note);
    }
}

/// Remove the lock files that a killed run left, as its note lists them, and the note. Returns
/// the removed lock files. Call it while holding the repo's lock, so that no other driftless
/// run can be the note's writer.
pub fn release_abandoned(repo: &gix::Repository) -> Vec<PathBuf> {
    let note = note_path(repo);
    let Ok(meta) = std::fs::metadata(&note) else {
        return Vec::new();
    };
    let written = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let locks: Vec<PathBuf> = std::fs::read(&note)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let mut removed = Vec::new();
    for lock in locks {
        let Some(created) = std::fs::symlink_metadata(&lock).ok().and_then(|m| m.modified().ok()) else {
            continue;
        };
        let during_run = created + Duration::from_secs(1) >= written && created <= written + DEAD_RUN_SPAN;
        if during_run && std::fs::remove_file(&lock).is_ok() {
            removed.push(lock);
        }
    }
    let _ = std::fs::remove_file(&note);
    removed
}

/// The lock file gix takes to write the index.
pub fn index_lock(repo: &gix::Repository) -> PathBuf {
    lock_file(&repo.index_path())
}

/// The lock files gix takes to edit refs `names`: each ref's own, and `packed-refs.lock`, which
/// it also takes to check expected values whenever the repo has a packed-refs file.
pub fn ref_locks(repo: &gix::Repository, names: &[&str]) -> Vec<PathBuf> {
    names
        .iter()
        .map(|name| {
            // HEAD lives in the git dir of its worktree, refs/... in the common dir.
            let dir = if name.starts_with("refs/") {
                repo.common_dir()
            } else {
                repo.git_dir()
            };
            lock_file(&dir.join(name))
        })
        .chain([lock_file(&repo.common_dir().join("packed-refs"))])
        .collect()
}

fn lock_file(resource: &Path) -> PathBuf {
    let mut lock = resource.as_os_str().to_owned();
    lock.push(".lock");
    PathBuf::from(lock)
}

fn note_path(repo: &gix::Repository) -> PathBuf {
    repo.git_dir().join("driftless-locks")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(dir: &Path) -> gix::Repository {
        gix::init(dir).expect("init")
    }

    #[test]
    fn a_kill_leaves_the_note_and_the_next_run_takes_its_locks_back() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = repo(tmp.path());
        let locks = ref_locks(&repo, &["refs/heads/main"]);
        let taking = Taking::new(&repo, &locks).expect("note");
        for lock in &locks {
            std::fs::write(lock, "").expect("lock");
        }
        std::mem::forget(taking); // What a SIGKILL does to the destructor.

        assert_eq!(release_abandoned(&repo), locks);
        assert!(locks.iter().all(|lock| !lock.exists()));
        assert!(!note_path(&repo).exists());
    }

    #[test]
    fn a_run_that_ends_removes_its_note_and_leaves_other_locks_alone() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = repo(tmp.path());
        let lock = index_lock(&repo);
        drop(Taking::new(&repo, std::slice::from_ref(&lock)).expect("note"));
        std::fs::write(&lock, "").expect("lock of another process");

        assert!(release_abandoned(&repo).is_empty());
        assert!(lock.exists());
    }

    #[test]
    fn a_lock_older_than_the_dead_runs_note_is_not_its_own() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = repo(tmp.path());
        let lock = index_lock(&repo);
        std::fs::write(&lock, "").expect("lock");
        let old = SystemTime::now() - Duration::from_secs(600);
        std::fs::File::options()
            .write(true)
            .open(&lock)
            .and_then(|f| f.set_modified(old))
            .expect("backdate");
        std::mem::forget(Taking::new(&repo, std::slice::from_ref(&lock)).expect("note"));

        assert!(release_abandoned(&repo).is_empty());
        assert!(lock.exists());
    }

    #[test]
    fn a_cut_short_note_is_dropped() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = repo(tmp.path());
        std::fs::write(note_path(&repo), "[\"/x").expect("note");
        assert!(release_abandoned(&repo).is_empty());
        assert!(!note_path(&repo).exists());
    }
}
