//! Integration tests for the `driftless-notify` binary against a real HTTP server on loopback
//! (a plain `std::net` server in the test, recording every request it receives): a webhook URL's
//! secret never reaches the output, redirects are not followed and the report is posted once,
//! and a malformed URL is a config error.

mod alerts;
mod contract;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use driftless_tests::{Run, TestEnv};

const UNIT: &str = "sync-repo@hub.service";
const SECRET: &str = "S3CRET";

/// One request as the server read it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    target: String,
    body: String,
}

/// An HTTP/1.1 server on 127.0.0.1 answering every request with `response` (status line and
/// headers after the protocol name, e.g. `200 OK` or `307 Temporary Redirect\r\nLocation: ...`).
struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(response: impl Fn(u16) -> String + Send + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (Arc::clone(&requests), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    serve(stream, &response(port), &requests);
                }
            })
        };
        Server {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, rest: &str) -> String {
        format!("http://127.0.0.1:{}{rest}", self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("requests lock").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Read one request (headers, then `Content-Length` bytes of body), record it, and answer it:
/// recorded first, so a client that has its answer finds its request counted.
fn serve(stream: TcpStream, response: &str, requests: &Mutex<Vec<Request>>) -> Option<()> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let (method, target) = (words.next()?.to_owned(), words.next()?.to_owned());
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    requests.lock().ok()?.push(Request {
        method,
        target,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {response}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let _ = stream.shutdown(Shutdown::Both);
    Some(())
}

fn env() -> TestEnv {
    TestEnv::new().with_bin("driftless-notify", env!("CARGO_BIN_EXE_driftless-notify"))
}

/// `driftless-notify ARGS UNIT` with a config whose `notify.url` is `url`.
fn notify(env: &TestEnv, url: &str, args: &[&str]) -> Run {
    let config = env.write_config(&format!(
        "state_dir: {}\nnotify:\n  url: '{url}'\n  format: plain\n",
        env.state_dir().display()
    ));
    let mut cmd = env.cmd("driftless-notify");
    cmd.env("DRIFTLESS_CONFIG", config).args(args).arg(UNIT);
    Run::of(&mut cmd)
}

#[track_caller]
fn assert_no_secret(run: &Run, what: &str) {
    assert!(
        !run.all_output().contains(SECRET),
        "{what}: the URL's secret is in the output\n--- stdout\n{}\n--- stderr\n{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn a_token_url_never_appears_in_any_output() {
    let env = env();
    let ok = Server::start(|_| "200 OK".to_owned());
    let failing = Server::start(|_| "500 Internal Server Error".to_owned());
    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port();
    // A Slack-style secret path, a Gotify-style token query, a password.
    let secret_path = format!("/services/T0/B0/{SECRET}?token={SECRET}");
    let with_password = |url: String| url.replacen("http://", &format!("http://bob:{SECRET}@"), 1);

    for url in [ok.url(&secret_path), with_password(ok.url("/hook"))] {
        let run = notify(&env, &url, &["--dry-run"]);
        run.expect_code(0);
        assert!(
            run.stdout.starts_with(&format!("POST http://127.0.0.1:{}", ok.port)),
            "{}",
            run.stdout
        );
        assert_no_secret(&run, "--dry-run");

        let run = notify(&env, &url, &[]);
        run.expect_code(0);
        assert!(
            run.stdout
                .contains(&format!("reported to http://127.0.0.1:{}", ok.port)),
            "{}",
            run.stdout
        );
        assert_no_secret(&run, "success line");
    }
    let got = ok.requests();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].target, secret_path, "the real URL was used");
    assert!(got[0].body.contains(UNIT), "{got:?}");

    let run = notify(&env, &failing.url(&secret_path), &[]);
    run.expect_code(75);
    assert!(run.stderr.contains("500"), "{}", run.stderr);
    assert_no_secret(&run, "HTTP error");

    let run = notify(&env, &format!("http://127.0.0.1:{closed}{secret_path}"), &[]);
    run.expect_code(75);
    assert_no_secret(&run, "connection error");
}

#[test]
fn a_redirect_is_not_followed_and_the_report_is_posted_once() {
    let env = env();
    let elsewhere = Server::start(|_| "200 OK".to_owned());
    let to_elsewhere = elsewhere.url(&format!("/collect?token={SECRET}"));
    for status in ["307 Temporary Redirect", "308 Permanent Redirect", "302 Found"] {
        let redirecting = {
            let location = to_elsewhere.clone();
            Server::start(move |_| format!("{status}\r\nLocation: {location}"))
        };
        let run = notify(&env, &redirecting.url("/hook"), &[]);
        run.expect_code(75);
        assert!(
            run.stderr.contains(&status[..3]) && run.stderr.contains("not followed"),
            "{status}: {}",
            run.stderr
        );
        assert_no_secret(&run, status);
        let got = redirecting.requests();
        assert_eq!(got.len(), 1, "{status}: posted once: {got:?}");
        assert_eq!(got[0].method, "POST");

        // Same origin too: following it would post the report a second time.
        let same = Server::start(move |port| format!("{status}\r\nLocation: http://127.0.0.1:{port}/again"));
        notify(&env, &same.url("/hook"), &[]).expect_code(75);
        assert_eq!(same.requests().len(), 1, "{status}: posted once: {:?}", same.requests());
    }
    assert!(
        elsewhere.requests().is_empty(),
        "the redirect target got the report: {:?}",
        elsewhere.requests()
    );
}

#[test]
fn a_malformed_url_is_a_config_error() {
    let env = env();
    for url in [
        format!("http://exa mple.invalid/hook?token={SECRET}"),
        format!("http://[::1/hook?token={SECRET}"),
        "http://".to_owned(),
    ] {
        let run = notify(&env, &url, &[]);
        run.expect_code(2);
        assert!(
            run.stderr.starts_with("driftless-notify: error:") && run.stderr.contains("notify.url"),
            "{url}: {}",
            run.stderr
        );
        assert_no_secret(&run, &url);
    }
}
