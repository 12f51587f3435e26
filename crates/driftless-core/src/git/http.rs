//! http:// and https:// for gix's smart-HTTP transport, through ureq: a blocking client with no
//! async runtime that keeps connections alive.
//!
//! gix's reqwest backend builds a client, two threads and an async runtime for every connection,
//! and opens a new TCP connection for every repo. On a no-change tick that is most of the work,
//! since the forge answers one small request. Here one ureq `Agent` per distinct set of settings
//! is shared by every repo of the process, so `sync-repo --all` pays one connection per forge
//! and worker, not per repo.
//!
//! The settings are git's, as gix reads them from git config and the environment
//! (`http.proxy`, `http_proxy`/`https_proxy`/`no_proxy`, `http.extraHeader`,
//! `http.followRedirects`, `http.lowSpeedLimit`/`http.lowSpeedTime`, `http.sslCAInfo`,
//! `http.sslVerify`), plus `http.connectTimeout`. Unlike git, a forge that accepts and never
//! answers, or trickles, ends the run: see [`DEFAULT_LOW_SPEED_LIMIT`] and [`DEADLINE`].

use std::collections::HashMap;
use std::io::{BufRead, Cursor, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gix::protocol::transport::client::AuthenticationRequired;
use gix::protocol::transport::client::blocking_io::http::{
    self, GetResponse, Options, PostBodyDataKind, PostResponse, options::FollowRedirects,
};

/// How long a TCP (and TLS) connection may take to open, unless `http.connectTimeout` (seconds)
/// says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Below this many bytes per second for [`DEFAULT_LOW_SPEED_TIME`] seconds, the transfer is
/// abandoned, unless `http.lowSpeedLimit` and `http.lowSpeedTime` say otherwise. git has no
/// default here and waits forever; a timer unit must not.
pub const DEFAULT_LOW_SPEED_LIMIT: u32 = 1000;
/// See [`DEFAULT_LOW_SPEED_LIMIT`]. Also the longest wait for any single read, so a forge that
/// accepts and never answers ends the run after this long.
pub const DEFAULT_LOW_SPEED_TIME: u64 = 30;
/// The longest a fetch over http(s) may take in all, well under the unit's `TimeoutStartSec=5min`
/// so the run can still report and release its lock.
pub const DEADLINE: Duration = Duration::from_secs(240);

/// The forge answered with a status that is neither success nor a request for credentials.
#[derive(Debug, thiserror::Error)]
#[error("the forge answered HTTP {code} for {url}{}", location.as_ref().map(|l| format!(", redirecting to {l}, which http.followRedirects does not allow")).unwrap_or_default())]
pub struct Status {
    /// The HTTP status code.
    pub code: u16,
    /// The URL asked for, credentials redacted.
    pub url: String,
    /// Where a redirect that was not followed pointed.
    pub location: Option<String>,
}

/// The transfer was abandoned because it was too slow or took too long.
#[derive(Debug, thiserror::Error)]
pub enum Stalled {
    /// Fewer bytes than `http.lowSpeedLimit` per second for `http.lowSpeedTime` seconds.
    #[error(
        "the forge sent {bytes} bytes in {seconds} s, below http.lowSpeedLimit={limit} bytes/s \
         for http.lowSpeedTime={seconds} s"
    )]
    TooSlow { bytes: u64, seconds: u64, limit: u32 },
    /// The whole fetch took longer than [`DEADLINE`].
    #[error("the fetch did not finish within {0:?}")]
    Deadline(Duration),
}

/// What one remote's requests are sent with.
#[derive(Debug, Clone)]
struct Settings {
    connect_timeout: Duration,
    low_speed_limit: u32,
    low_speed_time: Duration,
    proxy: Option<String>,
    no_proxy: Option<String>,
    extra_headers: Vec<String>,
    follow: FollowRedirects,
    ca_info: Option<PathBuf>,
    verify: bool,
    deadline: Instant,
}

