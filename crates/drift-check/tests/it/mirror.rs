//! Mirror drift: never mirrored, last success older than `mirror.max_age`, and with `--deep`
//! files missing from or of another size in a local mirror; each fixed by `mirror-copy NAME`.

use std::path::Path;

use crate::{DRIFT, Host, NO_DRIFT, REPO, Table};

const MIRROR_YAML: &str = "    mirror: {to: \"{mirror}\", max_age: 1h}\n";

fn mirror_name(host: &Host) -> String {
    host.mirror.display().to_string()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn never_mirrored_is_fixed_by_mirror_copy() {
    let host = Host::unsynced(MIRROR_YAML);
    host.tool(&format!("sync-repo {REPO}")).expect_code(0);

    let row = host.assert_drift(&[], "mirror", &mirror_name(&host), "never mirrored successfully");
    assert_eq!(row.fix(), format!("mirror-copy {REPO}"));
    host.run_fix(row.fix());

    host.assert_clean(&[]);
    assert_eq!(read(&host.mirror.join("a.txt")), b"alpha\n");
}

#[test]
fn mirror_older_than_max_age_is_fixed_by_mirror_copy() {
    let host = Host::new(MIRROR_YAML);
    host.assert_clean(&[]);
    host.age_last_success("mirror-copy", 7200);

    let row = host.assert_drift(&[], "mirror", &mirror_name(&host), "more than max_age 3600s");
    assert!(row.reason.contains("last successful mirror 72"), "{row:?}");
    assert_eq!(row.fix(), format!("mirror-copy {REPO}"));
    host.run_fix(row.fix());

    host.assert_clean(&[]);
}

#[test]
fn old_mirror_without_max_age_is_not_drift() {
    let host = Host::new("    mirror: {to: \"{mirror}\"}\n");
    host.age_last_success("mirror-copy", 30 * 86_400);
    let run = host.check(&["--all-items"]);
    run.expect_code(NO_DRIFT);
    let row = run.row("mirror", &mirror_name(&host));
    assert_eq!(row.status, "ok", "{row:?}");
    assert!(row.reason.contains("last successful mirror 25920"), "{row:?}");
}

#[test]
fn deep_finds_a_file_missing_from_the_mirror() {
    let host = Host::new(MIRROR_YAML);
    host.assert_clean(&["--deep"]);
    std::fs::remove_file(host.mirror.join("docs/guide.md")).expect("remove a mirrored file");

    // Only the age is checked without --deep.
    host.assert_clean(&[]);
    let row = host.assert_drift(&["--deep"], "mirror", "content", "docs/guide.md");
    assert!(
        row.reason.starts_with("1 file(s) missing or of another size"),
        "{row:?}"
    );
    assert_eq!(row.fix(), format!("mirror-copy {REPO}"));
    host.run_fix(row.fix());

    host.assert_clean(&["--deep"]);
    assert_eq!(read(&host.mirror.join("docs/guide.md")), b"# guide\n");
}

#[test]
fn deep_finds_a_file_of_another_size_in_the_mirror() {
    let host = Host::new(MIRROR_YAML);
    let mirrored = host.mirror.join("src/lib.rs");
    std::fs::write(&mirrored, "pub fn f() {}\n// edited in the backup\n").expect("edit the mirror copy");

    let (run, items) = host.check_json(&["--deep"]);
    run.expect_code(DRIFT);
    let content = crate::item(&items, "mirror", "content");
    assert_eq!(content["status"], "drift", "{content}");
    let reason = content["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("src/lib.rs") && !reason.contains("a.txt"), "{content}");

    let row = host.assert_drift(&["--deep"], "mirror", "content", "src/lib.rs");
    host.run_fix(row.fix());

    host.assert_clean(&["--deep"]);
    assert_eq!(read(&mirrored), read(&host.checkout.join("src/lib.rs")));
}

/// `--deep` compares a mirror with what it was made from: a `mirror-copy --from commit` run
/// (the mode given on the command line, not in the config) is compared with that commit, so an
/// ignored file in the worktree, which such a mirror never holds, is not drift; a file missing
/// from the mirror still is.
#[test]
fn deep_compares_a_commit_mirror_with_its_commit() {
    let host = Host::unsynced(MIRROR_YAML);
    host.tool(&format!("sync-repo {REPO}")).expect_code(0);
    host.tool(&format!("mirror-copy {REPO} --from commit")).expect_code(0);
    // Ignored by the checkout's .gitignore (`*.log`): not checkout drift, not in the commit.
    driftless_tests::fixture::write_file(&host.checkout, "debug.log", "noise\n");
    assert!(
        !host.mirror.join("debug.log").exists(),
        "a commit mirror holds committed files only"
    );

    let run = host.check(&["--deep", "--all-items"]);
    run.expect_code(NO_DRIFT);
    assert_eq!(run.row("mirror", "content").status, "ok", "{}", run.stdout);

    std::fs::remove_file(host.mirror.join("docs/guide.md")).expect("remove a mirrored file");
    host.assert_drift(&["--deep"], "mirror", "content", "docs/guide.md");
}
