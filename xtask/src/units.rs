//! `cargo xtask units`: check the systemd units in units/ offline with `systemd-analyze verify`
//! (on an instance copy whose ExecStart points at the freshly built binary) and check what
//! `systemctl enable` of each timer instance creates.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Context, Result, bail};
use crate::sandbox::describe;
use crate::workspace;

/// The path the units name; swapped for the built binary so verify can check ExecStart.
const INSTALLED_BIN: &str = "/usr/local/bin/";

/// Verify every template unit in units/ as instance `demo`.
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
    let mut templates: Vec<PathBuf> = std::fs::read_dir(&units_dir)
        .with_context(|| format!("reading {}", units_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "service" || x == "timer"))
        .collect();
    templates.sort();
    if templates.is_empty() {
        bail!("no units in {}", units_dir.display());
    }
    let bin_dir = workspace::build_bin("sync-repo", false)?
        .parent()
        .map(Path::to_path_buf)
        .context("binary has no parent dir")?;

    let tmp = tempfile::tempdir().context("creating a temp dir")?;
    let mut instances = Vec::new();
    for template in &templates {
        let name = template
            .file_name()
            .and_then(|n| n.to_str())
            .context("unit file name is not UTF-8")?;
        let instance = name.replacen("@.", "@demo.", 1);
        let text = std::fs::read_to_string(template).with_context(|| format!("reading {}", template.display()))?;
        let text = text.replace(INSTALLED_BIN, &format!("{}/", bin_dir.display()));
        let path = tmp.path().join(&instance);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        instances.push(path);
    }

    let mut verify = Command::new("systemd-analyze");
    verify.arg("verify").args(&instances);
    let output = verify.output().context("starting systemd-analyze")?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("`{}` failed ({}):\n{stderr}", describe(&verify), output.status);
    }
    for line in stderr.lines() {
        println!("units: systemd-analyze: {line}");
    }
    println!("units: systemd-analyze verify passed: {}", names(&templates));

    // [Install]: enabling a timer instance must hook it into timers.target.
    let root = tmp.path().join("root");
    let unit_dir = root.join("usr/local/lib/systemd/system");
    std::fs::create_dir_all(&unit_dir)?;
    std::fs::create_dir_all(root.join("etc/systemd/system"))?;
    for template in &templates {
        if let Some(name) = template.file_name() {
            std::fs::copy(template, unit_dir.join(name))?;
        }
    }
    for template in templates.iter().filter(|t| t.extension().is_some_and(|x| x == "timer")) {
        let name = template.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let instance = name.replacen("@.", "@observability-hub.", 1);
        let mut enable = Command::new("systemctl");
        enable
            .arg(format!("--root={}", root.display()))
            .args(["enable", &instance]);
        let output = enable.output().context("starting systemctl")?;
        let link = root.join("etc/systemd/system/timers.target.wants").join(&instance);
        if !output.status.success() || !link.is_symlink() {
            bail!(
                "`{}` did not create {}:\n{}",
                describe(&enable),
                link.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        println!("units: `systemctl enable {instance}` hooks it into timers.target");
    }
    Ok(())
}

fn names(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(", ")
}
