//! The lock files a run takes inside `.git`, and taking back the ones a killed run left.
//!
//! git and gix write the index and every ref through `<file>.lock`, renamed over `<file>` when
//! done. A SIGKILL in between leaves the lock behind, and every later writer, git's or ours,
//! fails on it for good. So before taking such locks a run writes a note,
//! `.git/driftless-locks`, naming them, holds an `flock` on it while it lives, and removes it once
//! the locks are released. A later run that finds the note and can take its `flock` knows the
//! writer is dead (the kernel drops the `flock` with the process, whatever state dir or worktree
//! it ran for), and removes the listed locks created while it lived.
//!
//! Only locks that did not exist when the note was written are listed: one that did is someone
//! else's. Any other lock file is left alone; sync-repo refuses on it (see `sync.rs`).

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A listed lock is taken back only if it was created no earlier than its note (less mtime
/// granularity) and no later than this after it. A run takes its locks within milliseconds of
/// its note (an index of 10,000 files is written in well under a second); a lock created later
/// belongs to a process that came after the kill, such as a git command of the user's.
const TAKEN_WITHIN: Duration = Duration::from_secs(3);

/// Why a write under locks failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot take {locks}: another git process is writing, or one crashed; run again, and if it \
         persists while no git process runs (`pgrep -a git`): rm {locks}"
    )]
    Held { locks: String, source: gix::Error },
    #[error(
        "cannot write {path}, the note that lets a later run recover this one's locks; check that \
         the checkout's .git is writable and its file system has space",
        path = path.display()
    )]
    Note { path: PathBuf, source: std::io::Error },
    #[error("another sync-repo run is writing in this checkout (it holds {path}); run again", path = path.display())]
    Busy { path: PathBuf },
    #[error("cannot update {names}")]
    Edit { names: String, source: gix::Error },
}

impl Error {
    /// Whether another process holds a lock: the next run may well succeed.
    pub fn is_held(&self) -> bool {
        matches!(self, Error::Held { .. } | Error::Busy { .. })
    }
}

/// The note of the locks a run is about to take, `flock`ed; removed when dropped, i.e. unless
/// the run is killed.
pub(crate) struct Taking {
    note: PathBuf,
    /// Held until after `drop` removed the note (fields drop after it).
    _flock: File,
}

impl Taking {
    /// Note the locks of `resources` (`index`, `HEAD`, `packed-refs`, `refs/...`) before taking
    /// them.
    pub(crate) fn new(repo: &gix::Repository, resources: &[&str]) -> Result<Taking, Error> {
        let note = note_path(repo);
        let io = |source| Error::Note {
            path: note.clone(),
            source,
        };
        let mut flock = match lock_note(&note) {
            Ok(Some(file)) => file,
            Ok(None) => return Err(Error::Busy { path: note }),
            Err(source) => return Err(io(source)),
        };
        let absent: Vec<&str> = resources
            .iter()
            .copied()
            .filter(|resource| lock_file(repo, resource).is_some_and(|lock| !lock.exists()))
            .collect();
        // Through the flocked handle: the path may name another file by now only if someone
        // broke the protocol, and then this note is simply not found. Not atomic on purpose: a
        // note cut short by a kill does not parse and is dropped, and no lock was taken yet.
        let json = serde_json::to_vec(&absent).map_err(|e| io(std::io::Error::other(e)))?;
        flock.set_len(0).and_then(|()| flock.write_all(&json)).map_err(io)?;
        Ok(Taking { note, _flock: flock })
    }
}

impl Drop for Taking {
    fn drop(&mut self) {
        // Removed while still flocked, so no later run can take the flock of a note in use.
        let _ = std::fs::remove_file(&self.note);
    }
}

/// How long a run waits for another run's note: that run is between taking and releasing its
/// locks, which takes milliseconds, unless it is stopped (SIGSTOP, a frozen cgroup).
const NOTE_WAIT: Duration = Duration::from_secs(2);

