//! The destination against independent oracles: `rsync -a` with the same excludes for the
//! working tree, `git archive` of the same commit for `--from commit`. Files and symlinks are
//! compared by bytes, permission bits, mtimes and link targets.

use std::os::unix::ffi::OsStrExt;

use crate::{World, assert_no_partial, assert_same_tree, count, entries, have, tree};

/// A checkout with every kind of entry a repo holds: modes, links (relative, absolute,
/// dangling, to a directory), hidden and ignored files, names with spaces, unicode and bytes
/// that are not UTF-8, and excluded directories at several depths. Part of it is committed.
fn rich_world() -> World {
    let w = World::new();
    w.write("a.txt", "alpha\n")
        .write("empty", "")
        .write("src/lib.rs", "pub fn f() {}\n")
        .write("src/deep/nested/very/deep/file.txt", "deep\n")
        .write("bin/run.sh", "#!/bin/sh\necho run\n")
        .chmod("bin/run.sh", 0o755)
        .write("secret.key", "k\n")
        .chmod("secret.key", 0o600)
        .write("group-read.txt", "g\n")
        .chmod("group-read.txt", 0o640)
        .write(".env", "A=1\n")
        .write(".gitignore", "*.log\n/build/\n")
        .write(".github/workflows/ci.yml", "on: push\n")
        .write("with space/file name.txt", "spaces\n")
        .write("données/été.txt", "accents\n")
        .write("日本語.md", "cjk\n")
        .write("emoji-🙂.txt", "emoji\n")
        .write("brackets [x] and * star?.txt", "glob chars\n")
        .write("web/node_modules.txt", "a near miss: kept\n")
        .write("web/node_modules_old/x.js", "kept\n")
        .write("infra/.terraform.lock.hcl", "lock file: kept\n")
        .write("my.git/x", "kept\n")
        .symlink("link-to-a", "a.txt")
        .symlink("link-to-dir", "src/deep")
        .symlink("dangling", "missing/target")
        .symlink("absolute", "/etc/hostname")
        .symlink("src/up", "../a.txt");
    // Excluded: node_modules, .terraform and .tofu at several depths.
    w.write("node_modules/top/index.js", "x\n")
        .write("web/app/node_modules/x/index.js", "x\n")
        .write("infra/.terraform/providers/p", "x\n")
        .write(".terraform/top", "x\n")
        .write("infra/env/prod/.tofu/state", "x\n");
    w.commit("rich tree");
    // Not committed: ignored files, a stray untracked file, a nested `.git` directory and a name
    // that is not UTF-8. The working tree mirror copies all but the `.git`.
    w.write("debug.log", "ignored by git, mirrored from the worktree\n")
        .write("build/out.bin", "ignored too\n")
        .write("stray.txt", "untracked\n")
        .write("vendor/lib/.git/HEAD", "ref: refs/heads/main\n");
    let latin1 = std::ffi::OsStr::from_bytes(b"latin1-\xe9t\xe9.txt");
    std::fs::write(w.src.join(latin1), "not utf-8\n").expect("write latin-1 name");
    w
}

