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
///
/// Release builds are what ships and what the benchmarks time: static executables
/// ([`release_flags`]), checked with [`is_static`].
pub fn build_bins(packages: &[&str], release: bool) -> Result<Vec<PathBuf>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root()).args(["build", "--quiet"]);
    for package in packages {
        cmd.args(["-p", package]);
    }
    let dir = if release {
        let triple = host_triple()?;
        let (var, flags) = release_flags(&triple);
        cmd.args(["--release", "--target", &triple]).env(var, flags);
        release_dir(&triple)
    } else {
        target_dir().join("debug")
    };
    let described = format!(
        "cargo build -p {}{}",
        packages.join(" -p "),
        if release { " --release (static)" } else { "" }
    );
    eprintln!("xtask: {described}");
    let status = cmd.status().context("starting cargo")?;
    if !status.success() {
        bail!("{described} failed ({status})");
    }
    packages
        .iter()
        .map(|package| {
            let bin = dir.join(package);
            if !bin.is_file() {
                bail!("cargo built {package} but {} is missing", bin.display());
            }
            if release && !is_static(&bin)? {
                bail!(
                    "{} is dynamically linked; the release build must be static",
                    bin.display()
                );
            }
            Ok(bin)
        })
        .collect()
}

/// Where cargo puts the static release binaries of [`build_bins`] for target `triple` (they are
/// built with `--target`): `<target>/<triple>/release`.
pub fn release_dir(triple: &str) -> PathBuf {
    target_dir().join(triple).join("release")
}

/// The environment variable and flags that make a release build static: glibc's static C
/// runtime (`crt-static`), set for the target only (`--target`), so build scripts and proc
/// macros stay ordinary host binaries. A static executable runs on any x86-64 Linux with no
/// shared library at all (not even the glibc it was built against), and starts faster: no
/// dynamic loader, which the privilege-separated worker pays on every foreign-owned sync.
/// (musl would do the same; this toolchain has no musl target.) glibc's resolver still reads
/// /etc/hosts and DNS in a static program; only NSS modules such as LDAP host lookup are out.
pub fn release_flags(triple: &str) -> (String, String) {
    let var = format!(
        "CARGO_TARGET_{}_RUSTFLAGS",
        triple.to_uppercase().replace(['-', '.'], "_")
    );
    let mut flags = std::env::var(&var).unwrap_or_default();
    if !flags.is_empty() {
        flags.push(' ');
    }
    flags.push_str("-C target-feature=+crt-static");
    (var, flags)
}

/// The host's target triple, from `rustc -vV`.
pub fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().context("starting rustc -vV")?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV printed no host line")
}

/// Whether the ELF executable at `path` needs no dynamic loader: no `PT_INTERP` program header
/// (a static-pie relocates itself). Only 64-bit little-endian ELF is read, what this workspace
/// builds; anything else is reported as not static.
pub fn is_static(path: &std::path::Path) -> Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    const PT_INTERP: u32 = 3;
    let mut file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut header = [0u8; 64];
    file.read_exact(&mut header)
        .with_context(|| format!("reading the ELF header of {}", path.display()))?;
    // ELF magic, ELFCLASS64, ELFDATA2LSB.
    if header[..4] != *b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Ok(false);
    }
    let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
    let phoff = u64::from_le_bytes(header[0x20..0x28].try_into().unwrap_or_default());
    let (entry_size, count) = (u64::from(u16_at(0x36)), u16_at(0x38));
    for index in 0..u64::from(count) {
        let mut kind = [0u8; 4];
        file.seek(SeekFrom::Start(phoff + index * entry_size))?;
        file.read_exact(&mut kind)?;
        if u32::from_le_bytes(kind) == PT_INTERP {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Build `package`'s binary of the same name (`release` or debug) and return its path.
pub fn build_bin(package: &str, release: bool) -> Result<PathBuf> {
    let mut bins = build_bins(&[package], release)?;
    bins.pop().context("cargo built nothing")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `file` is the oracle: Debian's busybox-static is "statically linked", /bin/sh (dash) is
    /// "dynamically linked (uses shared libs)", and a script is no ELF at all.
    #[test]
    fn is_static_agrees_with_file() -> Result<()> {
        for (path, expected) in [("/bin/busybox", true), ("/bin/dash", false), ("/usr/bin/ldd", false)] {
            let path = std::path::Path::new(path);
            let out = Command::new("file")
                .arg("-L")
                .arg(path)
                .output()
                .context("running file")?;
            let said = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                said.contains("statically linked") || said.contains("static-pie"),
                expected,
                "{said}"
            );
            assert_eq!(is_static(path)?, expected, "{}", path.display());
        }
        Ok(())
    }

    #[test]
    fn release_flags_add_crt_static_for_the_target_only() {
        let (var, flags) = release_flags("x86_64-unknown-linux-gnu");
        assert_eq!(var, "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS");
        assert!(flags.ends_with("-C target-feature=+crt-static"), "{flags}");
    }
}
