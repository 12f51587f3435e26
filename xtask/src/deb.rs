//! `cargo xtask deb`: the install tree of `cargo xtask install --prefix /usr` as a Debian
//! package built by `dpkg-deb`, for hosts without a toolchain: binaries in /usr/bin, units in
//! /lib/systemd/system (none enabled), the cron file with every job off, the commented sample
//! config as the conffile /etc/driftless/driftless.yaml, man pages, completions and docs.
//!
//! The binaries are the workspace's static release builds (glibc's static runtime: this
//! toolchain has no musl target), so the package depends on no library. Packing dynamic builds
//! (`--debug`, `--bin-dir`) adds the libc6 dependency they need.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Context, Result, bail};
use crate::generate::TOOLS;
use crate::install::{self, Options};
use crate::sandbox::run;
use crate::workspace;

/// The maintainer scripts. Nothing is enabled on install; on remove (and so on purge) every
/// instance of a driftless unit is stopped and disabled, whether enabled or only loaded (an
/// instance of a template has no file of its own for dpkg to track); on purge the state
/// directory goes too (Debian keeps state and conffiles on remove, removes them on purge).
const POSTINST: &str = "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n";
const PRERM: &str = r#"#!/bin/sh
set -e
set -f
UNITS="sync-repo@* apply-compose@* apply-compose-pull@* mirror-copy@* drift-check@* driftless-notify@* driftless-resolved@* driftless-synced@* driftless-hook.socket driftless-hook@*"
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  for unit in $(systemctl list-units --all --plain --no-legend $UNITS | awk '{print $1}') \
      $(systemctl list-unit-files --state=enabled --plain --no-legend $UNITS | awk '{print $1}'); do
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  done
fi
"#;
const POSTRM: &str = "#!/bin/sh\nset -e\nif [ \"$1\" = purge ]; then rm -rf /var/lib/driftless; fi\nif [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi\n";

/// What goes into the package, and where it is written.
#[derive(Debug, Clone, Default)]
pub struct DebOptions {
    /// Use the release binaries already built instead of running `cargo build --release`.
    pub no_build: bool,
    /// Pack the debug builds (to test the packaging quickly; never to ship).
    pub debug: bool,
    /// Pack the binaries found in this folder, unbuilt (the package test's own debug builds).
    pub bin_dir: Option<PathBuf>,
    /// Write the package here instead of `target/dist/`.
    pub out_dir: Option<PathBuf>,
}

/// Build the package into `target/dist/` (or `out_dir`); returns its path.
pub fn deb(opts: &DebOptions) -> Result<PathBuf> {
    let stage = tempfile::tempdir().context("creating a staging dir")?;
    let root = stage.path().join("driftless");
    let files = install::install(&Options {
        prefix: PathBuf::from("/usr"),
        destdir: Some(root.clone()),
        no_build: opts.no_build,
        debug: opts.debug,
        bin_dir: opts.bin_dir.clone(),
        // The package carries it as a conffile, written below.
        sample_config: false,
    })?;
    // Debian ships binaries stripped (dh_strip): a debug build drops from ~300 MB to tens.
    for tool in TOOLS {
        run(Command::new("strip")
            .args([
                "--strip-unneeded",
                "--remove-section=.comment",
                "--remove-section=.note",
            ])
            .arg(root.join("usr/bin").join(tool)))?;
    }
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
        )
        .replace("/usr/local/lib/systemd/system", "/lib/systemd/system");
    std::fs::write(&cron_path, format!("{cron}\n")).context("writing the staged cron file")?;
    let config = std::fs::read(workspace::root().join("units/driftless.yaml")).context("reading the sample config")?;
    std::fs::create_dir_all(root.join("etc/driftless")).context("creating etc/driftless")?;
    std::fs::write(root.join("etc/driftless/driftless.yaml"), config).context("writing the conffile")?;

    let arch = output(Command::new("dpkg").arg("--print-architecture"))?;
    let version = env!("CARGO_PKG_VERSION");
    let debian = root.join("DEBIAN");
    std::fs::create_dir_all(&debian).context("creating DEBIAN/")?;
    let size_kib = dir_size(&root)? / 1024;
    let mut all_static = true;
    for tool in TOOLS {
        all_static &= workspace::is_static(&root.join("usr/bin").join(tool))?;
    }
    let depends = if all_static {
        String::new()
    } else {
        "Depends: libc6 (>= 2.36), libgcc-s1\n".to_owned()
    };
    let control = format!(
        "Package: driftless\nVersion: {version}\nArchitecture: {arch}\nMaintainer: driftless maintainers <driftless@example.invalid>\nInstalled-Size: {size_kib}\n{depends}Suggests: docker-compose-plugin, rclone\nSection: admin\nPriority: optional\nDescription: pull-based GitOps for a few hosts\n sync-repo, apply-compose, mirror-copy, drift-check, driftless-notify and\n driftless-hook: git checkouts that follow their remote without losing local\n work, compose stacks that follow the checkout, a backup mirror, and a drift\n report, run by systemd timers (or cron), or at once on a forge's push webhook.\n"
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

    let out_dir = opts
        .out_dir
        .clone()
        .unwrap_or_else(|| workspace::target_dir().join("dist"));
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let deb = out_dir.join(format!("driftless_{version}_{arch}.deb"));
    // A package to test the packaging: pack it fast, not small.
    let quick = opts.debug || opts.bin_dir.is_some();
    let compression: &[&str] = if quick { &["-Zgzip", "-z1"] } else { &["-Zxz"] };
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
        if quick {
            ", unreleased binaries: for testing the package only"
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
