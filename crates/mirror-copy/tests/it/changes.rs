//! How the mirror follows changes in the source: an unchanged rerun touches nothing, copy
//! semantics keep removed files, `--delete` removes them (guarded by `--max-delete`), and type
//! changes (file <-> directory <-> symlink) are followed or reported.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::{World, assert_no_partial, assert_same_tree, count, entries, excludes_with, have, rsync, tree};

/// Inode, mtime and ctime of every file and link: a rewrite (temp file + rename) changes the
/// inode, a metadata touch the ctime, even when the mtime is set back to the source's.
fn identities(dir: &Path) -> BTreeMap<PathBuf, (u64, i64, i64, i64)> {
    tree(dir)
        .keys()
        .map(|rel| {
            let meta = dir.join(rel).symlink_metadata().expect("stat");
            (
                rel.clone(),
                (
                    meta.ino(),
                    meta.mtime_nsec() + meta.mtime() * 1_000_000_000,
                    meta.ctime(),
                    meta.ctime_nsec(),
                ),
            )
        })
        .collect()
}

fn small_world() -> World {
    let w = World::new();
    w.write("a.txt", "alpha\n")
        .write("b.txt", "bravo\n")
        .write("dir/c.txt", "charlie\n")
        .write("dir/sub/d.txt", "delta\n")
        .write("web/node_modules/x.js", "excluded\n")
        .symlink("link", "a.txt");
    w
}

