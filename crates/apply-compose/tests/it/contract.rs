//! The output contract, exactly: by default one line per stack that changed or failed and one
//! summary line for the rest; `-q` only failures and refusals (nothing when all went well, so
//! cron mails only on trouble); `-v` every stack, each saying once what happened. A closed
//! stdout ends the output, not the run. Compose is the recording fake: the output is under test.

use crate::{Hub, Outcome};

/// A hub with stacks a, b and c, committed and applied once (under `-q`, which prints nothing).
fn applied_hub(name: &str) -> Hub {
    let mut hub = Hub::new(name, None);
    hub.use_fake_compose();
    for short in ["a", "b", "c"] {
        hub.add_stack(short, "v1");
    }
    hub.commit("three stacks");
    let quiet = hub.apply_text(&["-q"]);
    expect(&quiet, 0, "");
    assert_eq!(quiet.stderr, "", "nothing at all for cron to mail");
    assert_eq!(ups(&hub), 3, "-q applies all the same");
    hub
}

#[track_caller]
fn expect(run: &Outcome, code: i32, stdout: &str) {
    run.expect_code(code);
    assert_eq!(run.stdout, stdout, "stdout\n--- stderr\n{}", run.stderr);
}

/// How many `compose ... up` calls were made so far (the engine check `ls` is not one).
fn ups(hub: &Hub) -> usize {
    hub.compose_calls().iter().filter(|c| c.contains(" up ")).count()
}

fn short_head(hub: &Hub) -> String {
    hub.env
        .git(&hub.checkout, &["rev-parse", "--short=7", "HEAD"])
        .trim()
        .to_owned()
}

#[test]
fn nothing_to_do_is_one_summary_line_and_unchanged_is_said_once() {
    let hub = applied_hub("idle");
    let sha = short_head(&hub);
    expect(&hub.apply_text(&[]), 0, "3 stacks unchanged\n");
    expect(&hub.apply_text(&["-q"]), 0, "");
    expect(
        &hub.apply_text(&["-v"]),
        0,
        &format!(
            "idle/idle-a: unchanged since {sha}\nidle/idle-b: unchanged since {sha}\nidle/idle-c: unchanged since {sha}\n"
        ),
    );
}

#[test]
fn a_change_is_its_own_line_and_the_rest_one_summary_line() {
    let hub = applied_hub("moved");
    hub.set_greeting("b", "v2");
    hub.commit("b moves on");
    let preview = hub.apply(&["--dry-run"]);
    let reasons = preview.reasons("moved-b").join("; ");
    assert!(!reasons.is_empty(), "{}", preview.stdout);

    expect(
        &hub.apply_text(&["--dry-run"]),
        0,
        &format!("moved/moved-b: would apply: {reasons}\n2 stacks unchanged\n"),
    );
    expect(&hub.apply_text(&["--dry-run", "-q"]), 0, "");
    expect(
        &hub.apply_text(&[]),
        0,
        &format!("moved/moved-b: applied: {reasons}\n2 stacks unchanged\n"),
    );
    assert_eq!(ups(&hub), 4, "the one change was applied");
}

#[test]
fn a_refusal_is_printed_in_every_mode() {
    let hub = applied_hub("dirty");
    let sha = short_head(&hub);
    hub.set_greeting("a", "edited by hand");
    let reasons = hub.apply(&[]).expect_code(3).reasons("dirty-a").join("; ");
    let refused = format!("dirty/dirty-a: refused: {reasons}\n");

    expect(&hub.apply_text(&["-q"]), 3, &refused);
    expect(&hub.apply_text(&[]), 3, &format!("{refused}2 stacks unchanged\n"));
    expect(
        &hub.apply_text(&["-v"]),
        3,
        &format!("{refused}dirty/dirty-b: unchanged since {sha}\ndirty/dirty-c: unchanged since {sha}\n"),
    );
    assert_eq!(ups(&hub), 3, "nothing was applied");
}

#[test]
fn a_closed_stdout_ends_the_output_not_the_run() {
    let mut hub = Hub::new("closed", None);
    hub.use_fake_compose();
    hub.add_stack("a", "v1");
    hub.commit("one stack");
    let mut cmd = hub.env.std_cmd("apply-compose");
    cmd.arg("--config")
        .arg(hub.env.path("driftless.yaml"))
        .arg("--state-dir")
        .arg(hub.env.state_dir())
        .arg("--compose-command")
        .arg(hub.env.path("compose-wrapper.sh"))
        .args([hub.name.as_str(), "-v"]);
    let run = driftless_tests::Run::with_closed_stdout(&mut cmd);
    run.expect_code(0);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(ups(&hub), 1, "the run did its work");
}

#[test]
fn under_systemd_each_outcome_reaches_the_journal_once() {
    let mut hub = Hub::new("journal", None);
    hub.use_fake_compose();
    hub.add_stack("a", "v1");
    hub.commit("one stack");
    let mut cmd = hub.cmd();
    cmd.env("JOURNAL_STREAM", "8:4242").arg(&hub.name);
    let run = crate::run(cmd);
    run.expect_code(0);
    let journal = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(journal.matches("journal/journal-a: applied").count(), 1, "{journal}");
}
