//! What sync-repo reports: the `--json` record's shape, the human summary lines, and the state
//! record it leaves in the state directory for the other tools.

use serde_json::Value;

use crate::{World, find_files};

fn is_sha(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn json_record_has_every_documented_field() {
    let w = World::new("json-shape");
    let before = w.head();
    w.origin.write("a.txt", "upstream\n").write("added.txt", "new\n");
    w.origin.commit("upstream change");
    let run = w.sync(&["--json"]);
    run.expect_code(0);
    assert!(
        run.stdout.ends_with('\n') && run.stdout.lines().count() == 1,
        "one line: {:?}",
        run.stdout
    );
    let r = run.json();
    let obj = r.as_object().unwrap_or_else(|| panic!("not an object: {r}"));
    for key in [
        "tool",
        "repo",
        "path",
        "branch",
        "remote",
        "outcome",
        "exit_code",
        "before",
        "after",
        "remote_tip",
        "commits",
        "files",
        "changes",
        "reason",
        "resolve",
        "preserved_ref",
        "duration_ms",
    ] {
        assert!(obj.contains_key(key), "missing `{key}` in {r}");
    }
    assert_eq!(r["tool"], "sync-repo");
    assert_eq!(
        r["repo"],
        w.label().as_str(),
        "repo label of a path target is its canonical path"
    );
    assert_eq!(r["path"], w.label().as_str());
    assert_eq!(r["branch"], "main");
    assert_eq!(r["remote"], w.origin.path_url().as_str(), "the checkout's origin");
    assert_eq!(r["outcome"], "updated");
    assert_eq!(r["exit_code"], 0);
    assert!(
        is_sha(&r["before"]) && is_sha(&r["after"]) && is_sha(&r["remote_tip"]),
        "{r}"
    );
    assert_eq!(r["before"], before.as_str());
    assert_eq!(r["commits"], 1);
    assert_eq!(r["files"], 2);
    for change in r["changes"].as_array().expect("changes is an array") {
        let kind = change["change"].as_str().unwrap_or_default();
        assert!(
            ["added", "modified", "deleted", "mode"].contains(&kind),
            "bad change kind: {change}"
        );
        assert!(change["path"].is_string(), "{change}");
    }
    assert!(r["reason"].is_null(), "{r}");
    assert!(r["resolve"].as_array().is_some_and(Vec::is_empty), "{r}");
    assert!(r["preserved_ref"].is_null(), "{r}");
    assert!(r["duration_ms"].is_u64(), "{r}");
}

#[test]
fn human_summary_lines() {
    let w = World::new("human");
    let before = w.head();
    w.origin.write("a.txt", "one\n");
    w.origin.commit("one");
    w.origin.write("b.txt", "two\n").write("c.txt", "three\n");
    let tip = w.origin.commit("two");

    let run = w.sync(&[]);
    run.expect_code(0);
    let line = run.stdout.lines().next().unwrap_or_default();
    let prefix = format!("{}: updated {}", w.label(), &before[..7]);
    assert!(line.starts_with(&prefix), "want `{prefix}..`, got {line:?}");
    assert!(line.contains(&format!("..{}", &tip[..7])), "{line:?}");
    assert!(line.contains("(2 commits, 3 files)"), "{line:?}");
    assert_eq!(run.stdout.lines().count(), 1, "one line per repo:\n{}", run.stdout);

    let run = w.sync(&[]);
    run.expect_code(0);
    let want = format!("{}: in sync at {}", w.label(), &tip[..7]);
    assert!(
        run.stdout.lines().any(|l| l.starts_with(&want)),
        "want {want:?}, got {:?}",
        run.stdout
    );
}

#[test]
fn state_record_for_a_path_target() {
    let w = World::new("state-path");
    w.origin.write("a.txt", "upstream\n");
    let tip = w.origin.commit("upstream change");
    w.sync(&[]).expect_code(0);

    let records = find_files(&w.env.state_dir().join("paths"), "sync-repo.json");
    assert_eq!(records.len(), 1, "one record under <state>/paths: {records:?}");
    let dir = records[0].parent().expect("record dir");
    let escaped = dir
        .file_name()
        .expect("escaped dir name")
        .to_string_lossy()
        .into_owned();
    assert!(
        !escaped.contains('/') && escaped.ends_with("state\\x2dpath"),
        "systemd-escaped path: {escaped}"
    );
    let text = std::fs::read_to_string(&records[0]).expect("read state record");
    let r: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("state record is not JSON ({e}): {text}"));
    assert_eq!(r["tool"], "sync-repo", "{r}");
    assert_eq!(r["outcome"], "updated", "{r}");
    assert_eq!(r["exit_code"], 0, "{r}");
    assert_eq!(r["after"], tip.as_str(), "{r}");
    assert_eq!(r["remote_tip"], tip.as_str(), "{r}");
    assert_eq!(r["path"], w.label().as_str(), "{r}");
    for key in ["started_at", "finished_at", "last_success_at", "duration_ms"] {
        assert!(r[key].is_u64(), "`{key}` must be a number: {r}");
    }
    assert!(r["finished_at"].as_u64() >= r["started_at"].as_u64(), "{r}");

    // A refused run records the refusal but keeps the last success time.
    let last_success = r["last_success_at"].clone();
    driftless_tests::fixture::write_file(&w.checkout, "b.txt", "dirty\n");
    w.origin.write("a.txt", "again\n");
    w.origin.commit("again");
    w.sync(&[]).expect_code(3);
    let text = std::fs::read_to_string(&records[0]).expect("read state record");
    let r: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("state record is not JSON ({e}): {text}"));
    assert_eq!(r["outcome"], "refused", "{r}");
    assert_eq!(r["exit_code"], 3, "{r}");
    assert_eq!(r["last_success_at"], last_success, "{r}");
}

#[test]
fn help_and_bad_usage() {
    let env = crate::env();
    let run = crate::Run::of(env.cmd("sync-repo").arg("--help"));
    run.expect_code(0);
    for flag in [
        "--all",
        "--force",
        "--wait-lock",
        "--remote",
        "--branch",
        "--config",
        "--state-dir",
        "--dry-run",
        "--json",
    ] {
        assert!(run.stdout.contains(flag), "--help does not mention {flag}");
    }
    let run = crate::Run::of(env.sync_repo().arg("--no-such-flag"));
    run.expect_code(2);
}
