//! Failures and what they leave: a full destination (a real 2 MB tmpfs), a missing one, an
//! unreadable source file (as user `nobody`, since root reads anything), special files, and a
//! source that is not a checkout. Each run still copies what it can and loses nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::scale::write_big;
use crate::{
    PARTIAL_DIR, Run, Tmpfs, World, assert_no_partial, assert_same_tree, assert_subset, count, have, skip, tree,
};

#[test]
fn full_destination_fails_with_74_and_leaves_no_partial_file() {
    if !have("rsync", "the worktree oracle") {
        return;
    }
    let w = World::new();
    for i in 0..10 {
        write_big(&w.src.join(format!("blobs/{i}.bin")), 400 * 1024 + i);
    }
    for i in 0..5 {
        w.write(&format!("notes/{i}.txt"), format!("note {i}\n"));
    }
    let expected = tree(&w.rsync_oracle("oracle", &[]));
    let dest = w.env.path("full");
    let Some(_mount) = Tmpfs::mount(&dest, "2m") else {
        skip("cannot mount a tmpfs to fill up (needs root / CAP_SYS_ADMIN)");
        return;
    };

    let run = w.mirror_to(&dest.display().to_string(), &["--json", "--jobs", "2"]);
    run.expect_code(74);
    let record = run.json();
    assert_eq!(record["outcome"], "failed", "{record}");
    assert!(
        record["reason"].as_str().unwrap_or_default().contains("full"),
        "the reason should say the destination is full: {record}"
    );
    assert!(run.all_output().contains("full"), "{}", run.all_output());

    let actual = tree(&dest);
    assert_subset(&actual, &expected, "after filling the destination");
    assert!(
        actual.len() < expected.len(),
        "4 MB fit in a 2 MB tmpfs? {} files",
        actual.len()
    );
    assert!(
        !dest.join(PARTIAL_DIR).exists(),
        "{PARTIAL_DIR} was left on the full disk"
    );

    // A second try does no harm either: same exit, still no half file.
    let run = w.mirror_to(&dest.display().to_string(), &["--json"]);
    run.expect_code(74);
    assert_subset(&tree(&dest), &expected, "after a second run on the full destination");
    assert_no_partial(&dest);
}

#[test]
fn missing_destination_exits_75_and_is_not_created() {
    let w = World::new();
    let dest = w.env.path("mnt/backup/lab");
    let run = w.mirror_to(&dest.display().to_string(), &["--json"]);
    run.expect_code(75);
    let record = run.json();
    assert_eq!(record["outcome"], "failed", "{record}");
    let reason = record["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&dest.display().to_string()),
        "the reason should name the destination: {record}"
    );
    assert!(!dest.exists(), "the missing destination was created");
    assert!(
        !w.env.path("mnt").exists(),
        "a parent of the missing destination was created"
    );

    // A destination that is a file is no directory either.
    let file = w.env.path("not-a-dir");
    std::fs::write(&file, "x").expect("write file");
    w.mirror_to(&file.display().to_string(), &[]).expect_code(75);
    assert_eq!(
        std::fs::read(&file).expect("read file"),
        b"x",
        "the file in the way was changed"
    );
}

/// `chown -h USER:GROUP` everything below and including `path`.
fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    if path.symlink_metadata().expect("stat").is_dir() {
        for entry in std::fs::read_dir(path).expect("read dir") {
            chown_tree(&entry.expect("dir entry").path(), uid, gid);
        }
    }
}

/// The uid and gid of user `nobody` / group `nogroup`.
fn nobody() -> Option<(u32, u32)> {
    let id = |args: &[&str]| -> Option<u32> {
        let out = Command::new("id").args(args).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id(&["-u", "nobody"])?, id(&["-g", "nobody"])?))
}

