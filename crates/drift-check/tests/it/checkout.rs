//! Checkout drift: each kind (behind, ahead, diverged, dirty, untracked, wrong branch, detached
//! HEAD, stale or missing sync) is reported with its reason and exit code 1, and is gone after
//! running the command drift-check printed under it.

use crate::{DRIFT, Host, REPO, Table, backticked};

#[test]
fn behind_is_fixed_by_sync_repo() {
    let host = Host::new("");
    host.origin.write("a.txt", "upstream\n");
    host.origin.commit("upstream 1");
    host.origin.write("b.txt", "new\n");
    host.origin.commit("upstream 2");

    let row = host.assert_drift(&[], "checkout", "remote", "2 commit(s) behind the remote");
    assert_eq!(row.fix(), format!("sync-repo {REPO}"));
    host.run_fix(row.fix());

    host.assert_clean(&[]);
    assert_eq!(host.git(&["rev-parse", "HEAD"]).trim(), host.origin.tip());
}

#[test]
fn ahead_is_fixed_by_pushing() {
    let host = Host::new("");
    driftless_tests::fixture::write_file(&host.checkout, "local.txt", "local\n");
    host.git(&["add", "local.txt"]);
    host.git(&["commit", "-q", "-m", "local work"]);
    let local = host.git(&["rev-parse", "HEAD"]).trim().to_owned();

    let row = host.assert_drift(&[], "checkout", "remote", "1 local commit(s) not on the remote");
    assert!(
        row.fix().starts_with(&format!("{} push origin main", host.git_c())),
        "{row:?}"
    );
    host.run_fix(row.fix());

    host.assert_clean(&[]);
    assert_eq!(host.origin.tip(), local, "the push put the local commit on the remote");
}

#[test]
fn diverged_is_fixed_by_sync_repo_force_and_local_commits_are_preserved() {
    let host = Host::new("");
    host.origin.write("a.txt", "upstream\n");
    host.origin.commit("upstream");
    driftless_tests::fixture::write_file(&host.checkout, "local.txt", "local\n");
    host.git(&["add", "local.txt"]);
    host.git(&["commit", "-q", "-m", "local work"]);
    let local = host.git(&["rev-parse", "HEAD"]).trim().to_owned();

    let row = host.assert_drift(&[], "checkout", "remote", "diverged: 1 local, 1 remote commit(s)");
    assert!(row.fix().starts_with(&format!("sync-repo {REPO} --force")), "{row:?}");
    host.run_fix(row.fix());

    host.assert_clean(&[]);
    assert_eq!(host.git(&["rev-parse", "HEAD"]).trim(), host.origin.tip());
    let preserved = host.git(&["for-each-ref", "--format=%(objectname)", "refs/driftless/preserved/"]);
    assert!(
        preserved.lines().any(|sha| host
            .env
            .git(&host.checkout, &["rev-list", sha])
            .lines()
            .any(|c| c == local)),
        "the local commit {local} is kept under refs/driftless/preserved/: {preserved:?}"
    );
}

#[test]
fn modified_tracked_file_is_fixed_by_git_stash_and_the_change_is_kept() {
    let host = Host::new("");
    driftless_tests::fixture::write_file(&host.checkout, "a.txt", "edited on the host\n");

    let row = host.assert_drift(&[], "checkout", "dirty", "1 tracked file(s) modified: a.txt");
    let stash = backticked(row.fix(), "stash");
    assert_eq!(stash, format!("{} stash", host.git_c()));
    host.run_fix(row.fix());
    host.run_fix(&stash);

    host.assert_clean(&[]);
    let kept = host.git(&["show", "stash@{0}:a.txt"]);
    assert_eq!(kept, "edited on the host\n", "the edit is in the stash");
}

#[test]
fn untracked_files_are_reported_and_ignored_files_are_not() {
    let host = Host::new("");
    driftless_tests::fixture::write_file(&host.checkout, "notes.txt", "scratch\n");
    driftless_tests::fixture::write_file(&host.checkout, "debug.log", "ignored by .gitignore\n");

    let row = host.assert_drift(&[], "checkout", "untracked", "1 untracked path(s): notes.txt");
    assert!(!row.reason.contains("debug.log"), "{row:?}");
    assert!(row.fix().starts_with(&format!("{} status", host.git_c())), "{row:?}");
    host.run_fix(row.fix());
    // The fix's advice: "move them away".
    driftless_tests::fixture::rename(&host.checkout, "notes.txt", "../notes.txt");

    host.assert_clean(&[]);
}

#[test]
fn wrong_branch_is_fixed_by_git_checkout() {
    let host = Host::new("");
    host.git(&["checkout", "-q", "-b", "experiment"]);

    let row = host.assert_drift(&[], "checkout", "branch", "on branch `experiment`, not `main`");
    assert_eq!(row.fix(), format!("{} checkout main", host.git_c()));
    host.run_fix(row.fix());

    host.assert_clean(&[]);
    assert_eq!(host.git(&["symbolic-ref", "--short", "HEAD"]).trim(), "main");
}

