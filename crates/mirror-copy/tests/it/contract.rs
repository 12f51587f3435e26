//! The output contract, exactly: by default one line per mirror that changed or failed and one
//! summary line for the rest; `-q` only failures and refusals (nothing when all went well, so
//! cron mails only on trouble); `-v` every mirror. A closed stdout ends the output, not the run.

use crate::{Run, World};

/// `text` with each run's duration (`in 12 ms`) written as `in N ms`.
fn timeless(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(" in ") {
        let (head, tail) = rest.split_at(at + 4);
        out.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && tail[digits..].starts_with(" ms") {
            out.push('N');
            rest = &tail[digits..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// How the summary names this world's mirror: `<source> -> <destination>`.
fn prefix(w: &World) -> String {
    let record = w.mirror(&["--json", "--dry-run"]).json();
    format!(
        "{} -> {}",
        record["repo"].as_str().expect("repo"),
        record["destination"].as_str().expect("destination")
    )
}

#[track_caller]
fn expect(run: &Run, code: i32, stdout: &str) {
    run.expect_code(code);
    assert_eq!(timeless(&run.stdout), stdout, "stdout\n--- stderr\n{}", run.stderr);
}

#[test]
fn quiet_prints_nothing_on_success_default_and_verbose_print_the_mirror() {
    let w = World::new();
    let to = prefix(&w);

    // A copy is no trouble: nothing for cron to mail.
    let quiet = w.mirror(&["-q"]);
    expect(&quiet, 0, "");
    assert_eq!(quiet.stderr, "");
    assert!(w.dest.join("README.md").is_file(), "-q copies all the same");

    // Nothing to do: the one mirror's own line is the summary.
    let same = format!("{to}: 0 copied (0 B), 1 unchanged, 0 deleted in N ms\n");
    expect(&w.mirror(&[]), 0, &same);
    expect(&w.mirror(&["-v"]), 0, &same);
    expect(&w.mirror(&["-q"]), 0, "");

    // A change is its own line.
    w.write("a.txt", "alpha\n");
    expect(
        &w.mirror(&[]),
        0,
        &format!("{to}: 1 copied (6 B), 1 unchanged, 0 deleted in N ms\n"),
    );
}

#[test]
fn a_refusal_is_printed_in_every_mode() {
    let w = World::new();
    for i in 0..5 {
        w.write(&format!("old/{i}.txt"), format!("old {i}\n"));
    }
    w.mirror(&[]).expect_code(0);
    w.remove("old");
    let to = prefix(&w);
    let guard = ["--delete", "--max-delete", "2"];
    let record = w.mirror(&[&guard[..], &["--json"]].concat()).json();
    let reason = record["reason"].as_str().expect("a refusal has a reason");
    let refused = format!("{to}: refused: {reason}\n");

    for mode in [&["-q"][..], &[], &["-v"]] {
        expect(&w.mirror(&[&guard[..], mode].concat()), 3, &refused);
    }
    assert!(w.dest.join("old/0.txt").is_file(), "the refused runs deleted nothing");
}

#[test]
fn a_closed_stdout_ends_the_output_not_the_run() {
    let w = World::new();
    let mut cmd = w.env.std_cmd("mirror-copy");
    cmd.arg("--state-dir")
        .arg(w.env.state_dir())
        .arg(&w.src)
        .arg("--to")
        .arg(&w.dest)
        .arg("-v");
    let run = Run::with_closed_stdout(&mut cmd);
    run.expect_code(0);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(w.dest.join("README.md").is_file(), "the run did its work");
}

#[test]
fn under_systemd_each_outcome_reaches_the_journal_once() {
    let w = World::new();
    let mut cmd = w.cmd();
    cmd.env("JOURNAL_STREAM", "8:4242").arg(&w.src).arg("--to").arg(&w.dest);
    let run = Run::of(&mut cmd);
    run.expect_code(0);
    let journal = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(journal.matches(" copied (").count(), 1, "{journal}");
}