/// Open and `flock` the note at `path`, making sure the locked file is the one at `path` (a run
/// that removed its note between our open and our flock leaves us an unlinked file). `None`
/// when another run keeps it past [`NOTE_WAIT`].
fn lock_note(path: &Path) -> std::io::Result<Option<File>> {
    let deadline = std::time::Instant::now() + NOTE_WAIT;
    loop {
        // Never through a link planted at the note's name.
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)?;
        match file.try_lock() {
            Ok(()) if is_at(&file, path) => return Ok(Some(file)),
            Ok(()) => continue,
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(err)) => return Err(err),
        }
    }
}

/// Whether `file` is the file `path` names now.
fn is_at(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(ours), Ok(there)) => ours.dev() == there.dev() && ours.ino() == there.ino(),
        _ => false,
    }
}

/// The lock files a dead run left, as its note lists them: none while the note's writer lives.
/// Reads only, for `--dry-run`.
pub fn abandoned(repo: &gix::Repository) -> Vec<PathBuf> {
    with_dead_note(repo, |locks| locks)
}

/// Remove the lock files a dead run left (see [`abandoned`]), and its note. Returns the removed
/// lock files.
pub fn release_abandoned(repo: &gix::Repository) -> Vec<PathBuf> {
    let note = note_path(repo);
    with_dead_note(repo, |locks| {
        let removed = locks
            .into_iter()
            .filter(|lock| std::fs::remove_file(lock).is_ok())
            .collect();
        let _ = std::fs::remove_file(&note);
        removed
    })
}

/// Call `then` with the dead run's locks while holding its note's `flock`, so no new run can
/// take the note over meanwhile; an empty list when there is no note or its writer lives.
fn with_dead_note(repo: &gix::Repository, then: impl FnOnce(Vec<PathBuf>) -> Vec<PathBuf>) -> Vec<PathBuf> {
    let note = note_path(repo);
    // Read-only is enough to flock, so a dry run of a user who cannot write still looks.
    let Ok(file) = File::open(&note) else {
        return Vec::new();
    };
    match dead_runs_locks(repo, file, &note) {
        Some((locks, _flock)) => then(locks),
        None => Vec::new(),
    }
}

/// The locks listed in `file`, opened as the note at `note`, if its writer is dead; with the
/// file, flocked. `None` while the writer lives, or when `file` is no longer the note at `note`
/// (its writer finished and a live run wrote a new one, which must not be read as this one).
fn dead_runs_locks(repo: &gix::Repository, mut file: File, note: &Path) -> Option<(Vec<PathBuf>, File)> {
    if file.try_lock().is_err() || !is_at(&file, note) {
        return None;
    }
    let written = file
        .metadata()
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut bytes = Vec::new();
    let resources: Vec<String> = file
        .read_to_end(&mut bytes)
        .ok()
        .and_then(|_| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let locks = resources
        .iter()
        .filter_map(|resource| lock_file(repo, resource))
        .filter(|lock| {
            let meta = std::fs::symlink_metadata(lock).ok().filter(|m| m.is_file());
            meta.and_then(|m| m.modified().ok())
                .is_some_and(|created| created + Duration::from_secs(1) >= written && created <= written + TAKEN_WITHIN)
        })
        .collect();
    Some((locks, file))
}

/// The resources gix locks to edit refs `names`: each ref, and `packed-refs` when the repo has
/// one, which gix then locks to check expected values (every fresh clone has one).
fn ref_resources<'a>(repo: &gix::Repository, names: &[&'a str]) -> Vec<&'a str> {
    let mut resources = names.to_vec();
    if repo.common_dir().join("packed-refs").is_file() {
        resources.push("packed-refs");
    }
    resources
}

