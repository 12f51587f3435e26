//! Loopback git forges for transport tests and benchmarks: `git daemon` (git://) and smart HTTP
//! (lighttpd running `git http-backend` as CGI). Each binds 127.0.0.1 on a free port, runs in its
//! own process group, and is stopped by that group's id on drop, CGI children included.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

/// How long a server gets to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How many ports to try when another process grabs the free port first.
const START_ATTEMPTS: usize = 5;

/// A server process we started, in its own process group; killed with the group on drop.
#[derive(Debug)]
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

/// The loopback address every server binds, unless it is told to use IPv6's.
const LOOPBACK: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

impl Server {
    /// Spawn `cmd` (which must listen on `port`) and wait until it accepts connections.
    fn spawn(cmd: Command, port: u16, log: PathBuf, what: &str) -> Result<Server, String> {
        Server::spawn_on(cmd, LOOPBACK, port, log, what)
    }

    /// [`Server::spawn`] for a server listening on `host` (127.0.0.1 or ::1).
    fn spawn_on(
        mut cmd: Command,
        host: std::net::IpAddr,
        port: u16,
        log: PathBuf,
        what: &str,
    ) -> Result<Server, String> {
        let log_file = std::fs::File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let log_err = log_file.try_clone().map_err(|e| format!("dup log: {e}"))?;
        cmd.stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .process_group(0);
        let child = cmd.spawn().map_err(|e| format!("cannot start {what}: {e}"))?;
        let mut server = Server { child, port, log };
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = std::fs::read_to_string(&server.log).unwrap_or_default();
                return Err(format!("{what} exited at start ({status}): {log}"));
            }
            if TcpStream::connect((host, port)).is_ok() {
                return Ok(server);
            }
            if start.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "{what} did not answer on {host} port {port} within {START_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The child leads its own process group (process_group(0)), so `-PID` reaches every
        // process it forked (daemon connections, CGI scripts) and nothing else.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Whatever survived SIGTERM (including CGI children still writing) gets SIGKILL.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on 127.0.0.1 (free now; a server should bind it right away).
pub fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
    Ok(listener.local_addr().map_err(|e| format!("local_addr: {e}"))?.port())
}

