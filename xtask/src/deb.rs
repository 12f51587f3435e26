//! `cargo xtask deb`: the install tree of `cargo xtask install --prefix /usr` as a Debian
//! package built by `dpkg-deb`, for hosts without a toolchain: binaries in /usr/bin, units in
//! /lib/systemd/system (none enabled), the cron file with every job off, the commented sample
//! config as the conffile /etc/driftless/driftless.yaml, man pages, completions and docs.
//!
//! The binaries are the workspace's glibc release builds (this toolchain has no musl target), so
//! the package depends on libc6 of the Debian release it was built on.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Context, Result, bail};
use crate::install::{self, Options};
use crate::sandbox::run;
use crate::workspace;

/// The maintainer scripts. Nothing is enabled on install; on remove every enabled instance of a
/// driftless unit is disabled and stopped; on purge the state directory goes too (Debian keeps
/// state and conffiles on remove, removes them on purge).
const POSTINST: &str = "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n";
const PRERM: &str = "#!/bin/sh\nset -e\nif [ \"$1\" = remove ] && [ -d /run/systemd/system ]; then\n  for unit in $(systemctl list-units --all --plain --no-legend 'sync-repo@*' 'apply-compose@*' 'mirror-copy@*' 'drift-check@*' | awk '{print $1}') \\\n      $(systemctl list-unit-files --state=enabled --plain --no-legend 'sync-repo@*' 'apply-compose@*' 'mirror-copy@*' 'drift-check@*' | awk '{print $1}'); do\n    systemctl disable --now \"$unit\" >/dev/null 2>&1 || true\n  done\nfi\n";
const POSTRM: &str = "#!/bin/sh\nset -e\nif [ \"$1\" = purge ]; then rm -rf /var/lib/driftless; fi\nif [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n";

/// Build the package into `target/dist/`; returns its path.
pub fn deb(no_build: bool, debug: bool) -> Result<PathBuf> {
    let stage = tempfile::tempdir().context("creating a staging dir")?;
    let root = stage.path().join("driftless");
    let files = install::install(&Options {
        prefix: PathBuf::from("/usr"),
        destdir: Some(root.clone()),
        no_build,
        debug,
        // The package carries it as a conffile, written below.
        sample_config: false,
    })?;
    // Debian 12 ships units in /lib/systemd/system (dh_installsystemd's place).
    std::fs::create_dir_all(root.join("lib")).context("creating lib/")?;
    std::fs::rename(root.join("usr/lib/systemd"), root.join("lib/systemd")).context("moving the units to /lib")?;
    let _ = std::fs::remove_dir(root.join("usr/lib"));

    // The cron file is off until the admin enables a line: a systemd host needs none of it.
    let cron_path = root.join("etc/cron.d/driftless");
    let cron = std::fs::read_to_string(&cron_path).context("reading the staged cron file")?;
    let cron = cron
        .lines()
        .map(|l| {
            if l.starts_with(|c: char| c.is_ascii_digit() || c == '*') {
                format!("#sync {l}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        .replace(
            "# Lines tagged #mirror",
            "# In this package every job is off; switch the sync one on with sed -i 's/^#sync //'.\n# Lines tagged #mirror",
        );
    std::fs::write(&cron_path, format!("{cron}\n")).context("writing the staged cron file")?;
    let config = std::fs::read(workspace::root().join("units/driftless.yaml")).context("reading the sample config")?;
    std::fs::create_dir_all(root.join("etc/driftless")).context("creating etc/driftless")?;
    std::fs::write(root.join("etc/driftless/driftless.yaml"), config).context("writing the conffile")?;

    let arch = output(Command::new("dpkg").arg("--print-architecture"))?;
    let version = env!("CARGO_PKG_VERSION");
    let debian = root.join("DEBIAN");
    std::fs::create_dir_all(&debian).context("creating DEBIAN/")?;
    let size_kib = dir_size(&root)? / 1024;
    let control = format!(
        "Package: driftless\nVersion: {version}\nArchitecture: {arch}\nMaintainer: driftless maintainers <driftless@example.invalid>\nInstalled-Size: {size_kib}\nDepends: libc6 (>= 2.36), libgcc-s1\nSuggests: docker-compose-plugin, rclone\nSection: admin\nPriority: optional\nDescription: pull-based GitOps for a few hosts\n sync-repo, apply-compose, mirror-copy, drift-check and driftless-notify: git\n checkouts that follow their remote without losing local work, compose stacks\n that follow the checkout, a backup mirror, and a drift report, run by\n systemd timers (or cron).\n"
    );
    std::fs::write(debian.join("control"), control).context("writing DEBIAN/control")?;
    std::fs::write(
        debian.join("conffiles"),
        "/etc/cron.d/driftless\n/etc/driftless/driftless.yaml\n",
    )
    .context("writing DEBIAN/conffiles")?;
    for (name, text) in [("postinst", POSTINST), ("prerm", PRERM), ("postrm", POSTRM)] {
        let path = debian.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing DEBIAN/{name}"))?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }

    let out_dir = workspace::target_dir().join("dist");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let deb = out_dir.join(format!("driftless_{version}_{arch}.deb"));
    // Debug binaries are hundreds of MB of debug info: pack them fast, not small.
    let compression: &[&str] = if debug { &["-Zgzip", "-z1"] } else { &["-Zxz"] };
    run(Command::new("dpkg-deb")
        .arg("--root-owner-group")
        .args(compression)
        .arg("--build")
        .arg(&root)
        .arg(&deb))?;
    println!(
        "deb: {} ({} files{}); install with `apt install {}`",
        deb.display(),
        files.len() + 1,
        if debug {
            ", DEBUG binaries: for testing the package only"
        } else {
            ""
        },
        deb.display()
    );
    Ok(deb)
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
