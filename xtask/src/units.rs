//! `cargo xtask units`: check the systemd units in units/ offline: `systemd-analyze verify` of an
//! instance of every unit (ExecStart pointing at the freshly built binary, `man:` links resolved
//! against the generated man pages), the `systemd-analyze security` exposure of every service
//! against its target, and what `systemctl enable` of each installable instance creates.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Context, Result, bail};
use crate::generate::{self, TOOLS};
use crate::install::unit_files;
use crate::sandbox::describe;
use crate::workspace;

/// The path the units name; swapped for the built binaries so verify can check ExecStart.
const INSTALLED_BIN: &str = "/usr/local/bin/";

/// Highest `systemd-analyze security --offline=true` exposure each service may have. The docker
/// socket is root on the host, so apply-compose's sandbox can only guard against mistakes
/// (docs/rollout.md, "Hardening").
pub const EXPOSURE_TARGETS: [(&str, f64); 8] = [
    ("sync-repo@.service", 2.0),
    ("mirror-copy@.service", 2.0),
    ("drift-check@.service", 2.0),
    ("driftless-notify@.service", 2.0),
    ("driftless-resolved@.service", 2.0),
    ("driftless-hook@.service", 2.0),
    ("apply-compose@.service", 2.5),
    ("apply-compose-pull@.service", 2.5),
];

/// What `systemctl enable` of an instance must link: (template, the `.wants` dir it lands in).
const ENABLE_LINKS: [(&str, &str); 6] = [
    ("sync-repo@.timer", "timers.target.wants"),
    ("apply-compose-pull@.timer", "timers.target.wants"),
    ("mirror-copy@.timer", "timers.target.wants"),
    ("drift-check@.timer", "timers.target.wants"),
    ("driftless-hook.socket", "sockets.target.wants"),
    (
        "apply-compose@.service",
        "driftless-synced@observability-hub.target.wants",
    ),
];

/// Verify, score and enable-check every unit in units/.
pub fn check() -> Result<()> {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        let why = "systemd-analyze is not installed (package systemd)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            bail!("{why}; CI needs it to check units/");
        }
        println!("units: SKIPPED: {why}");
        return Ok(());
    }
    let units_dir = workspace::root().join("units");
    let templates = unit_files(&units_dir)?;
    if templates.is_empty() {
        bail!("no units in {}", units_dir.display());
    }
    let mut bin_dir = PathBuf::new();
    for tool in TOOLS {
        bin_dir = workspace::build_bin(tool, false)?
            .parent()
            .map(Path::to_path_buf)
            .context("binary has no parent dir")?;
    }

    let tmp = tempfile::tempdir().context("creating a temp dir")?;
    // `Documentation=man:TOOL(1)` is checked by running man: point it at the generated pages.
    let man1 = tmp.path().join("man/man1");
    std::fs::create_dir_all(&man1)?;
    for (rel, page) in generate::man_pages()? {
        std::fs::write(man1.join(rel.file_name().context("man page name")?), page)?;
    }
    let mut instances = Vec::new();
    for template in &templates {
        let name = file_name(template)?;
        let instance = name.replacen("@.", "@demo.", 1);
        let text = std::fs::read_to_string(template).with_context(|| format!("reading {}", template.display()))?;
        let text = text.replace(INSTALLED_BIN, &format!("{}/", bin_dir.display()));
        let path = tmp.path().join(&instance);
        std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
        instances.push(path);
        if instance != name {
            // Loadable under its own name too: driftless-hook.socket (Accept=yes) needs its
            // template to start an instance per connection.
            std::fs::write(tmp.path().join(name), &text).with_context(|| format!("writing {name}"))?;
        }
    }

    let mut verify = Command::new("systemd-analyze");
    verify
        .env("MANPATH", tmp.path().join("man"))
        .arg("verify")
        .args(&instances);
    let output = verify.output().context("starting systemd-analyze")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || !stderr.trim().is_empty() {
        bail!(
            "`{}` failed or warned ({}):\n{stderr}",
            describe(&verify),
            output.status
        );
    }
    println!("units: systemd-analyze verify passed: {}", names(&templates));

    for (template, target) in EXPOSURE_TARGETS {
        let instance = tmp.path().join(template.replacen("@.", "@demo.", 1));
        let exposure = exposure(&instance)?;
        if exposure > target {
            bail!(
                "{template}: `systemd-analyze security --offline=true` exposure {exposure:.1} is above the target {target:.1}"
            );
        }
        println!("units: {template}: exposure {exposure:.1} (target <= {target:.1})");
    }

    // [Install]: enabling an instance must hook it where the rollout says (docs/rollout.md).
    let root = tmp.path().join("root");
    let unit_dir = root.join("usr/local/lib/systemd/system");
    std::fs::create_dir_all(&unit_dir)?;
    std::fs::create_dir_all(root.join("etc/systemd/system"))?;
    for template in &templates {
        std::fs::copy(template, unit_dir.join(file_name(template)?))?;
    }
    for (template, wants) in ENABLE_LINKS {
        let instance = template.replacen("@.", "@observability-hub.", 1);
        let mut enable = Command::new("systemctl");
        enable
            .arg(format!("--root={}", root.display()))
            .args(["enable", &instance]);
        let output = enable.output().context("starting systemctl")?;
        let link = root.join("etc/systemd/system").join(wants).join(&instance);
        if !output.status.success() || !link.is_symlink() {
            bail!(
                "`{}` did not create {}:\n{}",
                describe(&enable),
                link.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        println!("units: `systemctl enable {instance}` links it into {wants}");
    }
    Ok(())
}

/// The overall exposure `systemd-analyze security --offline=true` gives `unit`.
pub fn exposure(unit: &Path) -> Result<f64> {
    let mut cmd = Command::new("systemd-analyze");
    cmd.args(["security", "--offline=true", "--no-pager"]).arg(unit);
    let output = cmd.output().context("starting systemd-analyze")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|line| {
            let (_, rest) = line.split_once("Overall exposure level for ")?;
            let (_, score) = rest.split_once(": ")?;
            score.split_whitespace().next()?.parse::<f64>().ok()
        })
        .with_context(|| {
            format!(
                "no exposure in the output of `{}`:\n{stdout}{}",
                describe(&cmd),
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

fn file_name(path: &Path) -> Result<&str> {
    path.file_name()
        .and_then(|n| n.to_str())
        .context("unit file name is not UTF-8")
}

fn names(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(", ")
}
