//! What a backup must never do, checked against the real `rsync -a` on the same input (each
//! case with and without `--delete`): delete behind a source it could not read, remove excluded
//! files or more than `--max-delete`, or widen access.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::{Run, World, assert_no_partial, assert_same_tree, excludes_with, have, tree};

/// Root reads any directory: these capabilities are dropped from the bounding set (setpriv),
/// so a 0o000 directory is unreadable to the tool as it is to any other user, while it keeps
/// uid 0 and owns everything it writes.
const NO_DAC: &str = "-dac_override,-dac_read_search";

/// `rsync -a EXTRA --exclude=P... SRC/ DST/` without CAP_DAC_*; its exit code (23 is
/// rsync's "partial transfer due to error").
fn rsync_no_dac(src: &Path, dst: &Path, extra: &[&str]) -> i32 {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--bounding-set", NO_DAC, "rsync", "-a"]).args(extra);
    for pattern in excludes_with(&[]) {
        cmd.arg(format!("--exclude={pattern}"));
    }
    cmd.arg(format!("{}/", src.display()))
        .arg(format!("{}/", dst.display()));
    let out = cmd.output().expect("spawn setpriv rsync");
    out.status.code().unwrap_or(-1)
}

/// `mirror-copy SRC --to DEST ARGS` without CAP_DAC_*.
fn mirror_no_dac(w: &World, args: &[&str]) -> Run {
    let mut cmd = assert_cmd::Command::new("setpriv");
    cmd.env_clear()
        .envs(driftless_tests::env::isolated_env(&w.env.home()))
        .current_dir(w.env.root())
        .args(["--bounding-set", NO_DAC])
        .arg(w.env.bin("mirror-copy"))
        .arg("--state-dir")
        .arg(w.env.state_dir())
        .arg(&w.src)
        .arg("--to")
        .arg(&w.dest)
        .args(args);
    Run::of(&mut cmd)
}

