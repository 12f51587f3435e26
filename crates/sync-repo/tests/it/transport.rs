//! Fetching over every transport sync-repo supports (plain path, file://, smart HTTP and HTTPS, git://),
//! unreachable remotes (exit 75, nothing changed) and credentials that must never be printed.

use driftless_tests::oracle::{self, MtimeSnapshot, RepoSnapshot};
use driftless_tests::{GitDaemon, SmartHttp, require_service};

use crate::World;

/// Point the checkout's `origin` at `url`, push an upstream change, sync (update, then in sync).
pub(crate) fn update_then_in_sync_via_origin(w: &World, url: &str) {
    w.git(&["remote", "set-url", "origin", url]);
    let before = w.head();
    w.origin
        .write("a.txt", "over the wire\n")
        .write("wire/new.txt", "new\n")
        .remove("b.txt");
    w.origin.commit("upstream change");
    let mtimes = MtimeSnapshot::take(&w.checkout);
    let run = w.sync(&["--json"]);
    run.expect_code(0);
    assert_eq!(run.json()["outcome"], "updated", "{}", run.stdout);
    w.assert_updated_from(&before, &mtimes);

    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = w.sync(&["--json"]);
    run.expect_code(0);
    assert_eq!(run.json()["outcome"], "in_sync", "{}", run.stdout);
    snapshot.assert_unchanged(&w.checkout);
}

#[test]
fn file_url_origin() {
    let w = World::new("file-url");
    let url = w.origin.file_url();
    update_then_in_sync_via_origin(&w, &url);
}

/// `git count-objects -v` as (loose objects, packs).
fn object_counts(w: &World) -> (u64, u64) {
    let out = w.git(&["count-objects", "-v"]);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": ")?.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in count-objects:\n{out}"))
    };
    (field("count"), field("packs"))
}

/// 500 new commits from a remote on this host (`url`, a path or file://): one new pack with
/// its index, as `git fetch` writes, and not one loose file per object.
fn local_remote_writes_one_pack(w: &World, url: &str) {
    w.git(&["remote", "set-url", "origin", url]);
    let before = w.head();
    w.origin.commit_many(500);
    let (loose, packs) = object_counts(w);
    let mtimes = MtimeSnapshot::take(&w.checkout);
    let run = w.sync(&["--json"]);
    run.expect_code(0);
    assert_eq!(run.json()["outcome"], "updated", "{}", run.stdout);
    assert_eq!(
        object_counts(w),
        (loose, packs + 1),
        "(loose objects, packs) after the sync: one new pack and no new loose object"
    );
    w.assert_updated_from(&before, &mtimes);
    let pack_dir = w.checkout.join(".git/objects/pack");
    let names: Vec<String> = std::fs::read_dir(&pack_dir)
        .expect("read objects/pack")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("pack-") && (n.ends_with(".pack") || n.ends_with(".idx"))),
        "only packs and their indices in objects/pack, no temp file: {names:?}"
    );
    // And the next run has nothing to fetch.
    let run = w.sync(&["--json"]);
    run.expect_code(0);
    assert_eq!(run.json()["outcome"], "in_sync", "{}", run.stdout);
    assert_eq!(object_counts(w), (loose, packs + 1), "an in-sync run writes no object");
}

#[test]
fn local_path_remote_writes_one_pack() {
    let w = World::new("path-pack");
    let url = w.origin.path_url();
    local_remote_writes_one_pack(&w, &url);
}

#[test]
fn file_url_remote_writes_one_pack() {
    let w = World::new("file-pack");
    let url = w.origin.file_url();
    local_remote_writes_one_pack(&w, &url);
}

#[test]
fn remote_flag_overrides_origin() {
    let w = World::new("remote-flag");
    // origin points nowhere useful; --remote says where to fetch.
    w.git(&["remote", "set-url", "origin", "/nonexistent/elsewhere.git"]);
    let before = w.head();
    w.origin.write("a.txt", "via --remote\n");
    w.origin.commit("upstream change");
    let mtimes = MtimeSnapshot::take(&w.checkout);
    let run = w.sync(&["--json", "--remote", &w.origin.file_url()]);
    run.expect_code(0);
    assert_eq!(run.json()["outcome"], "updated", "{}", run.stdout);
    w.assert_updated_from(&before, &mtimes);
}

#[test]
fn smart_http_update_and_in_sync() {
    let w = World::new("http");
    let Some(http) = require_service(SmartHttp::start(&w.env.path("remotes"))) else {
        return;
    };
    update_then_in_sync_via_origin(&w, &http.url("http.git"));
}

