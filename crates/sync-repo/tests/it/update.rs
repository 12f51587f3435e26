//! Fast-forward updates of a clean checkout: every kind of tree change ends with a checkout
//! identical to a fresh clone of the remote tip, and files the update did not change keep their mtime.

use driftless_tests::Origin;
use driftless_tests::fixture;
use driftless_tests::oracle::{self, MtimeSnapshot, RepoSnapshot};
use serde_json::Value;

use crate::{Run, World, change_kind, change_paths};

/// Apply `change` in the origin, commit and push it, run `sync-repo --json` on the checkout and
/// check the record and the checkout against the oracle. Returns the world and the record.
fn update_case(name: &str, change: impl FnOnce(&Origin)) -> (World, Value) {
    let w = World::new(name);
    let before = w.head();
    change(&w.origin);
    w.origin.commit("change");
    let mtimes = MtimeSnapshot::take(&w.checkout);
    let run = w.sync(&["--json"]);
    run.expect_code(0);
    let record = run.json();
    let tip = w.origin.tip();
    assert_eq!(record["outcome"], "updated", "{record}");
    assert_eq!(record["exit_code"], 0, "{record}");
    assert_eq!(record["before"], before.as_str(), "{record}");
    assert_eq!(record["after"], tip.as_str(), "{record}");
    assert_eq!(record["remote_tip"], tip.as_str(), "{record}");
    let mut changed = oracle::changed_paths(&w.checkout, &before, &tip);
    changed.sort();
    assert_eq!(change_paths(&record), changed, "changed paths in --json vs git diff");
    assert_eq!(record["files"], changed.len(), "{record}");
    w.assert_updated_from(&before, &mtimes);
    (w, record)
}

#[test]
fn plain_update_changes_only_what_the_commit_changed() {
    let (_w, record) = update_case("plain", |o| {
        o.write("a.txt", "alpha 2\n").write("new/file.txt", "new\n");
    });
    assert_eq!(record["commits"], 1);
    assert_eq!(change_kind(&record, "a.txt").as_deref(), Some("modified"));
    assert_eq!(change_kind(&record, "new/file.txt").as_deref(), Some("added"));
}

#[test]
fn many_commits_are_counted_and_applied() {
    let (w, record) = update_case("many-commits", |o| {
        o.commit_many(40);
    });
    // 40 from commit_many plus the one update_case makes.
    assert_eq!(record["commits"], 41, "{record}");
    assert_eq!(
        std::fs::read_to_string(w.checkout.join("commits/4.txt")).expect("read commits/4.txt"),
        "commit 39\n"
    );
}

#[test]
fn deletions_of_files_and_whole_directories() {
    let (w, record) = update_case("deletions", |o| {
        o.remove("b.txt").remove("src/deep");
    });
    assert!(!w.checkout.join("src/deep").exists(), "emptied directory must be gone");
    assert_eq!(change_kind(&record, "b.txt").as_deref(), Some("deleted"));
}

#[test]
fn renames_move_files() {
    let (w, _) = update_case("renames", |o| {
        o.rename("b.txt", "renamed/b.txt")
            .rename("docs/guide.md", "docs/GUIDE.md");
    });
    assert!(w.checkout.join("renamed/b.txt").is_file());
    assert!(!w.checkout.join("b.txt").exists());
}

#[test]
fn exec_bit_flips_both_ways() {
    let (_w, record) = update_case("exec-bits", |o| {
        o.set_exec("a.txt", true).set_exec("bin/run.sh", false);
    });
    assert_eq!(change_kind(&record, "a.txt").as_deref(), Some("mode"), "{record}");
    assert_eq!(change_kind(&record, "bin/run.sh").as_deref(), Some("mode"), "{record}");
}

#[test]
fn symlinks_added_retargeted_and_replacing_files() {
    let (w, _) = update_case("symlinks", |o| {
        o.symlink("new-link", "src/lib.rs")
            .symlink("link-to-a", "b.txt")
            .symlink("docs/guide.md", "../a.txt")
            .symlink("dangling", "does/not/exist");
    });
    let target = std::fs::read_link(w.checkout.join("link-to-a")).expect("link-to-a is a symlink");
    assert_eq!(target, std::path::Path::new("b.txt"));
}

#[test]
fn symlink_replaced_by_a_regular_file() {
    update_case("symlink-to-file", |o| {
        o.write("link-to-a", "now a file\n");
    });
}

#[test]
fn file_becomes_directory() {
    let (w, _) = update_case("file-to-dir", |o| {
        o.remove("b.txt").write("b.txt/inner.txt", "inside\n");
    });
    assert!(w.checkout.join("b.txt").is_dir());
}

#[test]
fn directory_becomes_file() {
    let (w, _) = update_case("dir-to-file", |o| {
        o.remove("src/deep").write("src/deep", "a file now\n");
    });
    assert!(w.checkout.join("src/deep").is_file());
}

#[test]
fn unicode_and_spaces_in_names() {
    update_case("unicode", |o| {
        o.write("dir with space/naïve café.txt", "crème\n")
            .write("日本語/ファイル.md", "こんにちは\n")
            .write("emoji 🎉.txt", "party\n")
            .write("tab\tand \"quotes\".txt", "odd\n")
            .rename("a.txt", "ä ö ü.txt");
    });
}

