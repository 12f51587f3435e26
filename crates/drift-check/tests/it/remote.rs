//! Asking the remote: `--no-fetch` compares against the last fetched refs, a fetch sees new
//! commits without moving any ref of the checkout, and an unreachable remote makes only the
//! remote check `unknown` (exit 75) while the other checks still report.

use crate::{DRIFT, Host, NO_DRIFT, REPO, TEMP_FAIL, Table};

const UNREACHABLE: &str = "http://127.0.0.1:1/x.git";

/// Every ref of the checkout with its target, plus HEAD: what a read-only check must not move.
fn refs(host: &Host) -> String {
    let mut out = host.git(&["for-each-ref", "--format=%(refname) %(objectname)"]);
    out.push_str(&host.git(&["rev-parse", "HEAD"]));
    out
}

#[test]
fn no_fetch_uses_the_last_fetched_refs_and_fetch_sees_new_commits() {
    let host = Host::new("");
    let before = refs(&host);
    host.origin.write("a.txt", "upstream\n");
    host.origin.commit("upstream");

    let run = host.check(&["--no-fetch", "--all-items"]);
    run.expect_code(NO_DRIFT);
    let row = run.row("checkout", "remote");
    assert_eq!(row.status, "ok", "{row:?}");
    assert!(row.reason.starts_with("at the remote tip"), "{row:?}");

    host.assert_drift(&[], "checkout", "remote", "1 commit(s) behind the remote");
    assert_eq!(refs(&host), before, "drift-check moved no ref of the checkout");

    // sync-repo fetches and records the new tip; --no-fetch then agrees.
    host.tool(&format!("sync-repo {REPO}")).expect_code(0);
    host.assert_clean(&["--no-fetch"]);
}

#[test]
fn unreachable_remote_is_unknown_and_the_other_checks_still_report() {
    let host = Host::new("");
    host.write_config(&format!("    remote: {UNREACHABLE}\n"));

    let run = host.check(&["--all-items"]);
    run.expect_code(TEMP_FAIL);
    let remote = run.row("checkout", "remote");
    assert_eq!(remote.status, "unknown", "{remote:?}");
    assert!(
        remote.reason.contains(UNREACHABLE) && remote.reason.contains("unreachable"),
        "the reason names the remote: {remote:?}"
    );
    for name in ["branch", "dirty", "untracked", "last sync"] {
        assert_eq!(run.row("checkout", name).status, "ok", "{name}\n{}", run.stdout);
    }

    // Without --all-items only the unknown row is listed, and it still exits 75.
    let run = host.check(&[]);
    run.expect_code(TEMP_FAIL);
    assert!(!run.stdout.starts_with("no drift"), "{}", run.stdout);
    assert_eq!(run.row("checkout", "remote").status, "unknown");

    // Drift elsewhere wins the exit code, and the remote is still reported unknown.
    driftless_tests::fixture::write_file(&host.checkout, "a.txt", "edited\n");
    let (run, items) = host.check_json(&[]);
    run.expect_code(DRIFT);
    assert_eq!(crate::item(&items, "checkout", "remote")["status"], "unknown");
    assert_eq!(crate::item(&items, "checkout", "dirty")["status"], "drift");
}

#[test]
fn unreachable_remote_of_one_repo_does_not_hide_drift_of_another() {
    let host = Host::new("");
    let second = host.origin.clone_to(&host.env, "second");
    driftless_tests::fixture::write_file(&second, "stray.txt", "x\n");
    host.write_config(&format!(
        "    remote: {UNREACHABLE}\n  second:\n    path: {}\n",
        second.display()
    ));

    let (run, items) = host.check_json(&[]);
    run.expect_code(DRIFT);
    let find = |repo: &str, name: &str| {
        items
            .iter()
            .find(|i| i["repo"] == repo && i["name"] == name)
            .unwrap_or_else(|| panic!("no {repo}/{name} in {items:#?}"))
            .clone()
    };
    assert_eq!(find(REPO, "remote")["status"], "unknown");
    assert_eq!(find("second", "untracked")["status"], "drift");
    assert_eq!(find("second", "remote")["status"], "ok");

    // The healthy repo alone is clean; the unreachable one alone is 75.
    let run = host.check(&[REPO]);
    run.expect_code(TEMP_FAIL);
    std::fs::remove_file(second.join("stray.txt")).expect("remove the stray file");
    host.check(&["second"]).expect_code(NO_DRIFT);
    host.check(&[]).expect_code(TEMP_FAIL);
}

