//! Reading a stack's own files (compose files, env files, watched inputs), which anyone who can
//! push to the repo or write on the host controls: regular files only (a FIFO or device is
//! refused by its type, never opened for a blocking read), text at most [`MAX_TEXT`] bytes, and
//! content hashed as a stream, never held whole in memory.

use std::path::{Path, PathBuf};

/// The largest compose or env file read (compose files are kilobytes).
pub const MAX_TEXT: u64 = 4 * 1024 * 1024;

/// Why a stack file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}", path = path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a regular file; compose and env files must be", path = path.display())]
    NotRegular { path: PathBuf },
    #[error("{path} is larger than {MAX_TEXT} bytes; that is not a compose or env file", path = path.display())]
    TooLarge { path: PathBuf },
}

/// The text of `path` (lossy UTF-8), or `None` when it does not exist.
pub fn text_if_exists(path: &Path) -> Result<Option<String>, Error> {
    let Some((file, _)) = open_regular(path)? else {
        return Ok(None);
    };
    let bytes = crate::safe_fs::read_capped(file, MAX_TEXT)
        .map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?
        .ok_or_else(|| Error::TooLarge { path: path.to_owned() })?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Open `path` for reading if it is a regular file (following links, as compose does), through
/// [`crate::safe_fs`]: a FIFO or device is refused by type, never opened.
fn open_regular(path: &Path) -> Result<Option<(std::fs::File, u64)>, Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let file = match crate::safe_fs::open_regular_following(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) if err.kind() == std::io::ErrorKind::InvalidInput => {
            return Err(Error::NotRegular { path: path.to_owned() });
        }
        Err(err) => return Err(io(err)),
    };
    let len = file.metadata().map_err(io)?.len();
    Ok(Some((file, len)))
}

/// Git's blob id of the file's content, read as a stream; `None` when it does not exist.
pub fn blob_id(path: &Path, kind: gix::hash::Kind) -> Result<Option<gix::ObjectId>, Error> {
    let Some((file, len)) = open_regular(path)? else {
        return Ok(None);
    };
    crate::git::hash_blob(file, len, kind)
        .map(Some)
        .map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        assert!(matches!(text_if_exists(&fifo), Err(Error::NotRegular { .. })));
        assert!(matches!(
            blob_id(&fifo, gix::hash::Kind::Sha1),
            Err(Error::NotRegular { .. })
        ));
        assert!(text_if_exists(&dir.path().join("none")).expect("missing").is_none());
        let file = dir.path().join("f");
        std::fs::write(&file, "hello\n").expect("write");
        let id = blob_id(&file, gix::hash::Kind::Sha1).expect("hash").expect("exists");
        // `git hash-object` of "hello\n".
        assert_eq!(id.to_string(), "ce013625030ba8dba906f756967f9e9ca394464a");
    }
}
