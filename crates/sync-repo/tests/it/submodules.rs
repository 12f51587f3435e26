//! Submodules: a moved, added or removed gitlink is recorded as `git pull --ff-only` records it
//! (by default no recursion: a submodule's own worktree is never touched), and the summary says
//! the submodule moved. With recursion asked for, populated submodules are checked out as
//! `git pull --recurse-submodules` does. The oracle is a `cp -a` twin of the checkout that git
//! itself moves.

use driftless_tests::oracle::{self, RepoSnapshot, Twin};
use driftless_tests::{Origin, git};

use crate::{Run, World};

/// Where the fixtures put the submodule.
pub(crate) const SUB: &str = "vendor/lib";

/// git refuses local-path submodule URLs unless told otherwise (CVE-2022-39253); a forge URL
/// would need nothing.
const FILE_OK: [&str; 2] = ["-c", "protocol.file.allow=always"];

/// A world whose origin has a submodule at [`SUB`] (from its own origin, returned), which the
/// checkout got through `git pull`; `populated` runs `git submodule update --init` there too.
pub(crate) fn with_submodule(name: &str, populated: bool) -> (World, Origin) {
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
pub(crate) fn bump(w: &World, lib: &Origin, content: &str) -> (String, String) {
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

// With recursion (`--recurse-submodules`, or `submodules: recurse` in the config): the oracle
// is `git pull --recurse-submodules` on a twin, which fetches the submodule and checks the new
// commit out there with a detached HEAD (`git submodule update --recursive`).

/// `git pull --ff-only --recurse-submodules` in the twin (local-path submodule URLs allowed).
fn pull_recursive(twin: &Twin) {
    let mut pull = FILE_OK.to_vec();
    pull.extend(["pull", "-q", "--ff-only", "--recurse-submodules"]);
    git(&twin.path, &pull);
}

/// The submodule at `rela` in `checkout` and in the twin: the same HEAD, detached in both, the
/// same index and the same `git status`.
fn assert_same_submodule(checkout: &std::path::Path, twin: &Twin, rela: &str) {
    let (have, want) = (checkout.join(rela), twin.path.join(rela));
    for dir in [&have, &want] {
        assert_eq!(
            git(dir, &["rev-parse", "--symbolic-full-name", "HEAD"]).trim(),
            "HEAD",
            "HEAD of {} is detached",
            dir.display()
        );
    }
    for args in [
        &["rev-parse", "HEAD"][..],
        &["ls-files", "-s", "-v"],
        &["status", "--porcelain", "--untracked-files=all"],
    ] {
        assert_eq!(git(&have, args), git(&want, args), "`git {}` in {rela}", args.join(" "));
    }
}

#[test]
fn with_recursion_a_populated_submodule_is_checked_out_as_git_pull_recurse_submodules_does() {
    let (w, lib) = with_submodule("sub-recurse", true);
    let (old, new) = bump(&w, &lib, "v2\n");
    lib.write("added.txt", "new file\n");
    let new = {
        let newer = lib.commit("lib adds a file");
        git(&w.origin.work.join(SUB), &["pull", "-q", "--ff-only", "origin", "main"]);
        w.origin.commit("bump the submodule again");
        assert_ne!(newer, new);
        newer
    };
    let twin = Twin::of(&w.checkout);

    let run = w.sync(&["--recurse-submodules", "--json"]);
    run.expect_code(0);
    let record = run.json();
    let change = record["changes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["path"] == SUB))
        .unwrap_or_else(|| panic!("no change for {SUB}: {record}"));
    assert_eq!(change["change"], "submodule", "{change}");
    assert_eq!(change["from"], old.as_str(), "{change}");
    assert_eq!(change["to"], new.as_str(), "{change}");
    assert_eq!(change["checked_out"], true, "{change}");

    pull_recursive(&twin);
    twin.assert_same(&w.checkout);
    assert_same_submodule(&w.checkout, &twin, SUB);
    assert_eq!(git(&w.checkout.join(SUB), &["rev-parse", "HEAD"]).trim(), new);
    assert_eq!(w.git(&["status", "--porcelain"]), "", "nothing left behind");
    oracle::assert_fsck_clean(&w.checkout.join(SUB));

    // The summary line says the submodule was updated, and the next run is in sync.
    bump(&w, &lib, "v3\n");
    let twin = Twin::of(&w.checkout);
    let run = w.sync(&["--recurse-submodules"]);
    run.expect_code(0);
    assert!(
        run.stdout
            .contains(&format!("submodule {SUB} updated {}..", short(&new))),
        "{}",
        run.stdout
    );
    pull_recursive(&twin);
    twin.assert_same(&w.checkout);
    assert_same_submodule(&w.checkout, &twin, SUB);
    let again = w.sync(&["--recurse-submodules"]);
    again.expect_code(0);
    assert!(again.stdout.contains("in sync"), "{}", again.stdout);
}

#[test]
fn with_recursion_a_nested_submodule_is_checked_out_too() {
    let w = World::new("sub-nested");
    let inner = Origin::new(&w.env, "sub-nested-inner");
    inner.write("inner.txt", "i1\n");
    inner.commit("inner v1");
    let lib = Origin::new(&w.env, "sub-nested-lib");
    lib.write("lib.txt", "v1\n");
    let inner_url = inner.path_url();
    let mut add = FILE_OK.to_vec();
    add.extend(["submodule", "add", "-q", inner_url.as_str(), "deep"]);
    git(&lib.work, &add);
    lib.commit("lib with a submodule");
    let lib_url = lib.path_url();
    let mut add = FILE_OK.to_vec();
    add.extend(["submodule", "add", "-q", lib_url.as_str(), SUB]);
    git(&w.origin.work, &add);
    w.origin.commit("add a submodule with a submodule");
    w.git(&["pull", "-q", "--ff-only"]);
    let mut update = FILE_OK.to_vec();
    update.extend(["submodule", "update", "-q", "--init", "--recursive"]);
    w.git(&update);
    let nested = format!("{SUB}/deep");
    assert!(w.checkout.join(&nested).join("inner.txt").exists(), "populated");

    // The inner repo moves; the lib records it; the superproject records the lib.
    inner.write("inner.txt", "i2\n");
    let inner_new = inner.commit("inner v2");
    git(&lib.work.join("deep"), &["pull", "-q", "--ff-only", "origin", "main"]);
    lib.write("lib.txt", "v2\n");
    lib.commit("lib records inner v2");
    git(&w.origin.work.join(SUB), &["pull", "-q", "--ff-only", "origin", "main"]);
    w.origin.commit("bump the lib");
    let twin = Twin::of(&w.checkout);

    let run = w.sync(&["--recurse-submodules"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains(&format!("submodule {nested} updated")),
        "the nested move is named: {}",
        run.stdout
    );
    pull_recursive(&twin);
    twin.assert_same(&w.checkout);
    assert_same_submodule(&w.checkout, &twin, SUB);
    assert_same_submodule(&w.checkout, &twin, &nested);
    assert_eq!(git(&w.checkout.join(&nested), &["rev-parse", "HEAD"]).trim(), inner_new);
}

#[test]
fn with_recursion_a_dirty_submodule_refuses_before_anything_moves() {
    let (w, lib) = with_submodule("sub-recurse-dirty", true);
    let (old, _) = bump(&w, &lib, "v2\n");
    let sub = w.checkout.join(SUB);
    std::fs::write(sub.join("lib.txt"), "a local edit\n").expect("edit lib.txt");
    let before = RepoSnapshot::take(&w.checkout);

    let run = w.sync(&["--recurse-submodules"]);
    run.expect_code(3);
    let output = run.all_output();
    assert!(
        output.contains(&format!("submodule {SUB} has local changes")) && output.contains("lib.txt"),
        "the refusal names the submodule and its path: {output}"
    );
    before.assert_unchanged(&w.checkout);
    assert_eq!(
        git(&sub, &["rev-parse", "HEAD"]).trim(),
        old,
        "the submodule did not move"
    );
    assert_eq!(
        std::fs::read_to_string(sub.join("lib.txt")).expect("read lib.txt"),
        "a local edit\n"
    );

    // Once the edit is gone, the same run goes through.
    git(&sub, &["checkout", "--", "lib.txt"]);
    let twin = Twin::of(&w.checkout);
    w.sync(&["--recurse-submodules"]).expect_code(0);
    pull_recursive(&twin);
    twin.assert_same(&w.checkout);
    assert_same_submodule(&w.checkout, &twin, SUB);
}

#[test]
fn with_recursion_an_unpopulated_submodule_stays_unpopulated() {
    let (w, lib) = with_submodule("sub-recurse-unpopulated", false);
    bump(&w, &lib, "v2\n");
    let twin = Twin::of(&w.checkout);
    let run = w.sync(&["--recurse-submodules"]);
    run.expect_code(0);
    assert!(run.stdout.contains(&format!("submodule {SUB} moved")), "{}", run.stdout);
    pull_recursive(&twin);
    twin.assert_same(&w.checkout);
    let left: Vec<_> = std::fs::read_dir(w.checkout.join(SUB))
        .expect("the submodule's directory")
        .collect();
    assert!(left.is_empty(), "still an empty directory: {left:?}");
}

/// A gitlink to a commit the submodule's remote does not have (recorded, never pushed): the
/// run fails with 2 and nothing moves, the superproject included.
#[test]
fn with_recursion_a_commit_the_submodule_remote_lacks_fails_with_2_and_nothing_moves() {
    let (w, _lib) = with_submodule("sub-recurse-unpushed", true);
    let authoring = w.origin.work.join(SUB);
    std::fs::write(authoring.join("lib.txt"), "never pushed\n").expect("write lib.txt");
    git(&authoring, &["commit", "-q", "-am", "not pushed"]);
    w.origin.commit("record an unpushed submodule commit");
    let before = RepoSnapshot::take(&w.checkout);
    let run = w.sync(&["--recurse-submodules"]);
    run.expect_code(2);
    let output = run.all_output();
    assert!(
        output.contains(&format!("submodule {SUB}")) && output.contains("does not have commit"),
        "{output}"
    );
    before.assert_unchanged(&w.checkout);
}

/// `submodules: recurse` from the config; killed while moving the submodule (after the
/// superproject moved, its worktree and index written, HEAD not yet detached): the rerun
/// finishes the submodule from its journal.
#[test]
fn with_recursion_from_the_config_killed_in_the_submodule_then_rerun_finishes_it() {
    let (w, lib) = with_submodule("sub-recurse-kill", true);
    let (_, new) = bump(&w, &lib, "v2\n");
    let config = w.env.write_config(&format!(
        "repos:\n  hub:\n    path: {}\n    submodules: recurse\n",
        w.checkout.display()
    ));
    let twin = Twin::of(&w.checkout);
    let sub_git = w.checkout.join(".git/modules").join(SUB);
    crate::concurrency::kill_while_holding_in(&w, &sub_git, "HEAD", &["--config".as_ref(), config.as_os_str()]);
    assert!(
        sub_git.join("driftless-sync.json").exists(),
        "the killed run left the submodule's journal"
    );
    assert_eq!(w.head(), w.origin.tip(), "the superproject moved first");

    let run = Run::of(w.env.sync_repo().arg("--config").arg(&config).arg("hub"));
    run.expect_code(0);
    assert!(
        run.stdout.contains(&format!("submodule {SUB} updated")),
        "{}",
        run.stdout
    );
    pull_recursive(&twin);
    twin.assert_same(&w.checkout);
    assert_same_submodule(&w.checkout, &twin, SUB);
    assert_eq!(git(&w.checkout.join(SUB), &["rev-parse", "HEAD"]).trim(), new);
    assert!(!sub_git.join("driftless-sync.json").exists(), "journal removed");
}

/// `--dry-run` with recursion says what would happen and changes nothing: not the
/// superproject, not the submodule's HEAD, files or objects (the submodule's fetch is part of
/// what a dry run leaves out). The real run afterwards still does what git does.
#[test]
fn with_recursion_a_dry_run_moves_neither_the_superproject_nor_the_submodule() {
    let (w, lib) = with_submodule("sub-recurse-dry", true);
    let (old, _) = bump(&w, &lib, "v2\n");
    let sub = w.checkout.join(SUB);
    let before = RepoSnapshot::take(&w.checkout);
    // The submodule's .git is a gitfile: its state is what git says of it.
    let sub_state = |sub: &std::path::Path| {
        [
            &["rev-parse", "HEAD"][..],
            &["status", "--porcelain", "--untracked-files=all"],
            &["count-objects", "-v"],
            &["for-each-ref"],
        ]
        .map(|args| git(sub, args))
    };
    let sub_before = sub_state(&sub);

    let run = w.sync(&["--recurse-submodules", "--dry-run"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("would"),
        "the dry run says what it would do: {}",
        run.stdout
    );
    before.assert_unchanged(&w.checkout);
    assert_eq!(
        sub_state(&sub),
        sub_before,
        "the submodule changed: HEAD, status, objects or refs"
    );
    assert_eq!(
        git(&sub, &["rev-parse", "HEAD"]).trim(),
        old,
        "the submodule did not move"
    );

    let twin = Twin::of(&w.checkout);
    w.sync(&["--recurse-submodules"]).expect_code(0);
    pull_recursive(&twin);
    twin.assert_same(&w.checkout);
    assert_same_submodule(&w.checkout, &twin, SUB);
}

/// With recursion, the submodule's commit is fetched over smart HTTP from the submodule's own
/// `origin` (a forge on loopback), not only from a local path: the forge saw the submodule's
/// fetch, and the result is what `git pull --recurse-submodules` makes of a twin.
#[test]
fn with_recursion_the_submodule_is_fetched_over_smart_http() {
    let (w, lib) = with_submodule("sub-recurse-http", true);
    let Some(http) = driftless_tests::require_service(driftless_tests::SmartHttp::start(&w.env.path("remotes"))) else {
        return;
    };
    let lib_repo = format!("{}.git", lib.name);
    let sub = w.checkout.join(SUB);
    git(&sub, &["remote", "set-url", "origin", &http.url(&lib_repo)]);
    let (_, new) = bump(&w, &lib, "v2 over http\n");
    let twin = Twin::of(&w.checkout);
    http.requests();

    w.sync(&["--recurse-submodules"]).expect_code(0);
    let requests = http.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.contains(&format!("/git/{lib_repo}/git-upload-pack"))),
        "the submodule's commit did not come from the forge: {requests:?}"
    );
    assert_eq!(git(&sub, &["rev-parse", "HEAD"]).trim(), new);
    pull_recursive(&twin);
    twin.assert_same(&w.checkout);
    assert_same_submodule(&w.checkout, &twin, SUB);
    oracle::assert_fsck_clean(&sub);
}