impl Settings {
    /// The proxy to reach `url` through, if any: `no_proxy` entries match the host or a domain
    /// above it, `*` matches every host (curl's rules).
    fn proxy_for(&self, url: &str) -> Option<&str> {
        let proxy = self.proxy.as_deref().filter(|p| !p.trim().is_empty())?;
        let host = host_of(url).to_ascii_lowercase();
        let excluded = self.no_proxy.as_deref().is_some_and(|list| {
            list.split([',', ' '])
                .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
                .filter(|e| !e.is_empty())
                .any(|e| e == "*" || host == e || host.ends_with(&format!(".{e}")))
        });
        (!excluded).then_some(proxy)
    }

    /// The shared agent for these settings and `proxy`, built on first use. Only an agent that
    /// speaks TLS (`tls`: an https URL or proxy) loads the system's root certificates: parsing
    /// them is a tenth of a plain-http run's own CPU time.
    fn agent(&self, proxy: Option<&str>, tls: bool) -> std::io::Result<ureq::Agent> {
        static AGENTS: OnceLock<Mutex<HashMap<String, ureq::Agent>>> = OnceLock::new();
        let key = format!(
            "{proxy:?}|{tls}|{:?}|{:?}|{:?}|{}",
            self.connect_timeout, self.low_speed_time, self.ca_info, self.verify
        );
        let agents = AGENTS.get_or_init(Default::default);
        if let Some(agent) = agents.lock().ok().and_then(|a| a.get(&key).cloned()) {
            return Ok(agent);
        }
        let roots = match &self.ca_info {
            _ if !tls => ureq::tls::RootCerts::new_with_certs(&[]),
            Some(path) => ureq::tls::RootCerts::new_with_certs(&read_certificates(path)?),
            None => ureq::tls::RootCerts::PlatformVerifier,
        };
        let mut tls = ureq::tls::TlsConfig::builder().root_certs(roots);
        if !self.verify {
            tls = tls.disable_verification(true);
        }
        let proxy = proxy
            .map(|p| {
                let p = if p.contains("://") {
                    p.to_owned()
                } else {
                    format!("http://{p}")
                };
                ureq::Proxy::new(&p).map_err(|e| io_err(format!("http.proxy {}: {e}", crate::redact::redact(&p))))
            })
            .transpose()?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(proxy)
            .no_delay(true)
            .user_agent(ureq::config::AutoHeaderValue::None)
            .accept(ureq::config::AutoHeaderValue::None)
            .timeout_connect(Some(self.connect_timeout))
            .timeout_per_read(Some(self.low_speed_time))
            .timeout_per_write(Some(self.low_speed_time))
            .timeout_recv_response(Some(self.low_speed_time))
            .tls_config(tls.build())
            .build()
            .into();
        if let Ok(mut agents) = agents.lock() {
            agents.insert(key, agent.clone());
        }
        Ok(agent)
    }
}

/// The certificates of a PEM file named by `http.sslCAInfo`, read no further than 4 MiB.
fn read_certificates(path: &std::path::Path) -> std::io::Result<Vec<ureq::tls::Certificate<'static>>> {
    let mut pem = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(4 << 20).read_to_end(&mut pem))
        .map_err(|e| std::io::Error::new(e.kind(), format!("http.sslCAInfo {}: {e}", path.display())))?;
    Ok(ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert.to_owned()),
            _ => None,
        })
        .collect())
}

fn is_https(url: &str) -> bool {
    url.get(..6).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https:"))
}

/// `host` of `scheme://[user@]host[:port]/...`, without brackets around an IPv6 literal.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// `scheme://authority` of a URL.
fn origin_of(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    &url[..end]
}

/// Resolve a `Location` header against the URL that answered it.
fn join(url: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_owned()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{}//{rest}", url.split("//").next().unwrap_or("http:"))
    } else if location.starts_with('/') {
        format!("{}{location}", origin_of(url))
    } else {
        let path_end = url.find('?').unwrap_or(url.len());
        let dir = url[..path_end].rfind('/').map_or(url, |i| &url[..=i]);
        format!("{dir}{location}")
    }
}

