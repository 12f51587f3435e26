//! Forges as hosts meet them: a URL without a port, a repo that is not there, credentials asked
//! for and found in git's credential store (or not), redirects, proxies from git config and the
//! environment, ssh with a deploy key and a pinned host key, and forges that accept and then
//! stall or trickle (the run must end in bounded time, exit 75).

use driftless_tests::oracle::RepoSnapshot;
use std::time::Duration;

use driftless_tests::{HttpOptions, SmartHttp, Stall, Tinyproxy, require_service};

use crate::World;
use crate::transport::update_then_in_sync_via_origin;

/// `sync-repo --json <checkout>` with `envs` added.
fn sync_with(w: &World, envs: &[(&str, &str)]) -> crate::Run {
    let mut cmd = w.env.sync_repo();
    cmd.envs(envs.iter().copied()).arg("--json").arg(&w.checkout);
    crate::Run::of(&mut cmd)
}

#[test]
fn http_url_without_a_port_reaches_port_80() {
    let w = World::new("port80");
    let options = HttpOptions {
        port: Some(80),
        ..HttpOptions::default()
    };
    let Some(http) = require_service(SmartHttp::start_with(&w.env.path("remotes"), &options)) else {
        return;
    };
    let url = http.url("port80.git");
    assert!(url.starts_with("http://127.0.0.1/git/"), "{url}");
    update_then_in_sync_via_origin(&w, &url);
}

