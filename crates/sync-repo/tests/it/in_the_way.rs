//! What stands where an update writes: special files are refused by type without being opened
//! (no hang), and `--force` never removes what a preserved ref cannot hold (a nested
//! repository, a FIFO). A stopped `git am` is preserved whole before `--force` aborts it.

use std::time::Duration;

use driftless_tests::oracle::RepoSnapshot;

use crate::World;

/// Long enough for a loaded machine; a run blocked on a FIFO would never end.
const LIMIT: Duration = Duration::from_secs(60);

/// Make a FIFO at `rel` in the checkout.
fn mkfifo(w: &World, rel: &str) {
    let path = w.checkout.join(rel);
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn a_fifo_where_the_update_writes_is_refused_without_hanging() {
    let w = World::new("fifo-in-the-way");
    mkfifo(&w, "new.txt");
    w.origin.write("new.txt", "from upstream\n");
    w.origin.commit("adds new.txt");
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = w.sync_within(LIMIT, &[]);
    run.expect_code(3);
    assert!(
        run.stdout.contains("FIFO") && run.stdout.contains("new.txt"),
        "{}",
        run.stdout
    );
    snapshot.assert_unchanged(&w.checkout);
    // --force cannot preserve a FIFO, so it refuses too, and removes nothing.
    let forced = w.sync_within(LIMIT, &["--force"]);
    forced.expect_code(3);
    assert!(forced.stdout.contains("a FIFO"), "{}", forced.stdout);
    assert!(std::fs::symlink_metadata(w.checkout.join("new.txt")).is_ok_and(|m| {
        use std::os::unix::fs::FileTypeExt;
        m.file_type().is_fifo()
    }));
    snapshot.assert_unchanged(&w.checkout);
}

#[test]
fn a_fifo_in_place_of_a_tracked_file_is_a_modification_not_a_hang() {
    let w = World::new("fifo-tracked");
    std::fs::remove_file(w.checkout.join("a.txt")).expect("rm a.txt");
    mkfifo(&w, "a.txt");
    w.origin.write("a.txt", "upstream\n");
    w.origin.commit("changes a.txt");
    let run = w.sync_within(LIMIT, &[]);
    run.expect_code(3);
    assert!(run.stdout.contains("a.txt"), "{}", run.stdout);
    w.sync_within(LIMIT, &["--force"]).expect_code(3);
}

#[test]
fn force_refuses_to_remove_a_nested_repository_in_the_way() {
    let w = World::new("nested-repo");
    let nested = w.checkout.join("vendor");
    std::fs::create_dir(&nested).expect("mkdir vendor");
    driftless_tests::git(&nested, &["init", "-q"]);
    std::fs::write(nested.join("work.txt"), "someone's work\n").expect("write");
    driftless_tests::git(&nested, &["add", "work.txt"]);
    driftless_tests::git(&nested, &["commit", "-q", "-m", "nested work"]);
    let nested_head = driftless_tests::git(&nested, &["rev-parse", "HEAD"]);
    // Upstream now has a file where the nested repository stands.
    w.origin.write("vendor", "a file now\n");
    w.origin.commit("vendor becomes a file");
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = w.sync(&["--force"]);
    run.expect_code(3);
    assert!(run.stdout.contains("nested git repository"), "{}", run.stdout);
    assert!(run.stderr.contains("mv "), "says how to clear the way: {}", run.stderr);
    assert_eq!(driftless_tests::git(&nested, &["rev-parse", "HEAD"]), nested_head);
    assert_eq!(
        std::fs::read_to_string(nested.join("work.txt")).expect("nested work is still there"),
        "someone's work\n"
    );
    snapshot.assert_unchanged(&w.checkout);
}

#[test]
fn force_during_a_stopped_git_am_preserves_the_patches_not_yet_applied() {
    let w = World::new("am-stopped");
    // Two patches made elsewhere: the first conflicts here, so `git am` stops before the second.
    let work = w.env.path("am-patches");
    std::fs::create_dir_all(&work).expect("mkdir");
    let source = w.origin.clone_to(&w.env, "am-source");
    std::fs::write(source.join("a.txt"), "patch one\n").expect("write");
    driftless_tests::git(&source, &["commit", "-q", "-am", "patch one"]);
    std::fs::write(source.join("b.txt"), "patch two\n").expect("write");
    driftless_tests::git(&source, &["commit", "-q", "-am", "patch two"]);
    driftless_tests::git(
        &source,
        &["format-patch", "-q", "-2", "-o", &work.display().to_string()],
    );
    std::fs::write(w.checkout.join("a.txt"), "local conflicting\n").expect("write");
    w.git(&["commit", "-q", "-am", "local"]);
    let patches: Vec<_> = {
        let mut p: Vec<_> = std::fs::read_dir(&work)
            .expect("ls")
            .map(|e| e.expect("entry").path())
            .collect();
        p.sort();
        p
    };
    let am = driftless_tests::git_output(
        &w.checkout,
        &[
            "am",
            &patches[0].display().to_string(),
            &patches[1].display().to_string(),
        ],
    );
    assert!(!am.status.success(), "git am stops on the conflict");
    let second = std::fs::read_to_string(w.checkout.join(".git/rebase-apply/0002")).expect("git am kept patch 2");

    w.origin.write("c.txt", "upstream\n");
    w.origin.commit("upstream");
    let run = w.sync(&["--force", "--json"]);
    run.expect_code(0);
    let preserved = run.json()["preserved_ref"]
        .as_str()
        .expect("a preserved ref")
        .to_owned();
    assert!(!w.checkout.join(".git/rebase-apply").exists(), "the am was aborted");
    // The preserved ref's last parent holds .git/rebase-apply, patches included.
    let parents = w.git(&["rev-list", "--parents", "-n1", &preserved]);
    let state = parents.split_whitespace().last().expect("a parent").to_owned();
    assert_eq!(w.git(&["show", &format!("{state}:rebase-apply/0002")]), second);
}