fn io_err(message: impl Into<String>) -> std::io::Error {
    std::io::Error::other(message.into())
}

/// A ureq error as an I/O error; a timeout names the git setting that sets it.
fn ureq_err(err: ureq::Error, url: &str, settings: &Settings) -> std::io::Error {
    use ureq::Timeout;
    match err {
        ureq::Error::Io(io) => io,
        ureq::Error::Timeout(t) => {
            let url = crate::redact::redact(url);
            let message = match t {
                Timeout::Connect | Timeout::Resolve => format!(
                    "could not connect to {url} within {} s (http.connectTimeout)",
                    settings.connect_timeout.as_secs()
                ),
                Timeout::Global => format!("{url}: the fetch did not finish within {DEADLINE:?}"),
                _ => format!(
                    "{url} sent nothing for {} s (http.lowSpeedTime)",
                    settings.low_speed_time.as_secs()
                ),
            };
            std::io::Error::new(std::io::ErrorKind::TimedOut, message)
        }
        other => std::io::Error::other(other),
    }
}

/// A request gix has described, sent when its response is first needed.
struct Request {
    post: bool,
    url: String,
    base_url: String,
    headers: Vec<String>,
    body: Vec<u8>,
    follow: bool,
}

/// Abandons a transfer slower than the low-speed limit, or past the deadline.
struct Pace {
    limit: u32,
    window: Duration,
    started: Instant,
    bytes: u64,
    deadline: Instant,
}

impl Pace {
    fn record(&mut self, n: usize) -> std::io::Result<()> {
        if Instant::now() > self.deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                Stalled::Deadline(DEADLINE),
            ));
        }
        self.bytes += n as u64;
        let elapsed = self.started.elapsed();
        if elapsed >= self.window {
            let seconds = self.window.as_secs().max(1);
            if self.bytes < u64::from(self.limit) * seconds {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    Stalled::TooSlow {
                        bytes: self.bytes,
                        seconds,
                        limit: self.limit,
                    },
                ));
            }
            self.started = Instant::now();
            self.bytes = 0;
        }
        Ok(())
    }
}

