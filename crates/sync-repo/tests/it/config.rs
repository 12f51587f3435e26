//! The config file: repos by name (with `remote`/`branch`), the state dir it names, bad YAML and
//! unknown keys (exit 2 with `FILE:LINE:COL`; a warning for a checkout path, which needs no
//! config), and a checkout path with no config at all.

use driftless_tests::oracle::{self, MtimeSnapshot, RepoSnapshot};

use crate::{Run, World, find_files};

#[test]
fn repo_by_name_from_config() {
    let w = World::new("by-name");
    let config = w
        .env
        .write_config(&format!("repos:\n  hub:\n    path: {}\n", w.checkout.display()));
    let before = w.head();
    w.origin.write("a.txt", "upstream\n");
    w.origin.commit("upstream change");
    let mtimes = MtimeSnapshot::take(&w.checkout);

    let run = Run::of(w.env.sync_repo().arg("--config").arg(&config).args(["--json", "hub"]));
    run.expect_code(0);
    let record = run.json();
    assert_eq!(record["repo"], "hub", "{record}");
    assert_eq!(record["outcome"], "updated", "{record}");
    w.assert_updated_from(&before, &mtimes);
    assert!(
        w.env.state_dir().join("repos/hub/sync-repo.json").is_file(),
        "state under repos/<name>"
    );

    let run = Run::of(w.env.sync_repo().arg("--config").arg(&config).arg("hub"));
    run.expect_code(0);
    assert!(run.stdout.starts_with("hub: in sync at "), "{}", run.stdout);
}

#[test]
fn config_from_env_var() {
    let w = World::new("env-config");
    let config = w
        .env
        .write_config(&format!("repos:\n  hub:\n    path: {}\n", w.checkout.display()));
    w.origin.write("a.txt", "upstream\n");
    w.origin.commit("upstream change");
    let run = Run::of(w.env.sync_repo().env("DRIFTLESS_CONFIG", &config).arg("hub"));
    run.expect_code(0);
    oracle::assert_synced(&w.checkout, &w.origin.path_url(), &w.origin.tip());
}

