//! The state directory (`/var/lib/driftless`): how tools hand over to each other.
//!
//! sync-repo records what it did to a checkout; apply-compose, mirror-copy and drift-check read
//! it. Every record is one JSON file per repo and tool, replaced atomically, so a reader never
//! sees half a record and a crash leaves the previous one.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::lock::{self, Lock};

/// The default state directory for a system install.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/driftless";

/// Which repo a record or lock is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum RepoId {
    /// A repo from the config, by its name.
    Named(String),
    /// A checkout given by path with no config entry (canonicalized).
    Path(PathBuf),
}

impl RepoId {
    /// The directory below the state root that holds this repo's records.
    fn relative_dir(&self) -> PathBuf {
        match self {
            RepoId::Named(name) => Path::new("repos").join(name),
            RepoId::Path(path) => Path::new("paths").join(escape_path(path)),
        }
    }

    /// A name unique to this repo that is safe as a file name (`hub`, `srv-hub`).
    pub fn file_stem(&self) -> String {
        match self {
            RepoId::Named(name) => name.clone(),
            RepoId::Path(path) => escape_path(path),
        }
    }

    /// How this repo is named in messages, metrics labels and `--json`.
    pub fn label(&self) -> String {
        match self {
            RepoId::Named(name) => name.clone(),
            RepoId::Path(path) => path.display().to_string(),
        }
    }
}

/// The resolved state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// Why state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot use state directory {path}: {source}; pass --state-dir DIR (or run as root)",
        path = path.display()
    )]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("cannot write state file {path}: {source}", path = path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("state file {path} is unreadable: {message}; move it aside and run again", path = path.display())]
    Read { path: PathBuf, message: String },
    #[error(transparent)]
    Lock(#[from] lock::Error),
}

impl Error {
    /// The exit code a tool reports for it: a lock another run holds is temporary (the next
    /// tick gets it), anything else is a local I/O failure.
    pub fn exit(&self) -> crate::exit::Exit {
        match self {
            Error::Lock(lock::Error::Busy { .. }) => crate::exit::Exit::TempFail,
            _ => crate::exit::Exit::Io,
        }
    }
}

