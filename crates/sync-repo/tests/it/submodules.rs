//! Submodules: a moved, added or removed gitlink is recorded as `git pull --ff-only` records it
//! (no recursion: a submodule's own worktree is never touched), and the summary says the
//! submodule moved. The oracle is a `cp -a` twin of the checkout that git itself moves.

use driftless_tests::oracle::{self, Twin};
use driftless_tests::{Origin, git};

use crate::World;

/// Where the fixtures put the submodule.
const SUB: &str = "vendor/lib";

/// git refuses local-path submodule URLs unless told otherwise (CVE-2022-39253); a forge URL
/// would need nothing.
const FILE_OK: [&str; 2] = ["-c", "protocol.file.allow=always"];

/// A world whose origin has a submodule at [`SUB`] (from its own origin, returned), which the
/// checkout got through `git pull`; `populated` runs `git submodule update --init` there too.
fn with_submodule(name: &str, populated: bool) -> (World, Origin) {
    let w = World::new(name);
    let lib = Origin::new(&w.env, &format!("{name}-lib"));
    lib.write("lib.txt", "v1\n");
    lib.commit("lib v1");
    let mut add = FILE_OK.to_vec();
    let url = lib.path_url();
    add.extend(["submodule", "add", "-q", url.as_str(), SUB]);
    git(&w.origin.work, &add);
    w.origin.commit("add a submodule");
    w.git(&["pull", "-q", "--ff-only"]);
    if populated {
        let mut update = FILE_OK.to_vec();
        update.extend(["submodule", "update", "-q", "--init"]);
        w.git(&update);
        assert!(w.checkout.join(SUB).join("lib.txt").exists(), "populated");
    }
    (w, lib)
}

/// A new commit in the submodule's origin, recorded by a new commit of the superproject.
/// Returns (old, new) gitlink.
fn bump(w: &World, lib: &Origin, content: &str) -> (String, String) {
    let sub = w.origin.work.join(SUB);
    let old = git(&sub, &["rev-parse", "HEAD"]).trim().to_owned();
    lib.write("lib.txt", content);
    let new = lib.commit("lib moves");
    git(&sub, &["pull", "-q", "--ff-only", "origin", "main"]);
    w.origin.commit("bump the submodule");
    (old, new)
}

fn short(id: &str) -> &str {
    &id[..7]
}

