//! Every refusal from the contract: exit 3, a message that names what was found and how to
//! resolve it, and nothing changed (worktree bytes and mtimes, index bytes, refs, HEAD).

use driftless_tests::fixture;
use driftless_tests::oracle::RepoSnapshot;

use crate::{Run, World, mentions_any};

/// What upstream does before the checkout is prepared.
#[derive(Clone, Copy)]
enum Upstream {
    /// One new commit changing `a.txt` and adding `upstream-new.txt`.
    Advances,
    /// Nothing: the checkout is at the remote tip.
    Stays,
}

/// Make a world, move upstream, let `prepare` put the checkout in a state that needs a human,
/// then check sync-repo refuses (`--json` and human output), names one of `needles`, gives
/// resolve commands, and changes nothing.
fn refusal_case(name: &str, upstream: Upstream, prepare: impl FnOnce(&World), needles: &[&str]) -> World {
    let w = World::new(name);
    if let Upstream::Advances = upstream {
        w.origin
            .write("a.txt", "upstream change\n")
            .write("upstream-new.txt", "from upstream\n");
        w.origin.commit("upstream change");
    }
    prepare(&w);
    let snapshot = RepoSnapshot::take(&w.checkout);

    let run = w.sync(&["--json"]);
    run.expect_code(3);
    let record = run.json();
    assert_eq!(record["outcome"], "refused", "{record}");
    assert_eq!(record["exit_code"], 3, "{record}");
    let reason = record["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("refusal without reason: {record}"));
    assert!(
        mentions_any(&format!("{reason}\n{}", run.stderr), needles),
        "refusal does not name any of {needles:?}:\nreason: {reason}\nstderr: {}",
        run.stderr
    );
    let resolve = record["resolve"]
        .as_array()
        .unwrap_or_else(|| panic!("`resolve` is not an array: {record}"));
    assert!(!resolve.is_empty(), "a refusal must say how to resolve it: {record}");
    assert!(
        resolve.iter().all(|c| c.as_str().is_some_and(|s| !s.trim().is_empty())),
        "{record}"
    );
    assert!(record["preserved_ref"].is_null(), "{record}");
    snapshot.assert_unchanged(&w.checkout);

    let human = w.sync(&[]);
    human.expect_code(3);
    assert_refused_line(&w, &human);
    assert!(
        mentions_any(&human.all_output(), needles),
        "the output does not name any of {needles:?}:\n{}",
        human.all_output()
    );
    let first = resolve[0].as_str().expect("resolve command is a string");
    assert!(
        human.stderr.contains(first),
        "stderr does not show the resolve command `{first}`:\n{}",
        human.stderr
    );
    snapshot.assert_unchanged(&w.checkout);
    w
}

fn assert_refused_line(w: &World, run: &Run) {
    let want = format!("{}: refused", w.label());
    assert!(
        run.stdout.lines().any(|l| l.starts_with(&want)),
        "stdout has no `{want}...` line:\n{}\n--- stderr\n{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn modified_tracked_file() {
    refusal_case(
        "mod-tracked",
        Upstream::Advances,
        |w| fixture::write_file(&w.checkout, "b.txt", "local edit\n"),
        &["b.txt"],
    );
}

#[test]
fn modified_tracked_file_that_upstream_also_changed() {
    refusal_case(
        "mod-same",
        Upstream::Advances,
        |w| fixture::write_file(&w.checkout, "a.txt", "local edit\n"),
        &["a.txt"],
    );
}

#[test]
fn modified_tracked_file_with_nothing_to_fetch_is_kept() {
    // Nothing to fetch: whether sync-repo reports "in sync" (0) or refuses (3) is its call
    // (drift-check reports local edits); either way the local edit must survive untouched.
    let w = World::new("mod-no-upstream");
    fixture::write_file(&w.checkout, "b.txt", "local edit\n");
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = w.sync(&[]);
    assert!(
        run.code == 0 || run.code == 3,
        "exit {}:\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    if run.code == 3 {
        assert!(mentions_any(&run.stderr, &["b.txt"]), "{}", run.stderr);
    }
    snapshot.assert_unchanged(&w.checkout);
}

#[test]
fn staged_change() {
    refusal_case(
        "staged",
        Upstream::Advances,
        |w| {
            fixture::write_file(&w.checkout, "docs/guide.md", "staged edit\n");
            w.git(&["add", "docs/guide.md"]);
        },
        &["docs/guide.md"],
    );
}

#[test]
fn staged_new_file() {
    refusal_case(
        "staged-new",
        Upstream::Advances,
        |w| {
            fixture::write_file(&w.checkout, "brand-new.txt", "staged\n");
            w.git(&["add", "brand-new.txt"]);
        },
        &["brand-new.txt"],
    );
}

#[test]
fn deleted_tracked_file() {
    refusal_case(
        "deleted",
        Upstream::Advances,
        |w| fixture::remove(&w.checkout, "src/lib.rs"),
        &["src/lib.rs"],
    );
}

#[test]
fn exec_bit_changed_locally() {
    refusal_case(
        "mode-local",
        Upstream::Advances,
        |w| fixture::set_exec(&w.checkout, "b.txt", true),
        &["b.txt"],
    );
}

#[test]
fn local_branch_ahead() {
    refusal_case(
        "ahead",
        Upstream::Stays,
        |w| {
            fixture::write_file(&w.checkout, "local.txt", "local commit\n");
            w.git(&["add", "local.txt"]);
            w.git(&["commit", "-q", "-m", "local work"]);
        },
        &["ahead", "local commit", "unpushed", "not pushed", "not on the remote"],
    );
}

#[test]
fn local_branch_diverged() {
    refusal_case(
        "diverged",
        Upstream::Advances,
        |w| {
            fixture::write_file(&w.checkout, "local.txt", "local commit\n");
            w.git(&["add", "local.txt"]);
            w.git(&["commit", "-q", "-m", "local work"]);
        },
        &["diverged", "ahead", "local commit"],
    );
}

#[test]
fn upstream_force_pushed() {
    refusal_case(
        "force-pushed",
        Upstream::Stays,
        |w| {
            w.origin.write("a.txt", "history rewritten\n");
            w.origin.rewrite_last(1, "rewritten base");
        },
        &["force", "rewr", "diverged", "fast-forward", "fast forward"],
    );
}

#[test]
fn detached_head() {
    refusal_case(
        "detached",
        Upstream::Advances,
        |w| {
            w.git(&["checkout", "-q", "--detach", "HEAD"]);
        },
        &["detached"],
    );
}

#[test]
fn on_another_branch() {
    refusal_case(
        "other-branch",
        Upstream::Advances,
        |w| {
            w.git(&["checkout", "-q", "-b", "feature"]);
        },
        &["feature"],
    );
}

#[test]
fn merge_in_progress() {
    refusal_case(
        "merging",
        Upstream::Advances,
        |w| {
            // What `git merge` leaves behind once conflicts are resolved but not committed.
            let head = w.head();
            std::fs::write(w.checkout.join(".git/MERGE_HEAD"), format!("{head}\n")).expect("write MERGE_HEAD");
            std::fs::write(w.checkout.join(".git/MERGE_MSG"), "Merge\n").expect("write MERGE_MSG");
            assert!(
                w.git(&["status"]).contains("merging"),
                "git agrees a merge is in progress"
            );
        },
        &["merge"],
    );
}

#[test]
fn rebase_in_progress() {
    refusal_case(
        "rebasing",
        Upstream::Advances,
        |w| {
            // A real interactive rebase stopped at a `break` before its first pick.
            w.git(&["-c", "sequence.editor=sed -i 1ibreak", "rebase", "-q", "-i", "HEAD~1"]);
            assert!(
                w.checkout.join(".git/rebase-merge").is_dir(),
                "git left a rebase in progress"
            );
        },
        &["rebase"],
    );
}

#[test]
fn cherry_pick_in_progress() {
    refusal_case(
        "cherry-picking",
        Upstream::Advances,
        |w| {
            let head = w.head();
            std::fs::write(w.checkout.join(".git/CHERRY_PICK_HEAD"), format!("{head}\n"))
                .expect("write CHERRY_PICK_HEAD");
            assert!(
                w.git(&["status"]).contains("cherry-pick"),
                "git agrees a cherry-pick is in progress"
            );
        },
        &["cherry"],
    );
}

/// A lock file in `.git` that no killed sync-repo noted may be a working git process's: refuse
/// before touching anything, name it, and leave it in place.
fn lock_held(name: &str, lock: &str) {
    let w = refusal_case(
        name,
        Upstream::Advances,
        |w| std::fs::write(w.checkout.join(".git").join(lock), b"").expect("create the lock"),
        &[lock],
    );
    assert!(
        w.checkout.join(".git").join(lock).exists(),
        "someone else's {lock} must not be removed"
    );
}

#[test]
fn index_lock_held() {
    lock_held("index-lock", "index.lock");
}

#[test]
fn branch_lock_held() {
    lock_held("branch-lock", "refs/heads/main.lock");
}

#[test]
fn tracking_ref_lock_held() {
    lock_held("tracking-lock", "refs/remotes/origin/main.lock");
}

/// `--force` moves HEAD, and git locks HEAD too when it moves the branch HEAD is on.
#[test]
fn head_lock_held() {
    lock_held("head-lock", "HEAD.lock");
}

/// gix takes `packed-refs.lock` for every ref update in a clone (its refs start out packed).
#[test]
fn packed_refs_lock_held() {
    lock_held("packed-refs-lock", "packed-refs.lock");
}

#[test]
fn untracked_file_would_be_overwritten() {
    let w = refusal_case(
        "untracked-in-way",
        Upstream::Advances,
        |w| fixture::write_file(&w.checkout, "upstream-new.txt", "my precious notes\n"),
        &["upstream-new.txt"],
    );
    let kept = std::fs::read_to_string(w.checkout.join("upstream-new.txt")).expect("untracked file still there");
    assert_eq!(kept, "my precious notes\n");
}

#[test]
fn untracked_directory_where_upstream_adds_a_file() {
    refusal_case(
        "untracked-dir-in-way",
        Upstream::Advances,
        |w| fixture::write_file(&w.checkout, "upstream-new.txt/mine.txt", "mine\n"),
        &["upstream-new.txt"],
    );
}

#[test]
fn ignored_file_would_be_overwritten() {
    refusal_case(
        "ignored-in-way",
        Upstream::Stays,
        |w| {
            // Upstream force-adds a file under the ignored `build/`; locally an ignored file is there.
            w.origin.write("build/out.txt", "upstream build output\n");
            driftless_tests::git(&w.origin.work, &["add", "-f", "build/out.txt"]);
            w.origin.commit("add ignored file");
            fixture::write_file(&w.checkout, "build/out.txt", "local build output\n");
        },
        &["build/out.txt"],
    );
}