#[test]
fn detached_head_is_fixed_by_git_checkout() {
    let host = Host::new("");
    host.git(&["checkout", "-q", "--detach"]);
    let short = host.git(&["rev-parse", "--short=7", "HEAD"]).trim().to_owned();

    let row = host.assert_drift(&[], "checkout", "branch", &format!("HEAD is detached at {short}"));
    assert_eq!(row.fix(), format!("{} checkout main", host.git_c()));
    host.run_fix(row.fix());

    host.assert_clean(&[]);
}

#[test]
fn stale_sync_is_fixed_by_sync_repo() {
    let host = Host::new("    max_sync_age: 1m\n");
    host.assert_clean(&[]);
    host.age_last_success("sync-repo", 3600);

    let row = host.assert_drift(&[], "checkout", "last sync", "more than max_sync_age 60s");
    assert!(row.reason.contains("last successful sync 36"), "{row:?}");
    assert_eq!(row.fix(), format!("sync-repo {REPO}"));
    host.run_fix(row.fix());

    host.assert_clean(&[]);
}

#[test]
fn never_synced_is_drift_only_with_max_sync_age() {
    let plain = Host::unsynced("");
    let run = plain.check(&["--all-items"]);
    run.expect_code(0);
    assert_eq!(run.row("checkout", "last sync").status, "ok");

    let host = Host::unsynced("    max_sync_age: 1h\n");
    let row = host.assert_drift(&[], "checkout", "last sync", "sync-repo has not succeeded");
    assert_eq!(row.fix(), format!("sync-repo {REPO}"));
    host.run_fix(row.fix());
    host.assert_clean(&[]);
}

#[test]
fn unconfigured_checkout_by_path_is_labelled_by_path_and_fixed_by_path() {
    let host = Host::new("");
    let other = host.origin.clone_to(&host.env, "loose");
    let label = std::fs::canonicalize(&other)
        .expect("canonicalize the loose checkout")
        .display()
        .to_string();
    host.origin.write("a.txt", "upstream\n");
    host.origin.commit("upstream");

    let (run, items) = host.check_json(&[&label]);
    run.expect_code(DRIFT);
    let remote = crate::item(&items, "checkout", "remote");
    assert_eq!(remote["repo"], label.as_str(), "{remote}");
    assert_eq!(remote["status"], "drift", "{remote}");
    assert_eq!(remote["fix"], format!("sync-repo {label}").as_str(), "{remote}");
    let fix = remote["fix"].as_str().expect("fix is a string").to_owned();
    host.run_fix(&fix);

    let run = host.check(&[&label]);
    run.expect_code(0);
    assert!(run.stdout.starts_with("no drift"), "{}", run.stdout);
}

/// sync-repo moves a submodule's gitlink only (as `git pull` does without
/// `--recurse-submodules`): a populated submodule left at the old commit is drift, fixed by
/// `git submodule update`; an unpopulated one is not (`git status` shows nothing for it).
#[test]
fn a_populated_submodule_behind_its_gitlink_is_fixed_by_git_submodule_update() {
    let host = Host::new("");
    let lib = driftless_tests::Origin::new(&host.env, "hub-lib");
    let url = lib.path_url();
    // git refuses local-path submodule URLs unless told otherwise; a forge URL needs nothing.
    let file_ok = ["-c", "protocol.file.allow=always"];
    let mut add = file_ok.to_vec();
    add.extend(["submodule", "add", "-q", url.as_str(), "vendor/lib"]);
    driftless_tests::git(&host.origin.work, &add);
    host.origin.commit("add a submodule");
    host.tool(&format!("sync-repo {REPO}")).expect_code(0);
    host.assert_clean(&[]);

    let mut update = file_ok.to_vec();
    update.extend(["submodule", "update", "-q", "--init"]);
    host.git(&update);
    let sub = host.checkout.join("vendor/lib");
    let old = driftless_tests::git(&sub, &["rev-parse", "HEAD"]).trim().to_owned();
    host.assert_clean(&[]);

    lib.write("lib.txt", "v2\n");
    let new = lib.commit("lib v2");
    let authoring_sub = host.origin.work.join("vendor/lib");
    driftless_tests::git(&authoring_sub, &["pull", "-q", "--ff-only", "origin", "main"]);
    host.origin.commit("bump the submodule");
    host.tool(&format!("sync-repo {REPO}")).expect_code(0);

    let row = host.assert_drift(
        &[],
        "checkout",
        "submodules",
        &format!(
            "1 submodule(s) out of date: vendor/lib at {}, recorded {}",
            &old[..7],
            &new[..7]
        ),
    );
    assert_eq!(
        row.fix(),
        format!("{} submodule update --init vendor/lib", host.git_c())
    );
    // The host's git config for this submodule allows its local-path URL.
    driftless_tests::git(&sub, &["config", "protocol.file.allow", "always"]);
    host.run_fix(row.fix());
    host.assert_clean(&[]);
    assert_eq!(driftless_tests::git(&sub, &["rev-parse", "HEAD"]).trim(), new);
}

