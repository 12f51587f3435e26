//! `cargo xtask install` and `cargo xtask dist`: put the release binaries, units, cron file, man
//! pages, shell completions and docs where a host looks for them (`make install` wraps the first;
//! the second is a tarball of the same tree, for hosts without a toolchain).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Context, Result, bail};
use crate::generate::{self, TOOLS};
use crate::sandbox::run;
use crate::workspace;

/// Where and how to install.
#[derive(Debug, Clone)]
pub struct Options {
    /// Installation prefix: binaries in `PREFIX/bin`, units in `PREFIX/lib/systemd/system`.
    pub prefix: PathBuf,
    /// Staging root prepended to every path (packaging); the units still name `PREFIX`.
    pub destdir: Option<PathBuf>,
    /// Use the release binaries already built instead of running `cargo build --release`.
    pub no_build: bool,
    /// Take the debug binaries instead (a quick package to test the packaging, never to ship).
    pub debug: bool,
    /// Take the binaries from this folder as they are (no build): the ones a test already has.
    pub bin_dir: Option<PathBuf>,
    /// Put the sample config at /etc/driftless/driftless.yaml where there is none (`make
    /// install`); a tarball or package must not carry it as a plain file that unpacks over one.
    pub sample_config: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prefix: PathBuf::from("/usr/local"),
            destdir: None,
            no_build: false,
            debug: false,
            bin_dir: None,
            sample_config: true,
        }
    }
}

/// The path units and the cron file are written with; swapped for the real prefix.
const UNIT_PREFIX: &str = "/usr/local/";