#[test]
fn a_moved_gitlink_of_an_unpopulated_submodule_is_recorded_as_git_pull_does() {
    let (w, lib) = with_submodule("sub-bump", false);
    let (old, new) = bump(&w, &lib, "v2\n");
    let twin = Twin::of(&w.checkout);

    let dry = w.sync(&["--dry-run"]);
    dry.expect_code(0);
    let moved = format!("submodule {SUB} moved {}..{}", short(&old), short(&new));
    assert!(
        dry.stdout.contains(&moved),
        "the summary names the move: {}",
        dry.stdout
    );

    let run = w.sync(&["--json"]);
    run.expect_code(0);
    let record = run.json();
    let change = record["changes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["path"] == SUB))
        .unwrap_or_else(|| panic!("no change for {SUB}: {record}"));
    assert_eq!(change["change"], "submodule", "{change}");
    assert_eq!(change["from"], old.as_str(), "{change}");
    assert_eq!(change["to"], new.as_str(), "{change}");

    twin.pull();
    twin.assert_same(&w.checkout);
    oracle::assert_synced(&w.checkout, &w.origin.path_url(), &w.origin.tip());
    assert_eq!(
        w.git(&["ls-files", "-s", SUB]).split_whitespace().nth(1),
        Some(new.as_str()),
        "the index records the new gitlink"
    );
}

#[test]
fn a_populated_submodule_is_left_where_it_is_as_git_pull_leaves_it() {
    let (w, lib) = with_submodule("sub-populated", true);
    let (old, _) = bump(&w, &lib, "v2\n");
    let twin = Twin::of(&w.checkout);
    let run = w.sync(&[]);
    run.expect_code(0);
    assert!(run.stdout.contains(&format!("submodule {SUB} moved")), "{}", run.stdout);
    twin.pull();
    twin.assert_same(&w.checkout);
    // No recursion: the submodule still has the old commit and its files, and git status says so.
    let sub = w.checkout.join(SUB);
    assert_eq!(git(&sub, &["rev-parse", "HEAD"]).trim(), old);
    assert_eq!(
        std::fs::read_to_string(sub.join("lib.txt")).expect("read lib.txt"),
        "v1\n"
    );
    assert_eq!(w.git(&["status", "--porcelain"]), format!(" M {SUB}\n"));

    // A submodule behind its gitlink is no local change: the next bump goes through too.
    bump(&w, &lib, "v3\n");
    let twin = Twin::of(&w.checkout);
    w.sync(&[]).expect_code(0);
    twin.pull();
    twin.assert_same(&w.checkout);
}

/// Adding a second submodule and removing the first: an unpopulated submodule's empty directory
/// goes, a populated one stays with its files (git warns, and shows it untracked).
fn added_and_removed_as_git_does(name: &str, populated: bool) {
    let (w, _lib) = with_submodule(name, populated);
    let other = Origin::new(&w.env, &format!("{name}-other"));
    let url = other.path_url();
    let mut add = FILE_OK.to_vec();
    add.extend(["submodule", "add", "-q", url.as_str(), "other"]);
    git(&w.origin.work, &add);
    git(&w.origin.work, &["rm", "-q", SUB]);
    w.origin.commit("swap submodules");
    let twin = Twin::of(&w.checkout);
    let run = w.sync(&["--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(crate::change_kind(&record, SUB).as_deref(), Some("deleted"), "{record}");
    assert_eq!(
        crate::change_kind(&record, "other").as_deref(),
        Some("added"),
        "{record}"
    );
    twin.pull();
    twin.assert_same(&w.checkout);
    assert_eq!(w.checkout.join(SUB).exists(), populated);
}

#[test]
fn an_unpopulated_submodule_removed_upstream_leaves_no_directory() {
    added_and_removed_as_git_does("sub-removed", false);
}

#[test]
fn a_populated_submodule_removed_upstream_keeps_its_files() {
    added_and_removed_as_git_does("sub-removed-populated", true);
}

#[test]
fn a_tracked_file_replaced_by_a_submodule_is_recorded_as_git_does() {
    let (w, _lib) = with_submodule("sub-over-file", false);
    let other = Origin::new(&w.env, "sub-over-file-other");
    git(&w.origin.work, &["rm", "-q", "b.txt"]);
    let url = other.path_url();
    let mut add = FILE_OK.to_vec();
    add.extend(["submodule", "add", "-q", url.as_str(), "b.txt"]);
    git(&w.origin.work, &add);
    w.origin.commit("a file becomes a submodule");
    let twin = Twin::of(&w.checkout);
    w.sync(&[]).expect_code(0);
    twin.pull();
    twin.assert_same(&w.checkout);
}

/// Killed after writing the worktree and index of a gitlink move, before the branch moved:
/// the rerun finishes it (the submodule's directory is neither the old nor the new "content").
#[test]
fn killed_during_a_submodule_bump_then_rerun_converges() {
    let (w, lib) = with_submodule("sub-kill", false);
    bump(&w, &lib, "v2\n");
    w.origin.write("a.txt", "upstream\n");
    w.origin.commit("and a file");
    crate::concurrency::kill_while_holding(&w, "refs/heads/main");
    assert!(
        w.checkout.join(".git/driftless-sync.json").exists(),
        "the killed run left its journal"
    );
    w.sync(&[]).expect_code(0);
    oracle::assert_synced(&w.checkout, &w.origin.path_url(), &w.origin.tip());
}
