//! Root meets a checkout whose owner planted symlinks in `.git` where sync-repo writes: nothing
//! is written through them. The victim file stays byte for byte as it was.

use crate::World;

/// Every file below `.git` that an update (fetch, worktree, index, refs, reflogs, journal, lock
/// note) creates, replaces or appends to, as a path relative to `.git`.
const WRITTEN: [&str; 8] = [
    "driftless-locks",
    "driftless-sync.json",
    "logs/HEAD",
    "logs/refs/heads/main",
    "logs/refs/remotes/origin/main",
    "FETCH_HEAD",
    "ORIG_HEAD",
    "index.lock",
];

#[test]
fn symlinks_planted_where_sync_repo_writes_are_never_followed() {
    let w = World::new("planted");
    let victim = w.env.path("victim");
    std::fs::write(&victim, "root's precious file\n").expect("write victim");
    w.origin.write("a.txt", "upstream\n");
    let tip = w.origin.commit("upstream");
    let git_dir = w.checkout.join(".git");
    for rel in WRITTEN {
        let path = git_dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(&victim, &path).expect("plant symlink");
    }
    // Refused before anything is written, naming the links; --force does not go past them.
    for args in [&[][..], &["--force"][..]] {
        let run = w.sync(args);
        run.expect_code(3);
        assert!(run.stdout.contains("symlinks stand in .git"), "{}", run.stdout);
        assert!(run.stdout.contains("logs/refs/heads/main"), "{}", run.stdout);
        assert_eq!(
            std::fs::read_to_string(&victim).expect("read victim"),
            "root's precious file\n"
        );
    }
    // Once the owner removed them, the update goes through, and the victim was never touched.
    for rel in WRITTEN {
        std::fs::remove_file(git_dir.join(rel)).expect("remove planted link");
    }
    w.sync(&[]).expect_code(0);
    assert_eq!(w.head(), tip);
    assert_eq!(
        std::fs::read_to_string(&victim).expect("read victim"),
        "root's precious file\n"
    );
}
