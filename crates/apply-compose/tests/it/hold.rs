//! Stacks on hold (a `.driftless-hold` file, or `hold: true` in the config) are never touched,
//! whatever changed in git; the other stacks still apply.

use crate::{Hub, engine};

#[test]
fn held_stacks_are_reported_and_never_touched() {
    let Some(engine) = engine::shared() else { return };
    let hub = Hub::new("hold", Some(engine));
    for short in ["file", "conf", "free"] {
        hub.add_stack(short, "v1");
    }
    hub.commit("three stacks");
    hub.apply(&[]).expect_code(0);
    let before = hub.state();
    let held_containers = (hub.containers("file"), hub.containers("conf"));

    // Someone stopped `file` on purpose on the host; `conf` is held in the config.
    hub.write(&format!("{}/.driftless-hold", hub.stack_dir("file")), "");
    hub.configure(&format!(
        "    stacks:\n      - stacks/*\n      - {{dir: {}, hold: true}}\n",
        hub.stack_dir("conf")
    ));
    for short in ["file", "conf", "free"] {
        hub.set_greeting(short, "v2");
    }
    hub.commit("change all three");
    let out = hub.apply(&[]);
    out.expect_code(0)
        .expect_stack(&hub.project("file"), "held", &[".driftless-hold"])
        .expect_stack(&hub.project("conf"), "held", &["on hold"])
        .expect_stack(&hub.project("free"), "applied", &["env_file"]);
    assert_eq!((hub.containers("file"), hub.containers("conf")), held_containers);
    assert_eq!(hub.running_greeting("file").as_deref(), Some("v1"));
    assert_eq!(hub.running_greeting("conf").as_deref(), Some("v1"));
    assert_eq!(hub.running_greeting("free").as_deref(), Some("v2"));
    for short in ["file", "conf"] {
        let state = hub.stack_state(short);
        assert_eq!(state["held"], true, "{short}: {state}");
        assert_eq!(
            state["applied_digest"],
            before["stacks"][hub.project(short)]["applied_digest"],
            "{short}: a held stack's digest must not advance"
        );
    }

    // Released: the change made while held is applied now.
    hub.remove(&format!("{}/.driftless-hold", hub.stack_dir("file")));
    hub.configure("    stacks: [\"stacks/*\"]\n");
    let out = hub.apply(&[]);
    out.expect_code(0)
        .expect_stack(&hub.project("file"), "applied", &["env_file"])
        .expect_stack(&hub.project("conf"), "applied", &["env_file"])
        .expect_stack(&hub.project("free"), "unchanged", &[]);
    assert_eq!(hub.running_greeting("file").as_deref(), Some("v2"));
    assert_eq!(hub.stack_state("file")["held"], false);
}