/// Install everything; returns the list of files written (relative to DESTDIR).
pub fn install(opts: &Options) -> Result<Vec<PathBuf>> {
    if !opts.prefix.is_absolute() {
        bail!("--prefix {} must be an absolute path", opts.prefix.display());
    }
    let bins = match &opts.bin_dir {
        Some(dir) => bins_in(dir)?,
        None => release_bins(opts.no_build, opts.debug)?,
    };
    let root = workspace::root();
    let stage = |rel: &Path| -> PathBuf {
        match &opts.destdir {
            Some(d) => d.join(rel.strip_prefix("/").unwrap_or(rel)),
            None => rel.to_path_buf(),
        }
    };
    let prefix = opts.prefix.clone();
    let prefix_text = format!("{}/", prefix.display()).replace("//", "/");
    let mut written = Vec::new();
    let mut put = |rel: PathBuf, content: &[u8], mode: u32| -> Result<()> {
        let path = stage(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        // Replace, never write through: a running binary must keep its old inode.
        let tmp = path.with_extension("xtask-new");
        std::fs::write(&tmp, content).with_context(|| format!("writing {}", tmp.display()))?;
        set_mode(&tmp, mode)?;
        std::fs::rename(&tmp, &path).with_context(|| format!("installing {}", path.display()))?;
        written.push(rel);
        Ok(())
    };

    for (tool, bin) in TOOLS.iter().zip(&bins) {
        let content = std::fs::read(bin).with_context(|| format!("reading {}", bin.display()))?;
        put(prefix.join("bin").join(tool), &content, 0o755)?;
    }
    let units_dir = root.join("units");
    for unit in unit_files(&units_dir)? {
        let text = std::fs::read_to_string(&unit).with_context(|| format!("reading {}", unit.display()))?;
        let name = unit.file_name().context("unit without a name")?;
        put(
            prefix.join("lib/systemd/system").join(name),
            text.replace(UNIT_PREFIX, &prefix_text).as_bytes(),
            0o644,
        )?;
    }
    let cron = std::fs::read_to_string(units_dir.join("cron.d/driftless")).context("reading units/cron.d/driftless")?;
    // cron's PATH already has /usr/local/bin and /usr/bin; another prefix goes in front.
    let cron = if ["/usr/local/", "/usr/"].contains(&prefix_text.as_str()) {
        cron
    } else {
        cron.replace("\nPATH=", &format!("\nPATH={prefix_text}bin:"))
    };
    put(PathBuf::from("/etc/cron.d/driftless"), cron.as_bytes(), 0o644)?;
    for (rel, content) in generate::man_pages()? {
        let name = rel.file_name().context("man page without a name")?;
        // docs/config.md comes with the pages; it is installed with the docs.
        let Some(section) = rel.extension().and_then(|e| e.to_str()).filter(|e| *e != "md") else {
            continue;
        };
        put(
            prefix.join(format!("share/man/man{section}")).join(name),
            &content,
            0o644,
        )?;
    }
    for (rel, content) in generate::completions() {
        let name = rel
            .file_name()
            .and_then(|n| n.to_str())
            .context("completion without a name")?;
        let dest = if let Some(tool) = name.strip_suffix(".bash") {
            prefix.join("share/bash-completion/completions").join(tool)
        } else if name.ends_with(".fish") {
            prefix.join("share/fish/vendor_completions.d").join(name)
        } else {
            prefix.join("share/zsh/site-functions").join(name)
        };
        put(dest, &content, 0o644)?;
    }
    let mut docs = vec![root.join("README.md")];
    let mut more: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .context("reading docs/")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    for doc in docs {
        let content = std::fs::read(&doc).with_context(|| format!("reading {}", doc.display()))?;
        let name = doc.file_name().context("doc without a name")?;
        put(prefix.join("share/doc/driftless").join(name), &content, 0o644)?;
    }
    // The sample config, every line commented: only where there is none, never over the admin's.
    let config = PathBuf::from("/etc/driftless/driftless.yaml");
    if opts.sample_config && std::fs::symlink_metadata(stage(&config)).is_err() {
        let sample = std::fs::read(units_dir.join("driftless.yaml")).context("reading units/driftless.yaml")?;
        put(config, &sample, 0o644)?;
    }
    Ok(written)
}

/// What `make install` prints: where each kind of file went, and what to run next.
pub fn summary(files: &[PathBuf], destdir: Option<&Path>) -> String {
    let mut dirs: std::collections::BTreeMap<&Path, Vec<String>> = std::collections::BTreeMap::new();
    for file in files {
        let dir = file.parent().unwrap_or(Path::new("/"));
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        dirs.entry(dir).or_default().push(name);
    }
    let mut out = format!("install: {} files", files.len());
    if let Some(destdir) = destdir {
        out.push_str(&format!(" under {}", destdir.display()));
    }
    out.push('\n');
    for (dir, names) in &dirs {
        let listed = if names.len() <= 6 {
            names.join(", ")
        } else {
            format!("{} files", names.len())
        };
        out.push_str(&format!("  {}/: {listed}\n", dir.display()));
    }
    out.push_str(
        "next: name a repo in /etc/driftless/driftless.yaml (or run `sync-repo /path/to/checkout` \
         with no config), then\n  systemctl daemon-reload && systemctl enable --now sync-repo@NAME.timer\n\
         (hosts without systemd: uncomment a line of /etc/cron.d/driftless)\n",
    );
    out
}

/// `cargo xtask dist`: install into a staging dir with prefix /usr/local and pack it as
/// `target/dist/driftless-VERSION-ARCH.tar.gz`; returns the tarball's path.
pub fn dist(no_build: bool) -> Result<PathBuf> {
    let stage = tempfile::tempdir().context("creating a staging dir")?;
    let opts = Options {
        destdir: Some(stage.path().to_path_buf()),
        no_build,
        sample_config: false,
        ..Options::default()
    };
    let files = install(&opts)?;
    let out_dir = workspace::target_dir().join("dist");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let name = format!(
        "driftless-{}-{}-linux.tar.gz",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    );
    let tarball = out_dir.join(&name);
    let mut tar = Command::new("tar");
    tar.arg("--create")
        .arg("--gzip")
        .arg("--owner=0")
        .arg("--group=0")
        .arg("--numeric-owner")
        .arg("--sort=name")
        .arg("--file")
        .arg(&tarball)
        .arg("-C")
        .arg(stage.path())
        .args(["etc", "usr"]);
    run(&mut tar)?;
    println!(
        "dist: {} ({} files; unpack with `tar -xzf {name} -C /`)",
        tarball.display(),
        files.len()
    );
    Ok(tarball)
}

/// The unit files in `dir` (not the cron.d folder), sorted.
pub fn unit_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut units: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "service" || x == "timer" || x == "target" || x == "socket")
        })
        .collect();
    units.sort();
    Ok(units)
}

/// Build (unless `no_build`) and locate the release (or `debug`) binary of every tool, in
/// [`TOOLS`] order. Release binaries are static ([`workspace::build_bins`]).
fn release_bins(no_build: bool, debug: bool) -> Result<Vec<PathBuf>> {
    if !no_build {
        return workspace::build_bins(&TOOLS, !debug);
    }
    let dir = if debug {
        workspace::target_dir().join("debug")
    } else {
        workspace::release_dir(&workspace::host_triple()?)
    };
    TOOLS
        .iter()
        .map(|tool| {
            let bin = dir.join(tool);
            if bin.is_file() {
                Ok(bin)
            } else {
                bail!(
                    "{} is missing; build it with `cargo xtask {}` first (without --no-build)",
                    bin.display(),
                    if debug { "deb --debug" } else { "dist" }
                )
            }
        })
        .collect()
}

/// Every tool's binary in `dir`, in [`TOOLS`] order, as built elsewhere.
fn bins_in(dir: &Path) -> Result<Vec<PathBuf>> {
    TOOLS
        .iter()
        .map(|tool| {
            let bin = dir.join(tool);
            if bin.is_file() {
                Ok(bin)
            } else {
                bail!("--bin-dir {}: {tool} is missing there", dir.display())
            }
        })
        .collect()
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}
