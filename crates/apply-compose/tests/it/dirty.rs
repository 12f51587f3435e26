//! Tracked inputs modified in the checkout (not committed): compose would deploy the edit, not
//! git's content, so a stack that has to be applied is refused (exit 3, naming the path,
//! nothing lost) unless `--allow-dirty` says to apply the edit.

use crate::{Hub, compose, engine};

/// Stack `a` changed in git (its compose file) while its `app.env` was edited on the host.
fn changed_and_edited(hub: &Hub) {
    hub.add_stack("a", "v1");
    hub.add_stack("b", "v1");
    hub.commit("two stacks");
    hub.apply(&[]).expect_code(0);
    hub.write(
        &format!("{}/compose.yaml", hub.stack_dir("a")),
        &compose("    env_file: app.env\n    environment: {FROM_GIT: \"2\"}\n", ""),
    );
    hub.commit("change a's compose file");
    hub.set_greeting("a", "edited-on-the-host");
}

#[test]
fn a_stack_to_apply_with_a_modified_tracked_input_is_refused_and_allow_dirty_applies_it() {
    let Some(engine) = engine::shared() else { return };
    let hub = Hub::new("dirty", Some(engine));
    changed_and_edited(&hub);
    let state = std::fs::read(hub.state_file()).expect("state");
    let containers = hub.containers("a");

    let env_path = format!("{}/app.env", hub.stack_dir("a"));
    let out = hub.apply(&[]);
    out.expect_code(3)
        .expect_stack(&hub.project("a"), "refused", &[&env_path, "--allow-dirty"])
        .expect_stack(&hub.project("b"), "unchanged", &[]);
    assert_eq!(hub.containers("a"), containers);
    assert_eq!(hub.running_greeting("a").as_deref(), Some("v1"));
    let kept = std::fs::read_to_string(hub.checkout.join(&env_path)).expect("edited file");
    assert_eq!(kept, "GREETING=edited-on-the-host\n", "the edit was lost");
    let before: serde_json::Value = serde_json::from_slice(&state).expect("state JSON");
    assert_eq!(
        hub.state()["stacks"],
        before["stacks"],
        "a refused run changed stack state"
    );

    hub.apply(&["--allow-dirty"])
        .expect_code(0)
        .expect_stack(&hub.project("a"), "applied", &["compose file"]);
    assert_eq!(hub.running_greeting("a").as_deref(), Some("edited-on-the-host"));
    assert_ne!(hub.containers("a"), containers);
}

/// After `--allow-dirty` the container runs the edit, not git's content: once the edit is
/// undone, the stack must be applied again to get back to what git says.
#[test]
fn undoing_an_applied_dirty_edit_applies_the_stack_again() {
    let Some(engine) = engine::shared() else { return };
    let hub = Hub::new("undo", Some(engine));
    changed_and_edited(&hub);
    hub.apply(&["--allow-dirty"]).expect_code(0);
    assert_eq!(hub.running_greeting("a").as_deref(), Some("edited-on-the-host"));

    hub.env.git(&hub.checkout, &["checkout", "--", "."]);
    let out = hub.apply(&[]);
    out.expect_code(0);
    assert_eq!(
        hub.running_greeting("a").as_deref(),
        Some("v1"),
        "the container still runs the undone edit; apply-compose said: {} {:?}",
        out.action(&hub.project("a")),
        out.reasons(&hub.project("a"))
    );
}

/// An edit to a tracked input with no commit behind it: the running stack no longer matches
/// the checkout, which must not be reported as `unchanged`.
#[test]
fn a_modified_tracked_input_alone_is_not_reported_unchanged() {
    let mut hub = Hub::new("dirtyonly", None);
    hub.use_fake_compose();
    hub.add_stack("a", "v1");
    hub.commit("one stack");
    hub.apply(&[]).expect_code(0);
    hub.set_greeting("a", "edited-on-the-host");
    let calls = hub.compose_calls();
    let out = hub.apply(&[]);
    assert_eq!(hub.compose_calls(), calls, "compose ran with an uncommitted edit");
    out.expect_code(3).expect_stack(
        &hub.project("a"),
        "refused",
        &[&format!("{}/app.env", hub.stack_dir("a"))],
    );
}
