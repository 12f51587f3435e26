//! The alert policy as systemd drives it: the handler gets the failed run's exit status in
//! `MONITOR_EXIT_STATUS` (and its result and invocation), keeps the unit's streak of failures in
//! `STATE/notify/UNIT.json`, and `--resolved` (from `OnSuccess=`) ends it. A real HTTP listener
//! on 127.0.0.1 counts what is posted.

use driftless_tests::{Run, TestEnv};

use super::{Server, UNIT, env};

/// The handler for one run of UNIT that ended with `status` (`None`: a success, `--resolved`).
fn handler(env: &TestEnv, url: &str, extra: &str, status: Option<&str>) -> Run {
    let config = env.write_config(&format!(
        "state_dir: {}\nnotify:\n  url: '{url}'\n  format: plain\n{extra}",
        env.state_dir().display()
    ));
    let mut cmd = env.cmd("driftless-notify");
    cmd.env("DRIFTLESS_CONFIG", config);
    match status {
        Some(status) => {
            cmd.env("MONITOR_EXIT_STATUS", status)
                .env("MONITOR_SERVICE_RESULT", "exit-code");
        }
        None => {
            cmd.env("MONITOR_SERVICE_RESULT", "success").arg("--resolved");
        }
    }
    cmd.arg(UNIT);
    Run::of(&mut cmd)
}

fn streak_file(env: &TestEnv) -> std::path::PathBuf {
    env.state_dir().join("notify").join(format!("{UNIT}.json"))
}

#[test]
fn a_forge_down_for_three_ticks_alerts_once_then_its_recovery_once() {
    let env = env();
    let hook = Server::start(|_| "200 OK".to_owned());
    let url = hook.url("/hook");
    for tick in 1..=2 {
        let run = handler(&env, &url, "", Some("75"));
        run.expect_code(0);
        assert!(
            run.stdout
                .contains(&format!("not posted: temporary failure {tick} of 3 in a row")),
            "tick {tick}: {}",
            run.stdout
        );
        assert!(hook.requests().is_empty(), "tick {tick} posted: {:?}", hook.requests());
        assert!(
            streak_file(&env).is_file(),
            "the streak is kept for the recovery unit's condition"
        );
    }
    let third = handler(&env, &url, "", Some("75"));
    third.expect_code(0);
    assert!(third.stdout.contains("reported to"), "{}", third.stdout);
    let posted = hook.requests();
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert!(
        posted[0].body.starts_with(&format!("driftless: {UNIT} failed on ")),
        "{}",
        posted[0].body
    );

    let fourth = handler(&env, &url, "", Some("75"));
    fourth.expect_code(0);
    assert!(
        fourth.stdout.contains("not posted: already alerted"),
        "{}",
        fourth.stdout
    );
    assert_eq!(hook.requests().len(), 1, "one alert per outage");

    let recovered = handler(&env, &url, "", None);
    recovered.expect_code(0);
    let posted = hook.requests();
    assert_eq!(posted.len(), 2, "{posted:?}");
    assert!(
        posted[1].body.starts_with(&format!("driftless: {UNIT} recovered on "))
            && posted[1].body.contains("4 failed run(s)"),
        "{}",
        posted[1].body
    );
    assert!(!streak_file(&env).exists(), "the recovery ends the streak");

    // The next success has no streak to end: nothing posted, nothing printed.
    let again = handler(&env, &url, "", None);
    again.expect_code(0);
    assert_eq!(again.stdout, "");
    assert_eq!(hook.requests().len(), 2);
}

#[test]
fn a_refusal_alerts_at_once_and_again_only_for_another_cause() {
    let env = env();
    let hook = Server::start(|_| "200 OK".to_owned());
    let url = hook.url("/hook");
    handler(&env, &url, "", Some("3")).expect_code(0);
    assert_eq!(hook.requests().len(), 1, "a refusal alerts on its first run");
    let same = handler(&env, &url, "", Some("3"));
    same.expect_code(0);
    assert!(same.stdout.contains("not posted: already alerted"), "{}", same.stdout);
    assert_eq!(
        hook.requests().len(),
        1,
        "the same refusal on the next tick is not a new alert"
    );
    handler(&env, &url, "", Some("2")).expect_code(0);
    assert_eq!(hook.requests().len(), 2, "a config error is another cause");
    handler(&env, &url, "", None).expect_code(0);
    assert_eq!(hook.requests().len(), 3, "and the recovery is posted");
}

#[test]
fn a_short_outage_ends_without_any_post() {
    let env = env();
    let hook = Server::start(|_| "200 OK".to_owned());
    let url = hook.url("/hook");
    handler(&env, &url, "", Some("75")).expect_code(0);
    let recovered = handler(&env, &url, "", None);
    recovered.expect_code(0);
    assert!(
        recovered.stdout.contains("none of which alerted"),
        "{}",
        recovered.stdout
    );
    assert!(hook.requests().is_empty(), "{:?}", hook.requests());
    assert!(!streak_file(&env).exists());
    // The streak started over: one more failure is again the first of three.
    let next = handler(&env, &url, "", Some("75"));
    assert!(next.stdout.contains("temporary failure 1 of 3"), "{}", next.stdout);
}

#[test]
fn the_config_sets_how_long_a_temporary_failure_waits() {
    let env = env();
    let hook = Server::start(|_| "200 OK".to_owned());
    let url = hook.url("/hook");
    handler(&env, &url, "  alert_after_failures: 1\n", Some("75")).expect_code(0);
    assert_eq!(hook.requests().len(), 1, "one failure is enough when configured so");
    let env = TestEnv::new().with_bin("driftless-notify", env!("CARGO_BIN_EXE_driftless-notify"));
    handler(&env, &url, "  alert_after: 0s\n", Some("75")).expect_code(0);
    assert_eq!(hook.requests().len(), 2, "no grace time when alert_after is 0s");
}

#[test]
fn an_alert_that_could_not_be_posted_is_posted_by_the_next_failure() {
    let env = env();
    let failing = Server::start(|_| "503 Service Unavailable".to_owned());
    handler(&env, &failing.url("/hook"), "", Some("3")).expect_code(75);
    assert_eq!(failing.requests().len(), 1);
    let hook = Server::start(|_| "200 OK".to_owned());
    handler(&env, &hook.url("/hook"), "", Some("3")).expect_code(0);
    assert_eq!(hook.requests().len(), 1, "the same cause, never alerted: posted now");
}

#[test]
fn run_by_hand_without_a_status_it_always_posts() {
    let env = env();
    let hook = Server::start(|_| "200 OK".to_owned());
    let url = hook.url("/hook");
    for _ in 0..2 {
        let config = env.write_config(&format!(
            "state_dir: {}\nnotify:\n  url: '{url}'\n",
            env.state_dir().display()
        ));
        let mut cmd = env.cmd("driftless-notify");
        cmd.env("DRIFTLESS_CONFIG", config)
            .env_remove("MONITOR_EXIT_STATUS")
            .env_remove("MONITOR_SERVICE_RESULT")
            .arg(UNIT);
        Run::of(&mut cmd).expect_code(0);
    }
    assert_eq!(hook.requests().len(), 2, "{:?}", hook.requests());
    assert!(!streak_file(&env).exists(), "a manual report keeps no streak");
}