/// `git --exec-path`: where git's helper programs live.
fn git_exec_path() -> Result<PathBuf, String> {
    let out = Command::new("git")
        .arg("--exec-path")
        .output()
        .map_err(|e| format!("git is not installed: {e}"))?;
    if !out.status.success() {
        return Err("`git --exec-path` failed".to_owned());
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Find `name` on `PATH` or in the usual sbin dirs (lighttpd lives in /usr/sbin).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .map(PathBuf::from)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `git daemon` serving every repo below `base` on git://127.0.0.1:PORT/.
#[derive(Debug)]
pub struct GitDaemon {
    server: Server,
    _dir: tempfile::TempDir,
}

impl GitDaemon {
    /// Start a daemon exporting every repo below `base` (push enabled too).
    /// Err says why when git's daemon is missing or does not start.
    pub fn start(base: &Path) -> Result<GitDaemon, String> {
        let exec_path = git_exec_path()?;
        if !exec_path.join("git-daemon").is_file() {
            return Err(format!("git-daemon is not installed in {}", exec_path.display()));
        }
        let base = std::fs::canonicalize(base).map_err(|e| format!("base {}: {e}", base.display()))?;
        let dir = crate::env::temp_dir("driftless-gitd.");
        let mut last_err = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let mut cmd = Command::new("git");
            cmd.env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", dir.path())
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .arg("daemon")
                .arg(format!("--base-path={}", base.display()))
                .args([
                    "--export-all",
                    "--reuseaddr",
                    "--enable=receive-pack",
                    "--listen=127.0.0.1",
                ])
                .arg(format!("--port={port}"))
                .arg(format!("--pid-file={}", dir.path().join("daemon.pid").display()))
                .arg(&base);
            match Server::spawn(cmd, port, dir.path().join("daemon.log"), "git daemon") {
                Ok(server) => return Ok(GitDaemon { server, _dir: dir }),
                Err(err) => last_err = err,
            }
        }
        Err(last_err)
    }

    /// `git://127.0.0.1:PORT/<repo_rel>`.
    pub fn url(&self, repo_rel: &str) -> String {
        format!(
            "git://127.0.0.1:{}/{}",
            self.server.port,
            repo_rel.trim_start_matches('/')
        )
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// The daemon's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }
}

/// Smart HTTP: lighttpd with `git http-backend` as CGI under `/git`, serving every repo below
/// `root` on http://127.0.0.1:PORT/git/, keep-alive on.
#[derive(Debug)]
pub struct SmartHttp {
    server: Server,
    /// 127.0.0.1, or ::1 with [`HttpOptions::ipv6`].
    host: std::net::IpAddr,
    dir: tempfile::TempDir,
    /// With TLS: the throwaway CA that signed the forge's certificate.
    ca: Option<PathBuf>,
    /// Marks written into the access log so far (see [`SmartHttp::requests`]).
    marks: std::sync::atomic::AtomicUsize,
}

impl SmartHttp {
    /// Start lighttpd for the repos below `root`. Err says why when lighttpd or
    /// git-http-backend is missing or lighttpd does not start.
    pub fn start(root: &Path) -> Result<SmartHttp, String> {
        SmartHttp::start_with(root, &HttpOptions::default())
    }

    /// The same forge behind TLS (https://127.0.0.1:PORT/git/), with a certificate for
    /// 127.0.0.1 signed by a throwaway CA made with the openssl CLI. A client trusts it through
    /// `SSL_CERT_FILE=`[`SmartHttp::ca_file`], as it would a company CA.
    pub fn start_tls(root: &Path) -> Result<SmartHttp, String> {
        SmartHttp::start_with(
            root,
            &HttpOptions {
                tls: true,
                ..HttpOptions::default()
            },
        )
    }

    /// A forge set up as `options` say (TLS, a fixed port, basic auth, extra lighttpd config).
    pub fn start_with(root: &Path, options: &HttpOptions) -> Result<SmartHttp, String> {
        let tls = options.tls;
        let host = if options.ipv6 {
            if !has_ipv6_loopback() {
                return Err("this machine has no IPv6 loopback (::1)".to_owned());
            }
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        } else {
            LOOPBACK
        };
        let bind = match host {
            std::net::IpAddr::V6(addr) => format!("[{addr}]"),
            std::net::IpAddr::V4(addr) => addr.to_string(),
        };
        let lighttpd = find_program("lighttpd")
            .ok_or_else(|| "lighttpd is not installed (apt-get install -y lighttpd)".to_owned())?;
        let backend = git_exec_path()?.join("git-http-backend");
        if !backend.is_file() {
            return Err(format!("{} is missing", backend.display()));
        }
        let root = std::fs::canonicalize(root).map_err(|e| format!("root {}: {e}", root.display()))?;
        let dir = crate::env::temp_dir("driftless-http.");
        let docroot = dir.path().join("htdocs");
        std::fs::create_dir_all(&docroot).map_err(|e| format!("create {}: {e}", docroot.display()))?;
        let path_env = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned());
        let (ca, tls_conf) = if tls {
            let ca = make_certificates(dir.path())?;
            let d = dir.path().display();
            (
                Some(ca),
                format!(
                    "server.modules += (\"mod_openssl\")\nssl.engine = \"enable\"\n\
                     ssl.pemfile = \"{d}/server.crt\"\nssl.privkey = \"{d}/server.key\"\n"
                ),
            )
        } else {
            (None, String::new())
        };
        let (auth_modules, auth_conf) = match &options.basic_auth {
            Some((user, password)) => {
                let users = dir.path().join("users");
                std::fs::write(&users, format!("{user}:{password}\n"))
                    .map_err(|e| format!("write {}: {e}", users.display()))?;
                (
                    "\"mod_auth\", \"mod_authn_file\", ",
                    format!(
                        "auth.backend = \"plain\"\nauth.backend.plain.userfile = \"{}\"\n\
                         auth.require = (\"/git\" => (\"method\" => \"basic\", \"realm\" => \"forge\", \
                         \"require\" => \"valid-user\"))\n",
                        users.display()
                    ),
                )
            }
            None => ("", String::new()),
        };
        let tls_conf = format!("{tls_conf}{auth_conf}{}\n", options.extra_conf);
        let mut last_err = String::new();
        for attempt in 0..START_ATTEMPTS {
            let port = match options.port {
                Some(port) => {
                    if attempt > 0 {
                        // Someone else's test may hold the fixed port for a moment.
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    port
                }
                None => free_port()?,
            };
            let conf = dir.path().join("lighttpd.conf");
            let text = format!(
                r#"server.modules = ({auth_modules}"mod_alias", "mod_cgi", "mod_setenv", "mod_accesslog")
accesslog.filename = "{accesslog}"
accesslog.format = "%r %s"
server.document-root = "{docroot}"
server.bind = "{bind}"
server.port = {port}
server.errorlog = "{errorlog}"
server.max-keep-alive-requests = 1000
server.max-keep-alive-idle = 30
server.max-request-size = 0
{tls_conf}alias.url += ("/git" => "{backend}")
$HTTP["url"] =~ "^/git" {{
  cgi.assign = ("" => "")
  setenv.set-environment = (
    "GIT_PROJECT_ROOT" => "{root}",
    "GIT_HTTP_EXPORT_ALL" => "1",
    "GIT_CONFIG_NOSYSTEM" => "1",
    "GIT_CONFIG_GLOBAL" => "/dev/null",
    "GIT_CONFIG_COUNT" => "1",
    "GIT_CONFIG_KEY_0" => "safe.directory",
    "GIT_CONFIG_VALUE_0" => "*",
    "HOME" => "{home}",
    "PATH" => "{path_env}"
  )
}}
"#,
                docroot = docroot.display(),
                errorlog = dir.path().join("error.log").display(),
                accesslog = dir.path().join("access.log").display(),
                backend = backend.display(),
                root = root.display(),
                home = dir.path().display(),
            );
            std::fs::write(&conf, text).map_err(|e| format!("write {}: {e}", conf.display()))?;
            let mut cmd = Command::new(&lighttpd);
            cmd.env_clear().env("PATH", &path_env).arg("-D").arg("-f").arg(&conf);
            match Server::spawn_on(cmd, host, port, dir.path().join("lighttpd.log"), "lighttpd") {
                Ok(server) => {
                    return Ok(SmartHttp {
                        server,
                        host,
                        dir,
                        ca,
                        marks: 0.into(),
                    });
                }
                Err(err) => {
                    let errorlog = std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
                    last_err = format!("{err}{errorlog}");
                }
            }
        }
        Err(last_err)
    }

    /// `http://127.0.0.1:PORT/git/<repo_rel>` (https with TLS; `[::1]` with
    /// [`HttpOptions::ipv6`]), without the port when it is the scheme's default.
    pub fn url(&self, repo_rel: &str) -> String {
        let (scheme, default_port) = if self.ca.is_some() {
            ("https", 443)
        } else {
            ("http", 80)
        };
        let port = if self.server.port == default_port {
            String::new()
        } else {
            format!(":{}", self.server.port)
        };
        let host = match self.host {
            std::net::IpAddr::V6(addr) => format!("[{addr}]"),
            std::net::IpAddr::V4(addr) => addr.to_string(),
        };
        format!("{scheme}://{host}{port}/git/{}", repo_rel.trim_start_matches('/'))
    }

    /// With TLS, the PEM file of the CA that signed the forge's certificate.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// The requests the forge answered since the previous call (or since it started), as
    /// `GET /git/r.git/info/refs?service=git-upload-pack HTTP/1.1 200` lines.
    ///
    /// lighttpd writes its access log in batches, about once a second, so this sends a marker
    /// request of its own and waits until the log shows it: everything before it is then there.
    pub fn requests(&self) -> Vec<String> {
        use std::io::{Read, Write};
        assert!(self.ca.is_none(), "requests() sends its marker in plain http");
        let mark = self.marks.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let target = format!("/driftless-mark-{mark}");
        let mut stream = TcpStream::connect((self.host, self.server.port)).expect("connect to the forge");
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .expect("send mark");
        let _ = stream.read_to_end(&mut Vec::new());
        let log = self.dir.path().join("access.log");
        let is_mark = |line: &&str, n: usize| line.starts_with(&format!("GET /driftless-mark-{n} "));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            if let Some(end) = lines.iter().position(|l| is_mark(l, mark)) {
                let start = lines.iter().position(|l| is_mark(l, mark - 1)).map_or(0, |i| i + 1);
                return lines[start..end].iter().map(|l| (*l).to_owned()).collect();
            }
            assert!(
                Instant::now() < deadline,
                "the forge's access log never showed {target}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// lighttpd's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }
}

/// How to set up a [`SmartHttp`] forge beyond the plain one.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Serve https with a throwaway CA (see [`SmartHttp::start_tls`]).
    pub tls: bool,
    /// Listen on this port (80 for a URL without one) instead of a free one.
    pub port: Option<u16>,
    /// Require HTTP basic auth with this user and password for everything under `/git`.
    pub basic_auth: Option<(String, String)>,
    /// More lighttpd config, e.g. `url.redirect = (...)`.
    pub extra_conf: String,
    /// Listen on the IPv6 loopback `[::1]` only (Err at start when the machine has none).
    pub ipv6: bool,
}

/// Whether this machine has the IPv6 loopback address: a socket can bind `[::1]`.
pub fn has_ipv6_loopback() -> bool {
    TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, 0)).is_ok()
}

/// An address that takes no new connection: a listener whose accept queue is full and never
/// drained, so the kernel drops every further SYN and a client's connect waits until its own
/// timeout, as with a forge behind a firewall that drops packets. Closed on drop.
#[derive(Debug)]
pub struct Unreachable {
    port: u16,
    _listener: TcpListener,
    _queued: Vec<TcpStream>,
}

impl Unreachable {
    /// Listen on a free loopback port with a backlog of 0 and fill the queue.
    pub fn start() -> Result<Unreachable, String> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
        let port = listener.local_addr().map_err(|e| format!("local_addr: {e}"))?.port();
        // listen(2) again on a listening socket changes its backlog.
        rustix::net::listen(&listener, 0).map_err(|e| format!("listen backlog 0: {e}"))?;
        let mut queued = Vec::new();
        for _ in 0..8 {
            match TcpStream::connect_timeout(&(LOOPBACK, port).into(), Duration::from_millis(200)) {
                Ok(stream) => queued.push(stream),
                // The queue is full: connects no longer complete.
                Err(_) => {
                    return Ok(Unreachable {
                        port,
                        _listener: listener,
                        _queued: queued,
                    });
                }
            }
        }
        Err(format!(
            "127.0.0.1:{port} still took connections after 8 with a backlog of 0"
        ))
    }

    /// `http://127.0.0.1:PORT/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, path.trim_start_matches('/'))
    }
}

