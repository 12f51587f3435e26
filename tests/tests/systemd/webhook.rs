//! A tiny HTTP listener on 127.0.0.1 that records the body of every POST and answers 200: the
//! notifier's receiving end.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

/// A listener running on its own thread until the test process ends.
pub struct Webhook {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    bodies: Receiver<String>,
}

impl Webhook {
    /// Listen on a free loopback port.
    pub fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let url = format!("http://{}/hook", listener.local_addr().expect("local addr"));
        let (send, bodies) = channel();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(&stream);
                let mut head = String::new();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let _ = (&stream).write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = send.send(format!("{head}\n{}", String::from_utf8_lossy(&body)));
            }
        });
        Webhook { url, bodies }
    }

    /// The next request (headers, blank line, body), waiting up to `secs`.
    pub fn next(&self, secs: u64) -> Option<String> {
        self.bodies.recv_timeout(Duration::from_secs(secs)).ok()
    }
}
