//! A small blocking HTTP/1.1 client for plain `http://` remotes, plugged into gix's smart-HTTP
//! transport.
//!
//! gix's reqwest backend builds a client, two threads and an async runtime for every
//! connection, and opens a new TCP connection for every repo. On a no-change tick that is most
//! of the work, since the forge answers one small request. This client writes each request in
//! one piece with `TCP_NODELAY`, and keeps connections alive in a pool shared by every repo of
//! the process, so `sync-repo --all` pays one connection per forge and worker, not per repo.
//! `https://` stays with reqwest and rustls.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use gix::protocol::transport::client::blocking_io::http::{self, GetResponse, PostBodyDataKind, PostResponse};

/// Idle connections by `host:port`.
fn pool() -> &'static Mutex<HashMap<String, Vec<BufReader<TcpStream>>>> {
    static POOL: OnceLock<Mutex<HashMap<String, Vec<BufReader<TcpStream>>>>> = OnceLock::new();
    POOL.get_or_init(Default::default)
}

/// The backend handed to gix for one remote.
#[derive(Default)]
pub struct KeepAlive;

/// An exchange whose request body gix is still writing: sent when the response is first read.
struct Exchange {
    authority: String,
    head: String,
    body: Vec<u8>,
    stream: Option<BufReader<TcpStream>>,
    /// Response body bytes still to come: `Some(n)` for Content-Length, `None` for chunked.
    remaining: Option<Option<u64>>,
    chunk_left: u64,
    done: bool,
}

fn io_err(message: impl Into<String>) -> std::io::Error {
    std::io::Error::other(message.into())
}

fn gix_err(err: std::io::Error) -> gix::Error {
    gix::Error::from_error(err)
}

impl KeepAlive {
    fn request_head(
        method: &str,
        url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> std::io::Result<(String, String)> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| io_err(format!("not a plain http URL: {url}")))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\n");
        for header in headers {
            head.push_str(header.as_ref());
            head.push_str("\r\n");
        }
        Ok((authority.to_owned(), head))
    }
}

impl Exchange {
    fn new(authority: String, head: String) -> Exchange {
        Exchange {
            authority,
            head,
            body: Vec::new(),
            stream: None,
            remaining: None,
            chunk_left: 0,
            done: false,
        }
    }

    /// Send the request on a pooled connection (or a new one), read the status and headers,
    /// and return the header lines. A pooled connection the server already closed is retried
    /// once on a fresh one.
    fn send(&mut self) -> std::io::Result<Vec<u8>> {
        let mut request = self.head.clone();
        request.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(&self.body);
        let pooled = pool()
            .lock()
            .ok()
            .and_then(|mut p| p.get_mut(&self.authority).and_then(Vec::pop));
        if let Some(stream) = pooled
            && let Ok(headers) = self.exchange(stream, &bytes)
        {
            return Ok(headers);
        }
        let stream = TcpStream::connect(&self.authority)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        self.exchange(BufReader::new(stream), &bytes)
    }

    fn exchange(&mut self, mut stream: BufReader<TcpStream>, request: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.get_mut().write_all(request)?;
        let mut status = String::new();
        if stream.read_line(&mut status)? == 0 {
            return Err(io_err("connection closed before the response"));
        }
        let code: u16 = status
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut headers = Vec::new();
        let (mut length, mut chunked, mut close) = (None, false, false);
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line)? == 0 {
                return Err(io_err("connection closed in the response headers"));
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':') {
                let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
                match name.as_str() {
                    "content-length" => length = value.parse::<u64>().ok(),
                    "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                    "connection" => close = value.eq_ignore_ascii_case("close"),
                    _ => {}
                }
            }
            headers.extend_from_slice(trimmed.as_bytes());
            headers.push(b'\n');
        }
        if !(200..300).contains(&code) {
            return Err(io_err(format!("the forge answered {}", status.trim())));
        }
        self.remaining = Some(if chunked {
            None
        } else {
            Some(length.unwrap_or(u64::MAX))
        });
        if close || (!chunked && length.is_none()) {
            // Read to the end; the connection cannot be reused.
            self.remaining = Some(Some(u64::MAX));
            self.authority.clear();
        }
        self.stream = Some(stream);
        Ok(headers)
    }

    /// Read response body bytes into `buf`; 0 at the end, when the connection goes back to the pool.
    fn read_body(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Ok(0);
        };
        let n = match self.remaining {
            Some(Some(left)) => {
                if left == 0 {
                    0
                } else {
                    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let n = stream.read(&mut buf[..want])?;
                    if n == 0 && left != u64::MAX {
                        return Err(io_err("connection closed in the response body"));
                    }
                    self.remaining = Some(Some(if left == u64::MAX { left } else { left - n as u64 }));
                    n
                }
            }
            Some(None) => {
                if self.chunk_left == 0 {
                    let mut line = String::new();
                    stream.read_line(&mut line)?;
                    let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                        .map_err(|_| io_err("malformed chunked response"))?;
                    if size == 0 {
                        // Trailers end with an empty line.
                        loop {
                            line.clear();
                            if stream.read_line(&mut line)? == 0 || line.trim().is_empty() {
                                break;
                            }
                        }
                        0
                    } else {
                        self.chunk_left = size;
                        return self.read_body(buf);
                    }
                } else {
                    let want = buf.len().min(usize::try_from(self.chunk_left).unwrap_or(usize::MAX));
                    let n = stream.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io_err("connection closed in a chunk"));
                    }
                    self.chunk_left -= n as u64;
                    if self.chunk_left == 0 {
                        let mut crlf = [0u8; 2];
                        stream.read_exact(&mut crlf)?;
                    }
                    n
                }
            }
            None => 0,
        };
        if n == 0 {
            self.done = true;
            if let Some(stream) = self.stream.take()
                && !self.authority.is_empty()
                && self.remaining != Some(Some(u64::MAX))
                && let Ok(mut pool) = pool().lock()
            {
                pool.entry(self.authority.clone()).or_default().push(stream);
            }
        }
        Ok(n)
    }
}