/// A CA and a server certificate for 127.0.0.1 it signed, in `dir` (`ca.pem`, `server.crt`,
/// `server.key`); returns the CA's path.
fn make_certificates(dir: &Path) -> Result<PathBuf, String> {
    let openssl = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| format!("cannot run openssl (apt-get install -y openssl): {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
        }
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let ca = [
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=driftless test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ];
    openssl(&[&["req", "-x509"][..], &ec, &ca].concat())?;
    let csr = ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"];
    openssl(&[&["req"][..], &ec, &csr].concat())?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n\
         keyUsage=critical,digitalSignature\n",
    )
    .map_err(|e| format!("write server.ext: {e}"))?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ])?;
    Ok(dir.join("ca.pem"))
}

/// A forge that is there but does not serve: it accepts connections and then says nothing
/// ([`Stall::silent`]) or sends a response one byte at a time ([`Stall::trickle`]). A thread of
/// the test process; stopped on drop.
#[derive(Debug)]
pub struct Stall {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stall {
    /// Accepts every connection and never answers.
    pub fn silent() -> Result<Stall, String> {
        Stall::start(None)
    }

    /// Reads the request, answers a smart-HTTP ref advertisement's headers, then sends its body
    /// one byte every `every`.
    pub fn trickle(every: Duration) -> Result<Stall, String> {
        Stall::start(Some(every))
    }