#[test]
fn git_daemon_update_and_in_sync() {
    let w = World::new("gitd");
    let Some(daemon) = require_service(GitDaemon::start(&w.env.path("remotes"))) else {
        return;
    };
    update_then_in_sync_via_origin(&w, &daemon.url("gitd.git"));
}

#[test]
fn thousands_of_files_over_http() {
    let w = World::new("http-many");
    let Some(http) = require_service(SmartHttp::start(&w.env.path("remotes"))) else {
        return;
    };
    w.git(&["remote", "set-url", "origin", &http.url("http-many.git")]);
    driftless_tests::fixture::many_files(&w.origin.work, "many", 3_000, "v1");
    w.origin.commit("3k files");
    w.sync(&[]).expect_code(0);
    oracle::assert_synced(&w.checkout, &w.origin.path_url(), &w.origin.tip());
}

#[test]
fn unreachable_http_remote_is_a_temporary_failure() {
    let w = World::new("unreachable-http");
    w.origin.write("a.txt", "never arrives\n");
    w.origin.commit("upstream change");
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = w.sync(&["--json", "--remote", "http://127.0.0.1:1/x.git"]);
    run.expect_code(75);
    let record = run.json();
    assert_eq!(record["outcome"], "failed", "{record}");
    assert_eq!(record["exit_code"], 75, "{record}");
    assert!(record["reason"].as_str().is_some_and(|r| !r.is_empty()), "{record}");
    snapshot.assert_unchanged(&w.checkout);
    let human = w.sync(&["--remote", "http://127.0.0.1:1/x.git"]);
    human.expect_code(75);
    assert!(
        human.stdout.starts_with(&format!("{}: failed", w.label())),
        "{}",
        human.stdout
    );
}

#[test]
fn missing_file_remote_is_a_temporary_failure() {
    let w = World::new("unreachable-path");
    let snapshot = RepoSnapshot::take(&w.checkout);
    let missing = w.env.path("remotes/does-not-exist.git");
    let run = w.sync(&["--remote", &missing.display().to_string()]);
    run.expect_code(75);
    snapshot.assert_unchanged(&w.checkout);
    // Same through the checkout's origin.
    w.git(&["remote", "set-url", "origin", &missing.display().to_string()]);
    let snapshot = RepoSnapshot::take(&w.checkout);
    w.sync(&[]).expect_code(75);
    snapshot.assert_unchanged(&w.checkout);
}

#[test]
fn remote_without_the_branch_fails_and_changes_nothing() {
    let w = World::new("no-branch");
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = w.sync(&["--branch", "does-not-exist"]);
    assert_ne!(
        run.code, 0,
        "a missing branch is not success:\n{}\n{}",
        run.stdout, run.stderr
    );
    snapshot.assert_unchanged(&w.checkout);
}

/// Every place a secret could leak: stdout, stderr, and the state directory.
fn assert_no_secret(w: &World, run: &crate::Run, secret: &str) {
    assert!(!run.stdout.contains(secret), "secret in stdout:\n{}", run.stdout);
    assert!(!run.stderr.contains(secret), "secret in stderr:\n{}", run.stderr);
    for record in crate::find_files(&w.env.state_dir(), "sync-repo.json") {
        let text = std::fs::read_to_string(&record).expect("read state record");
        assert!(!text.contains(secret), "secret in {}:\n{text}", record.display());
    }
}

