//! `rollback: true`: a failed apply re-applies the stack's last good commit (its image, env and
//! files, exported from git; its untracked data where it lives), still exits 65 and names that
//! commit, and the next good commit moves forward again.

use crate::{Hub, compose, engine};

#[test]
fn a_failed_apply_rolls_back_to_the_last_good_commit_and_a_fixing_commit_moves_forward() {
    let Some(engine) = engine::shared() else { return };
    let hub = Hub::new("rollbk", Some(engine));
    let bad_image = format!("localhost/bb:{}-next", hub.name);
    hub.engine().docker(&["tag", engine::IMAGE, &bad_image]);
    let dir = hub.stack_dir("a");
    let name = format!("{}-app-1", hub.project("a"));
    let health = |test: &str| {
        format!(
            "    healthcheck:\n      test: [\"CMD\", \"{test}\"]\n      interval: 1s\n      timeout: 1s\n      retries: 1\n"
        )
    };
    let service = |image: &str, test: &str| {
        compose(
            &format!(
                "    env_file: app.env\n    volumes: [\"./data:/data\"]\n{}",
                health(test)
            ),
            "",
        )
        .replace(engine::IMAGE, image)
    };
    hub.configure(&format!(
        "    rollback: true\n    stacks:\n      - {{dir: {dir}, wait: true, wait_timeout: 20}}\n"
    ));
    hub.write(&format!("{dir}/compose.yaml"), &service(engine::IMAGE, "true"));
    hub.write(&format!("{dir}/.gitignore"), "data/\n");
    hub.set_greeting("a", "v1");
    let good = hub.commit("good");
    // Data the service keeps on the host, which git does not track.
    hub.write(&format!("{dir}/data/keep.txt"), "precious\n");
    hub.apply(&[]).expect_code(0);
    assert_eq!(hub.running_greeting("a").as_deref(), Some("v1"));

    // A new image and env whose healthcheck fails: compose replaces the container, --wait fails.
    hub.write(&format!("{dir}/compose.yaml"), &service(&bad_image, "false"));
    hub.set_greeting("a", "v2");
    let bad = hub.commit("bad");
    let out = hub.apply(&[]);
    out.expect_code(65).expect_stack(
        &hub.project("a"),
        "failed",
        &["unhealthy", &format!("rolled back to {}", &good[..7])],
    );
    let image = |name: &str| {
        hub.engine()
            .docker(&["inspect", "--format", "{{.Config.Image}}", name])
            .trim()
            .to_owned()
    };
    assert_eq!(
        hub.running_greeting("a").as_deref(),
        Some("v1"),
        "the good commit's env runs again"
    );
    assert_eq!(image(&name), engine::IMAGE, "the good commit's image runs again");
    let state = hub
        .engine()
        .docker(&["inspect", "--format", "{{.State.Status}}", &name]);
    assert_eq!(state.trim(), "running");
    assert_eq!(
        hub.engine().docker(&["exec", &name, "cat", "/data/keep.txt"]),
        "precious\n",
        "the rolled-back service still has its data"
    );
    let record = hub.stack_state("a");
    assert_eq!(record["applied_commit"], good.as_str(), "{record}");
    assert_eq!(record["failed_commit"], bad.as_str(), "{record}");

    // The failed commit is not tried again on the next tick; the good revision keeps running.
    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&hub.project("a"), "skipped", &[&bad[..7]]);
    assert_eq!(hub.running_greeting("a").as_deref(), Some("v1"));

    // A fixing commit moves forward, and the rollback copy goes.
    hub.write(&format!("{dir}/compose.yaml"), &service(&bad_image, "true"));
    hub.set_greeting("a", "v3");
    hub.commit("fix");
    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&hub.project("a"), "applied", &["last apply failed"]);
    assert_eq!(hub.running_greeting("a").as_deref(), Some("v3"));
    assert_eq!(image(&name), bad_image);
    assert_eq!(
        hub.engine().docker(&["exec", &name, "cat", "/data/keep.txt"]),
        "precious\n"
    );
    let copies = hub.env.state_dir().join("repos").join(&hub.name).join("rollback");
    assert!(
        !copies.join(hub.project("a")).exists(),
        "the rollback copy outlived the forward deploy"
    );
}
