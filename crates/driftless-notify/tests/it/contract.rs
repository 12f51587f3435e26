//! What `driftless-notify` prints at each verbosity (the
//! output contract), against a real HTTP listener on 127.0.0.1 standing in for the webhook.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use driftless_tests::{Run, TestEnv};

const UNIT: &str = "sync-repo@hub.service";

/// A webhook on 127.0.0.1 that answers `200 OK` to each of `posts` requests, then stops.
fn webhook(posts: usize) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let url = format!("http://{}/driftless", listener.local_addr().expect("local addr"));
    let server = std::thread::spawn(move || {
        for _ in 0..posts {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("read a header");
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().expect("a length");
                }
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("read the body");
            let mut stream = reader.into_inner();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .expect("answer");
        }
    });
    (url, server)
}

fn env_with(url: &str) -> (TestEnv, std::path::PathBuf) {
    let env = TestEnv::new().with_bin("driftless-notify", env!("CARGO_BIN_EXE_driftless-notify"));
    let config = env.write_config(&format!("notify:\n  url: {url}\n"));
    (env, config)
}

#[test]
fn a_report_sent_is_one_line_and_nothing_under_quiet() {
    let (url, server) = webhook(2);
    let (env, config) = env_with(&url);
    let run = |args: &[&str]| {
        let mut cmd = env.cmd("driftless-notify");
        cmd.arg("--config").arg(&config).args(args).arg(UNIT);
        Run::of(&mut cmd)
    };
    let default = run(&[]);
    default.expect_code(0);
    // The URL is shown as its origin only: its path may hold the webhook's secret.
    let origin = url.trim_end_matches("/driftless");
    assert_eq!(default.stdout, format!("{UNIT}: reported to {origin} (200 OK)\n"));
    let quiet = run(&["-q"]);
    quiet.expect_code(0);
    assert_eq!(quiet.stdout, "", "sent: nothing for cron to mail");
    server.join().expect("the webhook got both reports");
}

#[test]
fn a_closed_stdout_ends_the_output_not_the_run() {
    let (url, server) = webhook(1);
    let (env, config) = env_with(&url);
    let mut cmd = env.std_cmd("driftless-notify");
    cmd.arg("--config").arg(&config).arg(UNIT);
    let run = Run::with_closed_stdout(&mut cmd);
    run.expect_code(0);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    server.join().expect("the report was still sent");

    let mut cmd = env.std_cmd("driftless-notify");
    cmd.arg("--config").arg(&config).args(["--dry-run", UNIT]);
    let run = Run::with_closed_stdout(&mut cmd);
    run.expect_code(0);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}
