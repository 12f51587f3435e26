//! The docs' commands against the tools: every block marked `sh runnable` in docs/rollout.md
//! and then docs/runbook.md runs, line by line and in order, in the throwaway systemd container
//! with the .deb installed, so a command the tools or systemd 252 reject (a removed flag, a
//! `systemctl` verb that takes no pattern) fails this test instead of an admin. A `sed -i`
//! switch of the cron file given twice in a row must change nothing the second time.

use std::path::Path;

use super::system::SystemManager;

/// The runnable blocks of a markdown file: the lines between "```sh runnable" and "```".
fn runnable_blocks(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh runnable") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), line) => block.push(line.to_owned()),
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "{}: a runnable block is not closed", path.display());
    blocks
}

/// The command of a docs line (its trailing `# ...` comment dropped), with NAME as `lab`.
fn command(line: &str) -> Option<String> {
    let code = match line.find("  #") {
        Some(at) => &line[..at],
        None => line,
    };
    let code = code.trim();
    (!code.is_empty() && !code.starts_with('#')).then(|| code.replace("NAME", "lab"))
}

/// Run one docs command as an admin's root shell would; exit 0 required (`systemctl status`
/// exits 3 for an inactive unit by design: a oneshot service that finished).
fn run(sd: &SystemManager, file: &str, cmd: &str) {
    let out = sd.run(
        "env",
        &[
            "-i",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME=/root",
            "R=/srv/lab",
            "SYSTEMD_PAGER=",
            "bash",
            "-o",
            "pipefail",
            "-c",
            cmd,
        ],
    );
    let code = out.status.code();
    let allowed = if cmd.starts_with("systemctl status") {
        matches!(code, Some(0 | 3))
    } else {
        code == Some(0)
    };
    assert!(
        allowed,
        "{file}: `{cmd}` exited {code:?}\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // What an enable --now or disable --now promises, checked on the units it names (after
    // `--now`, or quoted patterns anywhere on the line, as in a `list-units ... | xargs` pipe).
    for verb in ["enable", "disable"] {
        let Some((_, after)) = cmd.split_once(&format!("systemctl {verb} --now")) else {
            continue;
        };
        let mut units: Vec<&str> = after
            .split_whitespace()
            .take_while(|w| !w.starts_with(['|', ';', '#']) && !w.contains('$'))
            .collect();
        units.extend(cmd.split('\'').skip(1).step_by(2).filter(|q| q.contains('@')));
        // A loop over `$name` names no unit this check can see; its units are checked later.
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
    let names = ["observability-hub", "lab", "edge"];
    let repos = super::Repos::new(&srv, &names);
    for name in names {
        super::git(&srv.join(name), &["remote", "set-url", "origin", "/srv/origin.git"]);
    }
    std::fs::create_dir_all(srv.join("backup/lab")).expect("mkdir backup");
    let config = "repos:\n  observability-hub:\n    path: /srv/observability-hub\n  lab:\n    path: /srv/lab\n    mirror:\n      to: /srv/backup/lab\n  edge:\n    path: /srv/edge\n";

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
    for block in &rollout {
        for cmd in block.iter().filter_map(|l| command(l)) {
            run(&sd, "rollout.md", &cmd);
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
    for block in &runbook {
        for cmd in block.iter().filter_map(|l| command(l)) {
            run(&sd, "runbook.md", &cmd);
            ran += 1;
        }
    }
    eprintln!("ran {ran} commands from the docs");
}
