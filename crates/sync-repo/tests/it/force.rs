//! `--force`: take the remote state even when a run would be refused, but only after local
//! commits and uncommitted changes are preserved under `refs/driftless/preserved/*`.

use driftless_tests::fixture;
use driftless_tests::oracle;

use crate::World;

/// The refs under `refs/driftless/preserved/`.
fn preserved_refs(w: &World) -> Vec<String> {
    w.git(&["for-each-ref", "--format=%(refname)", "refs/driftless/preserved/"])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Run `--force --json`, expect an update to the remote tip with a preserved ref; return that ref.
fn force_and_get_preserved(w: &World) -> String {
    let run = w.sync(&["--force", "--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(record["outcome"], "updated", "{record}");
    let preserved = record["preserved_ref"]
        .as_str()
        .unwrap_or_else(|| panic!("--force over local work must report preserved_ref: {record}"))
        .to_owned();
    assert!(preserved.starts_with("refs/driftless/preserved/"), "{preserved}");
    let stamp = preserved.trim_start_matches("refs/driftless/preserved/");
    assert!(
        stamp.len() == 16 && stamp.as_bytes()[8] == b'T' && stamp.ends_with('Z'),
        "preserved ref is not refs/driftless/preserved/<YYYYMMDDTHHMMSSZ>: {preserved}"
    );
    assert_eq!(preserved_refs(w), vec![preserved.clone()], "exactly one preserved ref");
    oracle::assert_synced(&w.checkout, &w.origin.path_url(), &w.origin.tip());
    preserved
}

#[test]
fn force_preserves_local_commit_and_dirty_changes() {
    let w = World::new("force-dirty");
    fixture::write_file(&w.checkout, "local.txt", "committed locally\n");
    w.git(&["add", "local.txt"]);
    w.git(&["commit", "-q", "-m", "local work"]);
    let local_commit = w.head();
    fixture::write_file(&w.checkout, "a.txt", "dirty, unstaged\n");
    fixture::write_file(&w.checkout, "docs/guide.md", "dirty, staged\n");
    w.git(&["add", "docs/guide.md"]);
    w.origin
        .write("a.txt", "upstream\n")
        .write("upstream.txt", "new upstream\n");
    w.origin.commit("upstream change");

    let preserved = force_and_get_preserved(&w);

    assert_eq!(w.git(&["show", &format!("{preserved}:a.txt")]), "dirty, unstaged\n");
    assert_eq!(
        w.git(&["show", &format!("{preserved}:docs/guide.md")]),
        "dirty, staged\n"
    );
    assert_eq!(
        w.git(&["show", &format!("{preserved}:local.txt")]),
        "committed locally\n"
    );
    let ancestry =
        driftless_tests::git_output(&w.checkout, &["merge-base", "--is-ancestor", &local_commit, &preserved]);
    assert!(
        ancestry.status.success(),
        "the local commit must be in the preserved commit's ancestry"
    );
    // The preserved work can be taken back with plain git.
    w.git(&["checkout", "-q", "-b", "recovered", &preserved]);
    assert_eq!(
        std::fs::read_to_string(w.checkout.join("a.txt")).expect("read a.txt"),
        "dirty, unstaged\n"
    );
}

#[test]
fn force_preserves_dirty_changes_without_local_commits() {
    let w = World::new("force-dirty-only");
    let base = w.head();
    fixture::write_file(&w.checkout, "b.txt", "edited locally\n");
    fixture::remove(&w.checkout, "src/lib.rs");
    w.origin.write("a.txt", "upstream\n");
    w.origin.commit("upstream change");

    let preserved = force_and_get_preserved(&w);

    assert_eq!(w.git(&["show", &format!("{preserved}:b.txt")]), "edited locally\n");
    let tree = w.git(&["ls-tree", "-r", "--name-only", &preserved]);
    assert!(
        !tree.lines().any(|l| l == "src/lib.rs"),
        "the local deletion is preserved too:\n{tree}"
    );
    let ancestry = driftless_tests::git_output(&w.checkout, &["merge-base", "--is-ancestor", &base, &preserved]);
    assert!(ancestry.status.success(), "the preserved commit builds on the old HEAD");
}

#[test]
fn force_preserves_untracked_file_it_overwrites() {
    let w = World::new("force-untracked");
    fixture::write_file(&w.checkout, "upstream.txt", "my untracked notes\n");
    w.origin.write("upstream.txt", "from upstream\n");
    w.origin.commit("upstream adds a file");

    let preserved = force_and_get_preserved(&w);

    assert_eq!(
        w.git(&["show", &format!("{preserved}:upstream.txt")]),
        "my untracked notes\n"
    );
}

#[test]
fn force_takes_force_pushed_upstream() {
    let w = World::new("force-rewritten");
    w.origin.write("a.txt", "rewritten\n");
    w.origin.rewrite_last(1, "rewritten base");
    let run = w.sync(&["--force"]);
    run.expect_code(0);
    oracle::assert_synced(&w.checkout, &w.origin.path_url(), &w.origin.tip());
}

#[test]
fn force_leaves_a_detached_head_for_main() {
    let w = World::new("force-detached");
    w.git(&["checkout", "-q", "--detach", "HEAD~1"]);
    w.origin.write("a.txt", "upstream\n");
    w.origin.commit("upstream change");
    let run = w.sync(&["--force"]);
    run.expect_code(0);
    oracle::assert_synced(&w.checkout, &w.origin.path_url(), &w.origin.tip());
}

#[test]
fn force_when_clean_and_behind_is_a_plain_update() {
    let w = World::new("force-clean");
    let before = w.head();
    w.origin.write("a.txt", "upstream\n");
    w.origin.commit("upstream change");
    let mtimes = driftless_tests::MtimeSnapshot::take(&w.checkout);
    let run = w.sync(&["--force", "--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(record["outcome"], "updated", "{record}");
    assert!(record["preserved_ref"].is_null(), "nothing to preserve: {record}");
    assert!(
        preserved_refs(&w).is_empty(),
        "no preserved ref when nothing was at risk"
    );
    w.assert_updated_from(&before, &mtimes);
}

/// `--force` clears a lock nobody released for a minute (a crashed git), but not a fresh one,
/// which a git process may still be working under.
#[test]
fn force_clears_a_stale_lock_but_not_a_fresh_one() {
    let w = World::new("force-lock");
    w.origin.write("a.txt", "upstream\n");
    w.origin.commit("upstream change");
    let lock = w.checkout.join(".git/refs/heads/main.lock");
    std::fs::write(&lock, b"").expect("create lock");

    let run = w.sync(&["--force"]);
    run.expect_code(75);
    assert!(run.all_output().contains("fresh"), "{}", run.all_output());
    assert!(lock.exists(), "a fresh lock stays");

    let minutes_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    std::fs::File::options()
        .write(true)
        .open(&lock)
        .and_then(|f| f.set_modified(minutes_ago))
        .expect("age the lock");
    w.sync(&["--force"]).expect_code(0);
    assert!(!lock.exists(), "the stale lock is cleared");
    oracle::assert_synced(&w.checkout, &w.origin.path_url(), &w.origin.tip());
}