    fn start(every: Option<Duration>) -> Result<Stall, String> {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
        let port = listener.local_addr().map_err(|e| format!("local_addr: {e}"))?.port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let Some(every) = every else {
                    held.push(stream);
                    continue;
                };
                let stopping = stopping.clone();
                held.push(stream.try_clone().expect("clone a socket"));
                std::thread::spawn(move || {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request);
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\n\
                          Content-Length: 1000000\r\n\r\n",
                    );
                    let line = b"001e# service=git-upload-pack\n0000";
                    for byte in line.iter().cycle() {
                        if stopping.load(Ordering::SeqCst) || stream.write_all(&[*byte]).is_err() {
                            break;
                        }
                        std::thread::sleep(every);
                    }
                });
            }
            drop(held);
        });
        Ok(Stall {
            port,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, path.trim_start_matches('/'))
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// tinyproxy on 127.0.0.1: a forward proxy for plain http and a CONNECT proxy for https, that
/// logs every request it handles (see [`Tinyproxy::log`]).
#[derive(Debug)]
pub struct Tinyproxy {
    server: Server,
    dir: tempfile::TempDir,
}

impl Tinyproxy {
    /// Start tinyproxy, allowing CONNECT to `connect_ports`. Err says why when it is missing or
    /// does not start.
    pub fn start(connect_ports: &[u16]) -> Result<Tinyproxy, String> {
        let tinyproxy = find_program("tinyproxy")
            .ok_or_else(|| "tinyproxy is not installed (apt-get install -y tinyproxy)".to_owned())?;
        let dir = crate::env::temp_dir("driftless-proxy.");
        let mut last_err = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let conf = dir.path().join("tinyproxy.conf");
            let connect: String = connect_ports.iter().map(|p| format!("ConnectPort {p}\n")).collect();
            let text = format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 60\nLogLevel Info\nMaxClients 20\n\
                 Allow 127.0.0.1\nDisableViaHeader Yes\n{connect}"
            );
            std::fs::write(&conf, text).map_err(|e| format!("write {}: {e}", conf.display()))?;
            let mut cmd = Command::new(&tinyproxy);
            cmd.env_clear().arg("-d").arg("-c").arg(&conf);
            match Server::spawn(cmd, port, dir.path().join("tinyproxy.log"), "tinyproxy") {
                Ok(server) => return Ok(Tinyproxy { server, dir }),
                Err(err) => last_err = err,
            }
        }
        Err(last_err)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port)
    }

    /// What tinyproxy logged so far (it logs to stderr with `-d`).
    pub fn log(&self) -> String {
        let _ = &self.dir;
        std::fs::read_to_string(&self.server.log).unwrap_or_default()
    }
}

