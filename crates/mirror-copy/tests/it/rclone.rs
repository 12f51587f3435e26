//! Remote destinations through the real `rclone`, with a `local`-type remote defined in the
//! environment (`RCLONE_CONFIG_MIRROR_TYPE=local`, destination `mirror:/abs/path`): same files
//! as the native engine, excludes honoured, `--from commit`, and a missing rclone.

use std::path::Path;

use crate::{Run, World, assert_same_tree, content_only, have, tree};

/// `mirror-copy <src> --to mirror:<dest> ARGS` with the `mirror` remote defined as local.
fn mirror_remote(w: &World, dest: &Path, args: &[&str]) -> Run {
    let mut cmd = w.cmd();
    cmd.env("RCLONE_CONFIG_MIRROR_TYPE", "local")
        .arg(&w.src)
        .arg("--to")
        .arg(format!("mirror:{}", dest.display()))
        .args(args);
    Run::of(&mut cmd)
}

fn world() -> World {
    let w = World::new();
    w.write("a.txt", "alpha\n")
        .write("dir/sub/b.txt", "bravo\n")
        .write("with space/été.txt", "unicode\n")
        .write("app.log", "excluded by a flag\n")
        .write("web/app/node_modules/x.js", "excluded by default\n")
        .write("infra/.terraform/p", "excluded by default\n")
        .write("infra/.terraform.lock.hcl", "kept\n")
        .symlink("link", "a.txt");
    w
}

#[test]
fn rclone_remote_gets_the_same_files_as_the_native_engine() {
    if !have("rclone", "remote destinations run the real rclone") {
        return;
    }
    let w = world();
    let remote_dest = w.env.path("remote");
    let run = mirror_remote(&w, &remote_dest, &["--exclude", "*.log", "--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(record["outcome"], "copied", "{record}");
    assert_eq!(
        record["destination"],
        format!("mirror:{}", remote_dest.display()),
        "{record}"
    );

    w.mirror(&["--exclude", "*.log"]).expect_code(0);
    let native = tree(&w.dest);
    assert!(native.contains_key(Path::new("infra/.terraform.lock.hcl")));
    assert!(!native.contains_key(Path::new("app.log")));
    // rclone keeps neither permission bits nor (always) times: compare content and links.
    assert_same_tree(
        &content_only(&tree(&remote_dest)),
        &content_only(&native),
        "rclone remote vs native engine",
    );

    // With --delete it syncs: a removed file goes.
    w.remove("a.txt");
    mirror_remote(&w, &remote_dest, &["--exclude", "*.log", "--delete"]).expect_code(0);
    assert!(!remote_dest.join("a.txt").exists(), "rclone sync kept a removed file");
    assert!(remote_dest.join("dir/sub/b.txt").is_file(), "rclone sync lost a file");
}

#[test]
fn rclone_with_from_commit_equals_git_archive() {
    if !have("rclone", "remote destinations run the real rclone") || !have("rsync", "the archive oracle") {
        return;
    }
    let w = world();
    w.commit("tracked");
    w.write("stray.txt", "untracked\n")
        .write("a.txt", "edited, not committed\n");
    let remote_dest = w.env.path("remote");
    let run = mirror_remote(&w, &remote_dest, &["--from", "commit", "--json"]);
    run.expect_code(0);
    assert_eq!(run.json()["commit"], w.head().as_str(), "{}", run.stdout);

    let expected = tree(&w.archive_oracle("oracle", &[]));
    assert_same_tree(
        &content_only(&tree(&remote_dest)),
        &content_only(&expected),
        "rclone --from commit vs git archive",
    );
    // The export made for rclone is gone.
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .expect("read temp dir")
        .flatten()
        .filter(|e| {
            e.file_name().to_string_lossy().starts_with("driftless-export-") && e.path().join("stray.txt").exists()
        })
        .collect();
    assert!(leftovers.is_empty(), "export dirs left in the temp dir: {leftovers:?}");
}

#[test]
fn missing_rclone_exits_2_and_names_it() {
    let w = world();
    let remote_dest = w.env.path("remote");
    let mut cmd = w.cmd();
    cmd.env("RCLONE_CONFIG_MIRROR_TYPE", "local")
        .arg(&w.src)
        .arg("--to")
        .arg(format!("mirror:{}", remote_dest.display()))
        .args(["--rclone", "/nonexistent/rclone", "--json"]);
    let run = Run::of(&mut cmd);
    run.expect_code(2);
    let record = run.json();
    assert_eq!(record["outcome"], "failed", "{record}");
    let reason = record["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("/nonexistent/rclone") && reason.contains("install rclone"),
        "the reason should name the program and how to get it: {record}"
    );
    assert!(!remote_dest.exists(), "something was written without rclone");
}
