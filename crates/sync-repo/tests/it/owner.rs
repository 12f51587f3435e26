//! A checkout owned by another user (cloned by `deploy`, synced by the root unit): the git work
//! runs as the owner, so the repo's own config counts and nothing in it ends up root-owned.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use driftless_tests::oracle::MtimeSnapshot;

use crate::{World, find_files};

/// The user the checkout belongs to: `nobody`, who owns nothing else here.
const OWNER: u32 = 65534;

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Let `OWNER` reach the test's files (temp dirs are 0700) and hand it the checkout.
fn give_to_owner(w: &World) {
    for dir in [w.env.root(), w.checkout.parent().expect("checkouts dir").to_owned()] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    chown(&w.checkout, &format!("{OWNER}:{OWNER}"));
}

fn chown(path: &Path, owner: &str) {
    let status = Command::new("chown")
        .args(["-R", owner])
        .arg(path)
        .status()
        .expect("run chown");
    assert!(status.success(), "chown -R {owner} {}", path.display());
}

/// Every path below `dir` (`.git` included) that `OWNER` does not own.
fn not_owned(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        if meta.uid() != OWNER {
            found.push(path.clone());
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read dir") {
                stack.push(entry.expect("dir entry").path());
            }
        }
    }
    found
}

/// git as the owner, with the test's isolated git config.
fn git_as_owner(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args([
            format!("--reuid={OWNER}"),
            format!("--regid={OWNER}"),
            "--clear-groups".to_owned(),
        ])
        .arg("env")
        .arg("-i")
        .args(
            driftless_tests::env::isolated_env(Path::new("/"))
                .iter()
                .map(|(k, v)| format!("{k}={v}")),
        )
        .arg("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("run git as the owner")
}

#[test]
fn a_checkout_owned_by_another_user_is_synced_as_that_user() {
    if !is_root() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI runs as root");
        eprintln!("SKIPPED: privilege separation needs root");
        return;
    }
    let w = World::new("foreign-owner");
    let before = w.head();
    w.origin
        .write("a.txt", "upstream\n")
        .write("new/dir/file.txt", "new\n")
        .remove("b.txt");
    let tip = w.origin.commit("upstream change");
    give_to_owner(&w);
    let mtimes = MtimeSnapshot::take(&w.checkout);

    let run = w.sync(&[]);
    run.expect_code(0);
    assert!(run.stdout.contains("updated"), "{}", run.stdout);
    // Root wrote nothing of its own in the owner's checkout: files, directories, index, refs,
    // reflogs, packs.
    assert_eq!(
        not_owned(&w.checkout),
        Vec::<PathBuf>::new(),
        "root-owned paths in the checkout"
    );
    let status = git_as_owner(&w.checkout, &["status", "--porcelain"]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert_eq!(String::from_utf8_lossy(&status.stdout), "", "git status as the owner");
    // The state record is root's, in root's state dir.
    assert_eq!(find_files(&w.env.state_dir().join("paths"), "sync-repo.json").len(), 1);

    // In root's hands for a moment, the full oracle holds at the tip.
    chown(&w.checkout, "0:0");
    assert_eq!(w.head(), tip);
    w.assert_updated_from(&before, &mtimes);
    chown(&w.checkout, &format!("{OWNER}:{OWNER}"));

    // The owner's next `git pull` works in what sync-repo left.
    w.origin.write("c.txt", "charlie\n");
    let next = w.origin.commit("next");
    // (The owner's git would not read a root-owned origin on a local path; a forge it would.)
    chown(&w.origin.bare, &format!("{OWNER}:{OWNER}"));
    let pull = git_as_owner(&w.checkout, &["pull", "-q", "--ff-only"]);
    assert!(
        pull.status.success(),
        "owner's git pull: {}",
        String::from_utf8_lossy(&pull.stderr)
    );
    let head = git_as_owner(&w.checkout, &["rev-parse", "HEAD"]);
    assert_eq!(String::from_utf8_lossy(&head.stdout).trim(), next);
}

/// What `sync-repo@NAME.service` with a drop-in `User=nobody` runs: the whole tool as the
/// owner, with the host's config (root's, world-readable), `$STATE_DIRECTORY` handed to that
/// user as systemd hands it, and the owner's home (here none). No privilege separation is
/// involved; nothing in the checkout ends up root-owned, and the record lands in that state dir.
#[test]
fn the_unit_with_a_user_drop_in_syncs_as_the_owner() {
    if !is_root() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI runs as root");
        eprintln!("SKIPPED: switching to the owner needs root");
        return;
    }
    let w = World::new("user-drop-in");
    let before = w.head();
    w.origin.write("a.txt", "upstream\n").remove("b.txt");
    let tip = w.origin.commit("upstream change");
    give_to_owner(&w);
    // The owner's git reads the origin on a local path only if it owns it (a forge it would not).
    chown(&w.origin.bare, &format!("{OWNER}:{OWNER}"));
    // StateDirectory=driftless with User=: systemd creates it owned by that user.
    let state = w.env.path("unit-state");
    std::fs::create_dir_all(&state).expect("create the state dir");
    chown(&state, &format!("{OWNER}:{OWNER}"));
    let config = w.env.path("driftless.yaml");
    std::fs::write(
        &config,
        format!("repos:\n  deployed:\n    path: {}\n", w.checkout.display()),
    )
    .expect("write the config");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod config");
    let mtimes = MtimeSnapshot::take(&w.checkout);

    let mut unit_env = driftless_tests::env::isolated_env(Path::new("/nonexistent"));
    unit_env.push(("STATE_DIRECTORY".into(), state.display().to_string()));
    let out = Command::new("setpriv")
        .args([
            format!("--reuid={OWNER}"),
            format!("--regid={OWNER}"),
            "--clear-groups".to_owned(),
        ])
        .arg("env")
        .arg("-i")
        .args(unit_env.iter().map(|(k, v)| format!("{k}={v}")))
        .arg(env!("CARGO_BIN_EXE_sync-repo"))
        .arg("--config")
        .arg(&config)
        .arg("deployed")
        .current_dir("/")
        .output()
        .expect("run sync-repo as the owner");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("deployed: updated"), "{stdout}");
    assert_eq!(
        not_owned(&w.checkout),
        Vec::<PathBuf>::new(),
        "paths in the checkout not owned by the owner"
    );
    let records = find_files(&state, "sync-repo.json");
    assert_eq!(records.len(), 1, "one record in $STATE_DIRECTORY: {records:?}");
    assert_eq!(
        std::fs::metadata(&records[0]).expect("stat the record").uid(),
        OWNER,
        "the record is the owner's"
    );
    let status = git_as_owner(&w.checkout, &["status", "--porcelain"]);
    assert_eq!(String::from_utf8_lossy(&status.stdout), "", "git status as the owner");

    chown(&w.checkout, "0:0");
    chown(&w.origin.bare, "0:0");
    assert_eq!(w.head(), tip);
    w.assert_updated_from(&before, &mtimes);
}