/// The strings of the `failed` list of a `--json` record.
fn failed(record: &serde_json::Value) -> Vec<String> {
    record["failed"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[test]
fn unreadable_directory_skips_deletions_as_rsync_does() {
    if !have("rsync", "the oracle") || !have("setpriv", "drops root's CAP_DAC_OVERRIDE") {
        return;
    }
    for delete in [false, true] {
        let w = World::new();
        w.write("a.txt", "alpha\n")
            .write("b.txt", "bravo\n")
            .write("locked/one.txt", "1\n")
            .write("locked/deep/two.txt", "2\n");
        let oracle = w.scratch("oracle");
        w.mirror(&[]).expect_code(0);
        assert_eq!(rsync_no_dac(&w.src, &oracle, &[]), 0);

        // The source loses b.txt, and locked/ can no longer be read (permission, EIO, a
        // root-squashed NFS): it looks empty, but is not.
        w.remove("b.txt").write("a.txt", "alpha changed\n");
        std::fs::set_permissions(w.src.join("locked"), std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
        let mut args = vec!["--json"];
        let mut rsync_args = vec![];
        if delete {
            args.push("--delete");
            // rsync's --delete-during (its default) deletes in the directories it reached before
            // the read error; --delete-after, like mirror-copy, deletes nothing after one.
            rsync_args.push("--delete-after");
        }
        let run = mirror_no_dac(&w, &args);
        let rsync_code = rsync_no_dac(&w.src, &oracle, &rsync_args);
        std::fs::set_permissions(w.src.join("locked"), std::fs::Permissions::from_mode(0o755)).expect("chmod back");

        assert_eq!(rsync_code, 23, "rsync should report the unreadable directory");
        run.expect_code(74);
        let record = run.json();
        assert_eq!(record["deleted"], 0, "delete={delete}: {record}");
        let failed = failed(&record);
        assert!(failed.iter().any(|f| f.starts_with("locked")), "{record}");
        if delete {
            assert!(
                failed.iter().any(|f| f.contains("deletions skipped")),
                "the report should say deletions were skipped: {record}"
            );
        }
        assert_same_tree(
            &tree(&w.dest),
            &tree(&oracle),
            &format!("unreadable source directory, delete={delete}: mirror vs rsync -a"),
        );
        assert!(
            w.dest.join("locked/deep/two.txt").is_file(),
            "the mirror of locked/ lost files"
        );
        assert!(
            w.dest.join("b.txt").is_file(),
            "delete={delete}: b.txt deleted behind a read error"
        );
        assert_no_partial(&w.dest);
    }
}

#[test]
fn directory_replaced_by_a_file_counts_toward_max_delete_and_keeps_excluded_files() {
    if !have("rsync", "the oracle") {
        return;
    }
    for delete in [false, true] {
        let w = World::new();
        w.write("keep.txt", "k\n");
        for i in 0..5 {
            w.write(&format!("x/{i}.txt"), format!("{i}\n"));
        }
        let oracle = w.scratch("oracle");
        w.mirror(&[]).expect_code(0);
        crate::rsync(&w.src, &oracle, &excludes_with(&[]), &[]);
        // Excluded files that only the destination has, below the directory the source is
        // about to turn into a file: a git checkout's .git, a node_modules.
        for dir in [&w.dest, &oracle] {
            driftless_tests::fixture::write_file(dir, "x/node_modules/dep.js", "dest only\n");
            driftless_tests::fixture::write_file(dir, "x/.git/HEAD", "ref: refs/heads/main\n");
        }
        w.remove("x").write("x", "a file where a directory was\n");

        if delete {
            // Six removals (five files and the directory itself) exceed --max-delete 0 and 5:
            // nothing may go.
            let before = tree(&w.dest);
            for max in ["0", "5"] {
                let run = w.mirror(&["--delete", "--max-delete", max, "--json"]);
                run.expect_code(3);
                assert_eq!(run.json()["deleted"], 0, "{}", run.stdout);
                assert_same_tree(
                    &tree(&w.dest),
                    &before,
                    &format!("after a refused run, --max-delete {max}"),
                );
            }
        }
        let args: &[&str] = if delete { &["--delete", "--json"] } else { &["--json"] };
        let run = w.mirror(args);
        let mut cmd = Command::new("rsync");
        cmd.arg("-a").args(if delete { &["--delete"][..] } else { &[][..] });
        for pattern in excludes_with(&[]) {
            cmd.arg(format!("--exclude={pattern}"));
        }
        let status = cmd
            .arg(format!("{}/", w.src.display()))
            .arg(format!("{}/", oracle.display()))
            .status()
            .expect("spawn rsync");
        assert_eq!(status.code(), Some(23), "rsync cannot put the file there either");

        run.expect_code(74);
        let record = run.json();
        assert!(
            failed(&record).iter().any(|f| f.starts_with('x')),
            "x should be reported: {record}"
        );
        assert_same_tree(
            &tree(&w.dest),
            &tree(&oracle),
            &format!("directory replaced by a file, delete={delete}: mirror vs rsync -a"),
        );
        for kept in ["x/node_modules/dep.js", "x/.git/HEAD"] {
            assert!(
                w.dest.join(kept).is_file(),
                "delete={delete}: excluded {kept} was removed"
            );
        }
        assert_eq!(record["deleted"], if delete { 5 } else { 0 }, "{record}");
        assert_no_partial(&w.dest);
    }
}

/// The permission bits of every directory below `dir` (not `dir` itself: the destination's
/// top is the admin's).
fn dir_modes(dir: &Path) -> std::collections::BTreeMap<std::path::PathBuf, u32> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("dir entry").path();
            let meta = path.symlink_metadata().expect("stat");
            if meta.is_dir() {
                out.insert(
                    path.strip_prefix(dir).expect("below").to_owned(),
                    meta.permissions().mode() & 0o7777,
                );
                stack.push(path);
            }
        }
    }
    out
}