impl StateDir {
    /// Pick the state directory: `--state-dir`, then `$STATE_DIRECTORY` (set by systemd's
    /// `StateDirectory=`), then the config's `state_dir`, then [`DEFAULT_STATE_DIR`].
    pub fn resolve(flag: Option<&Path>, config: &Config) -> StateDir {
        let from_systemd = std::env::var_os("STATE_DIRECTORY")
            .filter(|v| !v.is_empty())
            // systemd passes a colon-separated list when a unit has several state directories.
            .map(|v| PathBuf::from(v.to_string_lossy().split(':').next().unwrap_or_default()));
        let root = flag
            .map(Path::to_owned)
            .or(from_systemd)
            .or_else(|| config.state_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        StateDir { root }
    }

    /// A state directory at `root`, as is.
    pub fn at(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of one repo, created if needed.
    pub fn repo_dir(&self, id: &RepoId) -> Result<PathBuf, Error> {
        let dir = self.root.join(id.relative_dir());
        std::fs::create_dir_all(&dir).map_err(|source| Error::Dir {
            path: dir.clone(),
            source,
        })?;
        Ok(dir)
    }

    /// Take the per-repo lock shared by all tools, waiting up to `wait`.
    pub fn lock(&self, id: &RepoId, wait: std::time::Duration) -> Result<Lock, Error> {
        Ok(Lock::acquire(&self.repo_dir(id)?.join("lock"), wait)?)
    }

    /// Read the record a tool last wrote for a repo; `None` when there is none yet.
    pub fn read<T: DeserializeOwned>(&self, id: &RepoId, tool: &str) -> Result<Option<T>, Error> {
        let path = self.root.join(id.relative_dir()).join(format!("{tool}.json"));
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|err| Error::Read {
                path,
                message: err.to_string(),
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(Error::Read {
                path,
                message: err.to_string(),
            }),
        }
    }

    /// Replace the record of `tool` for a repo, atomically.
    pub fn write<T: Serialize>(&self, id: &RepoId, tool: &str, record: &T) -> Result<(), Error> {
        let path = self.repo_dir(id)?.join(format!("{tool}.json"));
        let mut bytes = serde_json::to_vec_pretty(record).map_err(|err| Error::Write {
            path: path.clone(),
            source: std::io::Error::other(err),
        })?;
        bytes.push(b'\n');
        // No fsync: a record is derived from the checkout, and a no-change run must stay cheap.
        // Temp file and rename still mean a reader never sees half a record.
        crate::atomic_file::write(&path, &bytes, crate::atomic_file::Durability::Atomic)
            .map_err(|source| Error::Write { path, source })?;
        // Once per process, after a record was written (so never the one of this run).
        static PRUNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !PRUNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            let pruned = self.prune_path_runs(PATH_RUN_MAX_AGE);
            if pruned > 0 {
                tracing::info!(
                    "removed the state of {pruned} checkout path(s) not run for {} days",
                    PATH_RUN_MAX_AGE.as_secs() / 86_400
                );
            }
        }
        Ok(())
    }

    /// Remove the state of path runs (`sync-repo /srv/x`, one directory each under `paths/`)
    /// where nothing was written for `max_age`: ad-hoc runs would otherwise leave state behind
    /// forever. A directory whose lock a run holds is left alone, and so is anything that is
    /// not a plain file in a plain directory (nothing is followed). Returns how many went.
    pub fn prune_path_runs(&self, max_age: std::time::Duration) -> usize {
        let Ok(entries) = std::fs::read_dir(self.root.join("paths")) else {
            return 0;
        };
        let mut pruned = 0;
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let dir = entry.path();
            let Ok(files) = std::fs::read_dir(&dir) else { continue };
            let files: Vec<(PathBuf, std::fs::Metadata)> = files
                .flatten()
                .filter_map(|f| Some((f.path(), std::fs::symlink_metadata(f.path()).ok()?)))
                .collect();
            let stale = |meta: &std::fs::Metadata| {
                meta.is_file()
                    && meta
                        .modified()
                        .ok()
                        .and_then(|m| m.elapsed().ok())
                        .is_some_and(|age| age > max_age)
            };
            if !files.iter().all(|(_, meta)| stale(meta)) {
                continue;
            }
            // A run that has started holds it; taking it without waiting keeps that run's state.
            let Ok(_lock) = Lock::acquire(&dir.join("lock"), std::time::Duration::ZERO) else {
                continue;
            };
            let removed = files.iter().all(|(path, _)| std::fs::remove_file(path).is_ok());
            if removed && std::fs::remove_dir(&dir).is_ok() {
                pruned += 1;
            }
        }
        pruned
    }
}

/// How long the state of a path run is kept after its last write: see
/// [`StateDir::prune_path_runs`].
pub const PATH_RUN_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// `systemd-escape --path` style: reversible, and safe as one directory name.
fn escape_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    let trimmed = text.trim_matches('/');
    if trimmed.is_empty() {
        return "-".to_owned();
    }
    let mut out = String::with_capacity(trimmed.len());
    for (i, byte) in trimmed.bytes().enumerate() {
        match byte {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.') => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_escape_like_systemd() {
        assert_eq!(
            escape_path(Path::new("/srv/observability-hub")),
            "srv-observability\\x2dhub"
        );
        assert_eq!(escape_path(Path::new("/home/me/.lab/x y")), "home-me-.lab-x\\x20y");
        assert_eq!(escape_path(Path::new("/")), "-");
    }

    #[test]
    fn records_round_trip_and_named_and_path_repos_do_not_collide() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::at(dir.path());
        let named = RepoId::Named("srv-hub".into());
        let by_path = RepoId::Path("/srv/hub".into());
        state
            .write(&named, "sync-repo", &serde_json::json!({"n": 1}))
            .expect("write");
        state
            .write(&by_path, "sync-repo", &serde_json::json!({"n": 2}))
            .expect("write");
        let a: serde_json::Value = state.read(&named, "sync-repo").expect("read").expect("present");
        let b: serde_json::Value = state.read(&by_path, "sync-repo").expect("read").expect("present");
        assert_eq!((a["n"].as_u64(), b["n"].as_u64()), (Some(1), Some(2)));
        assert!(
            state
                .read::<serde_json::Value>(&named, "mirror-copy")
                .expect("read")
                .is_none()
        );
    }
}
