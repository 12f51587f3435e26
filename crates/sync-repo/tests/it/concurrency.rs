//! One run per repo at a time (the state dir's `lock`, exit 75 or `--wait-lock`), and crash
//! safety: a run killed with SIGKILL mid-update is healed by the next run, leaving no debris.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use driftless_tests::fixture;
use driftless_tests::oracle::{self, RepoSnapshot};

use crate::{Run, World, find_files, mentions_any};

/// Hold an exclusive `flock` on `path` until the returned file is dropped (the same kind of
/// lock sync-repo takes, from another open file description).
fn hold_lock(path: &Path) -> File {
    std::fs::create_dir_all(path.parent().expect("lock has a parent")).expect("create lock dir");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.try_lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", path.display()));
    file
}

/// The lock file sync-repo uses for `w`'s checkout, found after one run created it.
fn lock_path_after_first_run(w: &World) -> PathBuf {
    w.sync(&[]).expect_code(0);
    let locks = find_files(&w.env.state_dir(), "lock");
    assert_eq!(locks.len(), 1, "one lock file in the state dir: {locks:?}");
    assert!(locks[0].starts_with(w.env.state_dir().join("paths")), "{locks:?}");
    locks[0].clone()
}

#[test]
fn busy_lock_exits_75_at_once_and_changes_nothing() {
    let w = World::new("lock-busy");
    let lock = lock_path_after_first_run(&w);
    w.origin.write("a.txt", "upstream\n");
    w.origin.commit("upstream change");
    let held = hold_lock(&lock);
    let snapshot = RepoSnapshot::take(&w.checkout);

    let run = w.sync(&[]);
    run.expect_code(75);
    assert!(
        run.elapsed < Duration::from_secs(5),
        "no waiting without --wait-lock: {:?}",
        run.elapsed
    );
    assert!(
        mentions_any(&run.all_output(), &["lock"]),
        "the output should say the lock is busy:\n{}",
        run.stderr
    );
    snapshot.assert_unchanged(&w.checkout);
    let run = w.sync(&["--json"]);
    run.expect_code(75);
    assert_eq!(run.json()["exit_code"], 75, "{}", run.stdout);
    snapshot.assert_unchanged(&w.checkout);
    drop(held);

    w.sync(&[]).expect_code(0);
    oracle::assert_synced(&w.checkout, &w.origin.path_url(), &w.origin.tip());
}

#[test]
fn wait_lock_waits_for_release_then_succeeds() {
    let w = World::new("lock-wait");
    let lock = lock_path_after_first_run(&w);
    w.origin.write("a.txt", "upstream\n");
    w.origin.commit("upstream change");
    let held = hold_lock(&lock);
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(held);
    });
    let run = w.sync(&["--wait-lock", "10"]);
    releaser.join().expect("releaser thread");
    run.expect_code(0);
    assert!(
        run.elapsed >= Duration::from_millis(1000),
        "it must have waited for the lock: {:?}",
        run.elapsed
    );
    oracle::assert_synced(&w.checkout, &w.origin.path_url(), &w.origin.tip());
}

#[test]
fn wait_lock_gives_up_after_its_timeout() {
    let w = World::new("lock-timeout");
    let lock = lock_path_after_first_run(&w);
    let _held = hold_lock(&lock);
    let run = w.sync(&["--wait-lock", "1"]);
    run.expect_code(75);
    assert!(
        run.elapsed >= Duration::from_millis(900),
        "waited about 1 s: {:?}",
        run.elapsed
    );
    assert!(
        run.elapsed < Duration::from_secs(8),
        "gave up in time: {:?}",
        run.elapsed
    );
}

#[test]
fn named_repo_lock_lives_under_repos_name() {
    let w = World::new("lock-named");
    let config = w
        .env
        .write_config(&format!("repos:\n  hub:\n    path: {}\n", w.checkout.display()));
    let _held = hold_lock(&w.env.state_dir().join("repos/hub/lock"));
    let run = Run::of(w.env.sync_repo().arg("--config").arg(&config).arg("hub"));
    run.expect_code(75);
}

