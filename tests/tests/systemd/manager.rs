//! A real `systemd --user` manager for user `sdtest`, in a private mount namespace, started with
//! tests/support/systemd-user-manager.sh and stopped (manager, then journald) by PID on drop,
//! with the cgroups it made removed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The user the manager runs as.
pub const USER: &str = "sdtest";

/// A running manager; dropping it stops everything it started.
pub struct Manager {
    child: Child,
    uid: u32,
    journald: Option<u32>,
}

/// Only one test at a time may use [`USER`]'s manager and home: a lock held until dropped,
/// taken before the home is cleaned (tests of one binary run as parallel processes).
pub fn exclusive() -> std::fs::File {
    let path = std::env::temp_dir().join("driftless-sdtest-manager.lock");
    let file = std::fs::File::create(&path).expect("create the manager lock");
    file.lock().expect("lock the manager lock");
    file
}

/// `(uid, home)` of [`USER`], creating the user when missing; `Err` says why that failed.
pub fn ensure_user() -> Result<(u32, PathBuf), String> {
    if output("id", &["-u", USER]).is_none_or(|o| !o.status.success()) {
        let made = output("useradd", &["-m", USER]).ok_or("useradd is missing")?;
        if !made.status.success() {
            return Err(format!("useradd -m {USER}: {}", String::from_utf8_lossy(&made.stderr)));
        }
    }
    let uid = output("id", &["-u", USER])
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .ok_or("no uid for sdtest")?;
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
    let home = passwd
        .lines()
        .find(|l| l.starts_with(&format!("{USER}:")))
        .and_then(|l| l.split(':').nth(5))
        .ok_or("sdtest has no home in /etc/passwd")?;
    Ok((uid, PathBuf::from(home)))
}

/// Why a real manager cannot be had here, if it cannot.
pub fn missing_prerequisite() -> Option<String> {
    if output("id", &["-u"]).is_none_or(|o| String::from_utf8_lossy(&o.stdout).trim() != "0") {
        return Some("not root: starting a user manager in a private namespace needs root".into());
    }
    for program in ["/lib/systemd/systemd", "/lib/systemd/systemd-journald"] {
        if !Path::new(program).exists() {
            return Some(format!("{program} is missing (package systemd)"));
        }
    }
    for program in ["unshare", "nsenter", "setpriv", "setsid", "git"] {
        if output(program, &["--version"]).is_none() {
            return Some(format!("{program} is missing (packages util-linux, git)"));
        }
    }
    if !Path::new("/sys/fs/cgroup/unified").is_dir() && !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return Some("no cgroup hierarchy at /sys/fs/cgroup to delegate".into());
    }
    None
}

impl Manager {
    /// Start the manager with the units already in the user's unit dir; wait until it runs.
    pub fn start(uid: u32) -> Result<Manager, String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/systemd-user-manager.sh");
        // setsid and unshare exec in place: the child's PID ends up being systemd --user's.
        let child = Command::new("setsid")
            .args(["unshare", "--mount", "--propagation", "private"])
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", script.display()))?;
        let mut manager = Manager {
            child,
            uid,
            journald: None,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if manager.journald.is_none() {
                manager.journald = children(manager.child.id())
                    .into_iter()
                    .find(|pid| comm(*pid).is_some_and(|c| c.starts_with("systemd-journal")));
            }
            let state = manager.systemctl(&["is-system-running"]);
            let text = String::from_utf8_lossy(&state.stdout).trim().to_owned();
            if text == "running" || text == "degraded" {
                return Ok(manager);
            }
            if Instant::now() > deadline {
                return Err(format!("systemd --user did not come up (is-system-running: {text:?})"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The manager's PID (for nsenter into its namespace).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `systemctl --user ARGS` as the user, inside the manager's namespace.
    pub fn systemctl(&self, args: &[&str]) -> Output {
        self.nsenter_as_user()
            .args(["systemctl", "--user", "--no-pager"])
            .args(args)
            .output()
            .expect("run nsenter systemctl")
    }

    /// One property of a unit (`systemctl --user show -p NAME --value`).
    pub fn property(&self, unit: &str, name: &str) -> String {
        let out = self.systemctl(&["show", "-p", name, "--value", unit]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Everything `unit` logged, read as root from the namespace's journal.
    pub fn journal(&self, unit: &str) -> String {
        let out = Command::new("nsenter")
            .args([
                "-t",
                &self.child.id().to_string(),
                "-m",
                "journalctl",
                "--no-pager",
                "-o",
                "cat",
            ])
            .arg(format!("_SYSTEMD_USER_UNIT={unit}"))
            .output()
            .expect("run journalctl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait until `done()` holds, up to `secs`; false on timeout.
    pub fn wait_for(&self, secs: u64, mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        done()
    }

    fn nsenter_as_user(&self) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.child.id().to_string(), "-m", "setpriv"])
            .args(["--reuid", USER, "--regid", USER, "--init-groups", "env", "-i"])
            .arg(format!("XDG_RUNTIME_DIR=/run/user/{}", self.uid))
            .arg("PATH=/usr/local/bin:/usr/bin:/bin");
        cmd
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let pid = self.child.id();
        // Find journald again: it may have come up after the last look.
        let journald = self.journald.or_else(|| {
            children(pid)
                .into_iter()
                .find(|p| comm(*p).is_some_and(|c| c.starts_with("systemd-journal")))
        });
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(journald) = journald {
            let _ = Command::new("kill").args(["-TERM", &journald.to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && Path::new(&format!("/proc/{journald}")).exists() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        for hierarchy in ["systemd", "unified"] {
            remove_dirs_depth_first(&Path::new("/sys/fs/cgroup").join(hierarchy).join("user.slice"));
        }
    }
}

fn remove_dirs_depth_first(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_dirs_depth_first(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// PIDs whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_owned())
}

fn output(program: &str, args: &[&str]) -> Option<Output> {
    Command::new(program).args(args).output().ok()
}
