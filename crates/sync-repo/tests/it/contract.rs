//! The output contract, exactly: by default one line per changed or failed repo and one summary
//! line for the rest; `-q` only failures and refusals (nothing at all when all went well, so
//! cron mails only on trouble); `-v` every repo. A closed stdout ends the output, not the run.

use std::path::PathBuf;

use driftless_tests::{Origin, TestEnv, fixture};

use crate::Run;

struct Repo {
    origin: Origin,
    checkout: PathBuf,
}

fn repo(env: &TestEnv, name: &str) -> Repo {
    let origin = Origin::new(env, name);
    origin.write("a.txt", "alpha\n");
    origin.commit("base");
    let checkout = origin.checkout(env);
    Repo { origin, checkout }
}

fn short(sha: &str) -> &str {
    &sha[..7]
}

/// Three configured repos: `a-moved` one commit behind, `b-steady` and `c-steady` in sync.
struct Host {
    env: TestEnv,
    config: PathBuf,
    repos: [Repo; 3],
}

impl Host {
    fn new() -> Host {
        let env = crate::env();
        let repos = ["a-moved", "b-steady", "c-steady"].map(|name| repo(&env, name));
        let mut yaml = String::from("repos:\n");
        for (name, r) in ["a-moved", "b-steady", "c-steady"].iter().zip(&repos) {
            yaml.push_str(&format!("  {name}:\n    path: {}\n", r.checkout.display()));
        }
        let config = env.write_config(&yaml);
        Host { env, config, repos }
    }

    fn sync(&self, args: &[&str]) -> Run {
        let mut cmd = self.env.sync_repo();
        cmd.arg("--config").arg(&self.config).arg("--all").args(args);
        Run::of(&mut cmd)
    }

    fn head(&self, i: usize) -> String {
        self.env
            .git(&self.repos[i].checkout, &["rev-parse", "HEAD"])
            .trim()
            .to_owned()
    }

    /// One upstream commit changing one file, a different content each time.
    fn advance(&self, i: usize) -> String {
        let before = self.repos[i].origin.tip();
        self.repos[i].origin.write("a.txt", format!("moved on from {before}\n"));
        self.repos[i].origin.commit("upstream change")
    }
}

#[track_caller]
fn expect(run: &Run, code: i32, stdout: &str) {
    run.expect_code(code);
    assert_eq!(run.stdout, stdout, "stdout\n--- stderr\n{}", run.stderr);
}

#[test]
fn nothing_to_do_is_one_summary_line_silent_under_quiet_every_repo_under_verbose() {
    let host = Host::new();
    let heads: Vec<String> = (0..3).map(|i| host.head(i)).collect();

    expect(&host.sync(&[]), 0, "3 repos in sync\n");
    let quiet = host.sync(&["-q"]);
    expect(&quiet, 0, "");
    assert_eq!(quiet.stderr, "", "nothing at all for cron to mail");
    expect(
        &host.sync(&["-v"]),
        0,
        &format!(
            "a-moved: in sync at {}\nb-steady: in sync at {}\nc-steady: in sync at {}\n",
            short(&heads[0]),
            short(&heads[1]),
            short(&heads[2])
        ),
    );
}

#[test]
fn a_change_is_its_own_line_and_the_rest_one_summary_line() {
    let host = Host::new();
    let before = host.head(0);
    let tip = host.advance(0);

    // Dry runs first: they change nothing, so each mode sees the same change.
    let would = format!(
        "a-moved: would update {}..{} (1 commit, 1 file) [dry run]\n",
        short(&before),
        short(&tip)
    );
    expect(&host.sync(&["-n"]), 0, &format!("{would}2 repos in sync\n"));
    expect(&host.sync(&["-n", "-q"]), 0, "");

    let quiet = host.sync(&["-q"]);
    expect(&quiet, 0, "");
    assert_eq!(quiet.stderr, "", "an update is no trouble: nothing for cron to mail");
    assert_eq!(host.head(0), tip, "-q changes what is printed, not what is done");

    let before = tip;
    let tip = host.advance(0);
    expect(
        &host.sync(&[]),
        0,
        &format!(
            "a-moved: updated {}..{} (1 commit, 1 file)\n2 repos in sync\n",
            short(&before),
            short(&tip)
        ),
    );

    let before = tip;
    let tip = host.advance(0);
    expect(
        &host.sync(&["-v"]),
        0,
        &format!(
            "a-moved: updated {}..{} (1 commit, 1 file)\nb-steady: in sync at {}\nc-steady: in sync at {}\n",
            short(&before),
            short(&tip),
            short(&host.head(1)),
            short(&host.head(2))
        ),
    );
}

#[test]
fn a_refusal_is_printed_in_every_mode() {
    let host = Host::new();
    host.advance(1);
    fixture::write_file(&host.repos[1].checkout, "a.txt", "local edit\n");
    // The refusal's reason as the tool words it (the record changes nothing).
    let record = host.sync(&["--json"]).json_lines().remove(1);
    let reason = record["reason"].as_str().expect("a refusal has a reason").to_owned();
    let refused = format!("b-steady: refused: {reason}\n");
    let (a, c) = (short(&host.head(0)).to_owned(), short(&host.head(2)).to_owned());

    let quiet = host.sync(&["-q"]);
    expect(&quiet, 3, &refused);
    assert!(
        quiet.stderr.contains("git -C"),
        "the commands that resolve it, on stderr:\n{}",
        quiet.stderr
    );
    expect(&host.sync(&[]), 3, &format!("{refused}2 repos in sync\n"));
    expect(
        &host.sync(&["-v"]),
        3,
        &format!("a-moved: in sync at {a}\n{refused}c-steady: in sync at {c}\n"),
    );
}

#[test]
fn a_closed_stdout_ends_the_output_not_the_run() {
    let host = Host::new();
    let tip = host.advance(0);
    let mut cmd = host.env.sync_repo_std();
    cmd.arg("--config").arg(&host.config).args(["--all", "-v"]);
    let run = Run::with_closed_stdout(&mut cmd);
    run.expect_code(0);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(host.head(0), tip, "the run did its work");

    // A refusal keeps its exit code too.
    fixture::write_file(&host.repos[1].checkout, "a.txt", "local edit\n");
    host.advance(1);
    let run = Run::with_closed_stdout(&mut cmd);
    run.expect_code(3);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn under_systemd_each_outcome_reaches_the_journal_once() {
    let host = Host::new();
    host.advance(0);
    // Under systemd stdout and stderr both go to the journal, and logs are at info.
    let mut cmd = host.env.sync_repo();
    cmd.env("JOURNAL_STREAM", "8:4242")
        .arg("--config")
        .arg(&host.config)
        .arg("--all");
    let run = Run::of(&mut cmd);
    run.expect_code(0);
    let journal = format!("{}{}", run.stdout, run.stderr);
    assert_eq!(journal.matches("a-moved: updated").count(), 1, "{journal}");
    assert_eq!(journal.matches("in sync").count(), 1, "{journal}");
}
