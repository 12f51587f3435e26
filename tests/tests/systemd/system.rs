//! A real systemd *system* manager: PID 1 of a systemd-nspawn container booted from an overlay of
//! the host's root (writes land in a tmpfs), with the host's enabled units hidden, started and
//! stopped with tests/support/systemd-system-container.sh. The units run there exactly as
//! shipped, sandbox included, which a user manager cannot do.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A booted container; dropping it powers it off and removes its cgroups.
pub struct SystemManager {
    script: PathBuf,
    dir: PathBuf,
    /// The host PID of the container's systemd: `/proc/PID/root` is its file system.
    leader: u32,
}

/// Why a system manager cannot be had here, if it cannot.
pub fn missing_prerequisite() -> Option<String> {
    if let Some(why) = super::manager::missing_prerequisite() {
        return Some(why);
    }
    let found = Command::new("systemd-nspawn").arg("--version").output();
    if found.is_err() {
        return Some("systemd-nspawn is missing (apt-get install --no-install-recommends systemd-container)".into());
    }
    None
}

impl SystemManager {
    /// Boot a container in `dir` (absolute, not yet there) with `binds` (`HOST:INSIDE`) and
    /// return once `systemctl is-system-running` says running.
    pub fn start(script: &Path, dir: &Path, binds: &[(&Path, &str)]) -> Result<SystemManager, String> {
        let mut cmd = Command::new(script);
        cmd.arg("start").arg(dir);
        for (host, inside) in binds {
            cmd.arg(format!("--bind={}:{inside}", host.display()));
        }
        let out = cmd.output().map_err(|e| format!("run {}: {e}", script.display()))?;
        let mut manager = SystemManager {
            script: script.to_owned(),
            dir: dir.to_owned(),
            leader: 0,
        };
        if !out.status.success() {
            // Drop stops whatever got as far as starting.
            return Err(format!(
                "{} start failed: {}{}",
                script.display(),
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(dir.join("console.log")).unwrap_or_default()
            ));
        }
        manager.leader = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| format!("no leader PID from {}", script.display()))?;
        Ok(manager)
    }

    /// A path inside the container, seen from the host.
    pub fn path(&self, inside: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{inside}", self.leader))
    }

    /// Where unit files go: the container's /etc/systemd/system.
    pub fn unit_dir(&self) -> PathBuf {
        self.dir.join("units")
    }

    /// Run `program args` inside the container (all its namespaces).
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new(&self.script)
            .arg("run")
            .arg(&self.dir)
            .arg(program)
            .args(args)
            .output()
            .expect("run a command in the container")
    }

    /// `systemctl args` inside the container.
    pub fn systemctl(&self, args: &[&str]) -> Output {
        self.run("systemctl", args)
    }

    /// One property of a unit (`systemctl show -p NAME --value`).
    pub fn property(&self, unit: &str, name: &str) -> String {
        let out = self.systemctl(&["show", "-p", name, "--value", unit]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Everything `unit` logged, message text only.
    pub fn journal(&self, unit: &str) -> String {
        let out = self.run("journalctl", &["--no-pager", "-o", "cat", "-u", unit]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for SystemManager {
    fn drop(&mut self) {
        let _ = Command::new(&self.script).arg("stop").arg(&self.dir).status();
    }
}
