//! What a run records and reads back: the state file after a success (and after a failure),
//! `--if-older-than` skipping on a recent success, and `--dry-run` writing nothing at all.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{PARTIAL_DIR, World, assert_same_tree, count, now_unix, tree};

/// The directory name a checkout given by path gets under `paths/`, from the real
/// `systemd-escape --path` (the name systemd gives the same path as a unit instance).
fn escape_path(path: &Path) -> String {
    let out = std::process::Command::new("systemd-escape")
        .arg("--path")
        .arg(path)
        .output()
        .expect("run systemd-escape (package systemd)");
    assert!(
        out.status.success(),
        "systemd-escape --path {}: {out:?}",
        path.display()
    );
    String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
}

fn state_file(w: &World) -> PathBuf {
    w.env
        .state_dir()
        .join("paths")
        .join(escape_path(&w.src))
        .join("mirror-copy.json")
}

fn read_state(w: &World) -> Value {
    let path = state_file(w);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "read {}: {e}; the state dir holds {:?}",
            path.display(),
            tree(&w.env.state_dir()).keys().collect::<Vec<_>>()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON ({e}): {text}", path.display()))
}

/// Every `mirror-copy.json` below `dir`.
fn records_below(dir: &Path) -> Vec<PathBuf> {
    tree(dir)
        .into_keys()
        .filter(|p| p.file_name().is_some_and(|n| n == "mirror-copy.json"))
        .collect()
}

#[test]
fn state_file_records_the_last_success_and_its_commit() {
    let w = World::new();
    w.write("a.txt", "alpha\n");
    let head = w.commit("a");
    let before = now_unix();
    w.mirror(&[]).expect_code(0);
    let after = now_unix();

    let saved = read_state(&w);
    assert_eq!(saved["tool"], "mirror-copy", "{saved}");
    assert_eq!(saved["outcome"], "copied", "{saved}");
    assert_eq!(saved["exit_code"], 0, "{saved}");
    assert_eq!(saved["commit"], head.as_str(), "{saved}");
    assert_eq!(saved["last_success_commit"], head.as_str(), "{saved}");
    assert_eq!(saved["destination"], w.dest.display().to_string(), "{saved}");
    let at = count(&saved, "last_success_at");
    assert!(
        (before..=after).contains(&at),
        "last_success_at {at} not in [{before}, {after}]"
    );
    assert_eq!(count(&saved, "copied"), 2, "{saved}");

    // A failed run records the failure but keeps the last success.
    std::fs::remove_dir_all(&w.dest).expect("remove dest");
    w.write("b.txt", "bravo\n");
    let newer = w.commit("b");
    w.mirror(&[]).expect_code(75);
    let failed = read_state(&w);
    assert_eq!(failed["exit_code"], 75, "{failed}");
    assert_eq!(failed["outcome"], "failed", "{failed}");
    assert_eq!(failed["commit"], newer.as_str(), "{failed}");
    assert_eq!(failed["last_success_at"], saved["last_success_at"], "{failed}");
    assert_eq!(failed["last_success_commit"], head.as_str(), "{failed}");
}

#[test]
fn if_older_than_skips_right_after_a_success() {
    let w = World::new();
    w.write("a.txt", "v1\n");
    // No success recorded yet: the guard lets the first run through.
    let run = w.mirror(&["--if-older-than", "1h", "--json"]);
    run.expect_code(0);
    assert_eq!(run.json()["outcome"], "copied", "{}", run.stdout);
    let saved = read_state(&w);

    w.write("a.txt", "v2, not yet\n");
    let run = w.mirror(&["--if-older-than", "1h", "--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(record["outcome"], "skipped", "{record}");
    assert_eq!(count(&record, "copied"), 0, "{record}");
    let reason = record["reason"].as_str().unwrap_or_default();
    assert!(
        reason.ends_with("within --if-older-than 1h"),
        "in the unit the user wrote: {reason}"
    );
    assert!(
        read_state(&w)["last_success_started_at"].is_u64(),
        "the slot is recorded"
    );
    assert_eq!(
        std::fs::read_to_string(w.dest.join("a.txt")).expect("read a.txt"),
        "v1\n",
        "a skipped run copied"
    );
    assert_eq!(read_state(&w), saved, "a skipped run rewrote the state file");

    let run = w.mirror(&["--if-older-than", "0s", "--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(record["outcome"], "copied", "{record}");
    assert_eq!(count(&record, "copied"), 1, "{record}");
    assert_eq!(
        std::fs::read_to_string(w.dest.join("a.txt")).expect("read a.txt"),
        "v2, not yet\n"
    );
}

#[test]
fn dry_run_writes_nothing() {
    let w = World::new();
    w.write("a.txt", "alpha\n")
        .write("dir/b.txt", "bravo\n")
        .symlink("link", "a.txt");
    // The destination already has something the source lacks, and an outdated file.
    driftless_tests::fixture::write_file(&w.dest, "stale.txt", "only in the mirror\n");
    driftless_tests::fixture::write_file(&w.dest, "a.txt", "old\n");
    let before = tree(&w.dest);

    for args in [
        &["--dry-run", "--json"][..],
        &["-n", "--delete", "--from", "commit", "--json"],
    ] {
        let run = w.mirror(args);
        run.expect_code(0);
        let record = run.json();
        assert_eq!(record["outcome"], "would_copy", "{args:?}: {record}");
        assert!(
            count(&record, "copied") >= 1,
            "{args:?}: a dry run should count what it would copy: {record}"
        );
        assert_same_tree(&tree(&w.dest), &before, &format!("destination after {args:?}"));
        assert!(!w.dest.join(PARTIAL_DIR).exists(), "{args:?} created {PARTIAL_DIR}");
        assert!(
            records_below(&w.env.state_dir()).is_empty(),
            "{args:?} wrote a state file"
        );
    }
    let run = w.mirror(&["--dry-run", "--delete"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("dry run"),
        "the summary should say it was a dry run: {}",
        run.stdout
    );

    // A dry run against a missing destination creates nothing either.
    let missing = w.env.path("missing");
    w.mirror_to(&missing.display().to_string(), &["--dry-run"])
        .expect_code(75);
    assert!(!missing.exists(), "a dry run created the destination");
}

#[test]
fn busy_lock_exits_75_and_copies_nothing() {
    let w = World::new();
    w.write("a.txt", "alpha\n");
    // Another run on the same repo holds the per-repo lock (an flock, as the tools take it).
    let lock_path = state_file(&w).with_file_name("lock");
    std::fs::create_dir_all(lock_path.parent().expect("repo state dir")).expect("create repo state dir");
    let lock = std::fs::File::create(&lock_path).expect("create lock file");
    lock.lock().expect("take the lock");

    let run = w.mirror(&["--json"]);
    run.expect_code(75);
    let record = run.json();
    assert!(
        record["reason"].as_str().unwrap_or_default().contains("--wait-lock"),
        "{record}"
    );
    assert!(tree(&w.dest).is_empty(), "a run without the lock copied files");
    assert!(!state_file(&w).exists(), "a run without the lock wrote the state file");

    // Released within --wait-lock: the run waits and goes on.
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(lock);
    });
    let run = w.mirror(&["--wait-lock", "10", "--json"]);
    releaser.join().expect("releaser thread");
    run.expect_code(0);
    assert!(w.dest.join("a.txt").is_file(), "the waiting run did not copy");
}
