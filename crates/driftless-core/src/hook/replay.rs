//! Deliveries already handled: a forge that redelivers (or someone who captured a signed
//! request and sends it again) starts nothing the second time within [`WINDOW`].
//!
//! The memory is `hook/deliveries.json` in the state directory: at most [`MAX_ENTRIES`] ids of
//! the last [`WINDOW`], replaced atomically under the lock `hook/lock`, since several requests
//! are handled at once (`Accept=yes`). Only proven requests are remembered, so an unauthenticated
//! client cannot fill it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a delivery id is remembered.
pub const WINDOW: Duration = Duration::from_secs(600);

/// The most ids kept; the oldest go first. 1000 ids of 40 bytes: ~60 kB of JSON.
pub const MAX_ENTRIES: usize = 1000;

/// How long a request waits for another one to finish with the memory.
const LOCK_WAIT: Duration = Duration::from_millis(500);

/// One remembered delivery.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// The delivery id.
    pub id: String,
    /// When it was handled, Unix seconds.
    pub at: u64,
}

/// Why the memory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create {path}: {source}", path = path.display())]
    Dir { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Lock(#[from] crate::lock::Error),
    #[error("cannot write {path}: {source}", path = path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// The memory's entries after handling `id` at `now`, and whether `id` was seen within
/// [`WINDOW`] before. Entries out of the window go; the newest [`MAX_ENTRIES`] stay.
pub fn remember(mut entries: Vec<Entry>, id: &str, now: u64) -> (bool, Vec<Entry>) {
    let oldest = now.saturating_sub(WINDOW.as_secs());
    entries.retain(|e| e.at >= oldest && e.at <= now);
    let seen = entries.iter().any(|e| e.id == id);
    if !seen {
        entries.push(Entry {
            id: id.to_owned(),
            at: now,
        });
    }
    entries.sort_by_key(|e| e.at);
    let excess = entries.len().saturating_sub(MAX_ENTRIES);
    entries.drain(..excess);
    (seen, entries)
}

/// Whether delivery `id` was handled within [`WINDOW`] (by the memory under `state_root`), and
/// remember it as handled `now` if not.
pub fn seen_before(state_root: &Path, id: &str, now: u64) -> Result<bool, Error> {
    let dir = state_root.join("hook");
    std::fs::create_dir_all(&dir).map_err(|source| Error::Dir {
        path: dir.clone(),
        source,
    })?;
    let _lock = crate::lock::Lock::acquire(&dir.join("lock"), LOCK_WAIT)?;
    let path = dir.join("deliveries.json");
    let entries = load(&path);
    let (seen, entries) = remember(entries, id, now);
    if !seen {
        let mut bytes = serde_json::to_vec(&entries).map_err(|err| Error::Write {
            path: path.clone(),
            source: std::io::Error::other(err),
        })?;
        bytes.push(b'\n');
        crate::atomic_file::write(&path, &bytes, crate::atomic_file::Durability::Atomic)
            .map_err(|source| Error::Write { path, source })?;
    }
    Ok(seen)
}

/// The remembered entries; a missing, unreadable or damaged file is an empty memory (the
/// worst case is one redelivery handled twice, which syncs an already synced checkout).
fn load(path: &Path) -> Vec<Entry> {
    let Ok(file) = crate::safe_fs::open_regular(path) else {
        return Vec::new();
    };
    let mut bytes = Vec::new();
    // Bounded: MAX_ENTRIES entries with ids of at most 128 characters fit in 200 kB.
    if file.take(256 * 1024).read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    serde_json::from_slice(&bytes).unwrap_or_else(|err| {
        tracing::warn!("{}: {err}; starting an empty delivery memory", path.display());
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_seen_within_the_window_only() {
        let (seen, entries) = remember(Vec::new(), "a", 1000);
        assert!(!seen);
        let (seen, entries) = remember(entries, "a", 1000 + WINDOW.as_secs());
        assert!(seen, "at the edge of the window");
        let (seen, entries) = remember(entries, "b", 1001 + WINDOW.as_secs());
        assert!(!seen);
        let (seen, _) = remember(entries, "a", 1001 + WINDOW.as_secs());
        assert!(!seen, "out of the window");
    }

    #[test]
    fn the_memory_is_bounded() {
        let mut entries = Vec::new();
        for i in 0..(MAX_ENTRIES as u64 + 50) {
            entries = remember(entries, &format!("id-{i}"), 5000 + i / 10).1;
        }
        assert_eq!(entries.len(), MAX_ENTRIES);
        assert_eq!(entries.first().map(|e| e.id.as_str()), Some("id-50"), "the oldest went");
    }

    #[test]
    fn the_file_remembers_across_processes() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!seen_before(dir.path(), "x", 100).expect("first"));
        assert!(seen_before(dir.path(), "x", 101).expect("again"));
        assert!(!seen_before(dir.path(), "y", 101).expect("another"));
        let text = std::fs::read_to_string(dir.path().join("hook/deliveries.json")).expect("read");
        assert!(text.contains("\"x\"") && text.contains("\"y\""), "{text}");
        // A damaged file is an empty memory, and is replaced.
        std::fs::write(dir.path().join("hook/deliveries.json"), "{garbage").expect("write");
        assert!(!seen_before(dir.path(), "x", 102).expect("after damage"));
        assert!(seen_before(dir.path(), "x", 103).expect("remembered again"));
    }
}