enum State {
    Pending(Request),
    Open(ureq::BodyReader<'static>, Pace),
    Done,
}

/// One request and its response, shared by the writer of the request body and the readers of
/// the response.
struct Exchange {
    settings: Arc<Settings>,
    redirected: Arc<Mutex<Option<String>>>,
    state: State,
    header_lines: Option<Vec<u8>>,
}

impl Exchange {
    /// Send the request if it is still pending (following redirects as allowed), and keep the
    /// response's header lines and body.
    fn send(&mut self) -> std::io::Result<()> {
        if !matches!(self.state, State::Pending(_)) {
            return Ok(());
        }
        let State::Pending(request) = std::mem::replace(&mut self.state, State::Done) else {
            return Ok(());
        };
        let Request {
            post,
            mut url,
            base_url,
            mut headers,
            body,
            follow,
        } = request;
        headers.extend(self.settings.extra_headers.iter().cloned());
        tracing::debug!(
            "http: {} {} (connect timeout {:?}, low speed {} B/s over {:?})",
            if post { "POST" } else { "GET" },
            crate::redact::redact(&url),
            self.settings.connect_timeout,
            self.settings.low_speed_limit,
            self.settings.low_speed_time
        );
        for _ in 0..=10 {
            let proxy = self.settings.proxy_for(&url);
            let tls = is_https(&url) || proxy.is_some_and(is_https);
            let agent = self.settings.agent(proxy, tls)?;
            let left = self.settings.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    Stalled::Deadline(DEADLINE),
                ));
            }
            let response = if post {
                let mut req = agent.post(&url);
                for (name, value) in headers.iter().filter_map(|h| h.split_once(':')) {
                    req = req.header(name.trim(), value.trim());
                }
                req.config().timeout_global(Some(left)).build().send(&body[..])
            } else {
                let mut req = agent.get(&url);
                for (name, value) in headers.iter().filter_map(|h| h.split_once(':')) {
                    req = req.header(name.trim(), value.trim());
                }
                req.config().timeout_global(Some(left)).build().call()
            }
            .map_err(|e| ureq_err(e, &url, &self.settings))?;
            let code = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get_all(name)
                    .iter()
                    .map(|v| v.as_bytes().to_vec())
                    .collect::<Vec<_>>()
            };
            if (300..400).contains(&code) {
                let location = header("location")
                    .first()
                    .map(|l| join(&url, &String::from_utf8_lossy(l)));
                if let Some(location) = location.clone().filter(|_| follow) {
                    url = self.redirect(&url, &base_url, location, &mut headers)?;
                    continue;
                }
                return Err(io_err_of(Status {
                    code,
                    url: crate::redact::redact(&url),
                    location: location.map(|l| crate::redact::redact(&l)),
                }));
            }
            if code == 401 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    AuthenticationRequired {
                        www_authenticate: header("www-authenticate").into_iter().map(Into::into).collect(),
                    },
                ));
            }
            if !(200..300).contains(&code) {
                return Err(io_err_of(Status {
                    code,
                    url: crate::redact::redact(&url),
                    location: None,
                }));
            }
            let mut lines = Vec::new();
            for (name, value) in response.headers() {
                lines.extend_from_slice(name.as_str().as_bytes());
                lines.extend_from_slice(b": ");
                lines.extend_from_slice(value.as_bytes());
                lines.push(b'\n');
            }
            self.header_lines = Some(lines);
            let pace = Pace {
                limit: self.settings.low_speed_limit,
                window: self.settings.low_speed_time,
                started: Instant::now(),
                bytes: 0,
                deadline: self.settings.deadline,
            };
            self.state = State::Open(response.into_body().into_reader(), pace);
            return Ok(());
        }
        Err(io_err(format!(
            "more than 10 redirects from {}",
            crate::redact::redact(&url)
        )))
    }

    /// Follow a redirect from `url` to `location` as git does: never from https to http, and
    /// only where the new URL keeps the request's tail, which then names the new base URL for
    /// every later request. Credentials and extra headers stay with the original host.
    fn redirect(
        &self,
        url: &str,
        base_url: &str,
        location: String,
        headers: &mut Vec<String>,
    ) -> std::io::Result<String> {
        let refused = |why: &str| {
            io_err(format!(
                "the forge redirected {} to {}, {why}",
                crate::redact::redact(url),
                crate::redact::redact(&location)
            ))
        };
        let scheme = |u: &str| u.split("://").next().unwrap_or("").to_ascii_lowercase();
        match (scheme(url).as_str(), scheme(&location).as_str()) {
            ("http", "http" | "https") | ("https", "https") => {}
            _ => return Err(refused("which git refuses (a downgrade or not http)")),
        }
        let tail = url.strip_prefix(base_url).unwrap_or("");
        let new_base = location
            .strip_suffix(tail)
            .ok_or_else(|| refused("which does not end in the same path; point the config at the new URL"))?;
        if origin_of(&location) != origin_of(url) {
            headers.retain(|h| {
                let name = h.split(':').next().unwrap_or("").trim();
                !name.eq_ignore_ascii_case("authorization") && !self.settings.extra_headers.contains(h)
            });
        }
        if let Ok(mut slot) = self.redirected.lock() {
            *slot = Some(new_base.to_owned());
        }
        tracing::info!(
            "{} redirected to {}",
            crate::redact::redact(url),
            crate::redact::redact(&location)
        );
        Ok(location)
    }

    /// Read response body bytes into `buf`; 0 at the end.
    fn read_body(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.send()?;
        let State::Open(reader, pace) = &mut self.state else {
            return Ok(0);
        };
        let n = reader.read(buf)?;
        pace.record(n)?;
        if n == 0 {
            self.state = State::Done;
        }
        Ok(n)
    }
}

