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

/// `docker compose ... up -d` run by hand with `args` (`--project-name web` and the rest) in
/// `dir`, against `engine`; panics unless it succeeds.
fn compose_by_hand(engine: &Engine, dir: &std::path::Path, args: &[&std::ffi::OsStr]) {
    let mut up = std::process::Command::new("docker");
    up.envs(engine.client_env()).current_dir(dir).arg("compose").args(args);
    let out = up.output().expect("run docker compose by hand");
    assert!(
        out.status.success(),
        "compose {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_stack_started_by_hand_from_other_files_or_a_copy_of_its_directory_is_drift_naming_both() {
    let Some(engine) = Engine::start() else { return };
    let host = host_with_stack(&engine);
    host.tool(&format!("apply-compose {REPO}")).expect_code(0);
    host.assert_clean(&["--no-fetch"]);
    let dir = host.checkout.join("stacks/web");
    let file = dir.join("compose.yaml");

    // Started from a copy of the stack directory (same project name: the copy is also `web`).
    let copy = host.env.path("copy/web");
    std::fs::create_dir_all(&copy).expect("mkdir copy");
    for name in ["compose.yaml", "web.env"] {
        std::fs::copy(dir.join(name), copy.join(name)).expect("copy stack file");
    }
    compose_by_hand(
        &engine,
        &copy,
        &["up", "-d", "--force-recreate"].map(std::ffi::OsStr::new),
    );
    let row = host.assert_drift(&["--no-fetch"], "stack", "web", "service web was started from");
    for want in [copy.join("compose.yaml"), copy.clone(), file.clone(), dir.clone()] {
        assert!(
            row.reason.contains(&*want.to_string_lossy()),
            "{want:?} missing: {row:?}"
        );
    }
    host.run_fix(row.fix());
    host.assert_clean(&["--no-fetch"]);

    // Started with an extra `-f` file that changes the service.
    let extra = host.env.path("extra.yaml");
    std::fs::write(&extra, "services:\n  web:\n    environment: {B: \"2\"}\n").expect("write extra.yaml");
    let args: Vec<&std::ffi::OsStr> = vec![
        "--project-name".as_ref(),
        "web".as_ref(),
        "-f".as_ref(),
        file.as_os_str(),
        "-f".as_ref(),
        extra.as_os_str(),
        "up".as_ref(),
        "-d".as_ref(),
    ];
    compose_by_hand(&engine, &dir, &args);
    let row = host.assert_drift(&["--no-fetch"], "stack", "web", "service web was started from");
    let both = format!("{},{}", file.display(), extra.display());
    assert!(row.reason.contains(&both), "{both} missing: {row:?}");
    assert!(row.fix().contains("--recreate"), "{row:?}");
    host.run_fix(row.fix());
    host.assert_clean(&["--no-fetch"]);
}

#[test]
fn an_image_pulled_by_hand_but_not_running_is_drift_naming_both_ids_until_apply_compose_pull() {
    let Some(engine) = Engine::start() else { return };
    let Some(registry) = engine.registry() else { return };
    let image = format!("{registry}/web:1");
    let old = engine.make_image(&image, "web v1");
    engine.docker(&["push", "-q", &image]);
    let host = host_with_stack(&engine);
    host.origin.write(
        "stacks/web/compose.yaml",
        format!(
            "services:\n  web:\n    image: {image}\n    command: [\"sleep\", \"3600\"]\n    stop_signal: SIGKILL\n"
        ),
    );
    host.origin.commit("web from the registry");
    host.tool(&format!("sync-repo {REPO}")).expect_code(0);
    host.tool(&format!("apply-compose {REPO}")).expect_code(0);
    host.assert_clean(&["--no-fetch"]);

    // The registry gets a new image under the same tag; pulled by hand, not re-created.
    let new = engine.make_image(&image, "web v2");
    engine.docker(&["push", "-q", &image]);
    engine.docker(&["tag", &old, &image]);
    host.assert_clean(&["--no-fetch"]);
    compose_by_hand(
        &engine,
        &host.checkout.join("stacks/web"),
        &["pull"].map(std::ffi::OsStr::new),
    );
    assert_eq!(engine.image_id(&image), new);

    let row = host.assert_drift(&["--no-fetch"], "stack", "web", "service web pulled but not running");
    for id in [&old, &new] {
        assert!(row.reason.contains(&id[7..19]), "{} missing: {row:?}", &id[7..19]);
    }
    assert!(row.fix().contains("--pull"), "{row:?}");
    host.run_fix(row.fix());
    host.assert_clean(&["--no-fetch"]);
    assert_eq!(engine.container_image("web-web-1"), new);
}
