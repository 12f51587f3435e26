//! Push-to-deploy on a real `systemd --user` manager: driftless-hook.socket on a free loopback
//! port, real POSTs in each forge's format (signatures computed by `openssl dgst`, the oracle),
//! and what they lead to: the right `sync-repo@` unit run, the checkout moved to the pushed tip
//! (served by a real `git daemon`), or nothing at all for a bad, missing or replayed proof,
//! another branch, an oversized, slow or garbage request; and a burst of 50 deliveries that
//! makes at most 2 sync runs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use driftless_tests::env::temp_dir;
use driftless_tests::forge::free_port;
use driftless_tests::{GitDaemon, require_service};

use super::manager::{self, Manager};
use super::{Repos, chmod, chown_user, copy_tools, git, install_user_units, write};

const SECRET: &str = "hook-test-secret";

/// One request to 127.0.0.1:`port`; the status and the body of the answer (0 and what was
/// read, when the connection closed without an answer).
fn send(port: u16, raw: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the hook socket");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    stream.write_all(raw).expect("send the request");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or(text.clone(), |(_, b)| b.trim().to_owned());
    (status, body)
}

fn post(port: u16, path: &str, headers: &[(&str, String)], body: &str) -> (u16, String) {
    let mut raw = format!("POST {path} HTTP/1.1\r\nHost: hook.test\r\nContent-Type: application/json\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    send(port, raw.as_bytes())
}

/// HMAC-SHA256 of `body` under `secret`, hex, by `openssl dgst`.
fn hmac(secret: &str, body: &str) -> String {
    let mut child = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret, "-r"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl (package openssl)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write to openssl");
    let out = child.wait_with_output().expect("openssl");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_owned()
}

fn github_body(url: &str, branch: &str) -> String {
    format!(
        r#"{{"ref":"refs/heads/{branch}","repository":{{"clone_url":"{url}","html_url":"http://forge.invalid/origin"}}}}"#
    )
}

fn runs(log: &Path) -> usize {
    std::fs::read_to_string(log).map_or(0, |t| t.lines().count())
}

#[test]
fn hook_on_a_real_user_manager() {
    let Some(()) = require_service(manager::missing_prerequisite().map_or(Ok(()), Err)) else {
        return;
    };
    let Some((uid, home)) = require_service(manager::ensure_user()) else {
        return;
    };
    let _exclusive = manager::exclusive();
    let dir = temp_dir("driftless-hook.");
    let root = dir.path().canonicalize().expect("canonical temp dir");
    chmod(&root, 0o755);
    let bin = copy_tools(&root);
    let repos = Repos::new(&root, &["hub", "lab"]);
    // The forge: git daemon serves origin.git (root's); the checkouts (sdtest's) fetch from it.
    let Some(daemon) = require_service(GitDaemon::start(&root)) else {
        return;
    };
    let url = daemon.url("origin.git");
    for name in ["hub", "lab"] {
        git(&root.join(name), &["remote", "set-url", "origin", &url]);
    }
    // hub follows main; lab follows main too, and takes only its own secret by /hook/lab.
    let config = root.join("driftless.yaml");
    write(
        &config,
        &format!(
            "repos:\n  hub:\n    path: {r}/hub\n  lab:\n    path: {r}/lab\n    remote: '{url}'\n",
            r = root.display()
        ),
    );
    let credentials = root.join("credentials");
    write(&credentials.join("hook"), &format!("{SECRET}\n"));
    write(&credentials.join("hook.lab"), "lab-only\n");
    for path in ["hub", "lab", "driftless.yaml", "credentials"] {
        chown_user(&root.join(path));
    }

    let (_home_guard, unit_dir) = install_user_units(&home, &bin);
    let port = free_port().expect("a free port");
    write(
        &unit_dir.join("driftless-hook.socket.d/test.conf"),
        &format!("[Socket]\nListenStream=\nListenStream=127.0.0.1:{port}\n"),
    );
    write(
        &unit_dir.join("driftless-hook@.service.d/test.conf"),
        &format!(
            "[Service]\nEnvironment=DRIFTLESS_CONFIG={config}\nLoadCredential=\nLoadCredential=hook:{cred}/hook\nLoadCredential=hook.lab:{cred}/hook.lab\nExecStart=\nExecStart={bin}/driftless-hook --user --read-timeout 1500\n",
            config = config.display(),
            cred = credentials.display(),
            bin = bin.display()
        ),
    );
    // Every run of a sync unit leaves a line: the count of runs, whatever each run did.
    let hub_runs = root.join("hub-runs.log");
    let lab_runs = root.join("lab-runs.log");
    for (name, log) in [("hub", &hub_runs), ("lab", &lab_runs)] {
        write(
            &unit_dir.join(format!("sync-repo@{name}.service.d/test.conf")),
            &format!(
                "[Service]\nEnvironment=DRIFTLESS_CONFIG={}\nExecStartPre=/bin/sh -c 'echo run >> {}'\n",
                config.display(),
                log.display()
            ),
        );
    }
    write(&hub_runs, "");
    write(&lab_runs, "");
    chown_user(&hub_runs);
    chown_user(&lab_runs);
    chown_user(&home.join(".config"));

    let Some(sd) = require_service(Manager::start(uid)) else {
        return;
    };
    let started = sd.systemctl(&["start", "driftless-hook.socket"]);
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    let hook_log = || {
        let out = std::process::Command::new("nsenter")
            .args(["-t", &sd_pid(&sd), "-m", "journalctl", "--no-pager", "-o", "short-unix"])
            .arg(format!("_UID={uid}"))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        // The last lines: the hook's answers and errors, systemd's about the units.
        let lines: Vec<&str> = out.lines().collect();
        lines[lines.len().saturating_sub(120)..].join("\n")
    };
    let synced_to = |name: &str, tip: &str, log: &Path, runs_before: usize| {
        sd.wait_for(20, || {
            repos.head(name) == tip
                && runs(log) > runs_before
                && sd.property(&format!("sync-repo@{name}.service"), "ActiveState") == "inactive"
        })
    };

    // 1. GitHub: a signed push to main starts sync-repo@hub, and the checkout moves.
    let tip = repos.push("README.md", "hub, pushed\n");
    let body = github_body(&url, "main");
    let github = |delivery: &str, signature: Option<String>, body: &str| {
        let mut headers = vec![
            ("X-GitHub-Event", "push".to_owned()),
            ("X-GitHub-Delivery", delivery.to_owned()),
        ];
        if let Some(sig) = signature {
            headers.push(("X-Hub-Signature-256", sig));
        }
        post(port, "/", &headers, body)
    };
    let (status, text) = github("gh-1", Some(format!("sha256={}", hmac(SECRET, &body))), &body);
    assert_eq!(
        (status, text.as_str()),
        (202, "started sync-repo@hub.service (GitHub push)"),
        "{}",
        hook_log()
    );
    assert!(synced_to("hub", &tip, &hub_runs, 0), "hub did not sync: {}", hook_log());
    // The journal may show the run's line a moment after the checkout moved.
    assert!(
        sd.wait_for(15, || sd.journal("sync-repo@hub.service").contains("hub: updated")),
        "{}",
        hook_log()
    );
    assert_eq!(
        runs(&lab_runs),
        0,
        "lab's remote is the same, but a push to it is not lab's sync: lab has its own secret"
    );

    // 2. Replayed, bad and missing signatures, another branch: answered, and nothing runs.
    let quiet = |what: &str, expected: u16, (status, text): (u16, String)| {
        assert_eq!(status, expected, "{what}: {text}\n{}", hook_log());
    };
    let before = runs(&hub_runs);
    repos.push("README.md", "hub, not announced yet\n");
    quiet(
        "replay",
        200,
        github("gh-1", Some(format!("sha256={}", hmac(SECRET, &body))), &body),
    );
    quiet(
        "bad signature",
        401,
        github("gh-2", Some(format!("sha256={}", hmac("wrong", &body))), &body),
    );
    quiet("missing signature", 401, github("gh-3", None, &body));
    let other = github_body(&url, "feature");
    quiet(
        "other branch",
        200,
        github("gh-4", Some(format!("sha256={}", hmac(SECRET, &other))), &other),
    );
    quiet("unknown repo", 404, {
        let body = github_body("https://forge.invalid/other/repo.git", "main");
        github("gh-5", Some(format!("sha256={}", hmac(SECRET, &body))), &body)
    });
    quiet(
        "garbage",
        400,
        send(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
    );
    quiet(
        "not JSON",
        400,
        github("gh-6", Some(format!("sha256={}", hmac(SECRET, "ref=main"))), "ref=main"),
    );
    quiet(
        "oversized",
        413,
        send(
            port,
            b"POST / HTTP/1.1\r\nX-GitHub-Event: push\r\nContent-Length: 1048577\r\n\r\n",
        ),
    );
    // A slow client: half a head, then nothing; cut off at the deadline (1.5 s here).
    let start = Instant::now();
    let mut slow = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    slow.write_all(b"POST / HTTP/1.1\r\nX-GitHub-Event: push\r\n")
        .expect("write");
    slow.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    let took = start.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(5),
        "cut off after {took:?}"
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        runs(&hub_runs),
        before,
        "a refused or ignored request started a sync: {}",
        hook_log()
    );

    // 3. Gitea (its own signature header) and GitLab (the token) move the checkout too.
    let tip = repos.push("README.md", "hub, via gitea\n");
    let before = runs(&hub_runs);
    let body = github_body(&url, "main");
    let gitea = |sig: String| {
        post(
            port,
            "/",
            &[
                ("X-Gitea-Event", "push".to_owned()),
                ("X-GitHub-Event", "push".to_owned()),
                ("X-Gitea-Delivery", format!("gitea-{sig}")),
                ("X-Gitea-Signature", sig),
            ],
            &body,
        )
    };
    quiet("gitea, bad signature", 401, gitea(hmac("wrong", &body)));
    let (status, text) = gitea(hmac(SECRET, &body));
    assert_eq!(status, 202, "{text}\n{}", hook_log());
    assert!(synced_to("hub", &tip, &hub_runs, before), "gitea push: {}", hook_log());

    let tip = repos.push("README.md", "hub, via gitlab\n");
    let before = runs(&hub_runs);
    let body = format!(r#"{{"object_kind":"push","ref":"refs/heads/main","project":{{"git_http_url":"{url}"}}}}"#);
    let gitlab = |token: &str| {
        post(
            port,
            "/",
            &[
                ("X-Gitlab-Event", "Push Hook".to_owned()),
                ("X-Gitlab-Token", token.to_owned()),
            ],
            &body,
        )
    };
    quiet("gitlab, wrong token", 401, gitlab("wrong"));
    quiet(
        "gitlab, no token",
        401,
        post(port, "/", &[("X-Gitlab-Event", "Push Hook".to_owned())], &body),
    );
    let (status, text) = gitlab(SECRET);
    assert_eq!(status, 202, "{text}\n{}", hook_log());
    assert!(synced_to("hub", &tip, &hub_runs, before), "gitlab push: {}", hook_log());

    // 4. Generic: POST /hook/lab with lab's own token.
    let lab_before = runs(&lab_runs);
    let bearer = |token: &str| vec![("Authorization", format!("Bearer {token}"))];
    quiet(
        "generic, shared secret for lab",
        401,
        post(port, "/hook/lab", &bearer(SECRET), ""),
    );
    quiet(
        "generic, unknown repo",
        404,
        post(port, "/hook/nope", &bearer(SECRET), ""),
    );
    let (status, text) = post(port, "/hook/lab", &bearer("lab-only"), "");
    assert_eq!(
        (status, text.as_str()),
        (202, "started sync-repo@lab.service (POST /hook/lab)"),
        "{}",
        hook_log()
    );
    assert!(
        synced_to("lab", &tip, &lab_runs, lab_before),
        "generic hook: {}",
        hook_log()
    );

    // 5. A burst: 50 deliveries of one push, 8 at a time: at most 2 sync runs.
    let tip = repos.push("README.md", "hub, burst\n");
    let before = runs(&hub_runs);
    let body = github_body(&url, "main");
    let signature = format!("sha256={}", hmac(SECRET, &body));
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let (body, signature) = (&body, &signature);
                scope.spawn(move || {
                    (0..50)
                        .filter(|i| i % 8 == w)
                        .map(|i| {
                            post(
                                port,
                                "/",
                                &[
                                    ("X-GitHub-Event", "push".to_owned()),
                                    ("X-GitHub-Delivery", format!("burst-{i}")),
                                    ("X-Hub-Signature-256", signature.clone()),
                                ],
                                body,
                            )
                            .0
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("worker")).collect()
    });
    assert!(statuses.contains(&202), "{statuses:?}\n{}", hook_log());
    assert!(
        synced_to("hub", &tip, &hub_runs, before),
        "burst: hub at {}, not {tip}: {}",
        repos.head("hub"),
        hook_log()
    );
    // Let the queued second run (3 s after the first start) start and end.
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        sd.wait_for(20, || sd.property("sync-repo@hub.service", "ActiveState") == "inactive"),
        "{}",
        hook_log()
    );
    let burst_runs = runs(&hub_runs) - before;
    println!("burst of 50: answers {statuses:?}; {burst_runs} sync run(s)");
    assert!(
        (1..=2).contains(&burst_runs),
        "{burst_runs} runs for one burst: {}",
        hook_log()
    );
    drop(daemon);
}

fn sd_pid(sd: &Manager) -> String {
    sd.pid().to_string()
}
