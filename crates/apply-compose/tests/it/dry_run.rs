//! `--dry-run` decides and reports like a real run, and changes nothing: no containers, no state.

use crate::{Hub, engine};

#[test]
fn dry_run_reports_what_would_be_applied_and_changes_nothing() {
    let Some(engine) = engine::shared() else { return };
    let hub = Hub::new("dry", Some(engine));
    hub.add_stack("a", "v1");
    hub.add_stack("b", "v1");
    hub.commit("two stacks");

    hub.apply(&["--dry-run"])
        .expect_code(0)
        .expect_stack(&hub.project("a"), "would_apply", &["never applied"])
        .expect_stack(&hub.project("b"), "would_apply", &["never applied"]);
    assert!(hub.engine().all_containers(&hub.project("a")).is_empty());
    assert!(hub.engine().all_containers(&hub.project("b")).is_empty());
    assert!(
        !hub.state_file().exists(),
        "--dry-run wrote {}",
        hub.state_file().display()
    );

    hub.apply(&[]).expect_code(0);
    let containers = (hub.containers("a"), hub.containers("b"));
    let state = std::fs::read(hub.state_file()).expect("state after the real run");
    hub.set_greeting("a", "v2");
    hub.commit("change a");
    hub.apply(&["--dry-run"])
        .expect_code(0)
        .expect_stack(&hub.project("a"), "would_apply", &["env_file"])
        .expect_stack(&hub.project("b"), "unchanged", &[]);
    assert_eq!((hub.containers("a"), hub.containers("b")), containers);
    assert_eq!(hub.running_greeting("a").as_deref(), Some("v1"));
    assert_eq!(
        std::fs::read(hub.state_file()).expect("state"),
        state,
        "--dry-run changed state"
    );
}
