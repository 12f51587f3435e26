//! A stack removed from git: reported `orphaned` and left running by default, taken down with
//! `prune: true` (and only said so under `--dry-run`).

use crate::{Hub, engine};

#[test]
fn a_removed_stack_is_orphaned_by_default_and_taken_down_with_prune() {
    let Some(engine) = engine::shared() else { return };
    let hub = Hub::new("prune", Some(engine));
    hub.add_stack("keep", "v1");
    hub.add_stack("gone", "v1");
    hub.commit("two stacks");
    hub.apply(&[]).expect_code(0);
    let gone = hub.project("gone");
    let containers = hub.containers("gone");
    assert_eq!(containers.len(), 1);

    hub.remove(&hub.stack_dir("gone"));
    hub.commit("remove a stack");
    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&gone, "orphaned", &["left running", "prune: true"])
        .expect_stack(&hub.project("keep"), "unchanged", &[]);
    assert_eq!(hub.containers("gone"), containers, "orphans are left running");
    assert!(hub.state()["stacks"].get(&gone).is_some(), "the orphan stays in state");

    hub.configure("    prune: true\n    stacks: [\"stacks/*\"]\n");
    hub.apply(&["--dry-run"])
        .expect_code(0)
        .expect_stack(&gone, "would_prune", &["would run compose down"]);
    assert_eq!(hub.containers("gone"), containers, "--dry-run took the stack down");

    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&gone, "pruned", &["taken down"])
        .expect_stack(&hub.project("keep"), "unchanged", &[]);
    assert!(
        hub.engine().all_containers(&gone).is_empty(),
        "{:?}",
        hub.engine().all_containers(&gone)
    );
    assert_eq!(hub.containers("keep").len(), 1);
    assert!(
        hub.state()["stacks"].get(&gone).is_none(),
        "a pruned stack leaves state"
    );

    let out = hub.apply(&[]);
    out.expect_code(0);
    assert_eq!(out.stacks(), vec![hub.project("keep")]);
}
