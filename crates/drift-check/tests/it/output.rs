//! What drift-check prints: the `no drift` line on a clean host, `--all-items` rows, one
//! `--json` record per item, no stack rows for a repo without `stacks:`, and config errors
//! (exit 2, nothing written).

use serde_json::Value;

use crate::{DRIFT, Host, NO_DRIFT, REPO, Table, USAGE, exists};

const CHECKOUT_ITEMS: [&str; 5] = ["branch", "remote", "dirty", "untracked", "last sync"];

#[test]
fn clean_host_prints_no_drift_and_exits_0() {
    let host = Host::new("    mirror: {to: \"{mirror}\", max_age: 1h}\n");
    let run = host.check(&[]);
    run.expect_code(NO_DRIFT);
    assert_eq!(
        run.stdout, "no drift (6 checks on 1 repo(s))\n",
        "one summary line and nothing else\n--- stderr\n{}",
        run.stderr
    );

    let run = host.check(&["--all-items", "--deep"]);
    run.expect_code(NO_DRIFT);
    assert!(
        run.stdout.starts_with("REPO "),
        "a table with a header:\n{}",
        run.stdout
    );
    for name in CHECKOUT_ITEMS {
        assert_eq!(run.row("checkout", name).status, "ok", "{name}\n{}", run.stdout);
    }
    let mirror = host.mirror.display().to_string();
    assert_eq!(run.row("mirror", &mirror).status, "ok");
    assert_eq!(run.row("mirror", "content").status, "ok");
    assert!(
        !run.stdout.contains("run: "),
        "no fix is offered for ok rows:\n{}",
        run.stdout
    );
}

#[test]
fn json_gives_one_record_per_item_with_every_field() {
    let host = Host::new("    mirror: {to: \"{mirror}\", max_age: 1h}\n");
    host.origin.write("a.txt", "upstream\n");
    host.origin.commit("upstream");
    driftless_tests::fixture::write_file(&host.checkout, "docs/guide.md", "edited\n");

    let table = host.check(&["--all-items", "--deep"]);
    table.expect_code(DRIFT);
    let (run, items) = host.check_json(&["--deep"]);
    run.expect_code(DRIFT);

    let rows = table
        .stdout
        .lines()
        .skip(1)
        .filter(|l| !l.trim_start().starts_with("run: "))
        .count();
    assert_eq!(
        items.len(),
        rows,
        "one record per table row:\n{}\n{:#?}",
        table.stdout,
        items
    );
    for record in &items {
        let obj = record.as_object().unwrap_or_else(|| panic!("not an object: {record}"));
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["fix", "name", "part", "reason", "repo", "status"], "{record}");
        assert_eq!(record["repo"], REPO);
        assert!(
            ["checkout", "stack", "mirror"].contains(&record["part"].as_str().unwrap_or_default()),
            "{record}"
        );
        assert!(
            ["ok", "held", "unknown", "drift"].contains(&record["status"].as_str().unwrap_or_default()),
            "{record}"
        );
        assert!(record["reason"].as_str().is_some_and(|r| !r.is_empty()), "{record}");
        assert!(record["fix"].is_null() || record["fix"].is_string(), "{record}");
        let name = record["name"].as_str().expect("name is a string");
        let row = table.row(record["part"].as_str().expect("part is a string"), name);
        if record["status"] == "drift" {
            assert_eq!(row.status, "DRIFT");
            assert_eq!(
                record["fix"].as_str(),
                row.fix.as_deref(),
                "JSON fix = table `run:` line"
            );
        }
    }

    let status = |part: &str, name: &str| crate::item(&items, part, name)["status"].clone();
    assert_eq!(status("checkout", "remote"), "drift");
    assert_eq!(status("checkout", "dirty"), "drift");
    assert_eq!(status("checkout", "branch"), "ok");
    assert_eq!(status("mirror", "content"), "drift", "the edited file has another size");
    let remote = crate::item(&items, "checkout", "remote");
    assert_eq!(remote["reason"], "1 commit(s) behind the remote");
    assert_eq!(remote["fix"], format!("sync-repo {REPO}").as_str());
    let dirty = crate::item(&items, "checkout", "dirty");
    assert_eq!(dirty["reason"], "1 tracked file(s) modified: docs/guide.md");
}