#[test]
fn unreadable_source_file_is_reported_and_the_rest_copied() {
    if !have("setpriv", "runs the tool as nobody; root reads any file") {
        return;
    }
    let Some((uid, gid)) = nobody() else {
        skip("no user `nobody`");
        return;
    };
    let w = World::new();
    w.write("a.txt", "alpha\n")
        .write("sub/b.txt", "bravo\n")
        .write("secret.txt", "no one may read this\n")
        .write("locked/inside.txt", "behind a closed directory\n");
    // The tool runs as nobody: it owns the source (so git trusts it), the destination, the
    // state directory and HOME; the binary is linked where nobody can run it.
    let root = w.env.root();
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).expect("open the test root");
    for dir in [&w.src, &w.dest, &w.env.state_dir(), &w.env.home()] {
        chown_tree(dir, uid, gid);
    }
    std::fs::set_permissions(w.src.join("secret.txt"), std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
    std::fs::set_permissions(w.src.join("locked"), std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
    let bin = w.env.path("bin/mirror-copy");
    std::fs::create_dir_all(bin.parent().expect("bin dir")).expect("create bin dir");
    let built = w.env.bin("mirror-copy");
    if std::fs::hard_link(&built, &bin).is_err() {
        std::fs::copy(&built, &bin).expect("copy the binary");
    }
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod binary");

    let mut cmd = assert_cmd::Command::new("setpriv");
    cmd.env_clear()
        .envs(driftless_tests::env::isolated_env(&w.env.home()))
        .current_dir(&root)
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(&bin)
        .arg("--state-dir")
        .arg(w.env.state_dir())
        .arg(&w.src)
        .arg("--to")
        .arg(&w.dest)
        .arg("--json");
    let run = Run::of(&mut cmd);
    run.expect_code(74);
    let record = run.json();
    assert_eq!(record["outcome"], "failed", "{record}");
    let failed: Vec<&str> = record["failed"]
        .as_array()
        .expect("failed is a list")
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    assert!(
        failed.iter().any(|f| f.starts_with("secret.txt")),
        "secret.txt not reported: {record}"
    );
    assert!(
        failed.iter().any(|f| f.starts_with("locked")),
        "locked/ not reported: {record}"
    );
    assert_eq!(failed.len(), 2, "{record}");

    assert_eq!(
        std::fs::read_to_string(w.dest.join("a.txt")).expect("a.txt copied"),
        "alpha\n"
    );
    assert_eq!(
        std::fs::read_to_string(w.dest.join("sub/b.txt")).expect("sub/b.txt copied"),
        "bravo\n"
    );
    assert!(w.dest.join("README.md").is_file(), "README.md not copied");
    assert!(
        !w.dest.join("secret.txt").exists(),
        "an unreadable file left something under its name"
    );
    assert!(
        !w.dest.join("locked/inside.txt").exists(),
        "a file behind an unreadable directory appeared"
    );
    assert_no_partial(&w.dest);
    assert_eq!(count(&record, "copied"), 3, "{record}");
}

#[test]
fn fifo_in_the_source_is_skipped_without_blocking() {
    let w = World::new();
    w.write("a.txt", "alpha\n");
    let fifo = w.src.join("pipe");
    let status = Command::new("mkfifo").arg(&fifo).status().expect("spawn mkfifo");
    assert!(status.success(), "mkfifo failed");

    let mut cmd = w.cmd();
    cmd.arg(&w.src)
        .arg("--to")
        .arg(&w.dest)
        .arg("--json")
        .timeout(std::time::Duration::from_secs(30));
    let run = Run::of(&mut cmd);
    run.expect_code(0);
    assert!(w.dest.join("pipe").symlink_metadata().is_err(), "the FIFO was mirrored");
    let mut expected = tree(&w.src);
    expected.retain(|p, _| !p.starts_with(".git") && p != Path::new("pipe"));
    assert_same_tree(&tree(&w.dest), &expected, "mirror without the FIFO");
}

#[test]
fn source_that_is_not_a_checkout_is_a_usage_error() {
    let w = World::new();
    let plain = w.scratch("plain");
    std::fs::write(plain.join("x"), "x").expect("write");
    let mut cmd = w.cmd();
    cmd.arg(&plain).arg("--to").arg(&w.dest).arg("--json");
    let run = Run::of(&mut cmd);
    run.expect_code(2);
    assert!(tree(&w.dest).is_empty(), "something was copied from a non-checkout");

    // And a missing --to with no config is one too, naming the fix.
    let mut cmd = w.cmd();
    cmd.arg(&w.src);
    let run = Run::of(&mut cmd);
    run.expect_code(2);
    assert!(run.stderr.contains("--to"), "{}", run.stderr);
}
