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

/// Build the debug binaries of `packages` in one cargo run (one feature resolution, so nothing
/// is compiled twice) and return their paths, in order.
pub fn build_bins(packages: &[&str]) -> Result<Vec<PathBuf>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root()).args(["build", "--quiet"]);
    for package in packages {
        cmd.args(["-p", package]);
    }
    eprintln!("xtask: cargo build -p {}", packages.join(" -p "));
    let status = cmd.status().context("starting cargo")?;
    if !status.success() {
        bail!("cargo build of {} failed ({status})", packages.join(", "));
    }
    packages
        .iter()
        .map(|package| {
            let bin = target_dir().join("debug").join(package);
            if !bin.is_file() {
                bail!("cargo built {package} but {} is missing", bin.display());
            }
            Ok(bin)
        })
        .collect()
}

/// Build `package`'s binary of the same name (`release` or debug) and return its path.
pub fn build_bin(package: &str, release: bool) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root()).args(["build", "--quiet", "-p", package]);
    if release {
        cmd.arg("--release");
    }
    eprintln!(
        "xtask: cargo build -p {package}{}",
        if release { " --release" } else { "" }
    );
    let status = cmd.status().context("starting cargo")?;
    if !status.success() {
        bail!("cargo build -p {package} failed ({status})");
    }
    let bin = target_dir()
        .join(if release { "release" } else { "debug" })
        .join(package);
    if !bin.is_file() {
        bail!("cargo built {package} but {} is missing", bin.display());
    }
    Ok(bin)
}
