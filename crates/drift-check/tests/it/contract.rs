//! The output contract: the table is drift-check's one line per item. By default it lists what
//! drifted (or one `no drift` line); `-q` prints nothing on a clean host, so cron mails only on
//! drift; `-v` lists every item, as `--all-items` does. A closed stdout ends the output, not the run.

use crate::{DRIFT, Host, NO_DRIFT, Run};

#[test]
fn a_clean_host_is_one_line_silent_under_quiet_every_item_under_verbose() {
    let host = Host::new("");
    let default = host.check(&[]);
    default.expect_code(NO_DRIFT);
    let checks = default.stdout.clone();
    assert!(checks.starts_with("no drift ("), "{checks}");

    let quiet = host.check(&["-q"]);
    quiet.expect_code(NO_DRIFT);
    assert_eq!(quiet.stdout, "", "nothing for cron to mail");
    assert_eq!(quiet.stderr, "");

    let all = host.check(&["--all-items"]);
    let verbose = host.check(&["-v"]);
    verbose.expect_code(NO_DRIFT);
    assert!(all.stdout.starts_with("REPO "), "{}", all.stdout);
    assert_eq!(verbose.stdout, all.stdout, "-v lists every item");
}

#[test]
fn drift_is_printed_in_every_mode() {
    let host = Host::new("");
    driftless_tests::fixture::write_file(&host.checkout, "a.txt", "edited on the host\n");
    let default = host.check(&[]);
    default.expect_code(DRIFT);
    assert!(default.stdout.contains("DRIFT"), "{}", default.stdout);
    assert!(
        !default.stdout.contains("  ok  "),
        "by default only what drifted:\n{}",
        default.stdout
    );

    let quiet = host.check(&["-q"]);
    quiet.expect_code(DRIFT);
    assert_eq!(quiet.stdout, default.stdout, "-q still prints the drift");

    let verbose = host.check(&["-v"]);
    verbose.expect_code(DRIFT);
    assert_eq!(verbose.stdout, host.check(&["--all-items"]).stdout);
    assert!(verbose.stdout.contains("  ok  "), "{}", verbose.stdout);
}

#[test]
fn a_closed_stdout_ends_the_output_not_the_run() {
    let host = Host::new("");
    driftless_tests::fixture::write_file(&host.checkout, "a.txt", "edited on the host\n");
    let mut cmd = host.env.std_cmd("drift-check");
    cmd.env("DRIFTLESS_CONFIG", &host.config).arg("--all-items");
    let run = Run::with_closed_stdout(&mut cmd);
    run.expect_code(DRIFT);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    // One textfile per repo (`driftless-<repo>.prom`).
    let written = std::fs::read_dir(&host.metrics)
        .expect("read the metrics dir")
        .flatten()
        .any(|e| {
            e.file_name().to_string_lossy().starts_with("driftless-")
                && e.file_name().to_string_lossy().ends_with(".prom")
        });
    assert!(written, "the run did its work");
}
