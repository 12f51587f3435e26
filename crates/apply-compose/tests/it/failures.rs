//! Failing applies against a real engine: a broken compose file or a failing healthcheck fails
//! only that stack (exit 65, its state kept for a retry), and an engine that is down fails the
//! run before anything is recorded (exit 75).

use std::sync::Arc;

use crate::{Hub, compose};
use driftless_tests::engine::{self, Engine};

#[test]
fn a_broken_compose_file_fails_that_stack_with_composes_message_and_the_others_still_apply() {
    let Some(engine) = engine::shared() else { return };
    let hub = Hub::new("broken", Some(engine));
    for short in ["a", "b", "c"] {
        hub.add_stack(short, "v1");
    }
    hub.commit("three stacks");
    hub.apply(&[]).expect_code(0);
    let before = hub.state();
    let containers_a = hub.containers("a");

    // `a` is valid YAML that compose's schema rejects; `c` is not YAML at all.
    hub.write(
        &format!("{}/compose.yaml", hub.stack_dir("a")),
        &compose("    env_file: app.env\n    bogus_key: 1\n", ""),
    );
    hub.write(
        &format!("{}/compose.yaml", hub.stack_dir("c")),
        "services:\n  app: [unclosed\n",
    );
    hub.set_greeting("b", "v2");
    hub.commit("break a and c, change b");
    let out = hub.apply(&[]);
    out.expect_code(65)
        .expect_stack(&hub.project("a"), "failed", &["bogus_key"])
        .expect_stack(&hub.project("c"), "failed", &["yaml"])
        .expect_stack(&hub.project("b"), "applied", &["env_file"]);
    assert_eq!(out.json["exit_code"], 65);
    assert_eq!(hub.running_greeting("b").as_deref(), Some("v2"));
    assert_eq!(
        hub.containers("a"),
        containers_a,
        "a failed compose must leave a's container"
    );

    let after = hub.state();
    for short in ["a", "c"] {
        let project = hub.project(short);
        let (old, new) = (&before["stacks"][&project], &after["stacks"][&project]);
        assert_eq!(new["applied_digest"], old["applied_digest"], "{short}: digest advanced");
        assert_eq!(new["applied_commit"], old["applied_commit"], "{short}: commit advanced");
        assert_eq!(new["applied_inputs"], old["applied_inputs"], "{short}: inputs advanced");
        let error = new["last_error"].as_str().unwrap_or_default();
        let reason = out.reasons(&project).join("; ");
        assert!(
            !error.is_empty() && reason.contains(error),
            "{short}: last_error {error:?}, reasons {reason}"
        );
    }
    assert!(
        hub.stack_state("a")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("bogus_key"))
    );
    assert_ne!(
        after["stacks"][hub.project("b")]["applied_digest"],
        before["stacks"][hub.project("b")]["applied_digest"]
    );

    // Fixed in git: the next run applies it, saying the last apply failed; `c`, whose inputs
    // are the ones that failed, is skipped without failing the run again.
    hub.add_stack("a", "v3");
    hub.commit("fix a");
    let out = hub.apply(&[]);
    out.expect_code(0)
        .expect_stack(&hub.project("a"), "applied", &["last apply failed", "bogus_key"])
        .expect_stack(&hub.project("c"), "skipped", &["failed to apply", "--force"])
        .expect_stack(&hub.project("b"), "unchanged", &[]);
    assert_eq!(hub.running_greeting("a").as_deref(), Some("v3"));
    assert!(hub.stack_state("a")["last_error"].is_null());
}

