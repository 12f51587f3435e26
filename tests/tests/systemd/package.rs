//! The Debian package on a real system manager: `cargo xtask deb` packs the binaries this test
//! already has (`--bin-dir`, no release build), `dpkg -i` installs it in the throwaway system
//! container, and `dpkg -r` / `apt-get purge` take it away again with no unit left enabled, no
//! file of the package left, and the state kept on remove and gone on purge (Debian policy).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use driftless_tests::bin_path;

use super::system::SystemManager;

/// Where Debian looks for each kind of file the package must ship, per tool.
fn shipped_paths(tool: &str) -> [String; 5] {
    [
        format!("/usr/bin/{tool}"),
        format!("/usr/share/man/man1/{tool}.1"),
        format!("/usr/share/bash-completion/completions/{tool}"),
        format!("/usr/share/zsh/site-functions/_{tool}"),
        format!("/usr/share/fish/vendor_completions.d/{tool}.fish"),
    ]
}

/// Build the package from the binaries next to this test's and return its path (in `out`).
pub fn build_from_test_binaries(out: &Path) -> PathBuf {
    let bins = bin_path("sync-repo").parent().expect("bin dir").to_path_buf();
    let xtask = bin_path("xtask");
    let built = Command::new(&xtask)
        .arg("deb")
        .arg("--bin-dir")
        .arg(&bins)
        .arg("--out-dir")
        .arg(out)
        .output()
        .expect("run xtask deb");
    assert!(
        built.status.success(),
        "{} deb failed:\n{}{}",
        xtask.display(),
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
    let debs: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("read the package dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "one package in {}: {debs:?}", out.display());
    debs.into_iter().next().expect("one package")
}

/// A command inside the container that must succeed; returns its stdout.
#[track_caller]
fn ok(sd: &SystemManager, program: &str, args: &[&str]) -> String {
    let out = sd.run(program, args);
    assert!(out.status.success(), "{program} {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Everything below `dir` (the container's /etc/systemd/system), symlinks with their targets:
/// what enabling a unit adds and disabling must take away.
fn entries(dir: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(here) = stack.pop() {
        for entry in std::fs::read_dir(&here).expect("read unit dir").flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(dir).expect("below dir").display().to_string();
            match std::fs::read_link(&path) {
                Ok(target) => {
                    found.insert(format!("{rel} -> {}", target.display()));
                }
                Err(_) if path.is_dir() => {
                    found.insert(format!("{rel}/"));
                    stack.push(path);
                }
                Err(_) => {
                    found.insert(rel);
                }
            }
        }
    }
    found
}

/// The package's files and the folders only it uses, as `dpkg -L` lists them.
fn package_files(sd: &SystemManager) -> Vec<String> {
    ok(sd, "dpkg", &["-L", "driftless"])
        .lines()
        .map(str::to_owned)
        .filter(|p| {
            let path = sd.path(p);
            // Shared folders (/usr/bin, /etc/cron.d) stay; files, and folders named for driftless, go.
            !path.is_dir() || p.contains("driftless")
        })
        .collect()
}

/// Enable the jobs an admin enables in phases 1-3 for repo `lab`, and run one sync so there is
/// state to keep (or purge).
fn enable_and_run(sd: &SystemManager, config: &str) {
    std::fs::write(sd.path("/etc/driftless/driftless.yaml"), config).expect("write the config");
    ok(sd, "systemctl", &["enable", "--now", "sync-repo@lab.timer"]);
    ok(
        sd,
        "systemctl",
        &[
            "enable",
            "mirror-copy@lab.timer",
            "drift-check@lab.timer",
            "apply-compose-pull@lab.timer",
            "apply-compose@lab.service",
        ],
    );
    assert_eq!(
        ok(sd, "systemctl", &["is-enabled", "sync-repo@lab.timer"]).trim(),
        "enabled"
    );
    assert_eq!(
        ok(sd, "systemctl", &["is-active", "sync-repo@lab.timer"]).trim(),
        "active"
    );
    let sync = sd.systemctl(&["start", "sync-repo@lab.service"]);
    assert!(
        sync.status.success(),
        "{}\n{}",
        text(&sync),
        sd.journal("sync-repo@lab.service")
    );
    assert!(
        sd.path("/var/lib/driftless/repos/lab/sync-repo.json").is_file(),
        "the sync left no state"
    );
}

/// No unit of the package enabled or running: /etc/systemd/system is as it was before install.
#[track_caller]
fn nothing_enabled(sd: &SystemManager, before: &BTreeSet<String>, when: &str) {
    let now = entries(&sd.unit_dir());
    let left: Vec<&String> = now.difference(before).collect();
    assert!(left.is_empty(), "{when}: left in /etc/systemd/system: {left:?}");
    let loaded = ok(
        sd,
        "systemctl",
        &[
            "list-units",
            "--plain",
            "--no-legend",
            "--state=active",
            "sync-repo@*",
            "mirror-copy@*",
            "drift-check@*",
            "apply-compose@*",
            "apply-compose-pull@*",
        ],
    );
    assert_eq!(loaded.trim(), "", "{when}: units still active");
}

#[test]
fn package_installs_removes_and_purges_cleanly_on_a_real_system_manager() {
    let Some(()) = super::require_service(super::system::missing_prerequisite().map_or(Ok(()), Err)) else {
        return;
    };
    let dir = super::temp_dir("driftless-package.");
    let root = dir.path().canonicalize().expect("canonical temp dir");
    let deb = build_from_test_binaries(&root.join("pkg"));
    let srv = root.join("srv");
    let repos = super::Repos::new(&srv, &["lab"]);
    super::git(&srv.join("lab"), &["remote", "set-url", "origin", "/srv/origin.git"]);
    std::fs::create_dir_all(srv.join("backup/lab")).expect("mkdir backup");
    let config = "repos:\n  lab:\n    path: /srv/lab\n    mirror:\n      to: /srv/backup/lab\n";

    let script = super::workspace_root().join("tests/support/systemd-system-container.sh");
    let Some(sd) = super::require_service(SystemManager::start(
        &script,
        &root.join("container"),
        &[(&srv, "/srv")],
    )) else {
        return;
    };
    std::fs::copy(&deb, sd.path("/root/driftless.deb")).expect("copy the package in");
    let pristine = entries(&sd.unit_dir());

    // Install: the binaries run, the units are known to systemd, nothing is enabled.
    ok(&sd, "dpkg", &["-i", "/root/driftless.deb"]);
    for tool in super::TOOLS {
        for path in shipped_paths(tool) {
            assert!(sd.path(&path).is_file(), "{path} not installed");
        }
        ok(&sd, tool, &["--version"]);
    }
    assert!(sd.path("/usr/share/man/man5/driftless.yaml.5").is_file());
    assert!(sd.path("/usr/share/doc/driftless/README.md").is_file());
    let known = ok(
        &sd,
        "systemctl",
        &["list-unit-files", "--plain", "--no-legend", "--no-pager"],
    );
    for unit in std::fs::read_dir(super::workspace_root().join("units"))
        .expect("read units/")
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains('@'))
    {
        assert!(
            known
                .lines()
                .any(|l| l.split_whitespace().next() == Some(unit.as_str())),
            "systemd does not know {unit}:\n{known}"
        );
        assert!(sd.path(&format!("/lib/systemd/system/{unit}")).is_file());
    }
    let exec = ok(
        &sd,
        "systemctl",
        &["show", "-p", "ExecStart", "--value", "sync-repo@lab.service"],
    );
    assert!(exec.contains("path=/usr/bin/sync-repo"), "{exec}");
    assert_eq!(entries(&sd.unit_dir()), pristine, "installing enabled something");

    // The cron file: every job off (a systemd host needs none), and the header's switch turns
    // on exactly the sync line.
    let cron = std::fs::read_to_string(sd.path("/etc/cron.d/driftless")).expect("read the cron file");
    let is_job = |l: &str| l.starts_with(|c: char| c.is_ascii_digit() || c == '*' || c == '@');
    assert!(!cron.lines().any(is_job), "a cron job is on:\n{cron}");
    assert!(cron.contains("s/^#sync //"), "the header names the switch:\n{cron}");
    let on: Vec<String> = cron
        .lines()
        .filter_map(|l| l.strip_prefix("#sync "))
        .map(str::to_owned)
        .collect();
    assert_eq!(on.len(), 1, "{cron}");
    assert!(is_job(&on[0]) && on[0].contains("sync-repo --all --quiet"), "{on:?}");
    assert!(
        cron.contains("timers in /lib/systemd/system") && !cron.contains("/usr/local/lib"),
        "the header names where the package put the units:\n{cron}"
    );

    // The conffiles, and the sample config changes nothing: every line commented, and the
    // tools read it without complaint.
    let conffiles = ok(&sd, "dpkg-query", &["-W", "-f=${Conffiles}\\n", "driftless"]);
    for file in ["/etc/driftless/driftless.yaml", "/etc/cron.d/driftless"] {
        assert!(
            conffiles.lines().any(|l| l.trim().starts_with(file)),
            "{file} is no conffile:\n{conffiles}"
        );
    }
    let sample = std::fs::read_to_string(sd.path("/etc/driftless/driftless.yaml")).expect("read the sample");
    assert!(
        sample.lines().all(|l| l.trim().is_empty() || l.starts_with('#')),
        "{sample}"
    );
    ok(&sd, "sync-repo", &["--print-config"]);
    let files = package_files(&sd);

    // Enable phases 1-3, then remove (not purge): units disabled and stopped, binaries gone,
    // state and conffiles kept.
    enable_and_run(&sd, config);
    assert_ne!(entries(&sd.unit_dir()), pristine, "enabling linked nothing");
    ok(&sd, "dpkg", &["-r", "driftless"]);
    nothing_enabled(&sd, &pristine, "after dpkg -r");
    for tool in super::TOOLS {
        assert!(
            !sd.path(&format!("/usr/bin/{tool}")).exists(),
            "{tool} left after remove"
        );
    }
    assert!(!sd.path("/lib/systemd/system/sync-repo@.service").exists());
    assert!(
        sd.path("/var/lib/driftless/repos/lab/sync-repo.json").is_file(),
        "remove must keep the state (Debian policy: only purge removes it)"
    );
    assert_eq!(
        std::fs::read_to_string(sd.path("/etc/driftless/driftless.yaml")).expect("conffile kept"),
        config,
        "remove keeps the admin's config"
    );
    let status = ok(&sd, "dpkg-query", &["-W", "-f=${Status}", "driftless"]);
    assert_eq!(status, "deinstall ok config-files");

    // Purge after remove: the config and the state go too.
    ok(&sd, "apt-get", &["purge", "-y", "-q", "driftless"]);
    let left: Vec<&String> = files.iter().filter(|f| sd.path(f).exists()).collect();
    assert!(left.is_empty(), "left after purge: {left:?}");
    for gone in ["/var/lib/driftless", "/etc/driftless"] {
        assert!(!sd.path(gone).exists(), "{gone} left after purge");
    }

    // Install again and purge straight away, with every job enabled and the timer running.
    ok(&sd, "dpkg", &["-i", "/root/driftless.deb"]);
    assert_eq!(package_files(&sd), files, "the same files the second time");
    enable_and_run(&sd, config);
    ok(&sd, "apt-get", &["purge", "-y", "-q", "driftless"]);
    nothing_enabled(&sd, &pristine, "after apt-get purge");
    let left: Vec<&String> = files.iter().filter(|f| sd.path(f).exists()).collect();
    assert!(left.is_empty(), "left after purge: {left:?}");
    for gone in ["/var/lib/driftless", "/etc/driftless"] {
        assert!(!sd.path(gone).exists(), "{gone} left after purge");
    }
    let status = sd.run("dpkg-query", &["-W", "-f=${Status}", "driftless"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.is_empty() || status.contains("not-installed"),
        "dpkg still knows the package: {status}"
    );
    assert_eq!(repos.head("lab"), repos.head("seed"), "the sync ran from the package");
}
