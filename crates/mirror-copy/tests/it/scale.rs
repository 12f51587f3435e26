//! Size: a 100 MB file arrives byte for byte, and 20,000 small files are mirrored and then
//! rerun with nothing to copy.

use std::io::Write;
use std::time::Instant;

use crate::{World, assert_no_partial, assert_same_tree, count, entries, have, tree};

/// Write `size` bytes to `path`: a 1 MiB pattern (distinct per MiB) repeated, quick to make and
/// with no holes.
pub fn write_big(path: &std::path::Path, size: usize) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("create parent");
    let mut file = std::fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let mut block: Vec<u8> = (0..1usize << 20).map(|i| (i * 7 % 251) as u8).collect();
    let mut written = 0;
    let mut n = 0u32;
    while written < size {
        block[..4].copy_from_slice(&n.to_le_bytes());
        let take = block.len().min(size - written);
        file.write_all(&block[..take]).expect("write big file");
        written += take;
        n += 1;
    }
}

#[test]
fn hundred_megabyte_file_arrives_intact() {
    if !have("rsync", "the worktree oracle") {
        return;
    }
    let w = World::new();
    write_big(&w.src.join("images/disk.img"), 100 * 1024 * 1024 + 123);
    w.write("small.txt", "small\n");

    let run = w.mirror(&["--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(count(&record, "copied"), 3, "{record}");
    assert!(count(&record, "bytes") >= 100 * 1024 * 1024, "{record}");
    let expected = tree(&w.rsync_oracle("oracle", &[]));
    assert_same_tree(&tree(&w.dest), &expected, "mirror of a 100 MB file vs rsync -a");
    assert_no_partial(&w.dest);
}

#[test]
fn twenty_thousand_small_files_then_an_unchanged_rerun() {
    if !have("rsync", "the worktree oracle") {
        return;
    }
    let w = World::on_tmpfs("512m");
    // Untracked: worktree mode copies what is on disk, git need not know these.
    driftless_tests::fixture::many_files(&w.src, "data", 20_000, "v1");
    // And some under an excluded directory, which must not even be walked into the mirror.
    driftless_tests::fixture::many_files(&w.src, "web/node_modules", 500, "x");

    let start = Instant::now();
    let run = w.mirror(&["--json"]);
    let first = start.elapsed();
    run.expect_code(0);
    let record = run.json();
    assert_eq!(count(&record, "copied"), 20_001, "{record}");

    let expected = tree(&w.rsync_oracle("oracle", &[]));
    assert_eq!(entries(&expected), 20_001);
    assert_same_tree(&tree(&w.dest), &expected, "mirror of 20,000 files vs rsync -a");

    let start = Instant::now();
    let run = w.mirror(&["--json"]);
    let rerun = start.elapsed();
    run.expect_code(0);
    let record = run.json();
    assert_eq!(record["outcome"], "unchanged", "{record}");
    assert_eq!(count(&record, "copied"), 0, "{record}");
    assert_eq!(count(&record, "unchanged"), 20_001, "{record}");
    eprintln!(
        "20,000 files ({}): first mirror {first:?}, unchanged rerun {rerun:?}",
        if w.on_ram() { "tmpfs" } else { "disk" }
    );
}