#[test]
fn untracked_file_not_in_the_way_is_kept() {
    let w = World::new("untracked-kept");
    fixture::write_file(&w.checkout, "notes/local.txt", "mine\n");
    fixture::write_file(&w.checkout, "debug.log", "ignored, mine\n");
    w.origin
        .write("a.txt", "alpha 2\n")
        .write("notes/upstream.txt", "theirs\n");
    w.origin.commit("change");
    let mtimes = MtimeSnapshot::take(&w.checkout);
    w.sync(&[]).expect_code(0);
    assert_eq!(
        std::fs::read_to_string(w.checkout.join("notes/local.txt")).expect("untracked file kept"),
        "mine\n"
    );
    assert_eq!(
        std::fs::read_to_string(w.checkout.join("debug.log")).expect("ignored file kept"),
        "ignored, mine\n"
    );
    mtimes.assert_kept_except(&["a.txt".to_owned(), "notes/upstream.txt".to_owned()]);
    fixture::remove(&w.checkout, "notes/local.txt");
    fixture::remove(&w.checkout, "debug.log");
    oracle::assert_synced(&w.checkout, &w.origin.path_url(), &w.origin.tip());
}

#[test]
fn in_sync_changes_nothing() {
    let w = World::new("in-sync");
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = w.sync(&["--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(record["outcome"], "in_sync", "{record}");
    assert_eq!(record["commits"], 0, "{record}");
    assert_eq!(record["files"], 0, "{record}");
    snapshot.assert_unchanged(&w.checkout);
    oracle::assert_synced(&w.checkout, &w.origin.path_url(), &w.origin.tip());
}

#[test]
fn two_updates_in_a_row() {
    let w = World::new("twice");
    let first = w.head();
    w.origin.write("a.txt", "one\n");
    w.origin.commit("one");
    w.sync(&[]).expect_code(0);
    let second = w.head();
    assert_ne!(first, second);
    w.origin.write("a.txt", "two\n").remove("b.txt");
    w.origin.commit("two");
    let mtimes = MtimeSnapshot::take(&w.checkout);
    w.sync(&[]).expect_code(0);
    w.assert_updated_from(&second, &mtimes);
}

#[test]
fn ten_thousand_files_update_touches_only_changed_ones() {
    let w = World::with("tenk", |o| fixture::many_files(&o.work, "many", 10_000, "v1"));
    let before = w.head();
    for i in [0, 17, 999, 5_000, 9_999] {
        w.origin
            .write(&fixture::many_files_path("many", i), format!("changed {i}\n"));
    }
    for i in [3, 4_444] {
        w.origin.remove(&fixture::many_files_path("many", i));
    }
    w.origin.write("many/extra/added.txt", "added\n");
    w.origin.commit("touch a few of 10k");
    let mtimes = MtimeSnapshot::take(&w.checkout);
    assert!(mtimes.len() > 10_000);
    let run = w.sync(&["--json"]);
    run.expect_code(0);
    assert_eq!(run.json()["files"], 8, "{}", run.stdout);
    w.assert_updated_from(&before, &mtimes);
    println!("10k files: small update {:?}", run.elapsed);

    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = w.sync(&[]);
    run.expect_code(0);
    snapshot.assert_unchanged(&w.checkout);
    println!("10k files: in-sync run {:?}", run.elapsed);
}

#[test]
fn fifty_megabyte_file_added_then_left_alone() {
    let w = World::new("big");
    let before = w.head();
    fixture::big_file(&w.origin.work, "blobs/big.bin", 50 * 1024 * 1024, "v1");
    w.origin.commit("50 MB file");
    let mtimes = MtimeSnapshot::take(&w.checkout);
    let run = w.sync(&[]);
    run.expect_code(0);
    w.assert_updated_from(&before, &mtimes);
    let size = std::fs::metadata(w.checkout.join("blobs/big.bin"))
        .expect("big file exists")
        .len();
    assert_eq!(size, 50 * 1024 * 1024);
    println!("50 MB file: update {:?}", run.elapsed);

    // A later small update must not rewrite the big file.
    let before = w.head();
    w.origin.write("a.txt", "small change next to a big file\n");
    w.origin.commit("small change");
    let mtimes = MtimeSnapshot::take(&w.checkout);
    let run = w.sync(&[]);
    run.expect_code(0);
    w.assert_updated_from(&before, &mtimes);
    println!("50 MB file: small update next to it {:?}", run.elapsed);
}

/// Root under systemd or cron usually has no git identity at all: the tracking ref and the
/// reflog must still be written, as driftless. (Exit 74 "reflog messages need a committer"
/// before the fix.)
#[test]
fn update_works_without_any_git_identity() {
    let w = World::new("no-identity");
    let before = w.head();
    w.origin.write("a.txt", "alpha 3\n");
    w.origin.commit("change");
    let mut cmd = w.env.sync_repo();
    for var in [
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "EMAIL",
    ] {
        cmd.env_remove(var);
    }
    cmd.arg("--json").arg(&w.checkout);
    let run = Run::of(&mut cmd);
    run.expect_code(0);
    assert_eq!(run.json()["outcome"], "updated");
    assert_eq!(w.head(), w.origin.tip());
    assert_ne!(w.head(), before);
    let reflog = w.git(&["reflog", "show", "--format=%gn <%ge> %gs", "refs/remotes/origin/main"]);
    assert!(
        reflog.starts_with("driftless <driftless@"),
        "tracking ref reflog: {reflog}"
    );
}