/// With `submodules: recurse`, a populated submodule behind its gitlink (here: a person's plain
/// `git pull` moved the superproject) is still drift, and the fix shown is the sync-repo run
/// that checks the recorded commit out.
#[test]
fn with_recursion_a_submodule_behind_is_fixed_by_sync_repo() {
    let host = Host::new("    submodules: recurse\n");
    let lib = driftless_tests::Origin::new(&host.env, "hub-lib");
    let url = lib.path_url();
    let file_ok = ["-c", "protocol.file.allow=always"];
    let mut add = file_ok.to_vec();
    add.extend(["submodule", "add", "-q", url.as_str(), "vendor/lib"]);
    driftless_tests::git(&host.origin.work, &add);
    host.origin.commit("add a submodule");
    host.tool(&format!("sync-repo {REPO}")).expect_code(0);
    let mut update = file_ok.to_vec();
    update.extend(["submodule", "update", "-q", "--init"]);
    host.git(&update);
    host.assert_clean(&[]);

    lib.write("lib.txt", "v2\n");
    let new = lib.commit("lib v2");
    let authoring_sub = host.origin.work.join("vendor/lib");
    driftless_tests::git(&authoring_sub, &["pull", "-q", "--ff-only", "origin", "main"]);
    host.origin.commit("bump the submodule");
    host.git(&["pull", "-q", "--ff-only"]);

    let sub = host.checkout.join("vendor/lib");
    let old = driftless_tests::git(&sub, &["rev-parse", "HEAD"]).trim().to_owned();
    let row = host.assert_drift(
        &[],
        "checkout",
        "submodules",
        &format!(
            "1 submodule(s) out of date: vendor/lib at {}, recorded {}",
            &old[..7],
            &new[..7]
        ),
    );
    assert!(row.fix().starts_with(&format!("sync-repo {REPO}")), "{}", row.fix());
    host.run_fix(row.fix());
    host.assert_clean(&[]);
    assert_eq!(driftless_tests::git(&sub, &["rev-parse", "HEAD"]).trim(), new);
}

/// With `verify:`, a HEAD that is not signed by a trusted key is drift (someone moved the
/// checkout by hand, or to a commit from before the gate); once sync-repo has moved it to a
/// signed commit, the row says who signed it. `git verify-commit` is the oracle for both.
#[test]
fn a_head_not_signed_by_a_trusted_key_is_drift_until_sync_repo_moves_to_a_signed_commit() {
    let host = Host::unsynced("");
    let keys = host.env.path("keys");
    std::fs::create_dir_all(&keys).expect("keys dir");
    let key = keys.join("alice");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("pub");
    let signers = host.env.path("allowed_signers");
    std::fs::write(&signers, format!("alice@ops {public}")).expect("allowed_signers");
    host.write_config(&format!("    verify:\n      allowed_signers: {}\n", signers.display()));
    host.tool(&format!("sync-repo {REPO}")).expect_code(0);
    let verify = |commit: &str| {
        let config = format!("gpg.ssh.allowedSignersFile={}", signers.display());
        driftless_tests::env::git_output(&host.checkout, &["-c", &config, "verify-commit", commit])
            .status
            .success()
    };

    let head = host.git(&["rev-parse", "HEAD"]).trim().to_owned();
    assert!(!verify(&head), "the oracle does not trust the unsigned base");
    let row = host.assert_drift(
        &[],
        "checkout",
        "signature",
        &format!("commit {} is not signed", &head[..7]),
    );
    assert!(row.fix().contains("log -1 --show-signature"), "{row:?}");

    host.origin.write("a.txt", "signed\n");
    host.env.git(&host.origin.work, &["add", "-A"]);
    let signing_key = format!("user.signingkey={}", key.display());
    host.env.git(
        &host.origin.work,
        &[
            "-c",
            "gpg.format=ssh",
            "-c",
            &signing_key,
            "commit",
            "-q",
            "-S",
            "-m",
            "signed",
        ],
    );
    host.origin.push();
    host.tool(&format!("sync-repo {REPO}")).expect_code(0);
    assert!(verify("HEAD"), "the oracle trusts the signed tip");
    host.assert_clean(&[]);
    let (_, items) = host.check_json(&[]);
    let signature = items
        .iter()
        .find(|i| i["name"] == "signature")
        .unwrap_or_else(|| panic!("no signature item in {items:?}"));
    assert!(
        signature["reason"]
            .as_str()
            .is_some_and(|r| r.contains("signed by alice@ops (SHA256:")),
        "{signature}"
    );
}