#[test]
fn config_remote_and_branch_are_followed() {
    let w = World::new("cfg-branch");
    // A release branch upstream, and a second bare repo that only the config knows about.
    driftless_tests::git(&w.origin.work, &["checkout", "-q", "-b", "release"]);
    w.origin.write("release.txt", "release 1\n");
    w.origin.commit_unpushed("release 1");
    driftless_tests::git(&w.origin.work, &["push", "-q", "origin", "release"]);
    let mirror = w.env.path("remotes/mirror.git");
    driftless_tests::git(
        &w.env.root(),
        &[
            "clone",
            "-q",
            "--bare",
            &w.origin.path_url(),
            &mirror.display().to_string(),
        ],
    );
    let checkout = w.env.path("checkouts/release");
    driftless_tests::git(
        &w.env.root(),
        &[
            "clone",
            "-q",
            "-b",
            "release",
            &w.origin.path_url(),
            &checkout.display().to_string(),
        ],
    );
    driftless_tests::git(&checkout, &["remote", "set-url", "origin", "/nonexistent/origin.git"]);
    let config = w.env.write_config(&format!(
        "repos:\n  rel:\n    path: {}\n    remote: file://{}\n    branch: release\n",
        checkout.display(),
        mirror.display()
    ));
    // Upstream moves on in the mirror only.
    let work2 = w.env.path("authoring/mirror-work");
    driftless_tests::git(
        &w.env.root(),
        &[
            "clone",
            "-q",
            "-b",
            "release",
            &mirror.display().to_string(),
            &work2.display().to_string(),
        ],
    );
    driftless_tests::fixture::write_file(&work2, "release.txt", "release 2\n");
    driftless_tests::git(&work2, &["commit", "-q", "-am", "release 2"]);
    driftless_tests::git(&work2, &["push", "-q", "origin", "release"]);
    let tip = driftless_tests::git(&mirror, &["rev-parse", "refs/heads/release"])
        .trim()
        .to_owned();

    let run = Run::of(w.env.sync_repo().arg("--config").arg(&config).args(["--json", "rel"]));
    run.expect_code(0);
    let record = run.json();
    assert_eq!(record["branch"], "release", "{record}");
    assert_eq!(record["after"], tip.as_str(), "{record}");
    assert_eq!(driftless_tests::git(&checkout, &["rev-parse", "HEAD"]).trim(), tip);
    assert_eq!(
        driftless_tests::git(&checkout, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/release"
    );
    assert_eq!(
        std::fs::read_to_string(checkout.join("release.txt")).expect("read release.txt"),
        "release 2\n"
    );
    oracle::assert_status_clean(&checkout);
    oracle::assert_fsck_clean(&checkout);
}

#[test]
fn branch_flag_follows_another_branch() {
    let w = World::new("branch-flag");
    w.git(&["checkout", "-q", "-b", "stable"]);
    driftless_tests::git(&w.origin.work, &["checkout", "-q", "-b", "stable"]);
    w.origin.write("stable.txt", "stable\n");
    w.origin.commit_unpushed("stable");
    driftless_tests::git(&w.origin.work, &["push", "-q", "origin", "stable"]);
    let tip = w.origin.work_head();
    let run = w.sync(&["--branch", "stable"]);
    run.expect_code(0);
    assert_eq!(w.head(), tip);
    assert_eq!(
        std::fs::read_to_string(w.checkout.join("stable.txt")).expect("read stable.txt"),
        "stable\n"
    );
    oracle::assert_status_clean(&w.checkout);
}

#[test]
fn state_dir_from_config() {
    let w = World::new("cfg-state");
    let state = w.env.path("state-from-config");
    let config = w.env.write_config(&format!(
        "state_dir: {}\nrepos:\n  hub:\n    path: {}\n",
        state.display(),
        w.checkout.display()
    ));
    // No --state-dir: the config's state_dir applies.
    let run = Run::of(w.env.cmd("sync-repo").arg("--config").arg(&config).arg("hub"));
    run.expect_code(0);
    assert!(
        state.join("repos/hub/sync-repo.json").is_file(),
        "state written to the config's state_dir"
    );
}

#[test]
fn path_target_with_no_config_at_all() {
    let default_config = std::path::Path::new("/etc/driftless/driftless.yaml");
    if default_config.exists() {
        eprintln!("SKIPPED: {} exists on this machine", default_config.display());
        return;
    }
    let w = World::new("no-config");
    let before = w.head();
    w.origin.write("a.txt", "upstream\n");
    w.origin.commit("upstream change");
    let mtimes = MtimeSnapshot::take(&w.checkout);
    w.sync(&[]).expect_code(0);
    w.assert_updated_from(&before, &mtimes);
    assert_eq!(find_files(&w.env.state_dir().join("paths"), "sync-repo.json").len(), 1);
}

#[test]
fn path_of_a_configured_repo_uses_its_name() {
    let w = World::new("path-named");
    let config = w
        .env
        .write_config(&format!("repos:\n  named:\n    path: {}\n", w.checkout.display()));
    let run = Run::of(
        w.env
            .sync_repo()
            .arg("--config")
            .arg(&config)
            .arg("--json")
            .arg(&w.checkout),
    );
    run.expect_code(0);
    assert_eq!(run.json()["repo"], "named", "{}", run.stdout);
}

/// Run sync-repo with `yaml` as config: by repo name, expect exit 2 and `driftless.yaml:LINE:COL`
/// plus `needle` on stderr, the checkout untouched; by checkout path, which needs no config, the
/// same message as a warning (even under `-q`) and the sync done.
fn config_error(yaml: &str, line: usize, needle: &str) {
    let w = World::new("bad-config");
    let config = w.env.write_config(yaml);
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = Run::of(w.env.sync_repo().arg("--config").arg(&config).arg("hub"));
    run.expect_code(2);
    let want = format!("driftless.yaml:{line}:");
    assert!(run.stderr.contains(&want), "stderr lacks `{want}COL`:\n{}", run.stderr);
    assert!(run.stderr.contains(needle), "stderr lacks `{needle}`:\n{}", run.stderr);
    let location = run.stderr.split(&want).nth(1).unwrap_or_default();
    assert!(
        location.starts_with(|c: char| c.is_ascii_digit()),
        "no column after `{want}`:\n{}",
        run.stderr
    );
    snapshot.assert_unchanged(&w.checkout);

    w.origin.write("a.txt", "upstream\n");
    let tip = w.origin.commit("upstream change");
    let path_run = Run::of(
        w.env
            .sync_repo()
            .arg("--config")
            .arg(&config)
            .arg("-q")
            .arg(&w.checkout),
    );
    path_run.expect_code(0);
    assert!(
        path_run.stderr.contains("sync-repo: warning: ") && path_run.stderr.contains(&want),
        "a warning naming the config error:\n{}",
        path_run.stderr
    );
    assert_eq!(w.head(), tip, "the path run went on and synced");
}

#[test]
fn malformed_yaml_is_a_usage_error_with_location() {
    config_error("repos:\n  hub:\n    path: /srv/hub\n  - x\n", 4, "driftless.yaml");
}

#[test]
fn unknown_repo_key_is_rejected_with_location() {
    config_error("repos:\n  hub:\n    path: /srv/hub\n    brnch: main\n", 4, "brnch");
}

#[test]
fn unknown_top_level_key_is_rejected_with_location() {
    config_error("state_dri: /tmp/x\nrepos: {}\n", 1, "state_dri");
}

#[test]
fn missing_explicit_config_is_a_usage_error_unless_the_run_needs_no_config() {
    let w = World::new("missing-config");
    let run = Run::of(
        w.env
            .sync_repo()
            .arg("--config")
            .arg(w.env.path("nope.yaml"))
            .arg(&w.checkout),
    );
    run.expect_code(0);
    assert!(
        run.stderr.contains("warning") && run.stderr.contains("nope.yaml"),
        "a path run needs no config: a warning, and on\n{}",
        run.stderr
    );
    let run = Run::of(
        w.env
            .sync_repo()
            .arg("--config")
            .arg(w.env.path("nope.yaml"))
            .arg("hub"),
    );
    run.expect_code(2);
    assert!(run.stderr.contains("nope.yaml"), "{}", run.stderr);
}

#[test]
fn unknown_repo_name_is_a_usage_error() {
    let w = World::new("unknown-name");
    let config = w
        .env
        .write_config(&format!("repos:\n  known:\n    path: {}\n", w.checkout.display()));
    let run = Run::of(w.env.sync_repo().arg("--config").arg(&config).arg("unknown"));
    run.expect_code(2);
    assert!(
        run.stderr.contains("unknown") && run.stderr.contains("known"),
        "{}",
        run.stderr
    );
}

#[test]
fn metrics_written_to_the_configured_textfile_dir() {
    let w = World::new("metrics");
    let metrics = w.env.path("metrics");
    std::fs::create_dir_all(&metrics).expect("create metrics dir");
    let config = w.env.write_config(&format!(
        "metrics_dir: {}\nrepos:\n  hub:\n    path: {}\n",
        metrics.display(),
        w.checkout.display()
    ));
    w.origin.write("a.txt", "upstream\n");
    w.origin.commit("upstream change");
    Run::of(w.env.sync_repo().arg("--config").arg(&config).arg("hub")).expect_code(0);

    // The contract names `sync-repo.prom`; one file per repo (`sync-repo-<repo>.prom`) is
    // accepted too, since runs for different repos may overlap.
    let proms: Vec<_> = std::fs::read_dir(&metrics)
        .expect("read metrics dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("sync-repo"))
        })
        .collect();
    assert_eq!(proms.len(), 1, "one sync-repo*.prom file: {proms:?}");
    let prom = &proms[0];
    assert!(prom.extension().is_some_and(|e| e == "prom"), "{}", prom.display());
    let text = std::fs::read_to_string(prom).unwrap_or_else(|e| panic!("read {}: {e}", prom.display()));
    let samples: Vec<&str> = text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert!(!samples.is_empty(), "no samples in {}:\n{text}", prom.display());
    for line in &samples {
        let value = line.rsplit(' ').next().unwrap_or_default();
        assert!(value.parse::<f64>().is_ok(), "not `name{{labels}} value`: {line}");
    }
    assert!(text.contains("hub"), "samples are labelled with the repo name:\n{text}");
    let leftovers: Vec<_> = std::fs::read_dir(&metrics)
        .expect("read metrics dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p != prom)
        .collect();
    assert!(
        leftovers.is_empty(),
        "only the .prom file in the textfile dir (no temp files): {leftovers:?}"
    );
}

/// Branch names follow git's ref-name rules, with `git check-ref-format --branch` as the oracle:
/// a name git refuses is exit 2 naming the rule, before any fetch (the remote here would be
/// exit 75 if one were tried), from `--branch` and from the config alike.
#[test]
fn branch_names_are_checked_as_git_checks_them() {
    let w = World::new("branch-names");
    let names = [
        "main",
        "release/1.0",
        "@",
        "é",
        "ok-name_1",
        "a:b",
        "x..y",
        "@{",
        "-x",
        "HEAD",
        "foo.lock",
        "a b",
        "a~1",
        "feat/",
        ".hidden",
        "a//b",
        "a?b",
        "a[b",
        "a\\b",
    ];
    let mut refused = 0;
    for name in names {
        let git_accepts = driftless_tests::git_output(&w.checkout, &["check-ref-format", "--branch", name])
            .status
            .success();
        let flag = w.sync(&[
            "--dry-run",
            "--remote",
            "http://127.0.0.1:9/none.git",
            &format!("--branch={name}"),
        ]);
        let config = w.env.write_config(&format!(
            "repos:\n  hub:\n    path: {}\n    branch: '{}'\n    remote: http://127.0.0.1:9/none.git\n",
            w.checkout.display(),
            name.replace('\'', "''")
        ));
        let configured = Run::of(
            w.env
                .sync_repo()
                .arg("--config")
                .arg(&config)
                .arg("--dry-run")
                .arg("hub"),
        );
        for run in [&flag, &configured] {
            if git_accepts {
                assert!(!run.stderr.contains("is not a branch name"), "{name}: {}", run.stderr);
                assert_ne!(run.code, 2, "{name}: git accepts it: {}", run.stderr);
            } else {
                refused += 1;
                run.expect_code(2);
                assert!(run.stderr.contains("is not a branch name"), "{name}: {}", run.stderr);
                assert!(
                    !run.stderr.contains("127.0.0.1:9"),
                    "{name}: no fetch tried: {}",
                    run.stderr
                );
            }
        }
    }
    assert_eq!(refused, 2 * 14, "every name git refuses was refused twice");
}

#[test]
fn print_config_shows_the_effective_config_which_is_itself_a_valid_config() {
    let w = World::new("print-config");
    let config = w.env.write_config(&format!(
        "metrics_dir: /var/lib/node_exporter\nrepos:\n  hub:\n    path: {}\n",
        w.checkout.display()
    ));
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = Run::of(w.env.sync_repo().arg("--config").arg(&config).arg("--print-config"));
    run.expect_code(0);
    let header = format!("# effective config, from {}\n", config.display());
    assert!(run.stdout.starts_with(&header), "{}", run.stdout);
    let effective = driftless_core::config::Config::parse(&run.stdout, &config)
        .unwrap_or_else(|e| panic!("the printed config does not parse: {e}\n{}", run.stdout));
    assert_eq!(
        effective.state_dir.as_deref(),
        Some(w.env.state_dir().as_path()),
        "resolved"
    );
    assert_eq!(
        effective.compose_command,
        Some(vec!["docker".to_owned(), "compose".to_owned()]),
        "the default filled in"
    );
    assert_eq!(
        effective.repos["hub"].branch.as_deref(),
        Some("main"),
        "the default filled in"
    );
    assert_eq!(effective.repos["hub"].path, w.checkout);
    assert_eq!(
        effective.metrics_dir.as_deref(),
        Some(std::path::Path::new("/var/lib/node_exporter"))
    );
    snapshot.assert_unchanged(&w.checkout);

    std::fs::write(&config, "repos:\n  hub:\n    pth: /srv/hub\n").expect("break the config");
    let run = Run::of(w.env.sync_repo().arg("--config").arg(&config).arg("--print-config"));
    run.expect_code(2);
    assert!(run.stderr.contains("pth"), "{}", run.stderr);
}

/// Path runs leave a state directory each under `paths/`; one not written for 30 days is
/// removed by the next run that records something, unless a run holds its lock. Configured
/// repos' state and this run's own stay.
#[test]
fn state_of_path_runs_unused_for_30_days_is_pruned() {
    let w = World::new("prune");
    let state = w.env.state_dir();
    let make = |rel: &str, age: &str| {
        let dir = state.join(rel);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for file in ["lock", "sync-repo.json"] {
            std::fs::write(dir.join(file), "{}").expect("write");
            let touched = std::process::Command::new("touch")
                .args(["-d", age])
                .arg(dir.join(file))
                .status()
                .expect("touch");
            assert!(touched.success());
        }
        dir
    };
    let old = make("paths/-srv-old", "40 days ago");
    let recent = make("paths/-srv-recent", "20 days ago");
    let held = make("paths/-srv-held", "40 days ago");
    let named = make("repos/hub", "400 days ago");
    // flock(2) locks belong to the open file: this one blocks the tool's as another run would.
    let holder = std::fs::OpenOptions::new()
        .write(true)
        .open(held.join("lock"))
        .expect("open lock");
    holder.lock().expect("flock");

    w.sync(&[]).expect_code(0);
    drop(holder);
    assert!(!old.exists(), "a path run's state unused for 40 days is gone");
    assert!(recent.join("sync-repo.json").exists(), "20 days old stays");
    assert!(held.join("sync-repo.json").exists(), "a held lock keeps its state");
    assert!(
        named.join("sync-repo.json").exists(),
        "a configured repo's state is never pruned"
    );
    let own = std::fs::read_dir(state.join("paths"))
        .expect("paths")
        .flatten()
        .filter(|e| e.path().join("sync-repo.json").exists())
        .count();
    assert_eq!(own, 3, "this run's own record, the recent one and the held one");
}
