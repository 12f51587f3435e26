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

    // A killed run's export (in the repo's state directory) is removed by the next run, and
    // none of it reaches the remote.
    let repo_state = find_file(&w.env.state_dir(), "mirror-copy.json")
        .and_then(|p| p.parent().map(Path::to_owned))
        .expect("the run's state record");
    let stale = repo_state.join("mirror-export/stale-from-a-killed-run.txt");
    driftless_tests::fixture::write_file(&repo_state, "mirror-export/stale-from-a-killed-run.txt", "stale\n");
    mirror_remote(&w, &remote_dest, &["--from", "commit", "--delete"]).expect_code(0);
    assert!(!stale.exists(), "the stale export is still there");
    assert!(!repo_state.join("mirror-export").exists(), "this run's export was left");
    assert!(!remote_dest.join("stale-from-a-killed-run.txt").exists());
}

/// The first file named `name` below `dir`.
fn find_file(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if entry.file_name() == name {
            return Some(path);
        }
        if path.is_dir()
            && let Some(found) = find_file(&path, name)
        {
            return Some(found);
        }
    }
    None
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

#[test]
fn rclone_connection_string_is_a_remote() {
    if !have("rclone", "remote destinations run the real rclone") {
        return;
    }
    for delete in [false, true] {
        let w = world();
        let remote_dest = w.env.path("remote");
        let to = format!(":local:{}", remote_dest.display());
        let mut args = vec!["--json"];
        if delete {
            args.push("--delete");
        }
        let run = w.mirror_to(&to, &args);
        run.expect_code(0);
        w.mirror(&[]).expect_code(0);
        assert_same_tree(
            &content_only(&tree(&remote_dest)),
            &content_only(&tree(&w.dest)),
            &format!("`--to {to}` through rclone vs the native engine, delete={delete}"),
        );
    }
}

#[test]
fn rclone_max_delete_refuses_before_deleting_anything() {
    if !have("rclone", "remote destinations run the real rclone") {
        return;
    }
    let w = world();
    for i in 0..5 {
        w.write(&format!("old/{i}.txt"), format!("old {i}\n"));
    }
    let remote_dest = w.env.path("remote");
    mirror_remote(&w, &remote_dest, &["--delete"]).expect_code(0);
    let before = tree(&remote_dest);

    w.remove("old");
    let run = mirror_remote(&w, &remote_dest, &["--delete", "--max-delete", "2", "--json"]);
    run.expect_code(3);
    assert_eq!(run.json()["outcome"], "refused", "{}", run.stdout);
    assert_same_tree(&tree(&remote_dest), &before, "a refused rclone run deleted files");

    // Within the limit, it syncs.
    mirror_remote(&w, &remote_dest, &["--delete", "--max-delete", "5"]).expect_code(0);
    assert!(!remote_dest.join("old/0.txt").exists(), "old/ should be gone");
    // And without --delete, nothing is counted or deleted.
    w.remove("a.txt");
    mirror_remote(&w, &remote_dest, &["--max-delete", "0"]).expect_code(0);
    assert!(remote_dest.join("a.txt").is_file(), "a copy deleted a file");
}

/// rclone's local backend opens and creates paths following symbolic links. A source owner who
/// gets a link mirrored (`secrets -> /outside`) and then replaces it by a directory of files
/// would have root's rclone write those files wherever the link points: the run is refused
/// before rclone starts, through an alias remote (resolved by rclone itself) and a `:local:`
/// connection string alike, with and without `--delete`, and nothing is written.
#[test]
fn rclone_refuses_a_destination_link_it_would_write_through() {
    if !have("rclone", "remote destinations run the real rclone") {
        return;
    }
    for (alias, delete) in [(true, false), (true, true), (false, true)] {
        let w = World::new();
        w.write("a.txt", "alpha\n");
        let outside = w.env.path("outside");
        std::fs::create_dir_all(&outside).expect("mkdir outside");
        w.symlink("secrets", outside.to_str().expect("utf-8"));
        let remote_dest = w.env.path("remote");
        let to = if alias {
            "backup:lab".to_owned()
        } else {
            format!(":local:{}", remote_dest.display())
        };
        let mut args = vec!["--json"];
        if delete {
            args.push("--delete");
        }
        let run_with = |args: &[&str]| {
            let mut cmd = w.cmd();
            cmd.env("RCLONE_CONFIG_BACKUP_TYPE", "alias")
                .env("RCLONE_CONFIG_BACKUP_REMOTE", w.env.path(""))
                .arg(&w.src)
                .arg("--to")
                .arg(&to)
                .args(args);
            crate::Run::of(&mut cmd)
        };
        let dest = if alias { w.env.path("lab") } else { remote_dest.clone() };
        run_with(&args).expect_code(0);
        assert!(
            dest.join("secrets")
                .symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink()),
            "the source link was not mirrored as a link"
        );

        // The source owner swaps the link for a directory of files.
        w.remove("secrets")
            .write("secrets/passwd", "planted\n")
            .write("b.txt", "bravo\n");
        let before = tree(&dest);
        let run = run_with(&args);
        run.expect_code(3);
        let record = run.json();
        assert_eq!(record["outcome"], "refused", "{record}");
        let reason = record["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains(&format!("{}", dest.join("secrets").display())) && reason.contains("rm "),
            "{reason}"
        );
        assert_eq!(
            std::fs::read_dir(&outside).expect("read outside").count(),
            0,
            "rclone wrote through the link (alias={alias}, delete={delete})"
        );
        assert_same_tree(&tree(&dest), &before, "a refused run changed the destination");

        // What the message says works: with the link removed, the run goes through.
        std::fs::remove_file(dest.join("secrets")).expect("rm the link");
        run_with(&args).expect_code(0);
        assert_eq!(
            std::fs::read_to_string(dest.join("secrets/passwd")).expect("copied"),
            "planted\n"
        );
        assert_eq!(std::fs::read_dir(&outside).expect("read outside").count(), 0);
    }
}
