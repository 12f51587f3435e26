//! `--all`: every configured repo in one process; one broken repo does not stop the others,
//! the summary lists each repo, and the exit code is the worst outcome.

use std::path::PathBuf;

use driftless_tests::oracle::{self, RepoSnapshot};
use driftless_tests::{Origin, TestEnv, fixture};
use serde_json::Value;

use crate::Run;

/// An origin plus a checkout inside one shared `TestEnv`.
struct Repo {
    name: &'static str,
    origin: Origin,
    checkout: PathBuf,
}

fn repo(env: &TestEnv, name: &'static str) -> Repo {
    let origin = Origin::new(env, name);
    origin.write("a.txt", "alpha\n").write("b.txt", "bravo\n");
    origin.commit("base");
    let checkout = origin.checkout(env);
    Repo { name, origin, checkout }
}

fn advance(r: &Repo) {
    r.origin.write("a.txt", format!("{} moved on\n", r.name));
    r.origin.commit("upstream change");
}

fn config(env: &TestEnv, repos: &[&Repo], extra: &[(&str, &str)]) -> PathBuf {
    let mut yaml = String::from("repos:\n");
    for r in repos {
        yaml.push_str(&format!("  {}:\n    path: {}\n", r.name, r.checkout.display()));
    }
    for (name, body) in extra {
        yaml.push_str(&format!("  {name}:\n{body}"));
    }
    env.write_config(&yaml)
}

fn by_repo(records: &[Value]) -> std::collections::BTreeMap<String, Value> {
    records
        .iter()
        .map(|r| (r["repo"].as_str().unwrap_or_default().to_owned(), r.clone()))
        .collect()
}