/// OpenSSH's `sshd` on 127.0.0.1 with a throwaway host key, letting the current user in with a
/// throwaway deploy key (nothing of the system's ssh setup is read or changed).
#[derive(Debug)]
pub struct Sshd {
    server: Server,
    dir: tempfile::TempDir,
}

impl Sshd {
    /// Start sshd. Err says why when openssh-server is missing or sshd does not start.
    pub fn start() -> Result<Sshd, String> {
        let sshd = find_program("sshd")
            .ok_or_else(|| "sshd is not installed (apt-get install -y openssh-server)".to_owned())?;
        let dir = crate::env::temp_dir("driftless-sshd.");
        let d = dir.path();
        for (key, comment) in [
            ("host_key", "host"),
            ("deploy_key", "deploy"),
            ("other_host_key", "other"),
        ] {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                .arg(d.join(key))
                .output()
                .map_err(|e| format!("cannot run ssh-keygen: {e}"))?;
            if !out.status.success() {
                return Err(format!("ssh-keygen: {}", String::from_utf8_lossy(&out.stderr)));
            }
        }
        std::fs::copy(d.join("deploy_key.pub"), d.join("authorized_keys"))
            .map_err(|e| format!("authorized_keys: {e}"))?;
        // sshd insists on its privilege-separation directory.
        std::fs::create_dir_all("/run/sshd").map_err(|e| format!("create /run/sshd: {e}"))?;
        let mut last_err = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let conf = d.join("sshd_config");
            let text = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PidFile {d}/sshd.pid\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n",
                d = d.display()
            );
            std::fs::write(&conf, text).map_err(|e| format!("write {}: {e}", conf.display()))?;
            let mut cmd = Command::new(&sshd);
            cmd.arg("-D").arg("-e").arg("-f").arg(&conf);
            match Server::spawn(cmd, port, d.join("sshd.log"), "sshd") {
                Ok(server) => return Ok(Sshd { server, dir }),
                Err(err) => last_err = err,
            }
        }
        Err(last_err)
    }

    /// `ssh://USER@127.0.0.1:PORT<abs_path>` for the current user.
    pub fn url(&self, abs_path: &Path) -> String {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
        format!("ssh://{user}@127.0.0.1:{}{}", self.server.port, abs_path.display())
    }

    /// A known-hosts file that pins this server's host key (or, with `genuine` false, another
    /// key, as after a server swap), written into the server's temp dir; returns its path.
    pub fn known_hosts(&self, genuine: bool) -> Result<PathBuf, String> {
        let key = if genuine { "host_key.pub" } else { "other_host_key.pub" };
        let public = std::fs::read_to_string(self.dir.path().join(key)).map_err(|e| format!("read {key}: {e}"))?;
        let mut fields = public.split_whitespace();
        let (kind, blob) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        let path = self
            .dir
            .path()
            .join(if genuine { "known_hosts" } else { "wrong_known_hosts" });
        std::fs::write(&path, format!("[127.0.0.1]:{} {kind} {blob}\n", self.server.port))
            .map_err(|e| format!("write {}: {e}", path.display()))?;
        Ok(path)
    }

    /// The `core.sshCommand` that logs in with the deploy key and trusts only `known_hosts`.
    pub fn ssh_command(&self, known_hosts: &Path) -> String {
        format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} \
             -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes",
            self.dir.path().join("deploy_key").display(),
            known_hosts.display()
        )
    }
}

