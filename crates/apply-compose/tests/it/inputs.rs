//! Inputs git does not track (a gitignored bind mount or env file that lives only on the host)
//! are identified by existence and type, and by content only when `inputs.watch` lists them:
//! a file the service rewrites itself never triggers an apply, and a FIFO is never opened.

use std::time::Duration;

use crate::{Hub, compose};

#[test]
fn untracked_inputs_count_by_type_and_only_watched_ones_by_content() {
    let mut hub = Hub::new("untracked", None);
    hub.use_fake_compose();
    let dir = hub.stack_dir("a");
    hub.write(
        &format!("{dir}/compose.yaml"),
        &compose(
            "    env_file: secret.env\n    volumes: [\"./acme.json:/acme.json\", \"./pipe:/pipe\"]\n",
            "",
        ),
    );
    hub.write(&format!("{dir}/.gitignore"), "acme.json\nsecret.env\npipe\n");
    hub.write(&format!("{dir}/acme.json"), "{\"certs\": 1}\n");
    hub.write(&format!("{dir}/secret.env"), "TOKEN=one\n");
    let fifo = hub.checkout.join(&dir).join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    hub.commit("a stack with host-only inputs");
    hub.configure(
        "    stacks: [\"stacks/*\"]\n    inputs:\n      watch: [\"stacks/*/secret.env\", \"stacks/*/pipe\"]\n",
    );
    let apply = || {
        let mut cmd = hub.cmd();
        cmd.arg(&hub.name).arg("--json").timeout(Duration::from_secs(30));
        crate::run(cmd)
    };
    let a = hub.project("a");

    apply().expect_code(0).expect_stack(&a, "applied", &["never applied"]);
    let calls = hub.compose_calls();

    // The service renews its certificate: not a change.
    hub.write(&format!("{dir}/acme.json"), "{\"certs\": 2, \"renewed\": true}\n");
    apply().expect_code(0).expect_stack(&a, "unchanged", &[]);
    assert_eq!(hub.compose_calls(), calls);

    // A watched secret changed on the host: applied, naming it.
    hub.write(&format!("{dir}/secret.env"), "TOKEN=two\n");
    apply()
        .expect_code(0)
        .expect_stack(&a, "applied", &[&format!("env_file {dir}/secret.env changed")]);

    // The bind-mounted file is gone: its existence is part of the digest.
    hub.remove(&format!("{dir}/acme.json"));
    apply()
        .expect_code(0)
        .expect_stack(&a, "applied", &[&format!("bind mount {dir}/acme.json changed")]);
    assert!(fifo.exists(), "the FIFO must be left alone");
}
