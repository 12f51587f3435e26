//! Read one HTTP/1.1 request, bounded in size and in time: the head is at most
//! [`Limits::max_head`] bytes, the body at most [`Limits::max_body`] (a larger `Content-Length`
//! is refused with 413 before a byte of it is read), and the whole request must arrive within
//! [`Limits::deadline`] (a client that trickles bytes, slowloris, is cut off with 408).
//!
//! Nothing is read past the body, and a body without `Content-Length` is refused (411): the
//! forges all send one, and chunked decoding is code an attacker would reach unauthenticated.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use super::Response;

/// Bounds on one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Request line and headers together.
    pub max_head: usize,
    /// The body.
    pub max_body: usize,
    /// Time for the whole request, from the first read.
    pub deadline: Duration,
}

/// The default body limit: 1 MiB. A push event of GitHub lists at most 20 commits and stays
/// far below it.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// The default read deadline. A forge sends its request at once; the time is for a slow link.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(5);

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head: 16 * 1024,
            max_body: DEFAULT_MAX_BODY,
            deadline: DEFAULT_DEADLINE,
        }
    }
}

/// One request, as read.
#[derive(Debug, Clone)]
pub struct Request {
    /// `POST`, `GET`, ...
    pub method: String,
    /// The request target, `/hook/hub`.
    pub path: String,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The raw body: signatures are computed over these bytes.
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (case-insensitive), trimmed; `None` when absent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}

/// How [`read`] bounds each blocking read: called with the time left before each one (a socket's
/// `SO_RCVTIMEO`, a `TcpStream`'s read timeout).
pub trait Deadline {
    /// Make the next read return `WouldBlock` or `TimedOut` after `left`.
    fn set_read_timeout(&mut self, left: Duration) -> io::Result<()>;
}

