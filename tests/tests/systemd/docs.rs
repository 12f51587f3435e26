//! The docs' commands against the tools: every block marked `sh runnable` in docs/rollout.md
//! and then docs/runbook.md runs, line by line and in order, in the throwaway systemd container
//! with the .deb installed, so a command the tools or systemd 252 reject (a removed flag, a
//! `systemctl` verb that takes no pattern) fails this test instead of an admin. A `sed -i`
//! switch of the cron file given twice in a row must change nothing the second time. Then every
//! example in each installed tool's `--help` (its command lines, `systemctl` lines and the
//! command of its cron line) runs the same way, except the few that need a docker engine.

use std::path::Path;

use super::system::SystemManager;

/// A runnable block: its scenario (`sh runnable scenario=NAME`: a runbook recovery, run against
/// a checkout in that state) and its lines.
type Block = (Option<String>, Vec<String>);

/// The runnable blocks of a markdown file: the lines between "```sh runnable" and "```".
fn runnable_blocks(path: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for line in text.lines() {
        let line = line.trim_end();
        match &mut current {
            None => {
                if let Some(rest) = line.strip_prefix("```sh runnable") {
                    let scenario = rest.trim().strip_prefix("scenario=").map(str::to_owned);
                    assert!(
                        rest.is_empty() || scenario.is_some(),
                        "{}: unknown marker {line:?}",
                        path.display()
                    );
                    current = Some((scenario, Vec::new()));
                }
            }
            Some(_) if line == "```" => blocks.extend(current.take()),
            Some((_, lines)) => lines.push(line.to_owned()),
        }
    }
    assert!(current.is_none(), "{}: a runnable block is not closed", path.display());
    blocks
}

/// The file the `untracked` scenario leaves in the update's way (the runbook's `path/to/file`).
const UNTRACKED_FILE: &str = "generated.conf";

/// The command of a docs line (its trailing `# ...` comment dropped), with NAME as `lab`.
fn command(line: &str) -> Option<String> {
    let code = match line.find("  #") {
        Some(at) => &line[..at],
        None => line,
    };
    let code = code.trim();
    (!code.is_empty() && !code.starts_with('#'))
        .then(|| code.replace("NAME", "lab").replace("path/to/file", UNTRACKED_FILE))
}