#[test]
fn setuid_is_dropped_and_directory_modes_are_mirrored() {
    if !have("rsync", "the oracle") {
        return;
    }
    for delete in [false, true] {
        let w = World::new();
        w.write("tool", "#!/bin/sh\n")
            .chmod("tool", 0o4755)
            .write("group-tool", "#!/bin/sh\n")
            .chmod("group-tool", 0o2711)
            .write("sticky.txt", "s\n")
            .chmod("sticky.txt", 0o1644)
            .write("private/key", "secret\n")
            .chmod("private/key", 0o600)
            .write("private/inner/more", "more\n")
            .write("shared/notes.txt", "notes\n")
            .write("readonly/file.txt", "r\n");
        w.chmod("private/inner", 0o750)
            .chmod("private", 0o700)
            .chmod("shared", 0o775)
            .chmod("readonly", 0o555);
        let args: &[&str] = if delete { &["--delete"] } else { &[] };
        // Run twice: the second run must find everything in place (nothing widened, nothing
        // left to fix).
        for round in 0..2 {
            w.mirror(args).expect_code(0);
            let oracle = w.scratch(&format!("oracle-{round}"));
            // rsync -a would keep the setuid bit; a mirror written by root must not.
            let mut extra = vec!["--chmod=ug-s,o-t"];
            extra.extend(args);
            crate::rsync(&w.src, &oracle, &excludes_with(&[]), &extra);
            assert_same_tree(
                &tree(&w.dest),
                &tree(&oracle),
                &format!("modes, delete={delete}, round {round}: mirror vs rsync -a --chmod=ug-s,o-t"),
            );
            let ours = dir_modes(&w.dest);
            let theirs = dir_modes(&oracle);
            for (dir, mode) in &ours {
                assert_eq!(
                    Some(mode),
                    theirs.get(dir),
                    "directory {} has mode {mode:o}, rsync gives {:?}",
                    dir.display(),
                    theirs.get(dir).map(|m| format!("{m:o}"))
                );
            }
            assert_eq!(ours.get(Path::new("private")), Some(&0o700), "{ours:?}");
            assert_eq!(ours.get(Path::new("readonly")), Some(&0o555), "{ours:?}");
        }
        let again = w.mirror(&["--json"]);
        again.expect_code(0);
        assert_eq!(again.json()["copied"], 0, "{}", again.stdout);
    }
}