fn io_err_of(status: Status) -> std::io::Error {
    std::io::Error::other(status)
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
        self.0.with(|e| match &mut e.state {
            State::Pending(request) => {
                request.body.extend_from_slice(buf);
                Ok(buf.len())
            }
            _ => Err(io_err("the request was already sent")),
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
    /// Why sending failed, returned by the first read.
    failed: Option<std::io::Error>,
}

impl Headers {
    fn received(&mut self) -> std::io::Result<&mut Cursor<Vec<u8>>> {
        if let Some(err) = self.failed.take() {
            return Err(err);
        }
        if self.lines.is_none() {
            let lines = self.handle.with(|e| {
                e.send()?;
                Ok(e.header_lines.take().unwrap_or_default())
            })?;
            self.lines = Some(Cursor::new(lines));
        }
        Ok(self.lines.get_or_insert_with(Default::default))
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
            self.len = self.handle.with(|e| e.read_body(buf))?;
            self.pos = 0;
        }
        Ok(&self.buf[self.pos..self.len])
    }
    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.len);
    }
}

impl Drop for Body {
    /// gix stops reading at the protocol's last packet; the few bytes after it (the end of a
    /// chunked body) are read here, so the connection goes back to the pool for the next repo.
    fn drop(&mut self) {
        let mut scratch = [0u8; 1024];
        let _ = self.handle.with(|e| {
            if !matches!(e.state, State::Open(..)) {
                return Ok(());
            }
            let mut left = 64 * 1024;
            while left > 0 {
                match e.read_body(&mut scratch) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left -= n.min(left),
                }
            }
            Ok(())
        });
    }
}

/// The backend handed to gix for one remote.
pub struct Forge {
    settings: Arc<Settings>,
    /// Set by `http.connectTimeout`, which gix does not read.
    connect_timeout: Option<Duration>,
    redirected: Arc<Mutex<Option<String>>>,
    /// Whether a request went out already: `http.followRedirects=initial` follows only the first.
    sent: bool,
}

impl Forge {
    /// A backend with git's defaults and ours, until gix passes the config to `configure`;
    /// `connect_timeout` is `http.connectTimeout`, which gix does not read.
    pub fn new(connect_timeout: Option<Duration>) -> Forge {
        Forge {
            settings: Arc::new(Settings {
                connect_timeout: connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
                low_speed_limit: DEFAULT_LOW_SPEED_LIMIT,
                low_speed_time: Duration::from_secs(DEFAULT_LOW_SPEED_TIME),
                proxy: None,
                no_proxy: None,
                extra_headers: Vec::new(),
                follow: FollowRedirects::Initial,
                ca_info: None,
                verify: true,
                deadline: Instant::now() + DEADLINE,
            }),
            connect_timeout,
            redirected: Arc::default(),
            sent: false,
        }
    }

    fn start(
        &mut self,
        post: bool,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> (Headers, Body, Handle) {
        let follow = match self.settings.follow {
            FollowRedirects::All => true,
            FollowRedirects::Initial => !self.sent,
            FollowRedirects::None => false,
        };
        self.sent = true;
        let request = Request {
            post,
            url: url.to_owned(),
            base_url: base_url.to_owned(),
            headers: headers.into_iter().map(|h| h.as_ref().to_owned()).collect(),
            body: Vec::new(),
            follow,
        };
        let handle = Handle(Arc::new(Mutex::new(Exchange {
            settings: self.settings.clone(),
            redirected: self.redirected.clone(),
            state: State::Pending(request),
            header_lines: None,
        })));
        let headers = Headers {
            handle: handle.clone(),
            lines: None,
            failed: None,
        };
        let body = Body {
            handle: handle.clone(),
            buf: vec![0; 64 * 1024],
            pos: 0,
            len: 0,
        };
        (headers, body, handle)
    }
}

impl http::Http for Forge {
    type Headers = Headers;
    type ResponseBody = Body;
    type PostBody = RequestBody;