/// Shared between the writer of the request body and the readers of the response.
#[derive(Clone)]
pub struct Handle(Arc<Mutex<Exchange>>);

impl Handle {
    fn with<T>(&self, f: impl FnOnce(&mut Exchange) -> std::io::Result<T>) -> std::io::Result<T> {
        let mut exchange = self.0.lock().map_err(|_| io_err("HTTP exchange poisoned"))?;
        f(&mut exchange)
    }
}

/// Collects the request body; nothing is sent until the response is read.
pub struct RequestBody(Handle);

impl Write for RequestBody {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.with(|e| {
            e.body.extend_from_slice(buf);
            Ok(buf.len())
        })
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The response headers, one `name: value` per line; reading them sends the request.
pub struct Headers {
    handle: Handle,
    lines: Option<Cursor<Vec<u8>>>,
}

impl Headers {
    fn received(&mut self) -> std::io::Result<&mut Cursor<Vec<u8>>> {
        if self.lines.is_none() {
            let lines = self.handle.with(|e| {
                if e.stream.is_some() || e.done {
                    Ok(Vec::new())
                } else {
                    e.send()
                }
            })?;
            self.lines = Some(Cursor::new(lines));
        }
        Ok(self.lines.as_mut().expect("just set"))
    }
}

impl Read for Headers {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.received()?.read(buf)
    }
}

impl BufRead for Headers {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.received()?.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        if let Some(lines) = self.lines.as_mut() {
            lines.consume(amt);
        }
    }
}

/// The response body, streamed from the connection.
pub struct Body {
    handle: Handle,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

impl Read for Body {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Body {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos >= self.len {
            let buf = &mut self.buf;
            self.len = self.handle.with(|e| {
                if e.stream.is_none() && !e.done && e.remaining.is_none() {
                    e.send()?;
                }
                e.read_body(buf)
            })?;
            self.pos = 0;
        }
        Ok(&self.buf[self.pos..self.len])
    }
    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.len);
    }
}

impl KeepAlive {
    fn start(
        &self,
        method: &str,
        url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> gix::Result<Handle> {
        let (authority, head) = Self::request_head(method, url, headers).map_err(gix_err)?;
        Ok(Handle(Arc::new(Mutex::new(Exchange::new(authority, head)))))
    }

    fn readers(handle: &Handle) -> (Headers, Body) {
        (
            Headers {
                handle: handle.clone(),
                lines: None,
            },
            Body {
                handle: handle.clone(),
                buf: vec![0; 64 * 1024],
                pos: 0,
                len: 0,
            },
        )
    }
}

impl http::Http for KeepAlive {
    type Headers = Headers;
    type ResponseBody = Body;
    type PostBody = RequestBody;

    fn get(
        &mut self,
        url: &str,
        _base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> gix::Result<GetResponse<Headers, Body>> {
        let handle = self.start("GET", url, headers)?;
        let (mut headers, body) = Self::readers(&handle);
        // Send now, so a connection failure surfaces here as it does with other backends.
        headers.received().map_err(gix_err)?;
        Ok(GetResponse { headers, body })
    }

    fn post(
        &mut self,
        url: &str,
        _base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
        _body: PostBodyDataKind,
    ) -> gix::Result<PostResponse<Headers, Body, RequestBody>> {
        let handle = self.start("POST", url, headers)?;
        let (headers, body) = Self::readers(&handle);
        Ok(PostResponse {
            post_body: RequestBody(handle),
            headers,
            body,
        })
    }

    fn configure(&mut self, _config: &dyn std::any::Any) -> gix::Result {
        Ok(())
    }
}