#[test]
fn dot_dot_tree_entry_is_refused_and_nothing_is_written_outside() {
    for delete in [false, true] {
        let w = World::new();
        w.write("ok.txt", "fine\n");
        w.commit("a file");
        w.mirror(&["--from", "commit"]).expect_code(0);
        std::fs::write(w.dest.join("dest-only.txt"), "only in the mirror\n").expect("write");
        // A commit whose tree names an entry `..` holding `pwned.txt`, and one `.GIT`: git itself
        // refuses to check either out. (git mktree does not check names; a hostile remote's
        // objects need not either.)
        let git = |args: &[&str], input: Option<String>| -> String {
            let mut cmd = Command::new("git");
            cmd.current_dir(&w.src)
                .env_clear()
                .envs(driftless_tests::env::isolated_env(&w.env.home()))
                .args(args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped());
            let mut child = cmd.spawn().expect("spawn git");
            if let Some(input) = input {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(input.as_bytes())
                    .expect("feed git");
            } else {
                drop(child.stdin.take());
            }
            let out = child.wait_with_output().expect("git output");
            assert!(out.status.success(), "git {args:?} failed");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        let blob = git(&["hash-object", "-w", "--stdin"], Some("written outside\n".into()));
        let ok = git(&["hash-object", "-w", "--stdin"], Some("fine\n".into()));
        let inner = git(&["mktree"], Some(format!("100644 blob {blob}\tpwned.txt\n")));
        let tree_id = git(
            &["mktree"],
            Some(format!(
                "040000 tree {inner}\t..\n100644 blob {blob}\t.GIT\n100644 blob {ok}\tok.txt\n"
            )),
        );
        let commit = git(&["commit-tree", tree_id.as_str(), "-m", "hostile"], None);
        git(&["update-ref", "refs/heads/main", commit.as_str()], None);

        let mut args = vec!["--from", "commit", "--json"];
        if delete {
            args.push("--delete");
        }
        let run = w.mirror(&args);
        run.expect_code(74);
        let record = run.json();
        let failed = failed(&record);
        assert!(failed.iter().any(|f| f.starts_with("..")), "{record}");
        assert!(failed.iter().any(|f| f.starts_with(".GIT")), "{record}");
        let outside = w.dest.parent().expect("parent").join("pwned.txt");
        assert!(!outside.exists(), "delete={delete}: {} was written", outside.display());
        assert!(!w.dest.join(".GIT").exists(), "delete={delete}: .GIT was mirrored");
        assert_eq!(
            std::fs::read_to_string(w.dest.join("ok.txt")).expect("ok.txt"),
            "fine\n"
        );
        assert!(
            w.dest.join("dest-only.txt").is_file(),
            "delete={delete}: a run over a tree it could not fully read deleted"
        );
        assert_no_partial(&w.dest);
    }
}

#[test]
fn a_second_writer_on_the_destination_waits_or_exits_75() {
    if !have("flock", "holds the destination like another run") || !have("rsync", "the oracle") {
        return;
    }
    for delete in [false, true] {
        let w = World::new();
        w.write("a.txt", "alpha\n");
        let args: &[&str] = if delete { &["--delete", "--json"] } else { &["--json"] };
        // Another writer (another repo's run, another state dir) holds the destination; the
        // real flock(1) confirms the lock is one other tools see.
        let holder = std::fs::File::open(&w.dest).expect("open dest");
        holder.lock().expect("lock dest");
        let probe = Command::new("flock")
            .arg("-n")
            .arg(&w.dest)
            .arg("true")
            .status()
            .expect("spawn flock");
        assert!(!probe.success(), "flock(1) does not see the destination as locked");
        let run = w.mirror(args);
        run.expect_code(75);
        assert!(
            run.all_output().contains("another mirror-copy run"),
            "{}",
            run.all_output()
        );
        assert!(
            tree(&w.dest).is_empty(),
            "delete={delete}: a busy destination was written"
        );
        // Waiting for it: the holder lets go after a moment.
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            drop(holder);
        });
        let mut waiting = args.to_vec();
        waiting.extend(["--wait-lock", "20"]);
        let waited = w.mirror(&waiting);
        release.join().expect("release thread");

        waited.expect_code(0);
        let oracle = w.scratch("oracle");
        crate::rsync(&w.src, &oracle, &excludes_with(&[]), &[]);
        assert_same_tree(&tree(&w.dest), &tree(&oracle), "after the lock was released");
    }
}

#[test]
fn destination_inside_the_source_is_a_config_error() {
    for delete in [false, true] {
        let w = World::new();
        w.write("a.txt", "alpha\n");
        let inside = w.src.join("backup");
        std::fs::create_dir(&inside).expect("create dest inside");
        let mut args = vec!["--json"];
        if delete {
            args.push("--delete");
        }
        let run = w.mirror_to(&inside.display().to_string(), &args);
        run.expect_code(2);
        assert!(run.all_output().contains("inside the checkout"), "{}", run.all_output());
        assert_eq!(
            std::fs::read_dir(&inside).expect("read").count(),
            0,
            "delete={delete}: something was written into the nested destination"
        );
    }
}

