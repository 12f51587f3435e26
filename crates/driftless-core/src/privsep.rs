//! Privilege separation: git work in a checkout owned by another user runs as that user.
//!
//! A root unit that syncs a checkout cloned by `deploy` must not act as root inside it: gix (like
//! git's `safe.directory`) drops a foreign repo's own config, every file root writes would end up
//! root-owned and break `deploy`'s next `git pull`, and anything `deploy` plants in `.git` (a
//! symlink where a temp file goes) would be followed with root's rights. So, as OpenSSH does,
//! root splits the run: the parent keeps what is root's (the run lock and the state and metrics
//! writes in root-owned directories) and a worker process, the same binary re-executed with the
//! owner's uid and gid and the owner's home, does everything in the checkout.
//!
//! The protocol (docs/architecture.md): the parent starts `/proc/self/exe` with [`WORKER_ENV`]
//! set, writes one JSON request to the worker's stdin and closes it; the worker writes one JSON
//! reply to stdout and exits 0. Its stderr is the parent's, so its log lines reach the journal.
//! A worker that dies or answers nothing is an error of the run, never a guess.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Set (to `1`) in a worker's environment: the binary serves one request and exits.
pub const WORKER_ENV: &str = "DRIFTLESS_PRIVSEP_WORKER";

/// The largest reply read from a worker; a report is a few KiB, even with many changed paths.
const MAX_REPLY: u64 = 64 << 20;

/// The user a worker runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    /// From the passwd database; `/` when the user has none (as login does).
    pub home: PathBuf,
    /// The login name, for messages; the uid when the passwd database has none.
    pub name: String,
}

/// Why a worker could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start a worker as {user} (uid {uid}) for {path}", path = path.display())]
    Spawn {
        user: String,
        uid: u32,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the worker running as {user} for {path} {what}", path = path.display())]
    Worker { user: String, path: PathBuf, what: String },
}

/// The owner of `checkout` when this process is root and someone else owns it: the run's git
/// work must then happen as that owner. `None` when we are not root (nothing to separate) or
/// root owns the checkout.
pub fn foreign_owner(checkout: &Path) -> Option<Owner> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    // Root without CAP_DAC_OVERRIDE (the unit keeps none) cannot look inside another user's
    // 0700 home: the nearest directory above the checkout it can see tells whose it is, and the
    // worker, as that user, finds out the rest.
    let meta = checkout
        .ancestors()
        .find_map(|dir| std::fs::symlink_metadata(dir).ok())?;
    if meta.uid() == 0 {
        return None;
    }
    Some(owner_of(meta.uid(), meta.gid()))
}

/// The passwd entry of `uid` (name and home), read from `/etc/passwd`; `gid` is the checkout's
/// group, so files the worker creates get the group the checkout already has.
fn owner_of(uid: u32, gid: u32) -> Owner {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let entry = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 6 && fields[2].parse() == Ok(uid)).then(|| (fields[0].to_owned(), fields[5].to_owned()))
    });
    let (name, home) = entry.unwrap_or_else(|| (uid.to_string(), "/".to_owned()));
    Owner {
        uid,
        gid,
        home: PathBuf::from(if home.is_empty() { "/".to_owned() } else { home }),
        name,
    }
}

/// Run `request` in a worker process as `owner`, in `dir`, and return its reply.
pub fn run_as<Req: Serialize, Reply: DeserializeOwned>(
    owner: &Owner,
    dir: &Path,
    request: &Req,
) -> Result<Reply, Error> {
    let worker_err = |what: String| Error::Worker {
        user: owner.name.clone(),
        path: dir.to_owned(),
        what,
    };
    let mut command = Command::new("/proc/self/exe");
    command
        .env(WORKER_ENV, "1")
        .env("HOME", &owner.home)
        .env("USER", &owner.name)
        .env("LOGNAME", &owner.name)
        // The parent's git config overrides (a root test's GIT_CONFIG_GLOBAL) stay; XDG paths
        // of root's would not be readable by the owner, and git ignores what it cannot read.
        .env_remove("XDG_CONFIG_HOME")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // std drops root's supplementary groups when it changes uid from root.
        .gid(owner.gid)
        .uid(owner.uid);
    let mut child = command.spawn().map_err(|source| Error::Spawn {
        user: owner.name.clone(),
        uid: owner.uid,
        path: dir.to_owned(),
        source,
    })?;
    let body = serde_json::to_vec(request).map_err(|err| worker_err(format!("got no request: {err}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A worker that died before reading shows in its exit status below.
        let _ = stdin.write_all(&body);
    }
    let mut reply = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = stdout.take(MAX_REPLY).read_to_end(&mut reply);
    }
    let status = child
        .wait()
        .map_err(|err| worker_err(format!("could not be waited for: {err}")))?;
    if !status.success() {
        return Err(worker_err(format!("ended with {status} before it answered")));
    }
    serde_json::from_slice(&reply).map_err(|err| worker_err(format!("sent a reply that does not parse: {err}")))
}

/// In a binary's `main`: when this process is a worker, read the request from stdin, answer it
/// with `handle` on stdout, and return the exit code to end with. `None` in a normal run.
pub fn serve<Req: DeserializeOwned, Reply: Serialize>(
    handle: impl FnOnce(Req) -> Reply,
) -> Option<std::process::ExitCode> {
    std::env::var_os(WORKER_ENV)?;
    let mut body = Vec::new();
    let served = std::io::stdin()
        .take(MAX_REPLY)
        .read_to_end(&mut body)
        .map_err(|err| err.to_string())
        .and_then(|_| serde_json::from_slice::<Req>(&body).map_err(|err| err.to_string()))
        .map(handle)
        .and_then(|reply| serde_json::to_vec(&reply).map_err(|err| err.to_string()))
        .and_then(|reply| std::io::stdout().write_all(&reply).map_err(|err| err.to_string()));
    Some(match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("privilege-separated worker: {err}");
            std::process::ExitCode::FAILURE
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unknown_uid_gets_its_number_and_root_as_home() {
        let owner = super::owner_of(4_000_000_000, 7);
        assert_eq!(owner.name, "4000000000");
        assert_eq!(owner.home, std::path::Path::new("/"));
        assert_eq!(owner.gid, 7);
    }

    #[test]
    fn root_is_found_in_passwd() {
        let owner = super::owner_of(0, 0);
        assert_eq!(owner.name, "root");
    }
}
