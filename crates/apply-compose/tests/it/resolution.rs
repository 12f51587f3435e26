//! Compose's own resolution, with the real `docker compose` typed by hand in the stack's
//! directory as the oracle: the override file, `name:`, `COMPOSE_PROJECT_NAME`, `COMPOSE_FILE`
//! with its separator and `COMPOSE_PROFILES` are what apply-compose uses too, so a stack
//! started by hand is adopted with the very same containers, and a change to any of those
//! files applies the stack again.

use crate::{Hub, compose, engine};

/// A compose file with service `name` (sleeping, no registry) plus `extra` lines under it.
fn service(name: &str, extra: &str) -> String {
    format!(
        "  {name}:\n    image: {}\n    command: [\"sleep\", \"3600\"]\n    pull_policy: never\n    stop_signal: SIGKILL\n{extra}",
        engine::IMAGE
    )
}

#[test]
fn an_override_file_is_merged_and_changing_it_applies_the_stack_again() {
    let Some(engine) = engine::shared() else { return };
    let hub = Hub::new("ovr", Some(engine));
    hub.add_stack("a", "from-env-file");
    let override_path = format!("{}/compose.override.yaml", hub.stack_dir("a"));
    hub.write(
        &override_path,
        "services:\n  app:\n    environment:\n      GREETING: from-override\n",
    );
    hub.commit("a stack with an override file");
    let a = hub.project("a");

    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&a, "applied", &["never applied"]);
    assert_eq!(hub.running_greeting("a").as_deref(), Some("from-override"));

    hub.write(
        &override_path,
        "services:\n  app:\n    environment:\n      GREETING: override-v2\n",
    );
    hub.commit("change the override");
    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&a, "applied", &[&format!("compose file {override_path} changed")]);
    assert_eq!(hub.running_greeting("a").as_deref(), Some("override-v2"));
}

#[test]
fn stacks_started_by_hand_are_adopted_with_the_same_containers() {
    let Some(engine) = engine::shared() else { return };
    let hub = Hub::new("adopt", Some(engine));
    // `name:` in the file, and a directory name that would give another project.
    hub.write(
        &format!("{}/compose.yaml", hub.stack_dir("n")),
        &format!("name: {}\n{}", hub.project("Named"), compose("", "")),
    );
    // COMPOSE_PROJECT_NAME in .env wins over `name:`.
    hub.write(
        &format!("{}/compose.yaml", hub.stack_dir("e")),
        &format!("name: ignored\n{}", compose("", "")),
    );
    hub.write(
        &format!("{}/.env", hub.stack_dir("e")),
        &format!("COMPOSE_PROJECT_NAME={}\n", hub.project("fromenv")),
    );
    // COMPOSE_FILE with a custom separator, and COMPOSE_PROFILES: no compose.yaml at all.
    let f = hub.stack_dir("f");
    hub.write(&format!("{f}/base.yaml"), &format!("services:\n{}", service("app", "")));
    hub.write(
        &format!("{f}/extra.yaml"),
        &format!(
            "services:\n{}{}",
            service("side", "    profiles: [extra]\n    environment: {GREETING: v1}\n"),
            service("never", "    profiles: [other]\n")
        ),
    );
    hub.write(
        &format!("{f}/.env"),
        "COMPOSE_FILE=base.yaml;extra.yaml # two files\nCOMPOSE_PATH_SEPARATOR=;\nCOMPOSE_PROFILES=extra\n",
    );
    hub.commit("three stacks compose resolves by itself");

    for short in ["n", "e", "f"] {
        hub.engine()
            .compose_in(&hub.checkout.join(hub.stack_dir(short)), &["up", "-d"]);
    }
    let by_hand = hub.engine().containers_with_prefix(&hub.name);
    let projects: std::collections::BTreeSet<&str> = by_hand.keys().map(|(p, _)| p.as_str()).collect();
    let want = [hub.project("f"), hub.project("fromenv"), hub.project("named")];
    assert_eq!(
        projects,
        want.iter().map(String::as_str).collect(),
        "the oracle: {by_hand:?}"
    );
    assert_eq!(
        hub.engine().containers(&hub.project("f")).len(),
        2,
        "app and the profile's side"
    );

    let out = hub.apply(&[]);
    out.expect_code(0);
    let mut reported = out.stacks();
    reported.sort();
    assert_eq!(reported, want.to_vec());
    for project in &want {
        out.expect_stack(project, "applied", &["never applied"]);
    }
    assert_eq!(
        hub.engine().containers_with_prefix(&hub.name),
        by_hand,
        "apply-compose did not adopt the stacks started by hand"
    );

    // Every file compose picked is an input: a change to the second COMPOSE_FILE file applies.
    hub.write(
        &format!("{f}/extra.yaml"),
        &format!(
            "services:\n{}{}",
            service("side", "    profiles: [extra]\n    environment: {GREETING: v2}\n"),
            service("never", "    profiles: [other]\n")
        ),
    );
    hub.commit("change the second file");
    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&hub.project("f"), "applied", &[&format!("{f}/extra.yaml changed")])
        .expect_stack(&hub.project("named"), "unchanged", &[]);
    let env = hub.engine().container_env(&format!("{}-side-1", hub.project("f")));
    assert!(env.contains(&"GREETING=v2".to_owned()), "{env:?}");
}