#[test]
fn a_directory_swapped_for_a_symlink_during_the_copy_is_not_followed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    for delete in [false, true] {
        let w = World::new();
        for i in 0..400 {
            w.write(&format!("d/f{i:03}.txt"), "public\n");
        }
        // What the source's owner may not read, but root may: the copy must never follow a
        // symlink to it.
        let secret = w.scratch("secret");
        for i in 0..400 {
            std::fs::write(secret.join(format!("f{i:03}.txt")), "SECRET\n").expect("write secret");
        }
        // A second thread swaps d/ for a symlink to the secret directory and back, over and
        // over, while mirror-copy lists and copies.
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (stop, src, secret) = (Arc::clone(&stop), w.src.clone(), secret.clone());
            std::thread::spawn(move || {
                let (d, real) = (src.join("d"), src.join("d.real"));
                while !stop.load(Ordering::Relaxed) {
                    std::fs::rename(&d, &real).expect("move d away");
                    std::os::unix::fs::symlink(&secret, &d).expect("plant the symlink");
                    std::thread::sleep(std::time::Duration::from_micros(300));
                    std::fs::remove_file(&d).expect("remove the symlink");
                    std::fs::rename(&real, &d).expect("move d back");
                    std::thread::sleep(std::time::Duration::from_micros(300));
                }
            })
        };
        let mut args = vec!["--json", "--jobs", "2"];
        if delete {
            args.push("--delete");
        }
        for round in 0..6 {
            let run = w.mirror(&args);
            assert!(
                run.code == 0 || run.code == 74,
                "round {round}: exit {}: {}",
                run.code,
                run.all_output()
            );
            let leaked: Vec<_> = tree(&w.dest)
                .into_keys()
                .filter(|p| {
                    let path = w.dest.join(p);
                    path.symlink_metadata().is_ok_and(|m| m.is_file())
                        && std::fs::read_to_string(&path).is_ok_and(|c| c.contains("SECRET"))
                })
                .collect();
            assert!(
                leaked.is_empty(),
                "delete={delete}, round {round}: secret content copied through a symlink: {leaked:?}"
            );
        }
        stop.store(true, Ordering::Relaxed);
        swapper.join().expect("swapper thread");
        for i in 0..400 {
            let f = secret.join(format!("f{i:03}.txt"));
            assert_eq!(
                std::fs::read_to_string(&f).expect("secret"),
                "SECRET\n",
                "{} was written",
                f.display()
            );
        }
    }
}

#[test]
fn a_mount_point_inside_the_destination_is_written_in_place() {
    if !have("rsync", "the oracle") {
        return;
    }
    for delete in [false, true] {
        let w = World::new();
        w.write("a.txt", "alpha\n")
            .write("mnt/b.txt", "on the other file system\n")
            .write("mnt/deep/c.txt", "deeper\n")
            .write("mnt/gone.txt", "removed later\n");
        // The destination's mnt/ is another file system (a second disk, an NFS share): a rename
        // from the top's staging directory would fail with EXDEV.
        let Some(_mount) = crate::Tmpfs::mount(&w.dest.join("mnt"), "8m") else {
            crate::skip("cannot mount a tmpfs (needs root / CAP_SYS_ADMIN)");
            return;
        };
        let oracle = w.scratch("oracle");
        let args: &[&str] = if delete { &["--delete", "--json"] } else { &["--json"] };
        let rsync_args: &[&str] = if delete { &["--delete"] } else { &[] };
        for round in 0..2 {
            let run = w.mirror(args);
            run.expect_code(0);
            crate::rsync(&w.src, &oracle, &excludes_with(&[]), rsync_args);
            assert_same_tree(
                &tree(&w.dest),
                &tree(&oracle),
                &format!("tmpfs inside the destination, delete={delete}, round {round}"),
            );
            assert!(
                !w.dest.join("mnt").join(crate::PARTIAL_DIR).exists(),
                "a staging directory was left on the mount"
            );
            if round == 0 {
                w.write("mnt/b.txt", "changed\n").remove("mnt/gone.txt");
            }
        }
    }
}

