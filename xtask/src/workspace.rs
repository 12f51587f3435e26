//! Where the workspace and its build output are, and building the binaries xtask runs.

use std::path::PathBuf;
use std::process::Command;

use crate::error::{Context, Result, bail};

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map(PathBuf::from).unwrap_or(manifest_dir)
}

/// Cargo's target directory: `$CARGO_TARGET_DIR`, else `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() { dir } else { root().join(dir) }
        }
        None => root().join("target"),
    }
}

/// Build the binaries of `packages` (`release` or debug) in one cargo run (one feature
/// resolution, so nothing is compiled twice) and return their paths, in order.
pub fn build_bins(packages: &[&str], release: bool) -> Result<Vec<PathBuf>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root()).args(["build", "--quiet"]);
    for package in packages {
        cmd.args(["-p", package]);
    }
    if release {
        cmd.arg("--release");
    }
    let described = format!(
        "cargo build -p {}{}",
        packages.join(" -p "),
        if release { " --release" } else { "" }
    );
    eprintln!("xtask: {described}");
    let status = cmd.status().context("starting cargo")?;
    if !status.success() {
        bail!("{described} failed ({status})");
    }
    let dir = target_dir().join(if release { "release" } else { "debug" });
    packages
        .iter()
        .map(|package| {
            let bin = dir.join(package);
            if !bin.is_file() {
                bail!("cargo built {package} but {} is missing", bin.display());
            }
            Ok(bin)
        })
        .collect()
}

/// Build `package`'s binary of the same name (`release` or debug) and return its path.
pub fn build_bin(package: &str, release: bool) -> Result<PathBuf> {
    let mut bins = build_bins(&[package], release)?;
    bins.pop().context("cargo built nothing")
}
