//! Files are what `git pull --ff-only` writes on this host with this config: attributes (eol,
//! ident), `core.autocrlf`, filter drivers, sparse checkouts and index flags. The oracle is a
//! `cp -a` twin of the checkout that git itself moves.

use driftless_tests::oracle::{RepoSnapshot, Twin};

use crate::World;

/// Upstream commits `files` (with their `.gitattributes`); the checkout gets `config` first.
/// Then sync-repo and git (in a twin) both move to the tip, and must agree byte for byte.
fn agrees_with_git(name: &str, config: &[(&str, &str)], files: &[(&str, &str)]) -> World {
    let w = World::new(name);
    for (key, value) in config {
        w.git(&["config", key, value]);
    }
    for (path, content) in files {
        w.origin.write(path, content);
    }
    w.origin.commit("attributes and files");
    let twin = Twin::of(&w.checkout);
    w.sync(&[]).expect_code(0);
    twin.pull();
    twin.assert_same(&w.checkout);
    w
}

#[test]
fn eol_and_ident_attributes_are_applied_as_git_does() {
    let w = agrees_with_git(
        "attr-eol",
        &[],
        &[
            (".gitattributes", "*.bat text eol=crlf\n*.id ident\n*.lf text eol=lf\n"),
            ("run.bat", "@echo off\necho one\necho two\n"),
            ("version.id", "version $Id$ here\n"),
            ("plain.lf", "a\nb\n"),
        ],
    );
    let bat = std::fs::read(w.checkout.join("run.bat")).expect("read run.bat");
    assert!(bat.windows(2).any(|p| p == b"\r\n"), "eol=crlf was applied: {bat:?}");
    let id = std::fs::read_to_string(w.checkout.join("version.id")).expect("read version.id");
    assert!(
        id.starts_with("version $Id: ") && id.len() > 50,
        "ident was expanded: {id}"
    );
}

#[test]
fn core_autocrlf_is_applied_as_git_does() {
    let w = agrees_with_git(
        "autocrlf",
        &[("core.autocrlf", "true")],
        &[("notes.txt", "one\ntwo\nthree\n"), ("binary.dat", "\0\x01\n\x02")],
    );
    let notes = std::fs::read(w.checkout.join("notes.txt")).expect("read notes.txt");
    assert_eq!(notes, b"one\r\ntwo\r\nthree\r\n");
    // And the next run sees nothing modified: the dirty check compares as git status does.
    w.origin.write("notes.txt", "one\ntwo\nthree\nfour\n");
    w.origin.commit("four");
    let twin = Twin::of(&w.checkout);
    w.sync(&[]).expect_code(0);
    twin.pull();
    twin.assert_same(&w.checkout);
}

#[test]
fn a_smudge_filter_configured_on_the_host_is_run_as_git_runs_it() {
    let w = agrees_with_git(
        "smudge",
        &[
            ("filter.upper.smudge", "tr a-z A-Z"),
            ("filter.upper.clean", "tr A-Z a-z"),
        ],
        &[(".gitattributes", "*.up filter=upper\n"), ("shout.up", "hello world\n")],
    );
    assert_eq!(
        std::fs::read_to_string(w.checkout.join("shout.up")).expect("read shout.up"),
        "HELLO WORLD\n"
    );
}

#[test]
fn a_filter_driver_that_cannot_run_is_refused_not_deployed_as_content() {
    let w = World::new("missing-driver");
    w.git(&["config", "filter.crypt.smudge", "driftless-no-such-program smudge"]);
    w.origin
        .write(".gitattributes", "*.secret filter=crypt\n*.bin filter=lfs\n")
        .write("db.secret", "stored bytes\n")
        .write(
            "big.bin",
            "version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 1\n",
        );
    w.origin.commit("filtered files");
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = w.sync(&[]);
    run.expect_code(3);
    assert!(run.stdout.contains("`crypt` filter"), "{}", run.stdout);
    assert!(run.stdout.contains("driftless-no-such-program"), "{}", run.stdout);
    assert!(run.stdout.contains("`lfs` filter"), "{}", run.stdout);
    assert!(
        run.stderr.contains("git-lfs"),
        "says how to get the filter: {}",
        run.stderr
    );
    snapshot.assert_unchanged(&w.checkout);
    // --force cannot make a filter appear: refused the same way, nothing changed.
    w.sync(&["--force"]).expect_code(3);
    snapshot.assert_unchanged(&w.checkout);
}