#[test]
fn an_engine_that_is_down_fails_the_run_with_75_and_advances_nothing() {
    // This test stops its engine, so it never shares one.
    let Some(engine) = Engine::start() else { return };
    let hub = Hub::new("down", Some(Arc::new(engine)));
    hub.add_stack("a", "v1");
    hub.add_stack("b", "v1");
    hub.commit("two stacks");
    hub.apply(&[]).expect_code(0);

    hub.engine().stop();
    assert!(!hub.engine().is_running(), "dockerd still running after stop()");
    // Nothing changed: the engine is not needed, so its absence is no failure.
    let out = hub.apply_text(&["-v"]);
    out.expect_code(0);
    assert!(out.stdout.contains(": unchanged"), "{}", out.stdout);

    let state = std::fs::read(hub.state_file()).expect("state after the unchanged run");
    hub.set_greeting("a", "v2");
    hub.commit("change a");
    let out = hub.apply(&[]);
    out.expect_code(75);
    let reason = out.json["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("unreachable"), "{}", out.stdout);
    assert_eq!(
        std::fs::read(hub.state_file()).expect("state after the failed run"),
        state,
        "state changed although the engine was down"
    );
    let text = hub.apply_text(&[]);
    text.expect_code(75);
    assert!(text.stdout.contains("is docker running?"), "{}", text.stdout);
}

#[test]
fn wait_with_a_failing_healthcheck_fails_the_stack() {
    let Some(engine) = engine::shared() else { return };
    let hub = Hub::new("health", Some(engine));
    let check = |test: &str| {
        format!(
            "    healthcheck:\n      test: [\"CMD\", \"{test}\"]\n      interval: 1s\n      timeout: 1s\n      retries: 1\n"
        )
    };
    hub.write(
        &format!("{}/compose.yaml", hub.stack_dir("sick")),
        &compose(&check("false"), ""),
    );
    hub.write(
        &format!("{}/compose.yaml", hub.stack_dir("well")),
        &compose(&check("true"), ""),
    );
    hub.commit("two health-gated stacks");
    hub.configure(&format!(
        "    stacks:\n      - {{dir: {}, wait: true, wait_timeout: 20}}\n      - {{dir: {}, wait: true, wait_timeout: 20}}\n",
        hub.stack_dir("sick"),
        hub.stack_dir("well")
    ));
    let out = hub.apply(&[]);
    out.expect_code(65)
        .expect_stack(&hub.project("sick"), "failed", &["unhealthy"])
        .expect_stack(&hub.project("well"), "applied", &["never applied"]);
    let sick = hub.stack_state("sick");
    assert!(sick["applied_digest"].is_null(), "{sick}");
    assert!(
        sick["last_error"].as_str().is_some_and(|e| e.contains("unhealthy")),
        "{sick}"
    );
    assert!(!hub.stack_state("well")["applied_digest"].is_null());

    // Nothing changed in git: the failed digest is skipped, not failed again; --force retries.
    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&hub.project("sick"), "skipped", &["unhealthy"])
        .expect_stack(&hub.project("well"), "unchanged", &[]);
    hub.apply(&["--force", "--stack", &hub.project("sick")])
        .expect_code(65)
        .expect_stack(&hub.project("sick"), "failed", &["never applied successfully"]);
}

#[test]
fn a_missing_compose_plugin_is_a_setup_error_2_with_composes_message() {
    // `docker <plugin>` where the plugin does not exist: what a host without the compose plugin
    // answers to `docker compose`. No engine is needed to tell: `version` fails too.
    if std::process::Command::new("docker").arg("--version").output().is_err() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI installs docker.io");
        eprintln!("SKIPPED: no docker CLI");
        return;
    }
    let mut hub = Hub::new("plugin", None);
    hub.compose_command = Some("docker no-such-compose-plugin".to_owned());
    hub.add_stack("a", "v1");
    hub.commit("one stack");
    let out = hub.apply_text(&[]);
    out.expect_code(2);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        // docker's own words, which vary by version: "'x' is not a docker command", "unknown command".
        (text.contains("is not a docker command") || text.contains("unknown command"))
            && text.contains("install the compose plugin"),
        "{text}"
    );
    assert!(!text.contains("is docker running?"), "{text}");
}