/// For a test that needs a service: `Some(service)`, or on `Err` print why and return `None` so
/// the test can return early. Under `CI=true` a missing service is a failure: panic instead.
#[allow(clippy::print_stderr)] // telling why a test is skipped is the point
pub fn require_service<T>(result: Result<T, String>) -> Option<T> {
    match result {
        Ok(service) => Some(service),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("required service unavailable under CI=true: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: required service unavailable: {why}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bare repo `demo.git` with one commit below a fresh temp dir.
    fn demo_root() -> tempfile::TempDir {
        let root = crate::env::temp_dir("driftless-forge-test.");
        let bare = root.path().join("demo.git");
        crate::git(
            root.path(),
            &["init", "-q", "--bare", "-b", "main", &bare.display().to_string()],
        );
        let work = root.path().join("work");
        crate::git(root.path(), &["init", "-q", "-b", "main", &work.display().to_string()]);
        crate::git(&work, &["commit", "-q", "--allow-empty", "-m", "one"]);
        crate::git(
            &work,
            &["push", "-q", &bare.display().to_string(), "HEAD:refs/heads/main"],
        );
        root
    }

    fn is_running(pid: u32) -> bool {
        // A reaped process has no /proc entry; a zombie would show state Z.
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
    }

    fn assert_serves_then_stops(url: String, pid: u32, port: u16, server: impl Sized) {
        let refs = crate::git(Path::new("/"), &["ls-remote", &url]);
        assert!(refs.contains("refs/heads/main"), "ls-remote {url}: {refs}");
        assert!(is_running(pid));
        drop(server);
        assert!(!is_running(pid), "server {pid} still running after drop");
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still open after drop"
        );
    }

    #[test]
    fn git_daemon_serves_and_stops_on_drop() {
        let root = demo_root();
        let Some(daemon) = require_service(GitDaemon::start(root.path())) else {
            return;
        };
        assert!(daemon.url("demo.git").starts_with("git://127.0.0.1:"));
        let (url, pid, port) = (daemon.url("demo.git"), daemon.pid(), daemon.port());
        assert_serves_then_stops(url, pid, port, daemon);
    }

    #[test]
    fn smart_http_serves_and_stops_on_drop() {
        let root = demo_root();
        let Some(http) = require_service(SmartHttp::start(root.path())) else {
            return;
        };
        assert!(http.url("/demo.git").ends_with("/git/demo.git"));
        let (url, pid, port) = (http.url("demo.git"), http.pid(), http.port());
        assert_serves_then_stops(url, pid, port, http);
    }

    #[test]
    fn missing_base_is_an_error_not_a_panic() {
        let err = GitDaemon::start(Path::new("/nonexistent/driftless")).expect_err("no such base");
        assert!(err.contains("/nonexistent/driftless"), "{err}");
        let err = SmartHttp::start(Path::new("/nonexistent/driftless")).expect_err("no such root");
        assert!(
            err.contains("/nonexistent/driftless") || err.contains("lighttpd"),
            "{err}"
        );
    }
}