#[test]
fn git_lfs_files_arrive_as_content_through_the_real_git_lfs() {
    if driftless_tests::git_output(std::path::Path::new("/"), &["lfs", "version"])
        .status
        .success()
    {
        let w = World::new("lfs");
        // The origin is its own LFS store (a bare repo on a local path).
        driftless_tests::git(&w.origin.work, &["lfs", "install", "--local"]);
        driftless_tests::git(&w.origin.work, &["lfs", "track", "*.bin"]);
        let payload = "large content that lives in LFS\n".repeat(100);
        w.origin.write("big.bin", &payload);
        w.origin.commit("an LFS file");
        w.git(&["lfs", "install", "--local"]);
        let twin = Twin::of(&w.checkout);
        w.sync(&[]).expect_code(0);
        assert_eq!(
            std::fs::read_to_string(w.checkout.join("big.bin")).expect("read big.bin"),
            payload
        );
        twin.pull();
        twin.assert_same(&w.checkout);
    } else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "make deps installs git-lfs"
        );
        eprintln!("SKIPPED: git-lfs is not installed");
    }
}

#[test]
fn a_sparse_checkout_keeps_its_cone_and_flags() {
    let w = World::new("sparse");
    w.git(&["sparse-checkout", "set", "src"]);
    assert!(
        !w.checkout.join("docs/guide.md").exists(),
        "the cone applies before the test"
    );
    w.origin
        .write("docs/guide.md", "# guide v2\n")
        .write("docs/new.md", "new doc\n")
        .write("src/lib.rs", "pub fn g() {}\n")
        .write("src/new.rs", "// new\n")
        .write("top.txt", "top level\n");
    w.origin.commit("inside and outside the cone");
    let twin = Twin::of(&w.checkout);
    w.sync(&[]).expect_code(0);
    twin.pull();
    twin.assert_same(&w.checkout);
    assert!(!w.checkout.join("docs").exists(), "nothing outside the cone appeared");
    // The next update is not refused for the paths outside the cone.
    w.origin
        .write("docs/guide.md", "# guide v3\n")
        .write("src/lib.rs", "pub fn h() {}\n");
    w.origin.commit("again");
    let twin = Twin::of(&w.checkout);
    w.sync(&[]).expect_code(0);
    twin.pull();
    twin.assert_same(&w.checkout);
}

#[test]
fn intent_to_add_and_assume_unchanged_entries_survive_an_update() {
    let w = World::new("index-flags");
    w.git(&["update-index", "--assume-unchanged", "b.txt"]);
    std::fs::write(w.checkout.join("planned.txt"), "not yet added\n").expect("write planned.txt");
    w.git(&["add", "-N", "planned.txt"]);
    w.origin.write("a.txt", "upstream\n");
    w.origin.commit("upstream");
    let twin = Twin::of(&w.checkout);
    w.sync(&[]).expect_code(0);
    twin.pull();
    twin.assert_same(&w.checkout);
}

/// Hide a local edit of `a.txt` from `git status` with `flag`; an update of `a.txt` must refuse
/// (as `git pull` does) and `--force` must preserve the edit.
fn hidden_edit_is_not_lost(name: &str, flag: &str) {
    let w = World::new(name);
    std::fs::write(w.checkout.join("a.txt"), "the host's real password\n").expect("edit a.txt");
    w.git(&["update-index", flag, "a.txt"]);
    assert_eq!(
        w.git(&["status", "--porcelain"]),
        "",
        "git status does not show the edit"
    );
    w.origin.write("a.txt", "upstream\n");
    w.origin.commit("upstream");
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = w.sync(&[]);
    run.expect_code(3);
    assert!(run.stdout.contains("a.txt"), "{}", run.stdout);
    snapshot.assert_unchanged(&w.checkout);

    let forced = w.sync(&["--force", "--json"]);
    forced.expect_code(0);
    let record = forced.json();
    let preserved = record["preserved_ref"].as_str().expect("a preserved ref").to_owned();
    assert_eq!(
        w.git(&["show", &format!("{preserved}:a.txt")]),
        "the host's real password\n",
        "the hidden edit is in the preserved ref"
    );
    assert_eq!(
        std::fs::read_to_string(w.checkout.join("a.txt")).expect("read a.txt"),
        "upstream\n"
    );
}

#[test]
fn a_skip_worktree_edit_refuses_and_force_preserves_it() {
    hidden_edit_is_not_lost("hidden-skip", "--skip-worktree");
}

#[test]
fn an_assume_unchanged_edit_refuses_and_force_preserves_it() {
    hidden_edit_is_not_lost("hidden-assume", "--assume-unchanged");
}