#[test]
fn unchanged_rerun_copies_nothing_and_keeps_destination_files() {
    let w = small_world();
    w.mirror(&[]).expect_code(0);
    let before = identities(&w.dest);
    let mtimes = driftless_tests::MtimeSnapshot::take(&w.dest);
    std::thread::sleep(std::time::Duration::from_millis(20));

    let run = w.mirror(&["--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(record["outcome"], "unchanged", "{record}");
    assert_eq!(count(&record, "copied"), 0, "{record}");
    assert_eq!(count(&record, "deleted"), 0, "{record}");
    assert_eq!(count(&record, "bytes"), 0, "{record}");
    // README.md, a.txt, b.txt, dir/c.txt, dir/sub/d.txt, link.
    assert_eq!(count(&record, "unchanged"), 6, "{record}");
    assert_eq!(count(&record, "unchanged"), entries(&tree(&w.dest)), "{record}");
    assert!(mtimes.assert_all_kept() >= 6, "mtime snapshot checked too few paths");
    assert_eq!(
        identities(&w.dest),
        before,
        "an unchanged rerun rewrote or touched destination files"
    );

    // The human summary says so too.
    let run = w.mirror(&[]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("0 copied") && run.stdout.contains("6 unchanged"),
        "{}",
        run.stdout
    );
}

#[test]
fn changed_file_is_copied_and_the_others_are_left_alone() {
    let w = small_world();
    w.mirror(&[]).expect_code(0);
    let before = identities(&w.dest);

    w.write("b.txt", "bravo, longer now\n").chmod("a.txt", 0o755);
    let run = w.mirror(&["--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(count(&record, "copied"), 2, "{record}");
    assert_eq!(count(&record, "unchanged"), 4, "{record}");
    assert_eq!(
        std::fs::read_to_string(w.dest.join("b.txt")).expect("read b.txt"),
        "bravo, longer now\n"
    );
    let after = identities(&w.dest);
    for (path, id) in &before {
        if path != Path::new("a.txt") && path != Path::new("b.txt") {
            assert_eq!(after.get(path), Some(id), "{} was rewritten", path.display());
        }
    }
}

#[test]
fn checksum_catches_a_change_that_keeps_size_and_mtime() {
    let w = small_world();
    w.mirror(&[]).expect_code(0);
    // Same size, same mtime, different bytes: only --checksum can tell.
    let path = w.src.join("a.txt");
    let mtime = std::fs::metadata(&path).expect("stat").modified().expect("mtime");
    std::fs::write(&path, "ALPHA\n").expect("rewrite a.txt");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open a.txt")
        .set_modified(mtime)
        .expect("restore mtime");

    let run = w.mirror(&["--json"]);
    run.expect_code(0);
    assert_eq!(count(&run.json(), "copied"), 0, "{}", run.stdout);
    let run = w.mirror(&["--checksum", "--json"]);
    run.expect_code(0);
    assert_eq!(count(&run.json(), "copied"), 1, "{}", run.stdout);
    assert_eq!(
        std::fs::read_to_string(w.dest.join("a.txt")).expect("read a.txt"),
        "ALPHA\n"
    );
}

#[test]
fn removed_files_stay_in_the_mirror_without_delete() {
    let w = small_world();
    w.mirror(&[]).expect_code(0);
    let before = tree(&w.dest);

    w.remove("b.txt").remove("dir").remove("link");
    let run = w.mirror(&["--json"]);
    run.expect_code(0);
    assert_eq!(count(&run.json(), "deleted"), 0, "{}", run.stdout);
    assert_same_tree(&tree(&w.dest), &before, "copy semantics: the mirror must lose nothing");
}

#[test]
fn delete_removes_what_the_source_lost_but_not_excluded_paths() {
    if !have("rsync", "the --delete oracle") {
        return;
    }
    let w = small_world();
    w.mirror(&[]).expect_code(0);
    let oracle = w.rsync_oracle("oracle", &[]);
    // Things only the destination has below excluded names: a mirror must leave them alone,
    // as rsync does without --delete-excluded.
    for dir in [&w.dest, &oracle] {
        driftless_tests::fixture::write_file(dir, "node_modules/kept-by-dest.js", "dest only\n");
        driftless_tests::fixture::write_file(dir, "sub/.terraform/kept", "dest only\n");
    }

    w.remove("b.txt").remove("dir/sub").remove("link");
    let run = w.mirror(&["--delete", "--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(count(&record, "deleted"), 3, "{record}");

    rsync(&w.src, &oracle, &excludes_with(&[]), &["--delete"]);
    assert_same_tree(&tree(&w.dest), &tree(&oracle), "mirror --delete vs rsync -a --delete");
    assert!(
        !w.dest.join("dir/sub").exists(),
        "the emptied directory dir/sub is still there"
    );
    assert!(
        w.dest.join("node_modules/kept-by-dest.js").is_file(),
        "--delete removed an excluded path"
    );
}

#[test]
fn max_delete_refuses_and_deletes_nothing() {
    let w = small_world();
    for i in 0..5 {
        w.write(&format!("old/{i}.txt"), format!("old {i}\n"));
    }
    w.mirror(&[]).expect_code(0);
    let before = tree(&w.dest);

    w.remove("old");
    w.write("a.txt", "alpha changed too\n");
    let run = w.mirror(&["--delete", "--max-delete", "2", "--json"]);
    run.expect_code(3);
    let record = run.json();
    assert_eq!(record["outcome"], "refused", "{record}");
    assert_eq!(count(&record, "deleted"), 0, "{record}");
    let reason = record["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains('5') && reason.contains("max-delete"),
        "reason names neither count nor flag: {record}"
    );
    let now = tree(&w.dest);
    for (path, node) in &before {
        assert_eq!(
            now.get(path),
            Some(node),
            "{} was lost by a refused run",
            path.display()
        );
    }
    assert_no_partial(&w.dest);

    // At the limit, it goes through.
    let run = w.mirror(&["--delete", "--max-delete", "5", "--json"]);
    run.expect_code(0);
    assert_eq!(count(&run.json(), "deleted"), 5, "{}", run.stdout);
    assert!(!w.dest.join("old").exists(), "old/ should be gone");
}

#[test]
fn file_replaced_by_dir_and_back_is_followed_with_delete() {
    if !have("rsync", "the --delete oracle") {
        return;
    }
    let w = small_world();
    let oracle = w.scratch("oracle");
    let step = |what: &str| {
        w.mirror(&["--delete"]).expect_code(0);
        rsync(&w.src, &oracle, &excludes_with(&[]), &["--delete"]);
        assert_same_tree(&tree(&w.dest), &tree(&oracle), what);
        assert_no_partial(&w.dest);
    };
    step("first mirror");

    w.remove("a.txt").write("a.txt/inner.txt", "now a directory\n");
    step("after a.txt became a directory");
    assert!(w.dest.join("a.txt/inner.txt").is_file());

    w.remove("a.txt").write("a.txt", "a file again\n");
    step("after a.txt became a file again");
    assert!(w.dest.join("a.txt").is_file());
}

#[test]
fn file_replaced_by_dir_is_followed_without_delete_too() {
    let w = small_world();
    w.mirror(&[]).expect_code(0);
    w.remove("a.txt").write("a.txt/inner.txt", "now a directory\n");
    w.mirror(&[]).expect_code(0);
    assert_eq!(
        std::fs::read_to_string(w.dest.join("a.txt/inner.txt")).expect("read a.txt/inner.txt"),
        "now a directory\n"
    );
}

#[test]
fn dir_replaced_by_file_without_delete_is_reported_and_the_rest_copied() {
    let w = small_world();
    w.mirror(&[]).expect_code(0);

    w.remove("dir").write("dir", "a file where a directory was\n");
    w.write("b.txt", "bravo changed\n").write("new.txt", "new\n");
    let run = w.mirror(&["--json"]);
    run.expect_code(74);
    let record = run.json();
    assert_eq!(record["outcome"], "failed", "{record}");
    let failed = record["failed"].as_array().expect("failed is a list");
    assert_eq!(failed.len(), 1, "{record}");
    assert!(failed[0].as_str().unwrap_or_default().starts_with("dir"), "{record}");
    assert!(
        run.all_output().contains("--delete"),
        "the message should say --delete resolves it:\n{}",
        run.all_output()
    );

    // Nothing lost, the rest copied.
    assert!(
        w.dest.join("dir/c.txt").is_file() && w.dest.join("dir/sub/d.txt").is_file(),
        "the old directory lost files"
    );
    assert_eq!(
        std::fs::read_to_string(w.dest.join("b.txt")).expect("read b.txt"),
        "bravo changed\n"
    );
    assert!(w.dest.join("new.txt").is_file(), "new.txt was not copied");
    assert_no_partial(&w.dest);

    // --delete resolves it.
    w.mirror(&["--delete"]).expect_code(0);
    assert_eq!(
        std::fs::read_to_string(w.dest.join("dir")).expect("dir is a file now"),
        "a file where a directory was\n"
    );
}

#[test]
fn dir_replaced_by_symlink_is_followed_with_delete() {
    if !have("rsync", "the --delete oracle") {
        return;
    }
    let w = small_world();
    w.mirror(&[]).expect_code(0);

    w.remove("dir").symlink("dir", "a.txt");
    let run = w.mirror(&["--delete"]);
    run.expect_code(0);
    let oracle = w.rsync_oracle("oracle", &[]);
    assert_same_tree(
        &tree(&w.dest),
        &tree(&oracle),
        "mirror --delete vs rsync after dir became a symlink",
    );
}

#[test]
fn symlink_replaced_by_file_and_file_by_symlink() {
    if !have("rsync", "the oracle") {
        return;
    }
    let w = small_world();
    w.mirror(&[]).expect_code(0);

    w.remove("link").write("link", "a file now\n");
    w.remove("b.txt").symlink("b.txt", "dir/c.txt");
    w.mirror(&[]).expect_code(0);
    let oracle = w.rsync_oracle("oracle", &[]);
    assert_same_tree(
        &tree(&w.dest),
        &tree(&oracle),
        "mirror vs rsync after link <-> file swaps",
    );
}

#[test]
fn dir_replaced_by_symlink_without_delete_is_reported_and_the_rest_copied() {
    let w = small_world();
    w.mirror(&[]).expect_code(0);

    w.remove("dir").symlink("dir", "a.txt");
    w.write("b.txt", "bravo changed\n").write("new.txt", "new\n");
    let run = w.mirror(&["--json"]);
    run.expect_code(74);
    let record = run.json();
    assert_eq!(record["outcome"], "failed", "{record}");
    let failed = record["failed"].as_array().map(Vec::len).unwrap_or_default();
    assert_eq!(failed, 1, "want the one path `dir` reported: {record}");
    assert!(
        w.dest.join("dir/c.txt").is_file() && w.dest.join("dir/sub/d.txt").is_file(),
        "the old directory lost files"
    );
    assert_eq!(
        std::fs::read_to_string(w.dest.join("b.txt")).expect("read b.txt"),
        "bravo changed\n"
    );
    assert!(w.dest.join("new.txt").is_file(), "new.txt was not copied");
    assert_no_partial(&w.dest);
}

#[test]
fn skip_links_leaves_symlinks_out_and_counts_them() {
    let w = small_world();
    w.symlink("dir/up", "../b.txt");
    let run = w.mirror(&["--skip-links", "--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(count(&record, "links_skipped"), 2, "{record}");
    assert!(
        w.dest.join("link").symlink_metadata().is_err(),
        "a link was copied with --skip-links"
    );
    assert!(
        w.dest.join("dir/up").symlink_metadata().is_err(),
        "a link was copied with --skip-links"
    );
    assert!(w.dest.join("a.txt").is_file(), "a.txt missing");

    // A link already in the mirror is not deleted for being skipped.
    w.mirror(&[]).expect_code(0);
    let run = w.mirror(&["--skip-links", "--delete", "--json"]);
    run.expect_code(0);
    assert_eq!(count(&run.json(), "deleted"), 0, "{}", run.stdout);
    assert!(
        w.dest.join("link").symlink_metadata().is_ok(),
        "--skip-links --delete removed a link"
    );
}