#[test]
fn a_repo_the_forge_does_not_have_is_not_found_exit_2() {
    let w = World::new("missing-repo");
    let Some(http) = require_service(SmartHttp::start(&w.env.path("remotes"))) else {
        return;
    };
    w.git(&["remote", "set-url", "origin", &http.url("no-such-repo.git")]);
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = w.sync(&["--json"]);
    run.expect_code(2);
    let reason = run.json()["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("not found"), "{}", run.all_output());
    snapshot.assert_unchanged(&w.checkout);
}

/// An https forge that wants basic auth from `alice` / `s3cret`.
fn forge_with_auth(w: &World) -> Option<SmartHttp> {
    let options = HttpOptions {
        tls: true,
        basic_auth: Some(("alice".into(), "s3cret".into())),
        ..HttpOptions::default()
    };
    require_service(SmartHttp::start_with(&w.env.path("remotes"), &options))
}

#[test]
fn credentials_come_from_the_store_helper_and_refusals_are_exit_2() {
    let w = World::new("auth");
    let Some(https) = forge_with_auth(&w) else {
        return;
    };
    let ca = https.ca_file().expect("TLS forge").display().to_string();
    let url = https.url("auth.git");
    w.git(&["remote", "set-url", "origin", &url]);
    w.origin.write("a.txt", "behind a password\n");
    w.origin.commit("upstream change");
    let before = w.head();

    // No credentials anywhere: authentication failed, exit 2 (not "try again"), nothing changed.
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = sync_with(&w, &[("SSL_CERT_FILE", &ca)]);
    run.expect_code(2);
    let reason = run.json()["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("authentication failed"), "{}", run.all_output());
    assert!(reason.contains("credential"), "says what to check: {reason}");
    snapshot.assert_unchanged(&w.checkout);

    // A revoked password in the store: exit 2 again, the secret never printed.
    let store = w.env.home().join(".git-credentials");
    let port = url.split(':').nth(2).and_then(|p| p.split('/').next()).expect("port");
    std::fs::write(&store, format!("https://alice:wrong-pw@127.0.0.1:{port}\n")).expect("write store");
    w.git(&[
        "config",
        "credential.helper",
        &format!("store --file {}", store.display()),
    ]);
    let run = sync_with(&w, &[("SSL_CERT_FILE", &ca)]);
    run.expect_code(2);
    assert!(!run.all_output().contains("wrong-pw"), "{}", run.all_output());
    snapshot.assert_unchanged(&w.checkout);

    // The right one: update, then in sync, as `git pull` with the same helper would.
    std::fs::write(&store, format!("https://alice:s3cret@127.0.0.1:{port}\n")).expect("write store");
    let mtimes = driftless_tests::MtimeSnapshot::take(&w.checkout);
    let run = sync_with(&w, &[("SSL_CERT_FILE", &ca)]);
    run.expect_code(0);
    assert_eq!(run.json()["outcome"], "updated", "{}", run.all_output());
    assert!(!run.all_output().contains("s3cret"), "{}", run.all_output());
    w.assert_updated_from(&before, &mtimes);
    let run = sync_with(&w, &[("SSL_CERT_FILE", &ca)]);
    run.expect_code(0);
    assert_eq!(run.json()["outcome"], "in_sync", "{}", run.all_output());
}

#[test]
fn redirects_are_followed_as_git_does_unless_configured_off() {
    let w = World::new("redirect");
    let options = HttpOptions {
        extra_conf: "server.modules += (\"mod_redirect\")\n\
                     url.redirect = (\"^/old/(.*)$\" => \"/git/$1\")"
            .into(),
        ..HttpOptions::default()
    };
    let Some(http) = require_service(SmartHttp::start_with(&w.env.path("remotes"), &options)) else {
        return;
    };
    let old = http.url("redirect.git").replace("/git/", "/old/");
    // The oracle: git itself follows this redirect.
    let refs = w.git(&["ls-remote", &old]);
    assert!(refs.contains("refs/heads/main"), "{refs}");
    update_then_in_sync_via_origin(&w, &old);

    w.git(&["config", "http.followRedirects", "false"]);
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = w.sync(&["--json"]);
    run.expect_code(2);
    assert!(
        run.json()["reason"].as_str().unwrap_or_default().contains("redirect"),
        "{}",
        run.all_output()
    );
    snapshot.assert_unchanged(&w.checkout);
}

#[test]
fn proxies_from_git_config_and_the_environment_are_used_and_no_proxy_honoured() {
    let w = World::new("proxied");
    let Some(http) = require_service(SmartHttp::start(&w.env.path("remotes"))) else {
        return;
    };
    let Some(proxy) = require_service(Tinyproxy::start(&[http.port()])) else {
        return;
    };
    let url = http.url("proxied.git");
    w.git(&["config", "http.proxy", &proxy.url()]);
    update_then_in_sync_via_origin(&w, &url);
    let log = proxy.log();
    let tunnel = format!("CONNECT 127.0.0.1:{} ", http.port());
    assert!(log.contains(&tunnel), "the proxy carried the requests:\n{log}");
    w.git(&["config", "--unset", "http.proxy"]);

    // From the environment, as for curl: http_proxy, and no_proxy exempting the forge.
    w.origin.write("a.txt", "via http_proxy\n");
    w.origin.commit("second change");
    let before = proxy.log().len();
    let run = sync_with(&w, &[("http_proxy", &proxy.url())]);
    run.expect_code(0);
    assert_eq!(run.json()["outcome"], "updated", "{}", run.all_output());
    assert!(proxy.log()[before..].contains(&tunnel), "{}", proxy.log());

    w.origin.write("a.txt", "around the proxy\n");
    w.origin.commit("third change");
    let dead_proxy = format!(
        "http://127.0.0.1:{}",
        driftless_tests::forge::free_port().expect("port")
    );
    let run = sync_with(&w, &[("http_proxy", &dead_proxy), ("no_proxy", "127.0.0.1")]);
    run.expect_code(0);
    assert_eq!(run.json()["outcome"], "updated", "{}", run.all_output());
}

#[test]
fn https_goes_through_a_connect_proxy() {
    let w = World::new("connect");
    let Some(https) = require_service(SmartHttp::start_tls(&w.env.path("remotes"))) else {
        return;
    };
    let Some(proxy) = require_service(Tinyproxy::start(&[https.port()])) else {
        return;
    };
    let ca = https.ca_file().expect("TLS forge").display().to_string();
    w.git(&["remote", "set-url", "origin", &https.url("connect.git")]);
    w.origin.write("a.txt", "tunnelled\n");
    w.origin.commit("upstream change");
    let run = sync_with(&w, &[("SSL_CERT_FILE", &ca), ("https_proxy", &proxy.url())]);
    run.expect_code(0);
    assert_eq!(run.json()["outcome"], "updated", "{}", run.all_output());
    let log = proxy.log();
    assert!(
        log.contains(&format!("CONNECT 127.0.0.1:{}", https.port())),
        "the proxy saw the tunnel:\n{log}"
    );
}

/// Sync from `url` with a hard stop after 120 s, so a hanging run fails the test instead of
/// hanging it.
fn bounded_sync(w: &World, url: &str) -> crate::Run {
    let mut cmd = w.env.sync_repo();
    cmd.timeout(Duration::from_secs(120))
        .args(["--json", "--remote", url])
        .arg(&w.checkout);
    crate::Run::of(&mut cmd)
}

#[test]
fn a_forge_that_accepts_and_never_answers_ends_the_run_in_bounded_time() {
    let w = World::new("silent");
    let stall = Stall::silent().expect("a loopback listener");
    w.git(&["config", "http.lowSpeedLimit", "1"]);
    w.git(&["config", "http.lowSpeedTime", "2"]);
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = bounded_sync(&w, &stall.url("x.git"));
    run.expect_code(75);
    assert!(
        run.elapsed < Duration::from_secs(20),
        "took {:?}: {}",
        run.elapsed,
        run.all_output()
    );
    assert!(
        run.all_output().contains("sent nothing for 2 s (http.lowSpeedTime)"),
        "{}",
        run.all_output()
    );
    snapshot.assert_unchanged(&w.checkout);
}

#[test]
fn a_trickling_forge_is_abandoned_below_the_low_speed_limit() {
    let w = World::new("trickle");
    let stall = Stall::trickle(Duration::from_millis(500)).expect("a loopback listener");
    w.git(&["config", "http.lowSpeedLimit", "100"]);
    w.git(&["config", "http.lowSpeedTime", "3"]);
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = bounded_sync(&w, &stall.url("x.git"));
    run.expect_code(75);
    assert!(
        run.elapsed < Duration::from_secs(20),
        "took {:?}: {}",
        run.elapsed,
        run.all_output()
    );
    assert!(run.all_output().contains("lowSpeedLimit"), "{}", run.all_output());
    snapshot.assert_unchanged(&w.checkout);
}

#[test]
fn ssh_with_a_deploy_key_and_a_pinned_host_key() {
    let w = World::new("ssh");
    let Some(sshd) = require_service(driftless_tests::Sshd::start()) else {
        return;
    };
    let origin = std::fs::canonicalize(w.env.path("remotes/ssh.git")).expect("the bare origin");
    let url = sshd.url(&origin);
    let known = sshd.known_hosts(true).expect("known_hosts");
    w.git(&["config", "core.sshCommand", &sshd.ssh_command(&known)]);
    // The oracle: git itself gets in this way.
    let refs = w.git(&["ls-remote", &url]);
    assert!(refs.contains("refs/heads/main"), "{refs}");
    update_then_in_sync_via_origin(&w, &url);

    // The same server with another host key pinned (a swapped or spoofed server): refused for
    // good, exit 2, nothing changed.
    let wrong = sshd.known_hosts(false).expect("known_hosts");
    w.git(&["config", "core.sshCommand", &sshd.ssh_command(&wrong)]);
    w.origin.write("a.txt", "from an impostor\n");
    w.origin.commit("upstream change");
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = w.sync(&["--json"]);
    run.expect_code(2);
    assert!(
        run.json()["reason"].as_str().unwrap_or_default().contains("host key"),
        "{}",
        run.all_output()
    );
    snapshot.assert_unchanged(&w.checkout);
}

/// A forge that answers 403 unless the request carries `X-Deploy-Token: let-me-in` (lighttpd
/// `mod_access` on a request-header condition, as a gateway in front of a forge would).
fn forge_wanting_a_header(w: &World) -> Option<SmartHttp> {
    let options = HttpOptions {
        extra_conf: "server.modules += (\"mod_access\")\n\
                     $REQUEST_HEADER[\"X-Deploy-Token\"] != \"let-me-in\" { url.access-deny = (\"\") }"
            .into(),
        ..HttpOptions::default()
    };
    require_service(SmartHttp::start_with(&w.env.path("remotes"), &options))
}

#[test]
fn forbidden_is_authentication_failed_exit_2_and_http_extra_header_gets_in() {
    let w = World::new("extra-header");
    let Some(http) = forge_wanting_a_header(&w) else {
        return;
    };
    let url = http.url("extra-header.git");
    let header = "X-Deploy-Token: let-me-in";
    // The oracle: git is refused with 403 without the header, and let in with it.
    let refused = driftless_tests::git_output(&w.checkout, &["ls-remote", &url]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let refs = w.git(&["-c", &format!("http.extraHeader={header}"), "ls-remote", &url]);
    assert!(refs.contains("refs/heads/main"), "{refs}");

    w.git(&["remote", "set-url", "origin", &url]);
    w.origin.write("a.txt", "behind a gateway\n");
    w.origin.commit("upstream change");
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = w.sync(&["--json"]);
    run.expect_code(2);
    let reason = run.json()["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("authentication failed"), "{}", run.all_output());
    assert!(reason.contains("403"), "names the status: {reason}");
    snapshot.assert_unchanged(&w.checkout);
    assert!(
        http.requests().iter().any(|r| r.ends_with(" 403")),
        "the forge saw the request and refused it"
    );

    w.git(&["config", "http.extraHeader", header]);
    update_then_in_sync_via_origin(&w, &url);
    let requests = http.requests();
    assert!(
        !requests.is_empty() && requests.iter().all(|r| r.ends_with(" 200")),
        "every request carried the header: {requests:?}"
    );
}

#[test]
fn http_connect_timeout_bounds_a_forge_that_takes_no_connection() {
    let w = World::new("connect-timeout");
    let unreachable = driftless_tests::Unreachable::start().expect("a loopback listener with a full queue");
    // git itself has no connect timeout here (curl's 300 s); driftless reads this key.
    w.git(&["config", "http.connectTimeout", "2"]);
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = bounded_sync(&w, &unreachable.url("x.git"));
    run.expect_code(75);
    // 2 s configured, against the 10 s default: well apart, so a slow machine cannot flip it.
    assert!(
        run.elapsed >= Duration::from_secs(1) && run.elapsed < Duration::from_secs(8),
        "took {:?} with http.connectTimeout=2: {}",
        run.elapsed,
        run.all_output()
    );
    // The message names the setting, so the operator knows what bounded it.
    assert!(
        run.all_output().contains("within 2 s (http.connectTimeout)"),
        "{}",
        run.all_output()
    );
    snapshot.assert_unchanged(&w.checkout);

    // Unset, the default bound still ends the run, well before the unit's timeout.
    w.git(&["config", "--unset", "http.connectTimeout"]);
    let run = bounded_sync(&w, &unreachable.url("x.git"));
    run.expect_code(75);
    assert!(
        run.elapsed < Duration::from_secs(60),
        "took {:?} with the default connect timeout: {}",
        run.elapsed,
        run.all_output()
    );
    snapshot.assert_unchanged(&w.checkout);
}

#[test]
fn an_ipv6_literal_url_reaches_the_forge() {
    let w = World::new("ipv6");
    if !driftless_tests::forge::has_ipv6_loopback() {
        // Not a missing package: some machines have IPv6 off. CI fails only where ::1 exists.
        eprintln!("SKIPPED: this machine has no IPv6 loopback (::1)");
        return;
    }
    let options = HttpOptions {
        ipv6: true,
        ..HttpOptions::default()
    };
    let Some(http) = require_service(SmartHttp::start_with(&w.env.path("remotes"), &options)) else {
        return;
    };
    let url = http.url("ipv6.git");
    assert!(url.starts_with("http://[::1]:"), "{url}");
    // The oracle: git itself reaches it.
    let refs = w.git(&["ls-remote", &url]);
    assert!(refs.contains("refs/heads/main"), "{refs}");
    update_then_in_sync_via_origin(&w, &url);
}