#[test]
fn dirty_repo_among_good_ones_exits_3_and_the_good_ones_update() {
    let env = crate::env();
    let good = repo(&env, "good");
    let steady = repo(&env, "steady");
    let dirty = repo(&env, "dirty");
    advance(&good);
    advance(&dirty);
    fixture::write_file(&dirty.checkout, "b.txt", "local edit\n");
    let config = config(&env, &[&good, &steady, &dirty], &[]);
    let dirty_before = RepoSnapshot::take(&dirty.checkout);

    let run = Run::of(env.sync_repo().arg("--config").arg(&config).args(["--all", "--json"]));
    run.expect_code(3);
    let records = by_repo(&run.json_lines());
    assert_eq!(records.len(), 3, "one record per repo:\n{}", run.stdout);
    assert_eq!(records["good"]["outcome"], "updated", "{}", run.stdout);
    assert_eq!(records["steady"]["outcome"], "in_sync", "{}", run.stdout);
    assert_eq!(records["dirty"]["outcome"], "refused", "{}", run.stdout);
    assert_eq!(records["dirty"]["exit_code"], 3, "{}", run.stdout);
    oracle::assert_synced(&good.checkout, &good.origin.path_url(), &good.origin.tip());
    oracle::assert_synced(&steady.checkout, &steady.origin.path_url(), &steady.origin.tip());
    dirty_before.assert_unchanged(&dirty.checkout);

    // Human summary under -v: one line per repo, named by config name.
    let run = Run::of(
        env.sync_repo()
            .arg("--config")
            .arg(&config)
            .args(["--all", "-j", "1", "-v"]),
    );
    run.expect_code(3);
    for name in ["good", "steady", "dirty"] {
        assert!(
            run.stdout.lines().any(|l| l.starts_with(&format!("{name}: "))),
            "no line for {name}:\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.lines().any(|l| l.starts_with("dirty: refused")),
        "{}",
        run.stdout
    );
    for name in ["good", "steady", "dirty"] {
        assert!(
            env.state_dir().join(format!("repos/{name}/sync-repo.json")).is_file(),
            "state for {name}"
        );
    }
}

#[test]
fn unreachable_repo_among_good_ones_exits_75() {
    let env = crate::env();
    let good = repo(&env, "good");
    let other = repo(&env, "other");
    let gone = repo(&env, "gone");
    advance(&good);
    advance(&other);
    let body = format!(
        "    path: {}\n    remote: http://127.0.0.1:1/x.git\n",
        gone.checkout.display()
    );
    let config = config(&env, &[&good, &other], &[("gone", &body)]);

    let run = Run::of(
        env.sync_repo()
            .arg("--config")
            .arg(&config)
            .args(["--all", "--json", "--jobs", "2"]),
    );
    run.expect_code(75);
    let records = by_repo(&run.json_lines());
    assert_eq!(records.len(), 3, "{}", run.stdout);
    assert_eq!(records["gone"]["outcome"], "failed", "{}", run.stdout);
    assert_eq!(records["gone"]["exit_code"], 75, "{}", run.stdout);
    assert_eq!(records["good"]["outcome"], "updated", "{}", run.stdout);
    assert_eq!(records["other"]["outcome"], "updated", "{}", run.stdout);
    oracle::assert_synced(&good.checkout, &good.origin.path_url(), &good.origin.tip());
    oracle::assert_synced(&other.checkout, &other.origin.path_url(), &other.origin.tip());
}

#[test]
fn refused_outranks_unreachable() {
    let env = crate::env();
    let dirty = repo(&env, "dirty");
    let gone = repo(&env, "gone");
    advance(&dirty);
    fixture::write_file(&dirty.checkout, "b.txt", "local edit\n");
    let body = format!(
        "    path: {}\n    remote: /nonexistent/gone.git\n",
        gone.checkout.display()
    );
    let config = config(&env, &[&dirty], &[("gone", &body)]);
    let run = Run::of(env.sync_repo().arg("--config").arg(&config).arg("--all"));
    run.expect_code(3);
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
}

#[test]
fn all_in_sync_exits_0() {
    let env = crate::env();
    let one = repo(&env, "one");
    let two = repo(&env, "two");
    let config = config(&env, &[&one, &two], &[]);
    let run = Run::of(env.sync_repo().arg("--config").arg(&config).args(["--all", "-v"]));
    run.expect_code(0);
    assert!(
        run.stdout.contains("one: in sync at ") && run.stdout.contains("two: in sync at "),
        "{}",
        run.stdout
    );
}

/// Under a process limit that leaves no room for a thread (`ulimit -u`, a unit's `TasksMax=`),
/// `--all --jobs 4` still syncs every repo, on the one thread it has, instead of panicking.
#[test]
fn all_repos_sync_when_no_worker_thread_can_be_started() {
    let is_root = std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if !is_root {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI runs as root");
        eprintln!("SKIPPED: needs root to run as a user with no other process");
        return;
    }
    // A uid with no passwd entry has no other process, so RLIMIT_NPROC=1 leaves no thread.
    const UID: &str = "64917";
    let env = crate::env();
    let one = repo(&env, "one");
    let two = repo(&env, "two");
    advance(&one);
    advance(&two);
    let config = config(&env, &[&one, &two], &[]);
    let state = env.path("nproc-state");
    std::fs::create_dir_all(&state).expect("mkdir state");
    for dir in [env.root(), one.checkout.parent().expect("checkouts").to_owned()] {
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    }
    for path in [&one.checkout, &two.checkout, &state, &config] {
        let status = std::process::Command::new("chown")
            .args(["-R", &format!("{UID}:{UID}")])
            .arg(path)
            .status()
            .expect("chown");
        assert!(status.success());
    }
    let mut cmd = assert_cmd::Command::new("setpriv");
    cmd.env_clear()
        .envs(driftless_tests::env::isolated_env(&env.home()))
        .current_dir(env.root())
        .args([
            &format!("--reuid={UID}"),
            &format!("--regid={UID}"),
            "--clear-groups",
            "prlimit",
            "--nproc=1",
            "--",
        ])
        .arg(env.bin("sync-repo"))
        .arg("--config")
        .arg(&config)
        .arg("--state-dir")
        .arg(&state)
        .args(["--all", "--jobs", "4", "--json"]);
    let run = Run::of(&mut cmd);
    run.expect_code(0);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    let records = by_repo(&run.json_lines());
    for r in [&one, &two] {
        assert_eq!(records[r.name]["outcome"], "updated", "{}", run.stdout);
    }
}
