//! Stack drift on a real engine: each kind (never applied, desired digest changed, a service
//! exited, an orphan container, a container running another configuration) appears with its
//! reason and exit 1 and disappears after running the fix drift-check prints; a held stack is
//! not drift; an engine that is down makes the stack `unknown` (75) while the checkout is still
//! reported, and drift elsewhere still wins (1).

use driftless_tests::engine::{Engine, IMAGE};

use crate::{DRIFT, Host, NO_DRIFT, REPO, TEMP_FAIL, Table};

fn compose(env_value: &str) -> String {
    format!(
        "services:\n  web:\n    image: {IMAGE}\n    command: [\"sleep\", \"3600\"]\n    env_file: web.env\n    pull_policy: never\n    labels: [\"driftless-test={env_value}\"]\n"
    )
}

/// A synced host whose repo has stack `web`, with the engine's environment for every command.
fn host_with_stack(engine: &Engine) -> Host {
    let mut host = Host::new("    stacks: [\"stacks/*\"]\n");
    host.extra_env = engine
        .client_env()
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    host.origin
        .write("stacks/web/compose.yaml", compose("v1"))
        .write("stacks/web/web.env", "A=1\n");
    host.origin.commit("add stack web");
    host.tool(&format!("sync-repo {REPO}")).expect_code(0);
    host
}

#[test]
fn each_kind_of_stack_drift_appears_and_the_printed_fix_clears_it() {
    let Some(engine) = Engine::start() else { return };
    let host = host_with_stack(&engine);

    // Never applied.
    let row = host.assert_drift(&["--no-fetch"], "stack", "web", "never applied");
    host.run_fix(row.fix());
    host.assert_clean(&["--no-fetch"]);

    // The checkout moved on: the desired digest differs from the applied one.
    host.origin.write("stacks/web/web.env", "A=2\n");
    host.origin.commit("change web env");
    host.tool(&format!("sync-repo {REPO}")).expect_code(0);
    let row = host.assert_drift(&["--no-fetch"], "stack", "web", "env_file stacks/web/web.env changed");
    host.run_fix(row.fix());
    host.assert_clean(&["--no-fetch"]);

    // A service stopped by hand.
    engine.docker(&["stop", "web-web-1"]);
    let row = host.assert_drift(&["--no-fetch"], "stack", "web", "service web is exited");
    host.run_fix(row.fix());
    host.assert_clean(&["--no-fetch"]);

    // A container of the project that the stack does not define.
    let dir = host.checkout.join("stacks/web");
    let extra = host.env.path("ghost.yaml");
    std::fs::write(
        &extra,
        format!(
            "services:\n  ghost:\n    image: {IMAGE}\n    command: [\"sleep\", \"3600\"]\n    pull_policy: never\n"
        ),
    )
    .expect("write ghost.yaml");
    let mut up = std::process::Command::new("docker");
    up.envs(engine.client_env())
        .args(["compose", "--project-name", "web", "--project-directory"]);
    up.arg(&dir)
        .arg("-f")
        .arg(dir.join("compose.yaml"))
        .arg("-f")
        .arg(&extra)
        .args(["up", "-d"]);
    let out = up.output().expect("compose up with the ghost service");
    assert!(
        out.status.success(),
        "compose up with ghost: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = host.assert_drift(&["--no-fetch"], "stack", "web", "service ghost runs but is not defined");
    host.run_fix(row.fix());
    host.assert_clean(&["--no-fetch"]);

    // Someone ran compose by hand with an edited env file, then put the file back.
    let env_file = host.checkout.join("stacks/web/web.env");
    std::fs::write(&env_file, "A=edited\n").expect("edit web.env");
    let mut by_hand = std::process::Command::new("docker");
    let dir = host.checkout.join("stacks/web");
    by_hand
        .envs(engine.client_env())
        .args(["compose", "--project-name", "web", "--project-directory"]);
    by_hand
        .arg(&dir)
        .arg("-f")
        .arg(dir.join("compose.yaml"))
        .args(["up", "-d"]);
    let out = by_hand.output().expect("run docker compose by hand");
    assert!(
        out.status.success(),
        "compose up by hand: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    host.git(&["checkout", "--", "stacks/web/web.env"]);
    let row = host.assert_drift(&["--no-fetch"], "stack", "web", "outdated configuration");
    host.run_fix(row.fix());
    host.assert_clean(&["--no-fetch"]);

    // On hold: reported as held, not drift, even with a service stopped.
    std::fs::write(host.checkout.join("stacks/web/.driftless-hold"), "").expect("hold");
    engine.docker(&["stop", "web-web-1"]);
    let run = host.check(&["--no-fetch", "--all-items"]);
    run.expect_code(NO_DRIFT);
    assert_eq!(run.row("stack", "web").status, "held", "{}", run.stdout);
    std::fs::remove_file(host.checkout.join("stacks/web/.driftless-hold")).expect("release");

    // Engine down: the stack is unknown (75), the checkout still reported; drift elsewhere wins.
    engine.stop();
    let run = host.check(&["--no-fetch", "--all-items"]);
    run.expect_code(TEMP_FAIL);
    let row = run.row("stack", "web");
    assert_eq!(row.status, "unknown", "{}", run.stdout);
    assert!(row.reason.contains("unreachable"), "{row:?}");
    assert_eq!(run.row("checkout", "dirty").status, "ok", "{}", run.stdout);
    std::fs::write(host.checkout.join("a.txt"), "edited\n").expect("make the checkout dirty");
    let run = host.check(&["--no-fetch"]);
    run.expect_code(DRIFT);
    assert_eq!(run.row("checkout", "dirty").status, "DRIFT", "{}", run.stdout);
    assert_eq!(run.row("stack", "web").status, "unknown", "{}", run.stdout);
}