#[test]
fn worktree_mirror_equals_rsync_with_the_same_excludes() {
    if !have("rsync", "the worktree oracle") {
        return;
    }
    let w = rich_world();
    let run = w.mirror(&["--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(record["outcome"], "copied", "{record}");

    let expected = tree(&w.rsync_oracle("oracle", &[]));
    assert_same_tree(&tree(&w.dest), &expected, "mirror vs rsync -a");
    assert_eq!(count(&record, "copied"), entries(&expected), "{record}");
    assert_eq!(record["failed"], serde_json::json!([]), "{record}");
    assert_no_partial(&w.dest);
}

#[test]
fn commit_mirror_equals_git_archive_and_ignores_the_worktree() {
    if !have("rsync", "the archive oracle") {
        return;
    }
    let w = rich_world();
    // The worktree drifts from HEAD: a tracked file edited, one deleted. Neither may show.
    w.write("a.txt", "edited, not committed\n").remove("src/lib.rs");

    let run = w.mirror(&["--from", "commit", "--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(record["outcome"], "copied", "{record}");
    assert_eq!(record["commit"], w.head().as_str(), "{record}");

    let expected = tree(&w.archive_oracle("oracle", &[]));
    let actual = tree(&w.dest);
    assert_same_tree(&actual, &expected, "mirror --from commit vs git archive HEAD");
    for stray in ["stray.txt", "debug.log", "build/out.bin", "vendor/lib/.git/HEAD"] {
        assert!(
            !w.dest.join(stray).exists(),
            "{stray} is not committed but was mirrored"
        );
    }
    assert_no_partial(&w.dest);
}

#[test]
fn commit_mirror_with_delete_follows_the_next_commit() {
    if !have("rsync", "the archive oracle") {
        return;
    }
    let w = rich_world();
    w.mirror(&["--from", "commit"]).expect_code(0);

    w.write("a.txt", "changed in the second commit\n")
        .remove("src/deep")
        .remove("link-to-dir")
        .write("src/deep", "a file where a directory was\n")
        .write("new/file.txt", "new\n")
        .chmod("secret.key", 0o755);
    w.commit("second");
    let run = w.mirror(&["--from", "commit", "--delete", "--json"]);
    run.expect_code(0);

    let expected = tree(&w.archive_oracle("oracle", &[]));
    assert_same_tree(
        &tree(&w.dest),
        &expected,
        "mirror --from commit --delete vs git archive of the new HEAD",
    );
    assert_eq!(run.json()["commit"], w.head().as_str());

    // And once more with nothing new: nothing copied.
    let again = w.mirror(&["--from", "commit", "--delete", "--json"]);
    again.expect_code(0);
    let record = again.json();
    assert_eq!(record["outcome"], "unchanged", "{record}");
    assert_eq!(count(&record, "copied"), 0, "{record}");
    assert_eq!(count(&record, "unchanged"), entries(&expected), "{record}");
}

/// `--from commit` stamps files with the commit's time; a new commit that changes one file
/// copies that file only, since the others still hold their blobs, and the run after settles
/// without copying anything. Still what `git archive` of the new commit gives.
#[test]
fn commit_mirror_copies_only_what_the_next_commit_changed() {
    if !have("rsync", "the archive oracle") {
        return;
    }
    let w = World::new();
    for i in 0..20 {
        w.write(&format!("dir/f{i}.txt"), format!("file {i}\n"));
    }
    w.commit("twenty files");
    w.mirror(&["--from", "commit"]).expect_code(0);
    // A second apart, so the new commit's time differs from the first one's.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    w.write("dir/f3.txt", "changed\n");
    w.commit("one file");

    let run = w.mirror(&["--from", "commit", "--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(count(&record, "copied"), 1, "only the changed file: {record}");
    assert_eq!(count(&record, "bytes"), 8, "the 8 bytes of the changed file: {record}");
    let expected = tree(&w.archive_oracle("oracle", &[]));
    assert_same_tree(&tree(&w.dest), &expected, "mirror --from commit vs git archive HEAD");

    let again = w.mirror(&["--from", "commit", "--json"]);
    again.expect_code(0);
    assert_eq!(count(&again.json(), "copied"), 0, "{}", again.stdout);
    assert_same_tree(&tree(&w.dest), &expected, "after a run with nothing new");
}

#[test]
fn unicode_and_spaces_in_names_survive_both_sources() {
    if !have("rsync", "the oracles") {
        return;
    }
    let w = World::new();
    let names = [
        "with space/and more spaces .txt",
        " leading space",
        "trailing space ",
        "données/été/ñandú.txt",
        "Ελληνικά/αρχείο.txt",
        "日本語/ファイル.md",
        "emoji 🙂/🚀.txt",
        "quote'and\"double.txt",
        "back\\slash.txt",
        "new\nline.txt",
        "tab\there.txt",
        "-dash-first.txt",
        "percent%20.txt",
    ];
    for (i, name) in names.iter().enumerate() {
        w.write(name, format!("file {i}: {name}\n"));
    }
    w.symlink("links/to-unicode", "../données/été/ñandú.txt");
    w.commit("unicode names");

    w.mirror(&[]).expect_code(0);
    let expected = tree(&w.rsync_oracle("oracle-worktree", &[]));
    assert_same_tree(&tree(&w.dest), &expected, "worktree mirror of unicode names vs rsync");

    let commit_dest = w.scratch("dest-commit");
    w.mirror_to(&commit_dest.display().to_string(), &["--from", "commit"])
        .expect_code(0);
    let expected = tree(&w.archive_oracle("oracle-commit", &[]));
    assert_same_tree(
        &tree(&commit_dest),
        &expected,
        "commit mirror of unicode names vs git archive",
    );
}

#[test]
fn source_dir_named_like_the_staging_dir_is_not_silently_dropped() {
    let w = World::new();
    w.write(".driftless-partial/keep.txt", "a real file with an unlucky name\n");
    let run = w.mirror(&["--json"]);
    let mirrored = w.dest.join(".driftless-partial/keep.txt").is_file();
    let reported = run.code != 0 && run.all_output().contains(".driftless-partial");
    assert!(
        mirrored || reported,
        "the file was neither mirrored nor reported (exit {}):\n{}",
        run.code,
        run.all_output()
    );
}
