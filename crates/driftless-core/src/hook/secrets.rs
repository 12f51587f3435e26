//! Where the hook's secrets come from: files in a directory, by systemd's credentials
//! (`LoadCredential=hook:/etc/driftless/hook.secret` puts it in `$CREDENTIALS_DIRECTORY/hook`),
//! never the command line, where any user's `ps` would show it.
//!
//! `hook.NAME` is repo NAME's own secret; `hook` is the one every other repo shares. A secret
//! file is read only if it is a regular file, and at most [`MAX_SECRET`] bytes of it; trailing
//! whitespace (the newline of `echo secret > file`) is not part of it.

use std::path::{Path, PathBuf};

/// The longest secret read; a longer file is refused rather than cut.
pub const MAX_SECRET: u64 = 4096;

/// The name of the shared secret in the directory.
pub const SHARED: &str = "hook";

/// A directory of secrets.
#[derive(Debug, Clone)]
pub struct Secrets {
    dir: Option<PathBuf>,
}

/// Why a secret could not be read (absence is not an error: that repo accepts nothing).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the secret {path}: {source}", path = path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the secret {path} is over {MAX_SECRET} bytes", path = path.display())]
    TooLong { path: PathBuf },
}

impl Secrets {
    /// Secrets in `dir`; `None`: there are none, every request is refused with 401.
    pub fn in_dir(dir: Option<PathBuf>) -> Secrets {
        Secrets { dir }
    }

    /// The directory, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Repo `name`'s secret: `hook.NAME`, else the shared `hook`; `None` if neither exists or
    /// the one found is empty.
    pub fn for_repo(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        if crate::config::is_valid_name(name)
            && let Some(secret) = read(&dir.join(format!("{SHARED}.{name}")))?
        {
            return Ok(Some(secret));
        }
        read(&dir.join(SHARED))
    }
}

fn read(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    let file = match crate::safe_fs::open_regular(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut secret = crate::safe_fs::read_capped(file, MAX_SECRET)
        .map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?
        .ok_or_else(|| Error::TooLong { path: path.to_owned() })?;
    while secret.last().is_some_and(u8::is_ascii_whitespace) {
        secret.pop();
    }
    Ok((!secret.is_empty()).then_some(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_secret_then_the_shared_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("hook"), "shared\n").expect("write");
        std::fs::write(dir.path().join("hook.hub"), "hub's own").expect("write");
        std::fs::write(dir.path().join("hook.empty"), "\n").expect("write");
        let secrets = Secrets::in_dir(Some(dir.path().to_owned()));
        assert_eq!(
            secrets.for_repo("hub").expect("read").as_deref(),
            Some(&b"hub's own"[..])
        );
        assert_eq!(secrets.for_repo("lab").expect("read").as_deref(), Some(&b"shared"[..]));
        assert_eq!(
            secrets.for_repo("empty").expect("read").as_deref(),
            Some(&b"shared"[..])
        );
        assert_eq!(
            secrets.for_repo("../etc").expect("read").as_deref(),
            Some(&b"shared"[..])
        );
        assert_eq!(Secrets::in_dir(None).for_repo("hub").expect("none"), None);
    }

    #[test]
    fn links_fifos_and_huge_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("target"), "x").expect("write");
        std::os::unix::fs::symlink(dir.path().join("target"), dir.path().join("hook")).expect("symlink");
        let secrets = Secrets::in_dir(Some(dir.path().to_owned()));
        assert!(secrets.for_repo("hub").is_err(), "a symlink is not followed");
        std::fs::remove_file(dir.path().join("hook")).expect("rm");
        let fifo = std::process::Command::new("mkfifo")
            .arg(dir.path().join("hook"))
            .status();
        if fifo.is_ok_and(|s| s.success()) {
            // Would block forever if opened for reading.
            assert!(secrets.for_repo("hub").is_err(), "a FIFO is not opened");
            std::fs::remove_file(dir.path().join("hook")).expect("rm");
        }
        std::fs::write(dir.path().join("hook"), vec![b'a'; MAX_SECRET as usize + 1]).expect("write");
        assert!(matches!(secrets.for_repo("hub"), Err(Error::TooLong { .. })));
    }
}
