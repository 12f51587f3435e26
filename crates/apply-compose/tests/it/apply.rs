//! Applying against a real engine: the first run starts every stack, a change recreates only
//! the stacks that read the changed file, and a change no stack reads never starts compose.

use crate::{Hub, compose, engine};

#[test]
fn first_apply_starts_every_stack_and_an_env_file_change_recreates_only_that_stack() {
    let Some(engine) = engine::shared() else { return };
    let hub = Hub::new("envf", Some(engine));
    hub.add_stack("a", "hello-a");
    hub.add_stack("b", "hello-b");
    hub.commit("two stacks");
    let (a, b) = (hub.project("a"), hub.project("b"));

    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&a, "applied", &["never applied"])
        .expect_stack(&b, "applied", &["never applied"]);
    let before_a = hub.containers("a");
    let before_b = hub.containers("b");
    assert_eq!(before_a.len(), 1, "{before_a:?}");
    assert_eq!(before_b.len(), 1, "{before_b:?}");
    assert_eq!(hub.running_greeting("a").as_deref(), Some("hello-a"));

    hub.set_greeting("a", "changed-a");
    let sha = hub.commit("change a's env");
    let out = hub.apply(&[]);
    out.expect_code(0)
        .expect_stack(
            &a,
            "applied",
            &[
                &format!("env_file {}/app.env changed in ", hub.stack_dir("a")),
                &sha[..7],
            ],
        )
        .expect_stack(&b, "unchanged", &["unchanged since"]);
    assert_eq!(hub.containers("b"), before_b, "stack b must keep its container");
    let after_a = hub.containers("a");
    assert_eq!(after_a.keys().collect::<Vec<_>>(), before_a.keys().collect::<Vec<_>>());
    assert_ne!(after_a, before_a, "stack a's container must be recreated");
    assert_eq!(hub.running_greeting("a").as_deref(), Some("changed-a"));
    assert_eq!(hub.stack_state("a")["applied_commit"], sha.as_str());
    assert!(hub.stack_state("a")["last_error"].is_null());

    // Nothing changed since: a second run keeps every container.
    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&a, "unchanged", &[])
        .expect_stack(&b, "unchanged", &[]);
    assert_eq!(hub.containers("a"), after_a);
    assert_eq!(hub.containers("b"), before_b);
}

#[test]
fn a_change_outside_every_stack_applies_nothing_and_never_calls_compose() {
    let Some(engine) = engine::shared() else { return };
    let mut hub = Hub::new("outside", Some(engine));
    hub.use_recording_compose();
    hub.add_stack("a", "one");
    hub.add_stack("b", "two");
    hub.write("docs/notes.md", "notes\n");
    hub.commit("stacks and docs");
    hub.apply(&[]).expect_code(0);
    let calls = hub.compose_calls();
    assert!(
        calls.iter().any(|c| c.contains("up -d")),
        "the first apply goes through the recorder: {calls:?}"
    );
    let before = (hub.containers("a"), hub.containers("b"));

    hub.write("docs/notes.md", "more notes\n");
    hub.write("README.md", "# changed\n");
    hub.commit("docs only");
    // -v lists every stack; by default unchanged ones are only counted.
    let out = hub.apply_text(&["-v"]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains(&format!("{}/{}: unchanged", hub.name, hub.project("a")))
            && out
                .stdout
                .contains(&format!("{}/{}: unchanged", hub.name, hub.project("b"))),
        "{}",
        out.stdout
    );
    assert_eq!(
        hub.compose_calls(),
        calls,
        "compose was called for a change no stack reads"
    );
    assert_eq!((hub.containers("a"), hub.containers("b")), before);
}

#[test]
fn an_included_file_shared_by_two_stacks_reapplies_both_naming_it() {
    let Some(engine) = engine::shared() else { return };
    let hub = Hub::new("incl", Some(engine));
    let sidecar = format!(
        "services:\n  sidecar:\n    image: {}\n    command: [\"sleep\", \"3600\"]\n    pull_policy: never\n    stop_signal: SIGKILL\n    environment:\n      GREETING: v1\n",
        engine::IMAGE
    );
    hub.write("shared/sidecar.yaml", &sidecar);
    for short in ["a", "b", "c"] {
        let include = if short == "c" {
            String::new()
        } else {
            "include:\n  - ../../shared/sidecar.yaml\n".to_owned()
        };
        hub.write(
            &format!("{}/compose.yaml", hub.stack_dir(short)),
            &format!("{include}{}", compose("", "")),
        );
    }
    hub.commit("two stacks include the sidecar");
    hub.apply(&[]).expect_code(0);
    for short in ["a", "b"] {
        assert_eq!(hub.containers(short).len(), 2, "app and sidecar in {short}");
    }
    let before_c = hub.containers("c");

    hub.write("shared/sidecar.yaml", &sidecar.replace("GREETING: v1", "GREETING: v2"));
    hub.commit("change the shared sidecar");
    let out = hub.apply(&[]);
    out.expect_code(0);
    for short in ["a", "b"] {
        out.expect_stack(
            &hub.project(short),
            "applied",
            &["included file shared/sidecar.yaml changed"],
        );
        let env = hub.engine().container_env(&format!("{}-sidecar-1", hub.project(short)));
        assert!(env.contains(&"GREETING=v2".to_owned()), "{short}: {env:?}");
    }
    out.expect_stack(&hub.project("c"), "unchanged", &[]);
    assert_eq!(hub.containers("c"), before_c);
}

#[test]
fn a_checkout_path_is_applied_without_any_config() {
    let Some(engine) = engine::shared() else { return };
    let hub = Hub::new("bypath", Some(engine));
    // Without config every top-level directory with a compose file is a stack, and so is the top.
    for short in ["a", "b"] {
        hub.write(&format!("{}/compose.yaml", hub.project(short)), &compose("", ""));
    }
    hub.write("compose.yaml", &compose("", ""));
    hub.commit("stacks at the top");
    let mut cmd = hub.env.cmd("apply-compose");
    cmd.arg(&hub.checkout)
        .arg("--state-dir")
        .arg(hub.env.state_dir())
        .arg("--json")
        .envs(hub.engine().client_env());
    let out = crate::run(cmd);
    out.expect_code(0);
    let mut stacks = out.stacks();
    stacks.sort();
    let mut want = vec![hub.project("a"), hub.project("b"), hub.name.clone()];
    want.sort();
    assert_eq!(stacks, want);
    for project in &stacks {
        out.expect_stack(project, "applied", &["never applied"]);
        assert_eq!(hub.engine().containers(project).len(), 1, "{project}");
    }
    assert_eq!(out.json["repo"], hub.checkout.display().to_string());
    // State is keyed by the escaped checkout path.
    let records: Vec<_> = std::fs::read_dir(hub.env.state_dir().join("paths"))
        .expect("a paths/ state dir")
        .flatten()
        .map(|e| e.path().join("apply-compose.json"))
        .filter(|p| p.is_file())
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(
        !hub.state_file().exists(),
        "a checkout by path must not use repos/<name>"
    );
}