    fn get(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> gix::Result<GetResponse<Headers, Body>> {
        let (mut headers, body, _) = self.start(false, url, base_url, headers);
        // Send now, but hand a failure over when gix reads the headers: only an io error from
        // there (401 as PermissionDenied) makes gix ask the credential helpers and try again.
        if let Err(err) = headers.received() {
            headers.failed = Some(err);
        }
        Ok(GetResponse { headers, body })
    }

    fn post(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
        _body: PostBodyDataKind,
    ) -> gix::Result<PostResponse<Headers, Body, RequestBody>> {
        let (headers, body, handle) = self.start(true, url, base_url, headers);
        Ok(PostResponse {
            post_body: RequestBody(handle),
            headers,
            body,
        })
    }

    fn configure(&mut self, config: &dyn std::any::Any) -> gix::Result {
        let Some(options) = config.downcast_ref::<Options>() else {
            return Ok(());
        };
        let mut settings = (*self.settings).clone();
        // git enables the low-speed check only when both are set; unset, ours apply.
        if options.low_speed_limit_bytes_per_second > 0 && options.low_speed_time_seconds > 0 {
            settings.low_speed_limit = options.low_speed_limit_bytes_per_second;
            settings.low_speed_time = Duration::from_secs(options.low_speed_time_seconds);
        }
        if self.connect_timeout.is_none()
            && let Some(timeout) = options.connect_timeout
        {
            settings.connect_timeout = timeout;
        }
        settings.proxy = options.proxy.clone();
        settings.no_proxy = options.no_proxy.clone();
        settings.extra_headers = options.extra_headers.clone();
        settings.follow = options.follow_redirects;
        settings.ca_info = options.ssl_ca_info.clone();
        settings.verify = options.ssl_verify;
        self.settings = Arc::new(settings);
        Ok(())
    }

    fn redirected_base_url(&self) -> Option<String> {
        self.redirected.lock().ok().and_then(|slot| slot.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_urls() {
        assert_eq!(host_of("http://forge.lan/ops/hub.git"), "forge.lan");
        assert_eq!(host_of("https://u@forge.lan:8443/x"), "forge.lan");
        assert_eq!(host_of("http://[::1]:8080/x.git"), "::1");
        assert_eq!(host_of("http://[::1]/x.git"), "::1");
    }

    #[test]
    fn redirect_locations_resolve_like_a_browser() {
        let url = "http://a:1/git/x.git/info/refs?service=git-upload-pack";
        assert_eq!(join(url, "https://b/y"), "https://b/y");
        assert_eq!(join(url, "/new/x.git/info/refs"), "http://a:1/new/x.git/info/refs");
        assert_eq!(join(url, "//c/z"), "http://c/z");
        assert_eq!(join(url, "refs2"), "http://a:1/git/x.git/info/refs2");
    }

    #[test]
    fn no_proxy_matches_hosts_and_domains() {
        let mut forge = Forge::new(None);
        let settings = Arc::make_mut(&mut forge.settings);
        settings.proxy = Some("http://127.0.0.1:3128".into());
        settings.no_proxy = Some("internal.lan, .corp".into());
        assert_eq!(
            settings.proxy_for("https://github.com/x"),
            Some("http://127.0.0.1:3128")
        );
        assert_eq!(settings.proxy_for("https://git.internal.lan/x"), None);
        assert_eq!(settings.proxy_for("https://internal.lan/x"), None);
        assert_eq!(settings.proxy_for("https://a.corp/x"), None);
        assert_eq!(
            settings.proxy_for("https://notinternal.lan/x"),
            Some("http://127.0.0.1:3128")
        );
        settings.no_proxy = Some("*".into());
        assert_eq!(settings.proxy_for("https://github.com/x"), None);
        settings.proxy = Some(String::new());
        settings.no_proxy = None;
        assert_eq!(settings.proxy_for("https://github.com/x"), None);
    }
}
