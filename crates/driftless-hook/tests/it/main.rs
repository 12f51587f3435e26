//! `driftless-hook --listen`, the mode without systemd: a real POST to the port it serves, and
//! the real `sync-repo` it runs moving the checkout; a wrong token moves nothing. (The socket
//! mode is tested on a real systemd manager: tests/tests/systemd/hook.rs.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use driftless_tests::env::{isolated_env, temp_dir};
use driftless_tests::forge::free_port;
use driftless_tests::{bin_path, git};

fn post(port: u16, path: &str, token: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(err) => panic!("driftless-hook --listen did not listen on {port}: {err}"),
        }
    };
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let request =
        format!("POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn listen_mode_runs_sync_repo_after_answering() {
    let dir = temp_dir("driftless-hook-listen.");
    let root = dir.path();
    let origin = root.join("origin.git");
    std::fs::create_dir_all(&origin).expect("mkdir");
    git(&origin, &["init", "-q", "--bare", "-b", "main"]);
    git(root, &["clone", "-q", "origin.git", "seed"]);
    std::fs::write(root.join("seed/README.md"), "one\n").expect("write");
    git(&root.join("seed"), &["add", "."]);
    git(
        &root.join("seed"),
        &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one"],
    );
    git(&root.join("seed"), &["push", "-q", "origin", "main"]);
    git(root, &["clone", "-q", "origin.git", "hub"]);
    std::fs::write(root.join("seed/README.md"), "two\n").expect("write");
    git(
        &root.join("seed"),
        &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two"],
    );
    git(&root.join("seed"), &["push", "-q", "origin", "main"]);
    let tip = git(&origin, &["rev-parse", "main"]);
    let config = root.join("driftless.yaml");
    std::fs::write(
        &config,
        format!(
            "state_dir: {r}/state\nrepos:\n  hub:\n    path: {r}/hub\n",
            r = root.display()
        ),
    )
    .expect("write config");
    std::fs::create_dir_all(root.join("credentials")).expect("mkdir");
    std::fs::write(root.join("credentials/hook"), "listen-secret\n").expect("write secret");

    let port = free_port().expect("free port");
    let mut child = Command::new(bin_path("driftless-hook"))
        .env_clear()
        .envs(isolated_env(root))
        .env("DRIFTLESS_CONFIG", &config)
        .env("DRIFTLESS_HOOK_CREDENTIALS", root.join("credentials"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--sync-repo"])
        .arg(bin_path("sync-repo"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start driftless-hook --listen");
    let head = || git(&root.join("hub"), &["rev-parse", "HEAD"]);

    let refused = post(port, "/hook/hub", "wrong");
    let accepted = post(port, "/hook/hub", "listen-secret");
    // Sequential: the next request is taken only after the sync, so this one answers after it.
    let unknown = post(port, "/hook/nope", "listen-secret");
    let moved = head();
    let _ = child.kill();
    let _ = child.wait();

    assert!(refused.starts_with("HTTP/1.1 401 "), "{refused}");
    assert!(accepted.starts_with("HTTP/1.1 202 "), "{accepted}");
    assert!(
        accepted.ends_with("running sync-repo hub (POST /hook/hub)\n"),
        "{accepted}"
    );
    assert!(unknown.starts_with("HTTP/1.1 404 "), "{unknown}");
    assert_eq!(moved, tip, "the checkout did not move to the pushed tip");
}