#[test]
fn credentials_in_url_never_printed() {
    let w = World::new("creds");
    let Some(http) = require_service(SmartHttp::start(&w.env.path("remotes"))) else {
        return;
    };
    let url = http.url("creds.git").replace("http://", "http://user:s3cret@");
    w.origin.write("a.txt", "secret transport\n");
    w.origin.commit("upstream change");

    // sync-repo may refuse to send credentials over plain http (exit 2, or 75 when the
    // transport refuses); either way nothing leaks.
    let run = w.sync(&["--json", "-vv", "--remote", &url]);
    assert!(
        [0, 2, 75].contains(&run.code),
        "exit {}:\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    assert_no_secret(&w, &run, "s3cret");
    let record = run.json();
    let remote = record["remote"]
        .as_str()
        .unwrap_or_else(|| panic!("remote is a string: {record}"));
    assert!(
        remote.contains("127.0.0.1") && !remote.contains("s3cret"),
        "remote redacted: {remote}"
    );
    if run.code == 0 {
        oracle::assert_synced(&w.checkout, &w.origin.path_url(), &w.origin.tip());
    } else {
        println!("credentials over plain http were refused: {}", record["reason"]);
    }

    // Via origin, human output, and in a failure's message.
    w.git(&["remote", "set-url", "origin", &url]);
    let run = w.sync(&["-vv"]);
    assert!(
        [0, 2, 75].contains(&run.code),
        "exit {}:\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    assert_no_secret(&w, &run, "s3cret");
    let run = w.sync(&["-vv", "--remote", "http://user:s3cret@127.0.0.1:1/x.git"]);
    assert!(
        [2, 75].contains(&run.code),
        "exit {}:\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    assert_no_secret(&w, &run, "s3cret");
    // https with credentials is legitimate; a connection failure's message must still be redacted.
    let run = w.sync(&["-vv", "--remote", "https://user:s3cret@127.0.0.1:1/x.git"]);
    run.expect_code(75);
    assert_no_secret(&w, &run, "s3cret");
    let run = w.sync(&["--json", "--remote", "https://user:s3cret@127.0.0.1:1/x.git"]);
    run.expect_code(75);
    assert_no_secret(&w, &run, "s3cret");
    let run = w.sync(&[
        "--json",
        "--remote",
        "https://ghp_0123456789abcdefghijklmnop@127.0.0.1:1/x.git",
    ]);
    run.expect_code(75);
    assert_no_secret(&w, &run, "ghp_0123456789abcdefghijklmnop");
}

/// A `.keep` file in the checkout's pack folder, if any: each one stops `git gc` from folding
/// its pack into another.
fn keep_files(w: &World) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(w.checkout.join(".git/objects/pack"))
        .expect("read the pack folder")
        .map(|e| e.expect("pack folder entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "keep"))
        .collect()
}

#[test]
fn smart_http_asks_the_forge_once_when_nothing_changed_and_twice_for_an_update() {
    let w = World::new("http-requests");
    let Some(http) = require_service(SmartHttp::start(&w.env.path("remotes"))) else {
        return;
    };
    w.git(&["remote", "set-url", "origin", &http.url("http-requests.git")]);
    w.origin.write("a.txt", "one request more\n");
    w.origin.commit("upstream change");
    http.requests();

    let run = w.sync(&["--json"]);
    run.expect_code(0);
    assert_eq!(run.json()["outcome"], "updated", "{}", run.stdout);
    let update = http.requests();
    assert_eq!(
        update,
        [
            "GET /git/http-requests.git/info/refs?service=git-upload-pack HTTP/1.1 200",
            "POST /git/http-requests.git/git-upload-pack HTTP/1.1 200",
        ],
        "an update is one ref advertisement and one pack request"
    );
    assert_eq!(
        keep_files(&w),
        Vec::<std::path::PathBuf>::new(),
        "the fetched pack must not stay pinned"
    );

    let run = w.sync(&["--json"]);
    run.expect_code(0);
    assert_eq!(run.json()["outcome"], "in_sync", "{}", run.stdout);
    assert_eq!(
        http.requests(),
        ["GET /git/http-requests.git/info/refs?service=git-upload-pack HTTP/1.1 200"],
        "with nothing new, nothing beyond the ref advertisement is requested"
    );
}

#[test]
fn protocol_version_from_git_config_is_honoured_over_http() {
    let w = World::new("http-v2");
    let Some(http) = require_service(SmartHttp::start(&w.env.path("remotes"))) else {
        return;
    };
    w.git(&["remote", "set-url", "origin", &http.url("http-v2.git")]);
    w.git(&["config", "protocol.version", "2"]);
    w.origin.write("a.txt", "over v2\n");
    w.origin.commit("upstream change");
    let before = w.head();
    let mtimes = MtimeSnapshot::take(&w.checkout);
    http.requests();

    w.sync(&[]).expect_code(0);
    w.assert_updated_from(&before, &mtimes);
    let requests = http.requests();
    // v2: capabilities, then ls-refs, then fetch.
    assert_eq!(requests.len(), 3, "{requests:#?}");
    assert_eq!(keep_files(&w), Vec::<std::path::PathBuf>::new());

    w.sync(&[]).expect_code(0);
    let requests = http.requests();
    assert_eq!(
        requests.len(),
        2,
        "v2 with nothing new: capabilities and ls-refs: {requests:#?}"
    );
    assert!(
        requests[1].starts_with("POST /git/http-v2.git/git-upload-pack "),
        "{requests:#?}"
    );
}

#[test]
fn smart_https_update_and_in_sync_with_a_trusted_ca_only() {
    let w = World::new("https");
    let Some(https) = require_service(SmartHttp::start_tls(&w.env.path("remotes"))) else {
        return;
    };
    let ca = https.ca_file().expect("a TLS forge has a CA");
    w.git(&["remote", "set-url", "origin", &https.url("https.git")]);
    w.origin.write("a.txt", "over TLS\n");
    w.origin.commit("upstream change");
    let before = w.head();

    // Not trusted: the certificate is refused, nothing changes.
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = w.sync(&[]);
    run.expect_code(75);
    assert!(
        run.all_output().contains("invalid peer certificate"),
        "{}",
        run.all_output()
    );
    snapshot.assert_unchanged(&w.checkout);

    // Trusted through SSL_CERT_FILE, as a company CA would be: update, then in sync.
    let trusted_sync = || {
        let mut cmd = w.env.sync_repo();
        cmd.env("SSL_CERT_FILE", ca).arg("--json").arg(&w.checkout);
        let run = crate::Run::of(&mut cmd);
        run.expect_code(0);
        run.json()["outcome"].clone()
    };
    let mtimes = MtimeSnapshot::take(&w.checkout);
    assert_eq!(trusted_sync(), "updated");
    w.assert_updated_from(&before, &mtimes);
    assert_eq!(trusted_sync(), "in_sync");
}

/// The `pack-*.pack` files of the checkout, by name.
fn pack_names(w: &World) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(w.checkout.join(".git/objects/pack"))
        .expect("read objects/pack")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pack"))
        .collect()
}

/// Every fetch adds a pack; past git's `gc.autoPackLimit` (50) an update merges the small ones
/// into one, as the `git gc --auto` after a `git fetch` would: every object still there (git
/// fsck and the object list agree), the largest pack and a kept one untouched.
#[test]
fn many_small_packs_are_merged_into_one() {
    let w = World::new("packs-merge");
    w.git(&["remote", "set-url", "origin", &w.origin.file_url()]);
    // 55 fetches by git, each keeping its objects as a pack, none running gc.
    for i in 0..55 {
        w.origin.write("n.txt", format!("{i}\n"));
        w.origin.commit(&format!("change {i}"));
        w.git(&["-c", "fetch.unpackLimit=1", "-c", "gc.auto=0", "fetch", "-q", "origin"]);
    }
    let before = pack_names(&w);
    assert!(before.len() >= 55, "one pack per fetch: {before:?}");
    let pack_dir = w.checkout.join(".git/objects/pack");
    let size = |name: &String| std::fs::metadata(pack_dir.join(name)).expect("stat pack").len();
    // Largest by size, then by name, as sync-repo picks it.
    let largest = before.iter().max_by_key(|n| (size(n), *n)).expect("a pack").clone();
    let kept = before.iter().find(|n| **n != largest).expect("another pack").clone();
    std::fs::write(pack_dir.join(kept.replace(".pack", ".keep")), "").expect("write .keep");
    let objects = w.git(&["rev-list", "--objects", "--all"]);

    w.origin.write("n.txt", "last\n");
    let tip = w.origin.commit("last");
    let run = w.sync(&["--json"]);
    run.expect_code(0);
    assert_eq!(run.json()["outcome"], "updated", "{}", run.stdout);
    assert_eq!(w.head(), tip);

    let after = pack_names(&w);
    assert_eq!(
        after.len(),
        3,
        "the largest pack, the kept one and the merged one: {after:?}"
    );
    assert!(after.contains(&largest), "the largest pack is left alone: {after:?}");
    assert!(after.contains(&kept), "a kept pack is left alone: {after:?}");
    w.git(&["fsck", "--full", "--strict", "--no-dangling"]);
    let mut expected: Vec<&str> = objects.lines().collect();
    let listed = w.git(&["rev-list", "--objects", "--all"]);
    let mut now: Vec<&str> = listed.lines().filter(|l| expected.contains(l)).collect();
    expected.sort_unstable();
    now.sort_unstable();
    assert_eq!(now, expected, "every object reachable before is still there");
    assert_eq!(w.git(&["status", "--porcelain"]), "");
    let names: Vec<String> = std::fs::read_dir(w.checkout.join(".git/objects/pack"))
        .expect("read objects/pack")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with('.') && !n.starts_with("tmp")),
        "no temp file left: {names:?}"
    );

    // And with gc.auto=0 in the repo's config, as for git, nothing is merged.
    w.git(&["config", "gc.auto", "0"]);
    for i in 0..52 {
        w.origin.write("n.txt", format!("again {i}\n"));
        w.origin.commit(&format!("again {i}"));
        w.git(&["-c", "fetch.unpackLimit=1", "fetch", "-q", "origin"]);
    }
    let before = pack_names(&w);
    w.origin.write("n.txt", "very last\n");
    w.origin.commit("very last");
    w.sync(&[]).expect_code(0);
    assert!(pack_names(&w).is_superset(&before), "gc.auto=0: no pack merged");
}