/// Read one request from `input`. `interim` receives `100 Continue` when the client waits for it
/// (curl does for bodies over 1 KiB). Every refusal is the [`Response`] to send.
pub fn read(
    input: &mut impl Read,
    deadline: &mut impl Deadline,
    interim: &mut impl Write,
    limits: &Limits,
) -> Result<Request, Response> {
    let start = Instant::now();
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let (head_len, mut request) = loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => break (len, owned(&parsed)?),
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Response::new(431, "more than 64 headers"));
            }
            Err(err) => return Err(Response::new(400, format!("malformed HTTP request: {err}"))),
        }
        if buf.len() >= limits.max_head {
            return Err(Response::new(
                431,
                format!("request head over {} bytes", limits.max_head),
            ));
        }
        let room = (limits.max_head - buf.len()).min(chunk.len());
        let n = read_some(input, deadline, start, limits, &mut chunk[..room])?;
        if n == 0 {
            return Err(Response::new(
                400,
                "the connection closed before the request head ended",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if request.header("transfer-encoding").is_some() {
        return Err(Response::new(
            411,
            "chunked bodies are not accepted; send Content-Length",
        ));
    }
    let length: usize = match request.header("content-length") {
        None if request.method == "POST" => {
            return Err(Response::new(411, "a POST needs Content-Length"));
        }
        None => 0,
        Some(text) => text
            .parse()
            .map_err(|_| Response::new(400, format!("Content-Length {text:?} is not a number")))?,
    };
    if length > limits.max_body {
        return Err(Response::new(
            413,
            format!("body of {length} bytes is over the limit of {} bytes", limits.max_body),
        ));
    }
    let mut body = buf.split_off(head_len);
    if body.len() > length {
        return Err(Response::new(400, "more bytes than Content-Length after the request"));
    }
    if body.len() < length
        && request
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        // Ignored if it fails: the read below then ends the request.
        let _ = interim
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .and_then(|()| interim.flush());
    }
    body.reserve_exact(length - body.len());
    while body.len() < length {
        let room = (length - body.len()).min(chunk.len());
        let n = read_some(input, deadline, start, limits, &mut chunk[..room])?;
        if n == 0 {
            return Err(Response::new(
                400,
                format!("the connection closed after {} of {length} body bytes", body.len()),
            ));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    request.body = body;
    Ok(request)
}

/// One read under what is left of the deadline; running out of it is 408.
fn read_some(
    input: &mut impl Read,
    deadline: &mut impl Deadline,
    start: Instant,
    limits: &Limits,
    into: &mut [u8],
) -> Result<usize, Response> {
    let timeout = || {
        Response::new(
            408,
            format!("the request did not arrive within {} ms", limits.deadline.as_millis()),
        )
    };
    loop {
        let left = limits.deadline.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(timeout());
        }
        deadline
            .set_read_timeout(left)
            .map_err(|err| Response::new(500, format!("cannot set the read deadline: {err}")))?;
        match input.read(into) {
            Ok(n) => return Ok(n),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(timeout());
            }
            Err(err) => return Err(Response::new(400, format!("reading the request: {err}"))),
        }
    }
}

fn owned(parsed: &httparse::Request<'_, '_>) -> Result<Request, Response> {
    let mut headers = Vec::with_capacity(parsed.headers.len());
    for header in parsed.headers.iter() {
        let value = std::str::from_utf8(header.value)
            .map_err(|_| Response::new(400, format!("header {} is not UTF-8", header.name)))?;
        headers.push((header.name.to_owned(), value.to_owned()));
    }
    Ok(Request {
        method: parsed.method.unwrap_or_default().to_owned(),
        path: parsed.path.unwrap_or_default().to_owned(),
        headers,
        body: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoDeadline;
    impl Deadline for NoDeadline {
        fn set_read_timeout(&mut self, _: Duration) -> io::Result<()> {
            Ok(())
        }
    }

    fn parse(bytes: &[u8], limits: &Limits) -> (Result<Request, Response>, Vec<u8>) {
        let mut interim = Vec::new();
        let result = read(&mut &bytes[..], &mut NoDeadline, &mut interim, limits);
        (result, interim)
    }

    #[test]
    fn a_post_with_its_body() {
        let raw = b"POST /hook/hub HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\nContent-Length: 5\r\n\r\nhello";
        let (request, _) = parse(raw, &Limits::default());
        let request = request.expect("parsed");
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/hook/hub");
        assert_eq!(request.header("x-github-event"), Some("push"));
        assert_eq!(request.body, b"hello");
    }

    #[test]
    fn a_body_over_the_limit_is_413_before_it_is_read() {
        let limits = Limits {
            max_body: 10,
            ..Limits::default()
        };
        // Only the head is there: reading the body would hit the end and give 400 instead.
        let (result, _) = parse(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", &limits);
        assert_eq!(result.expect_err("refused").status, 413);
        let (result, _) = parse(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", &limits);
        assert_eq!(result.expect("at the limit").body.len(), 10);
    }

    #[test]
    fn garbage_truncation_and_missing_length_are_refused() {
        let limits = Limits::default();
        assert_eq!(
            parse(b"\x16\x03\x01 hello\r\n\r\n", &limits).0.expect_err("tls").status,
            400
        );
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nHost: x\r\n", &limits)
                .0
                .expect_err("short head")
                .status,
            400
        );
        let short = b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc";
        assert_eq!(parse(short, &limits).0.expect_err("short body").status, 400);
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\n\r\n", &limits)
                .0
                .expect_err("no length")
                .status,
            411
        );
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(parse(chunked, &limits).0.expect_err("chunked").status, 411);
        let big = b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert_eq!(parse(big, &limits).0.expect_err("overflowing length").status, 400);
    }

    #[test]
    fn a_head_over_its_limit_is_431() {
        let limits = Limits {
            max_head: 64,
            ..Limits::default()
        };
        let raw = format!("POST / HTTP/1.1\r\nX-Long: {}\r\n\r\n", "a".repeat(100));
        assert_eq!(parse(raw.as_bytes(), &limits).0.expect_err("long").status, 431);
    }

    #[test]
    fn expect_100_continue_is_answered() {
        let raw = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok";
        // The body is already in the buffer: no interim answer is needed.
        let (_, interim) = parse(raw, &Limits::default());
        assert!(interim.is_empty());
        // Body after the head, in a second read: the client waited for the go-ahead.
        struct TwoReads(Vec<&'static [u8]>);
        impl Read for TwoReads {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let Some(next) = self.0.pop() else { return Ok(0) };
                buf[..next.len()].copy_from_slice(next);
                Ok(next.len())
            }
        }
        let mut input = TwoReads(vec![
            b"ok",
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        ]);
        let mut interim = Vec::new();
        let request = read(&mut input, &mut NoDeadline, &mut interim, &Limits::default()).expect("read");
        assert_eq!(request.body, b"ok");
        assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn a_slow_client_is_cut_off_at_the_deadline() {
        // A real socket: the client sends half a head and then nothing.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        client.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n").expect("write");
        let (mut server, _) = listener.accept().expect("accept");
        struct Tcp(std::net::TcpStream);
        impl Deadline for Tcp {
            fn set_read_timeout(&mut self, left: Duration) -> io::Result<()> {
                self.0.set_read_timeout(Some(left))
            }
        }
        let mut deadline = Tcp(server.try_clone().expect("clone"));
        let limits = Limits {
            deadline: Duration::from_millis(300),
            ..Limits::default()
        };
        let start = Instant::now();
        let result = read(&mut server, &mut deadline, &mut Vec::new(), &limits);
        let took = start.elapsed();
        assert_eq!(result.expect_err("cut off").status, 408);
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
        drop(client);
    }
}