#[test]
fn concurrent_runs_one_waits_for_the_other() {
    let w = World::new("concurrent");
    fixture::many_files(&w.origin.work, "many", 2_000, "v1");
    w.origin.commit("2k files");
    let mut first = w
        .env
        .sync_repo_std()
        .args(["--wait-lock", "60"])
        .arg(&w.checkout)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let second = w.sync(&["--wait-lock", "60"]);
    let first_status = first.wait().expect("wait for first run");
    assert!(first_status.success(), "first run: {first_status}");
    second.expect_code(0);
    oracle::assert_synced(&w.checkout, &w.origin.path_url(), &w.origin.tip());
}

/// Files under `.git` a killed run may have left: (`*.lock` files, which block the next git
/// operation, and temp files such as half-received packs, which only waste space).
fn leftover_git_debris(checkout: &Path) -> (Vec<String>, Vec<String>) {
    let (mut locks, mut temps) = (Vec::new(), Vec::new());
    let mut stack = vec![checkout.join(".git")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read .git dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.ends_with(".lock") {
                locks.push(path.display().to_string());
            } else if name.starts_with("tmp_") || name.starts_with(".tmp") {
                temps.push(path.display().to_string());
            }
        }
    }
    (locks, temps)
}

#[test]
fn sigkill_mid_update_then_rerun_converges() {
    let w = World::with("sigkill", |o| fixture::many_files(&o.work, "many", 3_000, "v1"));

    // A large update: every one of the 3,000 files changes, plus a few big files and a
    // directory that becomes a file.
    fixture::many_files(&w.origin.work, "many", 3_000, "v2");
    for i in 0..2 {
        fixture::big_file(&w.origin.work, &format!("big/{i}.bin"), 4 * 1024 * 1024, "v2");
    }
    w.origin.remove("src/deep").write("src/deep", "now a file\n");
    w.origin.commit("large update");

    // Kill runs after growing delays until one finishes on its own, so kills land in every
    // phase (fetch, worktree writes, index, ref update) whatever the machine's speed.
    let mut outcomes = Vec::new();
    let mut delay = Duration::from_millis(20);
    let stderr_path = w.env.path("sigkill-run.stderr");
    for _ in 0..14 {
        let stderr = std::fs::File::create(&stderr_path).expect("create stderr file");
        let mut child = w
            .env
            .sync_repo_std()
            .arg(&w.checkout)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn sync-repo");
        std::thread::sleep(delay);
        // Child::kill sends SIGKILL to this child's pid only.
        let _ = child.kill();
        let status = child.wait().expect("reap killed sync-repo");
        outcomes.push((delay.as_millis(), status.code()));
        if status.code().is_some() {
            break;
        }
        delay = delay.mul_f64(1.6);
    }
    println!("runs (delay ms, exit code if it finished before SIGKILL): {outcomes:?}");
    assert!(
        outcomes.iter().filter(|(_, code)| code.is_none()).count() >= 3,
        "too few runs were killed: {outcomes:?}"
    );
    if let Some((_, Some(code))) = outcomes.last() {
        assert_eq!(
            *code,
            0,
            "the first run that finished after the kills must succeed: {outcomes:?}\n--- its stderr\n{}",
            std::fs::read_to_string(&stderr_path).unwrap_or_default()
        );
    }

    let run = w.sync(&[]);
    run.expect_code(0);
    oracle::assert_synced(&w.checkout, &w.origin.path_url(), &w.origin.tip());
    let (locks, temps) = leftover_git_debris(&w.checkout);
    assert!(locks.is_empty(), "killed runs left lock files in .git: {locks:?}");
    assert!(
        !w.checkout.join(".git/driftless-locks").exists(),
        "the lock note is gone"
    );
    if !temps.is_empty() {
        println!("NOTE: killed runs left {} temp file(s) in .git: {temps:?}", temps.len());
    }
}

