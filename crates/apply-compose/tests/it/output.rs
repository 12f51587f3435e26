//! What `apply-compose` prints: one `--json` record per repo with a fixed shape, one summary
//! line per stack otherwise. The decision is under test, so compose is the recording fake.

use serde_json::Value;

use crate::Hub;

#[test]
fn json_is_one_record_per_repo_with_every_stack() {
    let mut hub = Hub::new("json", None);
    hub.use_fake_compose();
    hub.add_stack("a", "v1");
    hub.add_stack("b", "v1");
    let sha = hub.commit("two stacks");
    let out = hub.apply(&[]);
    out.expect_code(0);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    let record = &out.json;
    let keys: Vec<&str> = record
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "commit",
            "duration_ms",
            "exit_code",
            "path",
            "reason",
            "repo",
            "stacks",
            "tool"
        ]
    );
    assert_eq!(record["tool"], "apply-compose");
    assert_eq!(record["repo"], hub.name.as_str());
    assert_eq!(record["path"], hub.checkout.display().to_string());
    assert_eq!(record["commit"], sha.as_str());
    assert_eq!(record["exit_code"], 0);
    assert_eq!(record["reason"], Value::Null);
    assert!(record["duration_ms"].is_u64());
    let stacks = record["stacks"].as_array().expect("stacks is a list");
    assert_eq!(stacks.len(), 2);
    for (stack, short) in stacks.iter().zip(["a", "b"]) {
        let mut keys: Vec<&str> = stack.as_object().expect("object").keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["action", "digest", "dir", "reasons", "stack"]);
        assert_eq!(stack["stack"], hub.project(short).as_str());
        assert_eq!(stack["dir"], hub.stack_dir(short).as_str());
        assert_eq!(stack["action"], "applied");
        assert_eq!(stack["reasons"], serde_json::json!(["never applied"]));
        assert!(stack["digest"].as_str().is_some_and(|d| d.len() == 40), "{stack}");
    }
    // The digest reported is the one recorded.
    assert_eq!(hub.stack_state("a")["applied_digest"], stacks[0]["digest"]);
}

#[test]
fn all_prints_one_record_per_configured_repo_and_text_one_line_per_stack() {
    let mut hub = Hub::new("multi", None);
    hub.use_fake_compose();
    hub.add_stack("a", "v1");
    hub.commit("one stack");
    let other = hub.env.path("checkouts/other");
    std::fs::create_dir_all(&other).expect("mkdir");
    hub.env.git(&other, &["init", "-q", "-b", "main"]);
    driftless_tests::fixture::write_file(&other, "stacks/other-x/compose.yaml", crate::compose("", ""));
    hub.env.git(&other, &["add", "-A"]);
    hub.env.git(&other, &["commit", "-q", "-m", "other"]);
    hub.env.write_config(&format!(
        "repos:\n  multi:\n    path: {}\n    stacks: [\"stacks/*\"]\n  other:\n    path: {}\n    stacks: [\"stacks/*\"]\n  nostacks:\n    path: /nonexistent\n",
        hub.checkout.display(),
        other.display()
    ));
    let mut cmd = hub.cmd();
    cmd.args(["--all", "--json"]);
    let out = crate::run(cmd);
    out.expect_code(0);
    let repos: Vec<String> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("each line is JSON")["repo"].to_string())
        .collect();
    assert_eq!(repos, ["\"multi\"", "\"other\""], "{}", out.stdout);

    let mut cmd = hub.cmd();
    cmd.args(["--all"]);
    let out = crate::run(cmd);
    out.expect_code(0);
    assert_eq!(out.stdout, "2 stacks unchanged\n", "nothing changed: one summary line");

    let mut cmd = hub.cmd();
    cmd.args(["--all", "-v"]);
    let out = crate::run(cmd);
    out.expect_code(0);
    let short = |dir: &std::path::Path| hub.env.git(dir, &["rev-parse", "--short=7", "HEAD"]).trim().to_owned();
    assert_eq!(
        out.stdout,
        format!(
            "multi/multi-a: unchanged since {}\nother/other-x: unchanged since {}\n",
            short(&hub.checkout),
            short(&other)
        )
    );
}