#[test]
fn modify_window_and_no_perms_settle_on_a_coarse_destination() {
    if !have("rsync", "the oracle") {
        return;
    }
    for delete in [false, true] {
        let w = World::new();
        w.write("a.txt", "alpha\n")
            .write("dir/b.txt", "bravo\n")
            .write("secret.key", "k\n")
            .chmod("secret.key", 0o600);
        w.mirror(&[]).expect_code(0);
        // What a FAT, exFAT or SMB destination makes of the copies: times rounded (here: moved
        // by a second) and modes it cannot keep.
        for rel in ["a.txt", "dir/b.txt", "secret.key", "README.md"] {
            let path = w.dest.join(rel);
            let mtime = path.metadata().expect("stat").modified().expect("mtime");
            let file = std::fs::File::options().write(true).open(&path).expect("open");
            file.set_modified(mtime + std::time::Duration::from_secs(1))
                .expect("set mtime");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let mut args = vec!["--json", "--modify-window", "2", "--no-perms"];
        let mut rsync_args = vec!["--modify-window=2", "--no-perms"];
        if delete {
            args.push("--delete");
            rsync_args.push("--delete");
        }
        // rsync with the same settings would transfer nothing.
        let mut cmd = Command::new("rsync");
        cmd.args(["-a", "-i", "--dry-run"]).args(&rsync_args);
        for pattern in excludes_with(&[]) {
            cmd.arg(format!("--exclude={pattern}"));
        }
        let out = cmd
            .arg(format!("{}/", w.src.display()))
            .arg(format!("{}/", w.dest.display()))
            .output()
            .expect("spawn rsync");
        let transfers: Vec<_> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with(">f"))
            .map(str::to_owned)
            .collect();
        assert!(transfers.is_empty(), "rsync would copy: {transfers:?}");

        let run = w.mirror(&args);
        run.expect_code(0);
        let record = run.json();
        assert_eq!(record["copied"], 0, "delete={delete}: {record}");
        assert_eq!(record["outcome"], "unchanged", "{record}");

        // Without them, each differing file is copied again (the exact check).
        let run = w.mirror(&["--json"]);
        run.expect_code(0);
        assert_eq!(run.json()["copied"], 4, "{}", run.stdout);
    }
}

/// A real FAT destination (a `mkfs.vfat` image through FUSE): times kept to 2 s, chmod refused.
/// With no flags, the first run copies everything, the second copies nothing (the FUSE mount is
/// taken as FAT-like), with and without `--delete`, and the files are what `rsync -a` copies.
#[test]
fn a_vfat_destination_settles_after_one_run() {
    if !have("rsync", "the oracle") {
        return;
    }
    // Neither has a --version that succeeds: `-V` runs whenever the program is there.
    if Command::new("mkfs.vfat").arg("-V").output().is_err() || Command::new("fusefat").arg("-V").output().is_err() {
        crate::skip("mkfs.vfat or fusefat is missing (apt-get install -y dosfstools fusefat)");
        return;
    }
    for delete in [false, true] {
        let w = World::new();
        w.write("a.txt", "alpha\n")
            .write("dir/b.txt", "bravo\n")
            .write("dir/deep/c.txt", "charlie\n")
            .write("secret.key", "k\n")
            .chmod("secret.key", 0o600);
        // Odd seconds and nanoseconds, which FAT cannot keep.
        for rel in ["a.txt", "dir/b.txt", "secret.key"] {
            let file = std::fs::File::options()
                .write(true)
                .open(w.src.join(rel))
                .expect("open");
            file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::new(1_767_261_601, 123_456_789))
                .expect("set mtime");
        }
        let _fat = crate::Vfat::mount(&w.scratch("image").join("fat.img"), &w.dest, 32);
        let oracle = w.scratch("oracle");
        crate::rsync(&w.src, &oracle, &excludes_with(&[]), &[]);
        let files = crate::content_only(&tree(&oracle)).len();
        let mut args = vec!["--json"];
        if delete {
            args.push("--delete");
        }
        let first = w.mirror(&args);
        first.expect_code(0);
        assert_eq!(first.json()["copied"], files, "delete={delete}: {}", first.stdout);
        for round in 0..2 {
            let again = w.mirror(&args);
            again.expect_code(0);
            assert_eq!(
                again.json()["copied"],
                0,
                "delete={delete}, round {round}: {}",
                again.stdout
            );
        }
        assert_same_tree(
            &crate::content_only(&tree(&w.dest)),
            &crate::content_only(&tree(&oracle)),
            &format!("vfat destination vs rsync -a, delete={delete}"),
        );
    }
}