/// Kill sync-repo at the moment it holds the lock on `reference`. The ref's reflog is swapped
/// for a FIFO first: gix writes the reflog after taking the lock and before renaming it into
/// place (creating it if missing), and opening a FIFO to write blocks, so the run stops exactly
/// there. The reflog is put back as it was once the run is dead.
pub(crate) fn kill_while_holding(w: &World, reference: &str) {
    kill_while_holding_in(w, &w.checkout.join(".git"), reference, &[]);
}

/// [`kill_while_holding`] for a ref of the repository at `git_dir` (a submodule's, below
/// `.git/modules/`), with `args` before the checkout on sync-repo's command line.
pub(crate) fn kill_while_holding_in(w: &World, git_dir: &Path, reference: &str, args: &[&std::ffi::OsStr]) {
    let reflog = git_dir.join("logs").join(reference);
    let lock = git_dir.join(format!("{reference}.lock"));
    // A fresh clone keeps its remote refs in packed-refs, with no reflog yet.
    let saved = std::fs::read(&reflog).ok();
    let _ = std::fs::remove_file(&reflog);
    let made = std::process::Command::new("mkfifo")
        .arg(&reflog)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", reflog.display());

    let mut child = w
        .env
        .sync_repo_std()
        .args(args)
        .arg(&w.checkout)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sync-repo");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !lock.exists() && std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("poll sync-repo") {
            panic!("sync-repo ended ({status}) before it held {}", lock.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Child::kill sends SIGKILL to this child's pid only.
    let _ = child.kill();
    let status = child.wait().expect("reap killed sync-repo");
    assert_eq!(status.code(), None, "the run was killed, not finished: {status}");
    assert!(lock.exists(), "the killed run left {}", lock.display());

    std::fs::remove_file(&reflog).expect("remove the FIFO");
    if let Some(saved) = saved {
        std::fs::write(&reflog, saved).expect("put the reflog back");
    }
}

/// The lock files a killed run held are its own: the next run removes them and converges,
/// where git (and sync-repo before) would fail on them until a human deleted them.
fn killed_holding_a_ref_lock_then_rerun_converges(name: &str, reference: &str) {
    let w = World::new(name);
    w.origin.write("a.txt", "upstream\n").write("new.txt", "new\n");
    w.origin.commit("upstream change");
    kill_while_holding(&w, reference);

    let run = w.sync(&[]);
    run.expect_code(0);
    assert!(
        run.stderr.contains(&format!("{reference}.lock")),
        "the run should log the lock it took back:\n{}",
        run.stderr
    );
    oracle::assert_synced(&w.checkout, &w.origin.path_url(), &w.origin.tip());
    assert_eq!(w.git(&["rev-parse", "origin/main"]).trim(), w.origin.tip());
    let (locks, _) = leftover_git_debris(&w.checkout);
    assert!(locks.is_empty(), "lock files left in .git: {locks:?}");
    assert!(
        !w.checkout.join(".git/driftless-locks").exists(),
        "the lock note is gone"
    );
    w.sync(&[]).expect_code(0);
}

#[test]
fn killed_holding_the_branch_lock_then_rerun_converges() {
    killed_holding_a_ref_lock_then_rerun_converges("kill-branch-lock", "refs/heads/main");
}

#[test]
fn killed_holding_the_tracking_ref_lock_then_rerun_converges() {
    killed_holding_a_ref_lock_then_rerun_converges("kill-tracking-lock", "refs/remotes/origin/main");
}

/// `--dry-run` after a kill reports `outcome`, what the real run would do, instead of refusing
/// on the dead run's locks, and writes nothing: not the worktree, not the refs, not even those
/// lock files.
fn dry_run_after_a_kill_reports_and_touches_nothing(name: &str, reference: &str, outcome: &str) {
    let w = World::new(name);
    w.origin.write("a.txt", "upstream\n").write("new.txt", "new\n");
    w.origin.commit("upstream change");
    kill_while_holding(&w, reference);
    let lock = w.checkout.join(".git").join(format!("{reference}.lock"));
    let snapshot = RepoSnapshot::take(&w.checkout);

    let run = w.sync(&["--dry-run", "--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(record["outcome"], outcome, "{record}");
    snapshot.assert_unchanged(&w.checkout);
    assert!(lock.exists(), "a dry run leaves even the dead run's lock alone");

    w.sync(&[]).expect_code(0);
    oracle::assert_synced(&w.checkout, &w.origin.path_url(), &w.origin.tip());
}

#[test]
fn dry_run_after_a_kill_holding_the_branch_lock() {
    // Killed before the branch moved: the update is still to finish.
    dry_run_after_a_kill_reports_and_touches_nothing("kill-dry-run-branch", "refs/heads/main", "would_update");
}

#[test]
fn dry_run_after_a_kill_holding_the_tracking_ref_lock() {
    // Killed after the checkout moved, while recording the tip: in sync.
    dry_run_after_a_kill_reports_and_touches_nothing("kill-dry-run-tracking", "refs/remotes/origin/main", "in_sync");
}

/// An interrupted update is not finished past someone else's lock: the run refuses before
/// writing, and finishes once the lock is gone.
#[test]
fn an_interrupted_update_waits_for_a_foreign_index_lock() {
    let w = World::new("kill-then-foreign-lock");
    w.origin.write("a.txt", "upstream\n").write("new.txt", "new\n");
    w.origin.commit("upstream change");
    kill_while_holding(&w, "refs/heads/main");
    let journal = w.checkout.join(".git/driftless-sync.json");
    assert!(journal.exists(), "the killed run left its journal");
    let index_lock = w.checkout.join(".git/index.lock");
    std::fs::write(&index_lock, b"").expect("a git process of the user's takes index.lock");
    let head = w.head();
    let index = std::fs::read(w.checkout.join(".git/index")).expect("read index");

    let run = w.sync(&[]);
    run.expect_code(3);
    assert!(run.stderr.contains("index.lock"), "{}", run.stderr);
    assert!(journal.exists() && index_lock.exists());
    assert_eq!(w.head(), head);
    assert_eq!(std::fs::read(w.checkout.join(".git/index")).expect("read index"), index);

    std::fs::remove_file(&index_lock).expect("the user's git is done");
    w.sync(&[]).expect_code(0);
    oracle::assert_synced(&w.checkout, &w.origin.path_url(), &w.origin.tip());
}

/// A person's `git pull` while sync-repo writes the worktree fails on `index.lock`, as it would
/// beside another git, instead of writing files, index and HEAD in between. sync-repo then
/// finishes, and files, index and HEAD agree on the tip. The update is held mid-write by a
/// smudge filter that waits on a FIFO.
#[test]
fn a_git_pull_during_the_update_fails_on_index_lock() {
    let w = World::new("pull-during");
    let gate = w.env.path("gate");
    let status = std::process::Command::new("mkfifo")
        .arg(&gate)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    w.git(&[
        "config",
        "filter.gate.smudge",
        &format!("sh -c 'cat {} >/dev/null; cat'", gate.display()),
    ]);
    w.origin
        .write(".gitattributes", "*.gated filter=gate\n")
        .write("x.gated", "held back\n")
        .write("a.txt", "upstream\n");
    let tip = w.origin.commit("a gated file");
    let child = w
        .env
        .sync_repo_std()
        .arg(&w.checkout)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sync-repo");
    let index_lock = w.checkout.join(".git/index.lock");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !index_lock.exists() {
        assert!(std::time::Instant::now() < deadline, "sync-repo never took index.lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pull = driftless_tests::git_output(&w.checkout, &["pull", "-q", "--ff-only"]);
    let pull_err = String::from_utf8_lossy(&pull.stderr).into_owned();
    assert!(!pull.status.success(), "git pull went ahead beside sync-repo");
    assert!(pull_err.contains("index.lock"), "{pull_err}");
    // Open the gate: the filter reads, sync-repo goes on.
    std::fs::write(&gate, "go\n").expect("open the gate");
    let out = child.wait_with_output().expect("wait for sync-repo");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(w.head(), tip);
    assert_eq!(w.git(&["status", "--porcelain"]), "", "files, index and HEAD agree");
    assert_eq!(
        std::fs::read_to_string(w.checkout.join("x.gated")).expect("read"),
        "held back\n"
    );
    assert!(!index_lock.exists());
}