/// Edit refs as `repo.edit_references_as` does, with their locks noted first. A lock that
/// another process holds is told apart from other failures (such as an expected value that
/// did not match).
pub(crate) fn edit_refs(
    repo: &gix::Repository,
    edits: Vec<gix::refs::transaction::RefEdit>,
    committer: gix::actor::SignatureRef<'_>,
) -> Result<(), Error> {
    let names: Vec<String> = edits.iter().map(|edit| edit.name.as_bstr().to_string()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let resources = ref_resources(repo, &names);
    let taking = Taking::new(repo, &resources)?;
    let result = repo.edit_references_as(edits, Some(committer));
    drop(taking);
    result.map(drop).map_err(|source| {
        held_or(repo, &resources, source, |source| Error::Edit {
            names: names.join(" "),
            source,
        })
    })
}

/// After `source` failed: [`Error::Held`] if a lock of `resources` exists, else `otherwise`.
pub(crate) fn held_or<E: From<Error>>(
    repo: &gix::Repository,
    resources: &[&str],
    source: gix::Error,
    otherwise: impl FnOnce(gix::Error) -> E,
) -> E {
    let held = existing(repo, resources);
    if held.is_empty() {
        return otherwise(source);
    }
    let locks: Vec<String> = held
        .iter()
        .map(|l| super::shell_quote(&l.display().to_string()))
        .collect();
    Error::Held {
        locks: locks.join(" "),
        source,
    }
    .into()
}

/// The lock files of `resources` that exist now.
pub(crate) fn existing(repo: &gix::Repository, resources: &[&str]) -> Vec<PathBuf> {
    resources
        .iter()
        .filter_map(|resource| lock_file(repo, resource))
        .filter(|lock| lock.exists())
        .collect()
}

/// `<file>.lock` for a resource of `repo`: `index` and `HEAD` in the worktree's git dir,
/// `packed-refs` and `refs/...` in the common dir. `None` for anything else, so a note can only
/// ever name lock files of the repo's own.
fn lock_file(repo: &gix::Repository, resource: &str) -> Option<PathBuf> {
    let dir = match resource {
        "index" | "HEAD" => repo.git_dir(),
        "packed-refs" => repo.common_dir(),
        _ if resource.starts_with("refs/")
            && resource
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..") =>
        {
            repo.common_dir()
        }
        _ => return None,
    };
    Some(dir.join(format!("{resource}.lock")))
}

fn note_path(repo: &gix::Repository) -> PathBuf {
    repo.git_dir().join("driftless-locks")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> (tempfile::TempDir, gix::Repository) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = gix::init(tmp.path()).expect("init");
        (tmp, repo)
    }

    fn lock(repo: &gix::Repository, resource: &str) -> PathBuf {
        lock_file(repo, resource).expect("a resource of the repo")
    }

    fn create(lock: &Path, modified: SystemTime) {
        std::fs::create_dir_all(lock.parent().expect("parent")).expect("lock dir");
        let file = File::create(lock).expect("create lock");
        file.set_modified(modified).expect("set mtime");
    }

    /// What a SIGKILL does: the destructor never runs, and the kernel drops the flock.
    fn killed(taking: Taking) {
        taking._flock.unlock().expect("unlock");
        std::mem::forget(taking);
    }

    #[test]
    fn a_dead_runs_locks_are_taken_back_with_its_note() {
        let (_tmp, repo) = repo();
        let taking = Taking::new(&repo, &["refs/heads/main", "packed-refs"]).expect("note");
        let locks = [lock(&repo, "refs/heads/main"), lock(&repo, "packed-refs")];
        for l in &locks {
            create(l, SystemTime::now());
        }
        killed(taking);

        assert_eq!(abandoned(&repo), locks, "a dry look changes nothing");
        assert_eq!(release_abandoned(&repo), locks);
        assert!(locks.iter().all(|l| !l.exists()));
        assert!(!note_path(&repo).exists());
    }

    #[test]
    fn a_live_runs_locks_are_left_alone() {
        let (_tmp, repo) = repo();
        let _taking = Taking::new(&repo, &["index"]).expect("note");
        create(&lock(&repo, "index"), SystemTime::now());

        assert!(release_abandoned(&repo).is_empty());
        assert!(lock(&repo, "index").exists());
        assert!(note_path(&repo).exists(), "the live run's note stays");
    }

    /// A recoverer that opened a finished run's note must not read the next live run's note,
    /// now at the same path, as that dead one.
    #[test]
    fn a_note_replaced_after_it_was_opened_is_not_the_dead_runs() {
        let (_tmp, repo) = repo();
        let first = Taking::new(&repo, &["index"]).expect("first note");
        let opened_early = File::open(note_path(&repo)).expect("open the first note");
        drop(first);
        let _live = Taking::new(&repo, &["refs/heads/main"]).expect("the live run's note");
        create(&lock(&repo, "refs/heads/main"), SystemTime::now());

        assert!(dead_runs_locks(&repo, opened_early, &note_path(&repo)).is_none());
        assert!(release_abandoned(&repo).is_empty(), "the live run's flock protects it");
        assert!(lock(&repo, "refs/heads/main").exists());
    }

    #[test]
    fn a_second_writer_gives_up_as_busy_while_the_first_holds_the_note() {
        let (_tmp, repo) = repo();
        let _first = Taking::new(&repo, &["index"]).expect("first note");
        assert!(matches!(Taking::new(&repo, &["index"]), Err(Error::Busy { .. })));
    }

    #[test]
    fn a_run_that_ends_removes_its_note_and_leaves_later_locks_alone() {
        let (_tmp, repo) = repo();
        drop(Taking::new(&repo, &["index"]).expect("note"));
        assert!(!note_path(&repo).exists());
        create(&lock(&repo, "index"), SystemTime::now());

        assert!(release_abandoned(&repo).is_empty());
        assert!(lock(&repo, "index").exists());
    }

    #[test]
    fn a_lock_that_existed_before_the_note_is_not_listed() {
        let (_tmp, repo) = repo();
        create(&lock(&repo, "index"), SystemTime::now());
        killed(Taking::new(&repo, &["index"]).expect("note"));

        assert!(release_abandoned(&repo).is_empty());
        assert!(lock(&repo, "index").exists());
    }

    #[test]
    fn only_locks_created_while_the_dead_run_lived_are_its_own() {
        let (_tmp, repo) = repo();
        killed(Taking::new(&repo, &["refs/heads/a", "refs/heads/b"]).expect("note"));
        let (a, b) = (lock(&repo, "refs/heads/a"), lock(&repo, "refs/heads/b"));
        create(&a, SystemTime::now() - Duration::from_secs(600));
        create(&b, SystemTime::now() + TAKEN_WITHIN + Duration::from_secs(60));

        assert!(release_abandoned(&repo).is_empty());
        assert!(a.exists() && b.exists());
    }

    #[test]
    fn a_note_names_only_lock_files_of_the_repo() {
        let (tmp, repo) = repo();
        let outside = tmp.path().join("victim.lock");
        create(&outside, SystemTime::now());
        let refs = repo.common_dir().join("refs");
        create(&refs.join("x.lock"), SystemTime::now());
        std::fs::write(
            note_path(&repo),
            serde_json::to_vec(&[
                outside.display().to_string(),
                "refs/../refs/x".to_owned(),
                "config".to_owned(),
            ])
            .expect("json"),
        )
        .expect("note");

        assert!(release_abandoned(&repo).is_empty());
        assert!(outside.exists() && refs.join("x.lock").exists());
    }

    #[test]
    fn a_cut_short_note_is_dropped_with_nothing_removed() {
        let (_tmp, repo) = repo();
        create(&lock(&repo, "index"), SystemTime::now());
        std::fs::write(note_path(&repo), "[\"index\",\"refs/hea").expect("note");

        assert!(release_abandoned(&repo).is_empty());
        assert!(lock(&repo, "index").exists());
        assert!(!note_path(&repo).exists());
    }

    #[test]
    fn packed_refs_is_locked_only_when_the_repo_has_one() {
        let (_tmp, repo) = repo();
        assert_eq!(ref_resources(&repo, &["refs/heads/main"]), ["refs/heads/main"]);
        std::fs::write(repo.common_dir().join("packed-refs"), "").expect("packed-refs");
        assert_eq!(
            ref_resources(&repo, &["refs/heads/main"]),
            ["refs/heads/main", "packed-refs"]
        );
    }
}