#[test]
fn json_on_a_clean_host_lists_every_item_as_ok() {
    let host = Host::new("");
    let (run, items) = host.check_json(&[]);
    run.expect_code(NO_DRIFT);
    let names: Vec<&str> = items.iter().filter_map(|i| i["name"].as_str()).collect();
    assert_eq!(names, CHECKOUT_ITEMS, "{items:#?}");
    assert!(
        items.iter().all(|i| i["status"] == "ok" && i["fix"] == Value::Null),
        "{items:#?}"
    );
}

#[test]
fn repo_without_stacks_has_no_stack_rows() {
    let host = Host::new("");
    let (run, items) = host.check_json(&[]);
    run.expect_code(NO_DRIFT);
    assert!(!items.is_empty(), "the checkout is still checked");
    assert!(items.iter().all(|i| i["part"] != "stack"), "{items:#?}");

    // Compose is never asked: a compose command that cannot run changes nothing.
    let run = host.check(&["--all-items", "--compose-command", "/nonexistent/compose"]);
    run.expect_code(NO_DRIFT);
    assert!(!run.stdout.contains(" stack "), "{}", run.stdout);
}

#[test]
fn configured_checkout_given_by_path_uses_its_config_entry() {
    let host = Host::new("    max_sync_age: 1h\n");
    host.age_last_success("sync-repo", 7200);
    let path = host.checkout.display().to_string();

    let (run, items) = host.check_json(&[&path]);
    run.expect_code(DRIFT);
    let last_sync = crate::item(&items, "checkout", "last sync");
    assert_eq!(last_sync["repo"], REPO, "labelled by its config name: {last_sync}");
    assert_eq!(
        last_sync["status"], "drift",
        "max_sync_age of the entry applies: {last_sync}"
    );
    assert_eq!(last_sync["fix"], format!("sync-repo {REPO}").as_str());
}

/// A config error: exit 2, `drift-check: error:` naming what is wrong, no stdout, no metrics.
#[track_caller]
fn assert_config_error(host: &Host, args: &[&str], needle: &str) {
    let run = host.check(args);
    run.expect_code(USAGE);
    assert!(run.stdout.is_empty(), "no report on stdout: {}", run.stdout);
    assert!(
        run.stderr.starts_with("drift-check: error:") && run.stderr.contains(needle),
        "stderr should name {needle:?}:\n{}",
        run.stderr
    );
    let written: Vec<_> = std::fs::read_dir(&host.metrics)
        .expect("list the metrics dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(written.is_empty(), "no metrics written on a config error: {written:?}");
}

#[test]
fn config_errors_exit_2() {
    let host = Host::unsynced("");
    host.write_config("    pth: /typo\n");
    assert_config_error(&host, &[], "pth");

    host.write_config("    max_sync_age: soon\n");
    assert_config_error(&host, &[], "max_sync_age");

    host.write_config("    mirror: {to: \"{mirror}\", max_age: later}\n");
    assert_config_error(&host, &[], "max_age");

    host.write_config("");
    assert_config_error(&host, &["no-such-repo"], "no-such-repo");
    assert_config_error(
        &host,
        &["--config", "/nonexistent/driftless.yaml"],
        "/nonexistent/driftless.yaml",
    );

    std::fs::write(&host.config, format!("state_dir: {}\n", host.env.state_dir().display()))
        .expect("write a config without repos");
    assert_config_error(&host, &[], "no repos configured");

    // An unknown flag is a usage error too.
    host.write_config("");
    let run = host.check(&["--no-such-flag"]);
    run.expect_code(USAGE);
}

#[test]
fn a_path_that_is_not_a_checkout_is_a_usage_error() {
    let host = Host::unsynced("");
    let missing = host.env.path("no-such-dir");
    assert_config_error(&host, &[&missing.display().to_string()], "no-such-dir");

    let plain = host.env.path("plain-dir");
    std::fs::create_dir_all(&plain).expect("create a plain directory");
    assert_config_error(&host, &[&plain.display().to_string()], "not a git checkout");
    assert!(!exists(&plain.join(".git")), "nothing was created in it");

    // A real checkout by path is still checked (and its drift reported with exit 1).
    driftless_tests::fixture::write_file(&host.checkout, "stray.txt", "x\n");
    host.check(&[&host.checkout.display().to_string()]).expect_code(DRIFT);
}