#[test]
fn a_project_name_compose_would_reject_is_a_config_error_naming_the_directory() {
    let mut hub = Hub::new("badname", None);
    hub.use_fake_compose();
    hub.write("stacks/日本/compose.yaml", &compose("", ""));
    hub.commit("a stack whose directory name normalises to nothing");
    let out = hub.apply_text(&[]);
    out.expect_code(2);
    assert!(
        out.stdout.contains("stacks/日本") && out.stdout.contains("project:"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(hub.compose_calls().is_empty(), "{:?}", hub.compose_calls());

    // COMPOSE_PROJECT_NAME is taken as is by compose: an invalid one is refused, not normalised.
    hub.remove("stacks/日本");
    hub.write(&format!("{}/compose.yaml", hub.stack_dir("a")), &compose("", ""));
    hub.write(
        &format!("{}/.env", hub.stack_dir("a")),
        "COMPOSE_PROJECT_NAME=Bad.Name\n",
    );
    hub.commit("an invalid COMPOSE_PROJECT_NAME");
    let out = hub.apply_text(&[]);
    out.expect_code(2);
    assert!(
        out.stdout.contains(&hub.stack_dir("a")) && out.stdout.contains("\"Bad.Name\""),
        "{}\n{}",
        out.stdout,
        out.stderr
    );

    // `project:` in the config resolves it.
    hub.configure(&format!(
        "    stacks:\n      - {{dir: {}, project: {}}}\n",
        hub.stack_dir("a"),
        hub.project("fixed")
    ));
    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&hub.project("fixed"), "applied", &["never applied"]);
}

#[test]
fn a_stack_directory_whose_name_is_not_utf8_is_applied() {
    use std::os::unix::ffi::OsStrExt;
    let mut hub = Hub::new("bytes", None);
    hub.use_fake_compose();
    let dir = hub
        .checkout
        .join("stacks")
        .join(std::ffi::OsStr::from_bytes(b"bytes-st\xffack"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("compose.yaml"), compose("", "")).expect("write");
    hub.commit("a stack directory named in Latin-1");
    let out = hub.apply(&[]);
    out.expect_code(0)
        .expect_stack("bytes-stack", "applied", &["never applied"]);
    let calls = hub.compose_calls();
    assert!(
        calls
            .iter()
            .any(|c| c.contains("--project-name bytes-stack") && c.contains(" up -d")),
        "{calls:?}"
    );

    // Its files are found in git by their exact names: a committed change applies it again.
    hub.apply(&[])
        .expect_code(0)
        .expect_stack("bytes-stack", "unchanged", &[]);
    std::fs::write(dir.join("compose.yaml"), compose("    environment: {A: \"2\"}\n", "")).expect("write");
    hub.commit("change the stack");
    hub.apply(&[])
        .expect_code(0)
        .expect_stack("bytes-stack", "applied", &["compose file", "compose.yaml changed"]);
}