/// The same drift through a real forge: the origin served over smart HTTP (lighttpd and
/// git-http-backend on loopback). A new commit there is seen as `behind`, and the printed fix,
/// `sync-repo hub` over the same forge, clears it.
#[test]
fn behind_a_real_smart_http_forge_is_seen_and_the_fix_clears_it() {
    let host = Host::new("");
    let Some(forge) =
        driftless_tests::forge::require_service(driftless_tests::forge::SmartHttp::start(&host.env.path("remotes")))
    else {
        return;
    };
    host.write_config(&format!("    remote: {}\n", forge.url("hub.git")));
    host.tool(&format!("sync-repo {REPO}")).expect_code(0);
    host.assert_clean(&[]);

    host.origin.write("a.txt", "over http\n");
    host.origin.commit("change on the forge");
    let row = host.assert_drift(&[], "checkout", "remote", "1 commit(s) behind the remote");
    host.run_fix(row.fix());
    host.assert_clean(&[]);
    assert_eq!(
        std::fs::read_to_string(host.checkout.join("a.txt")).expect("read a.txt"),
        "over http\n"
    );
}

/// `-n` (`--dry-run`): the last fetched refs only, and no metrics file written.
#[test]
fn dry_run_asks_no_remote_and_writes_no_metrics() {
    let host = Host::new("");
    host.origin.write("a.txt", "upstream\n");
    host.origin.commit("upstream");
    let file = host.metrics.join("driftless-hub.prom");

    for flag in ["-n", "--dry-run"] {
        let run = host.check(&[flag, "--all-items"]);
        run.expect_code(NO_DRIFT);
        let row = run.row("checkout", "remote");
        assert!(row.reason.starts_with("at the remote tip"), "{flag}: {row:?}");
        assert!(!crate::exists(&file), "{flag} wrote {}", file.display());
    }
    host.assert_drift(&[], "checkout", "remote", "1 commit(s) behind the remote");
    assert!(crate::exists(&file), "without -n the file is written");
}

/// The shipped unit runs drift-check with `ProtectSystem=strict`: the checkout (and its `.git`)
/// is read-only there. A private mount namespace with the checkout bind-mounted read-only does
/// the same to the real binary; the remote's new commit must still be seen as drift, not as a
/// check that failed.
#[test]
fn behind_is_seen_in_a_read_only_checkout() {
    let Some(unshare) = crate::require_tool("unshare", "util-linux") else {
        return;
    };
    let uid = std::process::Command::new("id").arg("-u").output().expect("run id -u");
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "needs root for a mount namespace"
        );
        eprintln!("skipped: needs root for a mount namespace");
        return;
    }
    let host = Host::new("");
    let read_only_check = || {
        let checkout = host.checkout.display().to_string();
        let mut cmd = assert_cmd::Command::new(&unshare);
        cmd.env_clear()
            .envs(driftless_tests::env::isolated_env(&host.env.home()))
            .env("DRIFTLESS_CONFIG", &host.config)
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg("mount --bind -o ro \"$0\" \"$0\" && touch \"$0/.git/probe\" 2>/dev/null && exit 99; exec \"$@\"")
            .arg(&checkout)
            .arg(host.env.bin("drift-check"))
            .arg("--all-items");
        let run = driftless_tests::Run::of(&mut cmd);
        assert_ne!(run.code, 99, "the bind mount did not make the checkout read-only");
        run
    };
    // In sync: nothing to fetch, nothing to write.
    read_only_check().expect_code(NO_DRIFT);

    // The origin on a local path (objects copied straight from its database), then the same
    // origin over smart HTTP (a pack to receive).
    let forge =
        driftless_tests::forge::require_service(driftless_tests::forge::SmartHttp::start(&host.env.path("remotes")));
    for (round, remote) in [None, forge.as_ref().map(|f| f.url("hub.git"))].into_iter().enumerate() {
        if round > 0 {
            let Some(url) = remote else { break };
            host.write_config(&format!("    remote: {url}\n"));
            host.tool(&format!("sync-repo {REPO}")).expect_code(0);
        }
        let before = refs(&host);
        host.origin.write("a.txt", format!("upstream {round}\n"));
        host.origin.commit("upstream");

        let run = read_only_check();
        run.expect_code(DRIFT);
        let row = run.row("checkout", "remote");
        assert_eq!(row.status, "DRIFT", "round {round}: {row:?}\n{}", run.stdout);
        assert!(row.reason.contains("behind the remote"), "round {round}: {row:?}");
        assert_eq!(row.fix(), format!("sync-repo {REPO}"));
        assert_eq!(refs(&host), before, "round {round}: nothing moved");

        host.run_fix(row.fix());
        host.assert_clean(&[]);
    }
}
