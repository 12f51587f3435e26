//! What apply-compose meets on a real host besides good input: compose printing bytes that are
//! not UTF-8, a checkout whose status cannot be read, and a state record that is corrupt or
//! truncated. None of them may deploy blindly, abandon compose, or panic.

use crate::Hub;

#[test]
fn compose_output_that_is_not_utf8_is_logged_and_compose_is_waited_for() {
    let mut hub = Hub::new("bytes-out", None);
    let log = hub.env.path("compose-calls.log");
    let done = hub.env.path("compose-finished");
    // A stand-in for compose: prints invalid UTF-8 on `up`, keeps running a while, then succeeds.
    hub.set_compose_script(&format!(
        "#!/bin/sh\necho \"$*\" >> '{log}'\ncase \"$*\" in *' up '*)\n  printf 'pulling \\377\\376 layer\\n'\n  sleep 1\n  echo 'Container x Started'\n  touch '{done}'\nesac\nexit 0\n",
        log = log.display(),
        done = done.display()
    ));
    hub.add_stack("a", "v1");
    hub.commit("one stack");
    let out = hub.apply(&["-v"]);
    out.expect_code(0)
        .expect_stack(&hub.project("a"), "applied", &["never applied"]);
    assert!(done.exists(), "apply-compose returned before compose finished");
    assert!(out.stderr.contains("pulling \u{fffd}\u{fffd} layer"), "{}", out.stderr);
    assert!(out.stderr.contains("Container x Started"), "{}", out.stderr);
}

#[test]
fn a_checkout_whose_status_cannot_be_read_is_refused_not_deployed() {
    let mut hub = Hub::new("nostatus", None);
    hub.use_fake_compose();
    hub.add_stack("a", "v1");
    hub.commit("one stack");
    hub.apply(&[]).expect_code(0);
    hub.set_greeting("a", "v2");
    hub.commit("change a");
    let state = std::fs::read(hub.state_file()).expect("state");
    let calls = hub.compose_calls();
    std::fs::write(hub.checkout.join(".git/index"), b"DIRC garbage, not an index").expect("corrupt index");

    let out = hub.apply_text(&[]);
    assert!(
        out.code == 3 || out.code == 74,
        "exit {}\n{}\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.contains("git -C"), "{}", out.stdout);
    assert_eq!(
        hub.compose_calls(),
        calls,
        "compose ran although the status was unknown"
    );
    assert_eq!(std::fs::read(hub.state_file()).expect("state"), state, "state advanced");
}

#[test]
fn a_corrupt_state_record_is_reported_and_never_panics() {
    let mut hub = Hub::new("corrupt", None);
    hub.use_fake_compose();
    hub.add_stack("a", "v1");
    hub.commit("one stack");
    hub.apply(&[]).expect_code(0);

    // A recorded commit that is not hex (and not ASCII): reported as is, no panic.
    let mut state = hub.state();
    state["stacks"][hub.project("a")]["applied_commit"] = "ééééé".into();
    std::fs::write(hub.state_file(), serde_json::to_vec(&state).expect("json")).expect("write state");
    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&hub.project("a"), "unchanged", &["unchanged since ééééé"]);
    hub.set_greeting("a", "v2");
    hub.commit("change a");
    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&hub.project("a"), "applied", &["changed in ééééé.."]);

    // A truncated record: a warning naming the file, and the stack applied as never applied.
    let text = std::fs::read(hub.state_file()).expect("state");
    std::fs::write(hub.state_file(), &text[..text.len() / 2]).expect("truncate");
    let calls = hub.compose_calls().len();
    let out = hub.apply(&[]);
    out.expect_code(0)
        .expect_stack(&hub.project("a"), "applied", &["never applied"]);
    assert!(
        out.stderr.contains(&hub.state_file().display().to_string()) && out.stderr.contains("never applied"),
        "{}",
        out.stderr
    );
    assert!(hub.compose_calls().len() > calls);
    // The next run reads the record it wrote.
    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&hub.project("a"), "unchanged", &[]);
}