/// `--recurse-submodules` on a foreign owner's checkout: the worker moves the submodule as the
/// owner too, so nothing in it (its git dir under `.git/modules` included) is root's.
#[test]
fn a_foreign_owners_submodule_is_checked_out_as_that_user() {
    use crate::submodules::{SUB, bump, with_submodule};
    if !is_root() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI runs as root");
        eprintln!("SKIPPED: privilege separation needs root");
        return;
    }
    let (w, lib) = with_submodule("foreign-owner-sub", true);
    let (_, new) = bump(&w, &lib, "v2\n");
    give_to_owner(&w);

    let run = w.sync(&["--recurse-submodules"]);
    run.expect_code(0);
    assert!(
        run.stdout.contains(&format!("submodule {SUB} updated")),
        "{}",
        run.stdout
    );
    assert_eq!(
        not_owned(&w.checkout),
        Vec::<PathBuf>::new(),
        "root-owned paths in the checkout"
    );
    let head = git_as_owner(&w.checkout.join(SUB), &["rev-parse", "HEAD"]);
    assert_eq!(String::from_utf8_lossy(&head.stdout).trim(), new);
    let status = git_as_owner(&w.checkout, &["status", "--porcelain"]);
    assert_eq!(String::from_utf8_lossy(&status.stdout), "", "git status as the owner");
}
