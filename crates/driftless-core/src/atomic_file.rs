//! Write a file so that readers and crashes see either the old content or the new, never half.

use std::io::Write;
use std::path::Path;

/// How hard to try to survive a power cut (a crash of the process is always survived).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Temp file and rename: readers and killed processes never see half a file.
    Atomic,
    /// Also fsync the file before and the directory after the rename, so the new content
    /// survives a power cut. Costs milliseconds on a slow disk.
    Fsync,
}

/// Replace `path` with `contents`: write a temp file in the same directory and rename it over
/// `path`, with the fsyncs that `durability` asks for.
pub fn write(path: &Path, contents: &[u8], durability: Durability) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A random name, created exclusively: a link planted where a predictable temp name would go
    // cannot turn this write into one through it (the directory may be a checkout's `.git`).
    let (mut file, tmp) = crate::safe_fs::create_temp_beside(path, &format!("{name}.tmp"), 0o644)?;
    let result = (|| {
        file.write_all(contents)?;
        if durability == Durability::Fsync {
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if durability == Durability::Fsync {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        // Never leave the temp file behind, e.g. when the disk filled up mid-write.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        super::write(&path, b"one", super::Durability::Fsync).expect("first write");
        super::write(&path, b"two", super::Durability::Atomic).expect("second write");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }
}
