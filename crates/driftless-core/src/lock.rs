//! One run per repo at a time: an advisory `flock` on a file in the repo's state directory.
//!
//! The kernel drops the lock when the process dies, even by SIGKILL, so a crashed run never
//! leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A held lock; released on drop.
#[derive(Debug)]
pub struct Lock {
    _file: File,
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "another run holds the lock {path} (waited {waited}s); wait for it to finish, or pass --wait-lock SECONDS",
        path = path.display(), waited = waited.as_secs()
    )]
    Busy { path: PathBuf, waited: Duration },
    #[error("cannot open lock file {path}: {source}", path = path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl Lock {
    /// Take the lock at `path`, waiting up to `wait` for a current holder to finish.
    pub fn acquire(path: &Path, wait: Duration) -> Result<Lock, Error> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io)?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(Lock {
                        _file: file,
                        path: path.to_owned(),
                    });
                }
                Err(TryLockError::WouldBlock) if start.elapsed() < wait => {
                    std::thread::sleep(Duration::from_millis(50).min(wait.saturating_sub(start.elapsed())));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(Error::Busy {
                        path: path.to_owned(),
                        waited: start.elapsed(),
                    });
                }
                Err(TryLockError::Error(source)) => return Err(io(source)),
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lock");
        let first = Lock::acquire(&path, Duration::ZERO).expect("first");
        let err = Lock::acquire(&path, Duration::from_millis(120)).expect_err("busy");
        assert!(matches!(err, Error::Busy { .. }), "{err:?}");
        drop(first);
        Lock::acquire(&path, Duration::ZERO).expect("free again");
    }
}
