//! A deploy that fails is remembered: the first run fails the unit (65, one notification),
//! later ticks skip the same inputs with one line saying how to retry and succeed, and a fixing
//! commit, `--force` or `retry_after` tries again.

use crate::{Hub, compose, engine};

#[test]
fn a_failing_stack_fails_once_over_three_ticks_then_a_fixing_commit_deploys() {
    let Some(engine) = engine::shared() else { return };
    let hub = Hub::new("badploy", Some(engine));
    hub.add_stack("a", "v1");
    hub.add_stack("ok", "v1");
    hub.commit("two stacks");
    hub.apply(&[]).expect_code(0);
    let a = hub.project("a");

    hub.write(
        &format!("{}/compose.yaml", hub.stack_dir("a")),
        &compose("    env_file: app.env\n    bogus_key: 1\n", ""),
    );
    let broken = hub.commit("break a");
    let codes: Vec<i32> = (0..3)
        .map(|tick| {
            let out = hub.apply_text(&[]);
            if tick > 0 {
                let line = out
                    .stdout
                    .lines()
                    .find(|l| l.contains(&a))
                    .unwrap_or_else(|| panic!("no line for {a}:\n{}", out.stdout));
                for want in [&broken[..7], "bogus_key", "--force", "retry_after"] {
                    assert!(line.contains(want), "{want:?} missing from {line}");
                }
            }
            out.code
        })
        .collect();
    assert_eq!(codes, vec![65, 0, 0], "the unit must fail once, not on every tick");
    let state = hub.stack_state("a");
    assert_eq!(state["failed_commit"], broken.as_str(), "{state}");
    assert!(state["last_error"].as_str().is_some_and(|e| e.contains("bogus_key")));

    // --force tries again (and fails again); so does a tick after retry_after.
    hub.apply(&["--force", "--stack", &a])
        .expect_code(65)
        .expect_stack(&a, "failed", &["bogus_key"]);
    hub.configure("    stacks: [\"stacks/*\"]\n    retry_after: 1s\n");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    hub.apply(&[])
        .expect_code(65)
        .expect_stack(&a, "failed", &["bogus_key"]);
    hub.configure("    stacks: [\"stacks/*\"]\n");

    // A commit that changes nothing the stack reads does not retry it.
    hub.write("README.md", "# still broken\n");
    hub.commit("unrelated");
    hub.apply(&[]).expect_code(0).expect_stack(&a, "skipped", &[]);

    hub.add_stack("a", "v2");
    hub.commit("fix a");
    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&a, "applied", &["last apply failed"]);
    assert_eq!(hub.running_greeting("a").as_deref(), Some("v2"));
    let state = hub.stack_state("a");
    assert!(
        state["last_error"].is_null() && state.get("failed_digest").is_none(),
        "{state}"
    );
}
