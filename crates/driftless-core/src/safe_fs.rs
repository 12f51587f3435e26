//! File access for paths someone else may control: a checkout's worktree, its `.git`.
//!
//! Root meets hostile files here. So a file is opened without following a symlink and without
//! blocking (a FIFO would hang the run with its lock held), then checked by type on the open
//! handle, so a swap between a `stat` and the `open` cannot slip a special file or a link in.
//! New files are created exclusively (`O_EXCL` never follows a link) under names nobody can
//! guess in advance. Readers stream; nothing is read whole into memory.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What a non-regular, non-directory, non-symlink file is, for messages ("a FIFO").
pub fn special_kind(file_type: std::fs::FileType) -> Option<&'static str> {
    if file_type.is_fifo() {
        Some("a FIFO")
    } else if file_type.is_socket() {
        Some("a socket")
    } else if file_type.is_block_device() {
        Some("a block device")
    } else if file_type.is_char_device() {
        Some("a character device")
    } else {
        None
    }
}

/// The error for a path that is not the regular file it should be.
fn not_regular(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} is {what}, not a regular file", path.display()),
    )
}

/// Open the regular file at `path` for reading: a symlink, FIFO, socket or device at `path` is
/// an error (checked by type before opening, so a device is never opened, and again on the
/// opened handle, in case of a swap), and opening never blocks. An error for a path that is not
/// a regular file has kind [`io::ErrorKind::InvalidInput`].
pub fn open_regular(path: &Path) -> io::Result<File> {
    open_checked(path, false)
}

/// All of `file`, or `None` when it holds more than `max` bytes: at most `max + 1` bytes are
/// read to tell, so an oversized (or endless) file is never read whole into memory.
pub fn read_capped(file: impl io::Read, max: u64) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut file.take(max + 1), &mut bytes)?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

/// Like [`open_regular`], following symlinks: for files a tool must read as the tool it stands
/// beside reads them (compose follows a symlinked compose or env file).
pub fn open_regular_following(path: &Path) -> io::Result<File> {
    open_checked(path, true)
}

fn open_checked(path: &Path, follow: bool) -> io::Result<File> {
    let check = |file_type: std::fs::FileType| {
        if file_type.is_file() {
            return Ok(());
        }
        let what = special_kind(file_type).unwrap_or(if file_type.is_dir() {
            "a directory"
        } else if file_type.is_symlink() {
            "a symlink"
        } else {
            "not a file"
        });
        Err(not_regular(path, what))
    };
    let before = if follow {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    }?;
    check(before.file_type())?;
    let mut flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY;
    if !follow {
        flags |= rustix::fs::OFlags::NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
        .map_err(|err| {
            if err.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                not_regular(path, "a symlink")
            } else {
                err
            }
        })?;
    check(file.metadata()?.file_type())?;
    Ok(file)
}

/// Create a new file beside `dest` under an unpredictable name (`.<prefix>-<random>`), never
/// following a link and never reusing what stands there. Returns the handle (open for reading
/// too, so a writer can read back what it wrote) and the name.
pub fn create_temp_beside(dest: &Path, prefix: &str, mode: u32) -> io::Result<(File, PathBuf)> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    loop {
        let path = dir.join(format!(".{prefix}-{:016x}", random()));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .mode(mode)
            .open(&path)
        {
            Ok(file) => return Ok((file, path)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
}

/// 64 random bits from the kernel, for names that must not be guessed.
pub fn random() -> u64 {
    let mut bytes = [0u8; 8];
    // getrandom(2) cannot fail for 8 bytes once the pool is initialised; should it, the
    // clock still makes the name unlikely to be guessed and `O_EXCL` keeps it safe.
    if rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty()).is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes = (now ^ u64::from(std::process::id()).rotate_left(32)).to_le_bytes();
    }
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_capped_takes_up_to_the_limit_and_refuses_one_byte_more() -> io::Result<()> {
        assert_eq!(read_capped(&b"12345"[..], 5)?, Some(b"12345".to_vec()));
        assert_eq!(read_capped(&b"123456"[..], 5)?, None);
        // An endless reader is cut at the limit, not read to its end.
        assert_eq!(read_capped(io::repeat(b'x'), 1000)?, None);
        Ok(())
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("pipe");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .expect("mkfifo");
        let err = open_regular(&fifo).expect_err("a FIFO is no regular file");
        assert!(err.to_string().contains("a FIFO"), "{err}");
    }

    #[test]
    fn a_symlink_is_refused_and_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("target"), "secret").expect("write");
        std::os::unix::fs::symlink("target", dir.path().join("link")).expect("symlink");
        let err = open_regular(&dir.path().join("link")).expect_err("a link is no regular file");
        assert!(err.to_string().contains("a symlink"), "{err}");
        assert!(open_regular(&dir.path().join("target")).is_ok());
    }

    #[test]
    fn temp_names_differ_and_never_follow_a_planted_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("file");
        let (_, one) = create_temp_beside(&dest, "t", 0o600).expect("first");
        let (_, two) = create_temp_beside(&dest, "t", 0o600).expect("second");
        assert_ne!(one, two);
        assert!(one.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".t-")));
    }
}