/// Run one docs command as an admin's root shell would; exit 0 required (`systemctl status`
/// exits 3 for an inactive unit by design: a oneshot service that finished; `diff` 1 when the
/// files differ, which is what it is run to show). `cmd` may start with the assignments of
/// earlier lines of its block (`P=$(...)`).
fn run(sd: &SystemManager, file: &str, cmd: &str, checkout: &str) {
    let out = admin_shell(
        sd,
        &[
            &format!("R={checkout}"),
            "GIT_AUTHOR_NAME=admin",
            "GIT_AUTHOR_EMAIL=admin@host",
            "GIT_COMMITTER_NAME=admin",
            "GIT_COMMITTER_EMAIL=admin@host",
        ],
        cmd,
    );
    let code = out.status.code();
    let last = cmd.lines().last().unwrap_or_default();
    let allowed = if last.starts_with("systemctl status") {
        matches!(code, Some(0 | 3))
    } else if last.starts_with("diff ") {
        matches!(code, Some(0 | 1))
    } else {
        code == Some(0)
    };
    assert!(
        allowed,
        "{file}: `{cmd}` exited {code:?}\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    promised_state(sd, file, cmd);
}

/// `script` in bash, as an admin's root shell in the container runs it: a clean environment
/// (root's PATH and HOME, no pager) plus `env` (`NAME=value`), and a pipeline fails when any
/// command of it fails.
fn admin_shell(sd: &SystemManager, env: &[&str], script: &str) -> std::process::Output {
    let mut args = vec![
        "-i",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME=/root",
        "SYSTEMD_PAGER=",
    ];
    args.extend_from_slice(env);
    args.extend(["bash", "-o", "pipefail", "-c", script]);
    sd.run("env", &args)
}

/// What an enable --now or disable --now promises, checked on the units it names (after
/// `--now`, or quoted patterns anywhere on the line, as in a `list-units ... | xargs` pipe); a
/// one-line `for VAR in LIST; do BODY; done` is checked as BODY for each item.
fn promised_state(sd: &SystemManager, file: &str, cmd: &str) {
    if let Some(rest) = cmd.strip_prefix("for ")
        && let Some((var, rest)) = rest.split_once(" in ")
        && let Some((items, rest)) = rest.split_once("; do ")
        && let Some(body) = rest.strip_suffix("; done")
    {
        for item in items.split_whitespace() {
            promised_state(sd, file, &body.replace(&format!("${var}"), item));
        }
        return;
    }
    for verb in ["enable", "disable"] {
        let Some((_, after)) = cmd.split_once(&format!("systemctl {verb} --now")) else {
            continue;
        };
        let mut units: Vec<&str> = after
            .split_whitespace()
            .take_while(|w| !w.starts_with(['|', ';', '#']) && !w.contains('$'))
            .collect();
        units.extend(cmd.split('\'').skip(1).step_by(2).filter(|q| q.contains('@')));
        assert!(!units.is_empty(), "{file}: `{cmd}`: which units?");
        for unit in units {
            let active = sd.systemctl(&["list-units", "--plain", "--no-legend", "--state=active", unit]);
            let active = String::from_utf8_lossy(&active.stdout).trim().to_owned();
            if verb == "enable" {
                assert!(!active.is_empty(), "{file}: `{cmd}` left {unit} inactive");
            } else {
                assert!(active.is_empty(), "{file}: `{cmd}` left active: {active}");
            }
        }
    }
}

#[test]
fn runnable_blocks_of_the_docs_run_on_the_installed_package() {
    let Some(()) = super::require_service(super::system::missing_prerequisite().map_or(Ok(()), Err)) else {
        return;
    };
    let docs = super::workspace_root().join("docs");
    let rollout = runnable_blocks(&docs.join("rollout.md"));
    let runbook = runnable_blocks(&docs.join("runbook.md"));
    assert!(!rollout.is_empty() && !runbook.is_empty(), "no runnable blocks found");

    let dir = super::temp_dir("driftless-docs.");
    let root = dir.path().canonicalize().expect("canonical temp dir");
    let deb = super::package::build_from_test_binaries(&root.join("pkg"));
    // The repos the docs name (rollout's phase 2 loop), under /srv as the units expect.
    let srv = root.join("srv");
    let names = ["observability-hub", "lab", "edge", "hub"];
    let repos = super::Repos::new(&srv, &names);
    for name in names {
        super::git(&srv.join(name), &["remote", "set-url", "origin", "/srv/origin.git"]);
    }
    std::fs::create_dir_all(srv.join("backup/lab")).expect("mkdir backup");
    let config = "repos:\n  observability-hub:\n    path: /srv/observability-hub\n  lab:\n    path: /srv/lab\n    mirror:\n      to: /srv/backup/lab\n  edge:\n    path: /srv/edge\n  hub:\n    path: /srv/hub\n";

    let script = super::workspace_root().join("tests/support/systemd-system-container.sh");
    let Some(sd) = super::require_service(SystemManager::start(
        &script,
        &root.join("container"),
        &[(&srv, "/srv")],
    )) else {
        return;
    };
    std::fs::copy(&deb, sd.path("/root/driftless.deb")).expect("copy the package in");
    let installed = sd.run("dpkg", &["-i", "/root/driftless.deb"]);
    assert!(
        installed.status.success(),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );
    std::fs::write(sd.path("/etc/driftless/driftless.yaml"), config).expect("write the config");
    let tip = repos.push("README.md", "hub, second edition\n");

    let mut ran = 0;
    // A `sed -i` switch given twice in a row must change nothing the second time.
    let mut last_edit: Option<(String, String)> = None;
    for (_, block) in rollout.iter().filter(|(scenario, _)| scenario.is_none()) {
        for cmd in block.iter().filter_map(|l| command(l)) {
            run(&sd, "rollout.md", &cmd, "/srv/lab");
            ran += 1;
            if cmd.starts_with("sed -i") {
                let file = cmd.split_whitespace().last().expect("sed names a file");
                let after = std::fs::read_to_string(sd.path(file)).expect("read the edited file");
                if let Some((previous, before)) = &last_edit
                    && *previous == cmd
                {
                    assert_eq!(&after, before, "`{cmd}` run twice changed {file} again");
                }
                last_edit = Some((cmd.clone(), after));
            }
        }
    }
    assert_eq!(repos.head("lab"), tip, "the rollout's manual start synced lab");
    // The runbook's stale-mirror section reads the last mirror run: there has been one.
    let mirror = sd.systemctl(&["start", "mirror-copy@lab.service"]);
    assert!(mirror.status.success(), "{}", sd.journal("mirror-copy@lab.service"));
    for (_, block) in runbook.iter().filter(|(scenario, _)| scenario.is_none()) {
        for cmd in block.iter().filter_map(|l| command(l)) {
            run(&sd, "runbook.md", &cmd, "/srv/lab");
            ran += 1;
        }
    }

    // Each recovery: a checkout in the state the section is about, which sync-repo refuses
    // (exit 3); the section's commands, in order; then the sync goes through, as the runbook
    // promises ("Afterwards `sync-repo $R` ... should print `updated` or `in sync`").
    for (scenario, block) in runbook.iter().filter_map(|(s, b)| s.as_ref().map(|s| (s, b))) {
        let checkout = recovery_scenario(&srv, scenario);
        let sync = |when: &str| {
            let out = sd.run("sync-repo", &[&checkout]);
            (
                out.status.code(),
                format!("{scenario}, {when}: {}", String::from_utf8_lossy(&out.stderr)),
            )
        };
        if scenario == "after-force" {
            let forced = sd.run("sync-repo", &["--force", &checkout]);
            assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
        }
        let (code, why) = sync("before the recovery");
        assert_eq!(code, Some(if scenario == "after-force" { 0 } else { 3 }), "{why}");
        // A line like `P=$(...)` names something later lines of the block use.
        let mut assignments = String::new();
        for cmd in block.iter().filter_map(|l| command(l)) {
            let script = format!("{assignments}{cmd}");
            run(&sd, &format!("runbook.md ({scenario})"), &script, &checkout);
            ran += 1;
            let is_assignment = cmd.split_once('=').is_some_and(|(name, _)| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            if is_assignment {
                assignments.push_str(&cmd);
                assignments.push('\n');
            }
        }
        let (code, why) = sync("after the recovery");
        assert_eq!(code, Some(0), "{why}");
    }
    ran += help_examples_run(&sd);
    eprintln!("ran {ran} commands from the docs and --help");
}

/// Examples of `--help` that need a docker engine, which the container has not: they cannot run
/// here (apply-compose's own tests run them against a private dockerd).
const NEEDS_AN_ENGINE: [&str; 5] = [
    "apply-compose observability-hub",
    "apply-compose /srv/lab",
    "apply-compose hub --dry-run",
    "apply-compose hub --stack grafana --force",
    "apply-compose hub --pull",
];

/// The commands of a tool's `--help`: its example lines (two spaces, then the command, then
/// two or more spaces before the description), the `systemctl`/`journalctl` lines, and the
/// command of a cron line (after its user field) or of an "Under systemd:" line.
fn help_examples(help: &str) -> Vec<String> {
    const STARTS: [&str; 10] = [
        "sync-repo ",
        "apply-compose ",
        "mirror-copy ",
        "drift-check",
        "driftless-notify ",
        "driftless-hook ",
        "systemctl ",
        "journalctl ",
        "touch ",
        "install ",
    ];
    let mut commands = Vec::new();
    for line in help.lines() {
        let line = match line.split_once(" root ") {
            // A cron line: `MIN * * * * root COMMAND`, maybe after a label.
            Some((schedule, command)) if schedule.split_whitespace().rev().take(4).all(|f| f == "*") => command,
            _ => line
                .strip_prefix("Under systemd: ")
                .or_else(|| line.strip_prefix("  "))
                .unwrap_or_default(),
        };
        if line.starts_with(' ') || !STARTS.iter().any(|start| line.starts_with(start)) {
            continue;
        }
        let command = match line.find("  ") {
            Some(at) => &line[..at],
            None => line,
        };
        commands.push(command.trim().to_owned());
    }
    commands
}

/// Run every `--help` example of the installed tools; returns how many ran. Exit 0 is required,
/// but for drift-check, whose 1 (drift found) is a finding, not a failure of the command.
fn help_examples_run(sd: &SystemManager) -> usize {
    // What the examples take for granted on a host: a backup disk mounted, a stack directory
    // to hold, the textfile collector's dir, and the rclone remote named `gdrive` (here a local
    // one, configured through rclone's environment).
    for dir in [
        "/mnt/backup/lab",
        "/srv/hub/stacks/loki",
        "/var/lib/prometheus/node-exporter",
    ] {
        std::fs::create_dir_all(sd.path(dir)).expect("mkdir for the examples");
    }
    let mut ran = 0;
    for tool in super::TOOLS {
        let help = sd.run(tool, &["--help"]);
        assert!(help.status.success(), "{tool} --help");
        let examples = help_examples(&String::from_utf8_lossy(&help.stdout));
        assert!(!examples.is_empty(), "{tool} --help: no example found");
        for example in examples {
            if NEEDS_AN_ENGINE.contains(&example.as_str()) {
                continue;
            }
            let cmd = if example.ends_with(" .") {
                format!("cd /srv/observability-hub && {example}")
            } else {
                example.clone()
            };
            let out = admin_shell(sd, &["RCLONE_CONFIG_GDRIVE_TYPE=local"], &cmd);
            let code = out.status.code();
            let allowed = code == Some(0) || (example.starts_with("drift-check") && code == Some(1));
            assert!(
                allowed,
                "{tool} --help: `{cmd}` exited {code:?}\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    ran
}

#[test]
fn help_examples_are_found_with_their_descriptions_cut() {
    let help = "Examples:\n  sync-repo /srv/x        sync a checkout\n  apply-compose --validate .  check\n  pre-commit)\n                            wrapped description\n\nUnder systemd (one run per tick):\n  systemctl start sync-repo@x.service     # run now\n\nFrom cron:\n  */5 * * * * root sync-repo --all --quiet\nFrom cron:     0 * * * * root mirror-copy --all --quiet --if-older-than 24h\nUnder systemd: systemctl enable --now mirror-copy@lab.timer\n";
    assert_eq!(
        help_examples(help),
        [
            "sync-repo /srv/x",
            "apply-compose --validate .",
            "systemctl start sync-repo@x.service",
            "sync-repo --all --quiet",
            "mirror-copy --all --quiet --if-older-than 24h",
            "systemctl enable --now mirror-copy@lab.timer",
        ]
    );
}

/// Put a fresh checkout under `srv` into the state runbook section `scenario` resolves, with
/// its own origin (the recoveries push and force-push); returns its path in the container.
fn recovery_scenario(srv: &Path, scenario: &str) -> String {
    let base = srv.join(scenario);
    let repos = super::Repos::new(&base, &["work"]);
    let work = base.join("work");
    let inside = format!("/srv/{scenario}");
    super::git(&work, &["remote", "set-url", "origin", &format!("{inside}/origin.git")]);
    super::git(
        &repos.seed,
        &["remote", "set-url", "origin", &format!("{}/origin.git", base.display())],
    );
    let commit_here = |file: &str| {
        super::write(&work.join(file), "made on the host\n");
        super::git(&work, &["add", "."]);
        super::git(&work, &["commit", "-qm", &format!("local {file}")]);
    };
    match scenario {
        "ahead" => commit_here("hotfix.txt"),
        "diverged" => {
            commit_here("hotfix.txt");
            repos.push("README.md", "remote edit\n");
        }
        "force-pushed" => {
            repos.push("README.md", "to be rewritten\n");
            super::git(
                &work,
                &["pull", "-q", &format!("{}/origin.git", base.display()), "main"],
            );
            super::git(
                &work,
                &[
                    "fetch",
                    "-q",
                    &format!("{}/origin.git", base.display()),
                    "main:refs/remotes/origin/main",
                ],
            );
            super::git(&repos.seed, &["reset", "-q", "--hard", "HEAD~1"]);
            super::write(&repos.seed.join("NEW.md"), "rewritten\n");
            super::git(&repos.seed, &["add", "."]);
            super::git(&repos.seed, &["commit", "-qm", "rewritten history"]);
            super::git(&repos.seed, &["push", "-q", "--force", "origin", "main"]);
        }
        "detached" => {
            super::git(&work, &["checkout", "-q", "--detach"]);
            repos.push("README.md", "remote edit\n");
        }
        "merge" => {
            super::git(&work, &["checkout", "-q", "-b", "side"]);
            commit_here("side.txt");
            super::git(&work, &["checkout", "-q", "main"]);
            super::git(&work, &["merge", "--no-commit", "--no-ff", "side"]);
            repos.push("README.md", "remote edit\n");
        }
        "index-lock" => {
            super::write(&work.join(".git/index.lock"), "");
            repos.push("README.md", "remote edit\n");
        }
        "untracked" => {
            super::write(&work.join(UNTRACKED_FILE), "made on the host\n");
            repos.push(UNTRACKED_FILE, "committed upstream\n");
        }
        "after-force" => {
            commit_here("hotfix.txt");
            super::write(&work.join("README.md"), "edited on the host\n");
            repos.push("README.md", "remote edit\n");
        }
        other => panic!("runbook.md: no scenario {other:?} in this test"),
    }
    format!("{inside}/work")
}
