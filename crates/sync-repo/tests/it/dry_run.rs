//! `--dry-run`: fetch and report what would change, leaving worktree, index, HEAD and every ref
//! (remote-tracking refs included) exactly as they were.

use driftless_tests::fixture;
use driftless_tests::oracle::{self, RepoSnapshot};

use crate::{World, change_kind, change_paths};

#[test]
fn dry_run_reports_would_update_and_changes_nothing() {
    let w = World::new("dry");
    let before = w.head();
    w.origin
        .write("a.txt", "upstream\n")
        .write("added.txt", "new\n")
        .remove("b.txt")
        .set_exec("bin/run.sh", false);
    w.origin.commit("upstream change");
    let tip = w.origin.tip();
    let snapshot = RepoSnapshot::take(&w.checkout);

    let run = w.sync(&["--dry-run", "--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(record["outcome"], "would_update", "{record}");
    assert_eq!(record["exit_code"], 0, "{record}");
    assert_eq!(record["before"], before.as_str(), "{record}");
    assert_eq!(record["remote_tip"], tip.as_str(), "{record}");
    assert_eq!(record["commits"], 1, "{record}");
    let mut want = oracle::changed_paths(&w.origin.work, &before, &tip);
    want.sort();
    assert_eq!(change_paths(&record), want, "{record}");
    assert_eq!(change_kind(&record, "a.txt").as_deref(), Some("modified"));
    assert_eq!(change_kind(&record, "added.txt").as_deref(), Some("added"));
    assert_eq!(change_kind(&record, "b.txt").as_deref(), Some("deleted"));
    assert_eq!(change_kind(&record, "bin/run.sh").as_deref(), Some("mode"));
    snapshot.assert_unchanged(&w.checkout);

    let human = w.sync(&["-n"]);
    human.expect_code(0);
    let line = format!("{}: would update", w.label());
    assert!(
        human
            .stdout
            .lines()
            .any(|l| l.starts_with(&line) && l.ends_with("[dry run]")),
        "{}",
        human.stdout
    );
    snapshot.assert_unchanged(&w.checkout);

    // A real run afterwards still applies the update.
    w.sync(&[]).expect_code(0);
    oracle::assert_synced(&w.checkout, &w.origin.path_url(), &tip);
}

#[test]
fn dry_run_in_sync() {
    let w = World::new("dry-in-sync");
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = w.sync(&["--dry-run", "--json"]);
    run.expect_code(0);
    assert_eq!(run.json()["outcome"], "in_sync", "{}", run.stdout);
    snapshot.assert_unchanged(&w.checkout);
}

#[test]
fn dry_run_still_refuses_a_dirty_checkout() {
    let w = World::new("dry-dirty");
    w.origin.write("a.txt", "upstream\n");
    w.origin.commit("upstream change");
    fixture::write_file(&w.checkout, "b.txt", "local edit\n");
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = w.sync(&["--dry-run", "--json"]);
    run.expect_code(3);
    assert_eq!(run.json()["outcome"], "refused", "{}", run.stdout);
    snapshot.assert_unchanged(&w.checkout);
}

#[test]
fn dry_run_with_force_changes_nothing() {
    let w = World::new("dry-force");
    w.origin.write("a.txt", "upstream\n");
    w.origin.commit("upstream change");
    fixture::write_file(&w.checkout, "b.txt", "local edit\n");
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = w.sync(&["--dry-run", "--force", "--json"]);
    assert!(
        run.code == 0 || run.code == 3,
        "exit {}\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    snapshot.assert_unchanged(&w.checkout);
}
