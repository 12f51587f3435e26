//! `cargo xtask bench mirror`: mirror-copy against `rsync -a` and `rclone copy` with the same
//! excludes, on a 20,000-file, ~200 MB tree with a `.git` and a big `node_modules`.
//!
//! The destination is on a tmpfs (`/dev/shm`), because this machine's disk swings first-copy
//! times by seconds and would hide the tools; the same rounds are repeated with the
//! destination on disk. Tools alternate within each round, and each figure is a median.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::median;
use super::report::{load_average, write_named_section};
use crate::error::{Context, Result, bail};
use crate::sandbox::{Sandbox, has_program, run};
use crate::workspace;

/// How big and how long.
pub struct Options {
    pub rounds: usize,
    pub write_docs: bool,
}

/// Builds the command that copies the tree into a destination.
type Tool<'a> = Box<dyn Fn(&Path) -> Command + 'a>;

const EXCLUDES: [&str; 4] = [".git/**", "node_modules/**", ".terraform/**", ".tofu/**"];

/// Symbolic links in the tree (FAT has none: the FAT row leaves them out).
const LINKS: usize = 20;

/// The FAT destination: first copy and re-run of mirror-copy (no flags: the FAT-like mount is
/// detected) and of `rsync -rt --modify-window=1`, the usual rsync line for FAT (no links,
/// modes or owners there), once each, plus what mirror-copy's re-run copied, which must be 0.
struct FatRows {
    ours: (f64, f64),
    rsync: (f64, f64),
    recopied: u64,
}

/// A `mkfs.vfat` image mounted through FUSE (`fusefat`; this kernel has no vfat module).
fn fat_rows(sb: &Sandbox, bin: &Path, src: &Path, expected: usize) -> Result<FatRows> {
    let image = sb.root().join("fat.img");
    let mount = sb.root().join("fat");
    std::fs::create_dir_all(&mount).context("mkdir fat")?;
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(1 << 30))
        .context("fat image")?;
    run(sb.command("mkfs.vfat").args(["-F", "32"]).arg(&image))?;
    run(sb.command("fusefat").args(["-o", "rw+"]).arg(&image).arg(&mount))?;
    let result = (|| {
        let ours_dst = mount.join("ours");
        let rsync_dst = mount.join("rsync");
        for dst in [&ours_dst, &rsync_dst] {
            std::fs::create_dir_all(dst).with_context(|| format!("mkdir {}", dst.display()))?;
        }
        let _ = std::fs::remove_dir_all(sb.root().join("state"));
        let ours = |json: bool| {
            let mut c = sb.command(bin);
            c.arg(src)
                .arg("--to")
                .arg(&ours_dst)
                .arg("--skip-links")
                .arg("--state-dir")
                .arg(sb.root().join("state"))
                .arg(if json { "--json" } else { "-q" });
            c
        };
        let rsync = || {
            let mut c = sb.command("rsync");
            c.args(["-rt", "--modify-window=1"]);
            for e in EXCLUDES {
                c.arg("--exclude").arg(e);
            }
            c.arg(format!("{}/", src.display())).arg(&rsync_dst);
            c
        };
        warm_page_cache(src);
        let first = time(&mut ours(false))?;
        let start = Instant::now();
        let out = ours(true).output().context("mirror-copy re-run")?;
        let again = start.elapsed().as_secs_f64() * 1000.0;
        let record: serde_json::Value = serde_json::from_slice(&out.stdout).context("mirror-copy --json")?;
        let recopied = record["copied"].as_u64().unwrap_or(u64::MAX);
        verify(src, &ours_dst, expected)?;
        // rsync chmods every new file, which fusefat answers with ENOSYS: exit 23 ("some
        // attributes were not transferred") with every file in place, which `verify` checks.
        let rsync_time = || -> Result<f64> {
            let start = Instant::now();
            let status = rsync()
                .stderr(std::process::Stdio::null())
                .status()
                .context("running rsync")?;
            if !matches!(status.code(), Some(0 | 23)) {
                bail!("rsync to the FAT destination failed: {status}");
            }
            Ok(start.elapsed().as_secs_f64() * 1000.0)
        };
        warm_page_cache(src);
        let rsync_first = rsync_time()?;
        let rsync_again = rsync_time()?;
        verify(src, &rsync_dst, expected)?;
        Ok(FatRows {
            ours: (first, again),
            rsync: (rsync_first, rsync_again),
            recopied,
        })
    })();
    let _ = sb.command("fusermount").arg("-u").arg(&mount).status();
    result
}

/// Build the tree, time the three tools, write docs/benchmarks.md.
pub fn run_bench(opts: &Options) -> Result<()> {
    for program in ["rsync", "rclone", "git"] {
        if !has_program(program) {
            bail!("{program} is not installed (make deps installs it)");
        }
    }
    let bin = workspace::build_bin("mirror-copy", true)?;
    let sb = Sandbox::new("driftless-bench-mirror-")?;
    let src = sb.root().join("src");
    eprintln!("xtask: building a 20,000-file tree under {}", src.display());
    let (files, bytes, copied_files) = make_tree(&sb, &src)?;
    // Flush the freshly written tree first: its writeback would otherwise compete with the
    // first rounds for both cores.
    run(&mut sb.command("sync"))?;
    let shm = tempfile::Builder::new()
        .prefix("driftless-bench-mirror-")
        .tempdir_in("/dev/shm")
        .context("a dir on /dev/shm")?;
    let load_before = load_average();

    let tools: [(&str, Tool<'_>); 3] = [
        (
            "mirror-copy",
            Box::new(|dst: &Path| {
                let mut c = sb.command(&bin);
                c.arg(&src)
                    .arg("--to")
                    .arg(dst)
                    .arg("--state-dir")
                    .arg(sb.root().join("state"))
                    .arg("-q");
                c
            }),
        ),
        (
            "rsync -a",
            Box::new(|dst: &Path| {
                let mut c = sb.command("rsync");
                c.arg("-a");
                for e in EXCLUDES {
                    c.arg("--exclude").arg(e);
                }
                c.arg(format!("{}/", src.display())).arg(dst);
                c
            }),
        ),
        (
            "rclone copy",
            Box::new(|dst: &Path| {
                let mut c = sb.command("rclone");
                c.arg("copy").arg(&src).arg(dst).arg("--links");
                for e in EXCLUDES {
                    c.arg("--exclude").arg(e);
                }
                c
            }),
        ),
    ];

    let mut rows = Vec::new();
    for (place, base) in [("tmpfs", shm.path().to_owned()), ("disk", sb.root().join("dst"))] {
        let mut first = vec![Vec::new(); tools.len()];
        let mut again = vec![Vec::new(); tools.len()];
        for round in 0..opts.rounds {
            // Rotate the order so no tool always runs first (or last) in a round.
            for k in 0..tools.len() {
                let t = (k + round) % tools.len();
                let dst = base.join(format!("r{round}-{t}"));
                std::fs::create_dir_all(&dst).with_context(|| format!("creating {}", dst.display()))?;
                let _ = std::fs::remove_dir_all(sb.root().join("state"));
                warm_page_cache(&src);
                first[t].push(time(&mut tools[t].1(&dst))?);
                again[t].push(time(&mut tools[t].1(&dst))?);
                verify(&src, &dst, copied_files)?;
                std::fs::remove_dir_all(&dst).with_context(|| format!("removing {}", dst.display()))?;
            }
        }
        for (t, (name, _)) in tools.iter().enumerate() {
            rows.push((place, *name, median(&first[t]), median(&again[t])));
        }
    }

    let mut rss = Vec::new();
    for (name, tool) in &tools {
        let dst = shm.path().join("rss");
        std::fs::create_dir_all(&dst).context("rss dir")?;
        let _ = std::fs::remove_dir_all(sb.root().join("state"));
        rss.push((*name, peak_rss_kb(&sb, tool(&dst))?));
        std::fs::remove_dir_all(&dst).context("rss dir")?;
    }

    let fat = if has_program("fusefat") && has_program("mkfs.vfat") {
        Some(fat_rows(&sb, &bin, &src, copied_files - LINKS)?)
    } else {
        eprintln!("xtask: no fusefat or mkfs.vfat: the FAT row is left out (make deps installs them)");
        None
    };

    let section = render(
        opts,
        (files, bytes, copied_files),
        &rows,
        &rss,
        &load_before,
        fat.as_ref(),
    );
    print!("{section}");
    if opts.write_docs {
        write_named_section(&workspace::root().join("docs/benchmarks.md"), "mirror", &section)?;
        eprintln!("xtask: wrote the mirror section of docs/benchmarks.md");
    }
    Ok(())
}

fn time(cmd: &mut Command) -> Result<f64> {
    let start = Instant::now();
    run(cmd)?;
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

fn peak_rss_kb(sb: &Sandbox, cmd: Command) -> Result<f64> {
    let mut timed = sb.command("/usr/bin/time");
    timed.arg("-v").arg(cmd.get_program()).args(cmd.get_args());
    let out = timed.output().context("running /usr/bin/time -v")?;
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| crate::error::Error::msg(format!("no peak RSS in /usr/bin/time output:\n{text}")))
}

/// Every tool must leave the same number of files: a fast wrong copy is no result.
fn verify(src: &Path, dst: &Path, expected: usize) -> Result<()> {
    let n = count_files(dst);
    if n != expected {
        bail!(
            "{} holds {n} files after copying {}, expected {expected}",
            dst.display(),
            src.display()
        );
    }
    Ok(())
}

/// Read every file under `dir` once, so the next tool finds the source in the page cache.
///
/// rclone drops the pages of each file it has read (`fadvise(DONTNEED)`): without this, whichever
/// tool ran after rclone read the whole source from disk, one wait per file, and the first-copy
/// figures measured the rotation order more than the tools.
fn warm_page_cache(dir: &Path) {
    let Ok(read) = std::fs::read_dir(dir) else { return };
    for entry in read.flatten() {
        match entry.file_type() {
            Ok(t) if t.is_dir() => warm_page_cache(&entry.path()),
            Ok(t) if t.is_file() => {
                let _ = std::fs::File::open(entry.path()).and_then(|mut f| std::io::copy(&mut f, &mut std::io::sink()));
            }
            _ => {}
        }
    }
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|read| {
            read.flatten()
                .map(|e| {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        count_files(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// 9,700 files that are copied (nested dirs, 2-40 KB, a few of several MB, some executable,
/// some links) and 10,000 small files in node_modules, plus a .git with one commit of a few
/// files. Returns (files in the tree, bytes, files a mirror copies).
fn make_tree(sb: &Sandbox, src: &Path) -> Result<(usize, u64, usize)> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = 0;
    let mut bytes = 0u64;
    let mut copied = 0;
    let block: Vec<u8> = (0..64 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    let mut write = |path: PathBuf, size: usize, exec: bool, counts: bool| -> Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("mkdir {}", parent.display()))?;
        }
        let data: Vec<u8> = block.iter().cycle().skip(files % 97).take(size).copied().collect();
        std::fs::write(&path, data).with_context(|| format!("write {}", path.display()))?;
        if exec {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).context("chmod")?;
        }
        files += 1;
        bytes += size as u64;
        copied += usize::from(counts);
        Ok(())
    };
    for i in 0..9_700 {
        let size = if i % 1000 == 0 {
            4_000_000
        } else {
            2_000 + (i * 7919) % 22_000
        };
        write(
            src.join(format!("app/m{:02}/d{:02}/f{i}.txt", i % 37, i % 11)),
            size,
            i % 50 == 0,
            true,
        )?;
    }
    for i in 0..10_000 {
        write(
            src.join(format!("web/node_modules/p{:03}/lib/x{i}.js", i % 400)),
            4_500,
            false,
            false,
        )?;
    }
    for i in 0..LINKS {
        std::os::unix::fs::symlink(format!("m{:02}", i), src.join(format!("app/link{i}"))).context("symlink")?;
        copied += 1;
    }
    run(sb.git(src).args(["init", "-q", "-b", "main"]))?;
    std::fs::write(src.join("README.md"), "bench\n").context("README")?;
    copied += 1;
    run(sb.git(src).args(["add", "README.md"]))?;
    run(sb.git(src).args(["commit", "-q", "-m", "bench"]))?;
    Ok((files, bytes, copied))
}

fn render(
    opts: &Options,
    (files, bytes, copied): (usize, u64, usize),
    rows: &[(&str, &str, f64, f64)],
    rss: &[(&str, f64)],
    load_before: &str,
    fat: Option<&FatRows>,
) -> String {
    let mut out = format!(
        "Generated by `cargo xtask bench mirror --rounds {}` on {} (load average before: {load_before}).\n\n\
         Tree: {files} files, {:.0} MB, with `.git` and a 10,000-file `node_modules`; {copied} entries \
         are copied after the excludes `{}`. Every run is checked to leave exactly that many files. \
         Rounds rotate the tools' order; before each first copy the source is read once, so every \
         tool starts with it in the page cache (rclone drops the pages of the files it reads, which \
         would otherwise hand a cold cache to whichever tool runs after it).\n\n\
         | destination | tool | first copy, ms (median) | unchanged re-run, ms (median) |\n|---|---|---:|---:|\n",
        opts.rounds,
        crate::bench::report::now_utc(),
        bytes as f64 / 1e6,
        EXCLUDES.join(" "),
    );
    for (place, tool, first, again) in rows {
        out.push_str(&format!("| {place} | {tool} | {first:.0} | {again:.0} |\n"));
    }
    if let Some(fat) = fat {
        out.push_str(&format!(
            "| FAT (vfat image through fusefat), once | mirror-copy --skip-links | {:.0} | {:.0} |\n\
             | FAT (vfat image through fusefat), once | rsync -rt --modify-window=1 | {:.0} | {:.0} |\n",
            fat.ours.0, fat.ours.1, fat.rsync.0, fat.rsync.1
        ));
    }
    out.push_str("\n| tool | peak RSS, first copy to tmpfs |\n|---|---:|\n");
    for (tool, kb) in rss {
        out.push_str(&format!("| {tool} | {:.1} MB |\n", kb / 1024.0));
    }
    let get = |place: &str, tool: &str| rows.iter().find(|r| r.0 == place && r.1 == tool).map(|r| (r.2, r.3));
    if let (Some(ours), Some(rsync)) = (get("tmpfs", "mirror-copy"), get("tmpfs", "rsync -a")) {
        let rss_ours = rss.iter().find(|r| r.0 == "mirror-copy").map_or(0.0, |r| r.1 / 1024.0);
        out.push_str(&format!(
            "\n| target (tmpfs) | measured | met |\n|---|---:|:---:|\n\
             | first copy no slower than rsync | {:.0} vs {:.0} ms | {} |\n\
             | unchanged re-run no slower than rsync | {:.0} vs {:.0} ms | {} |\n\
             | peak RSS ≤ 20 MB | {rss_ours:.1} MB | {} |\n",
            ours.0,
            rsync.0,
            if ours.0 <= rsync.0 { "yes" } else { "**no**" },
            ours.1,
            rsync.1,
            if ours.1 <= rsync.1 { "yes" } else { "**no**" },
            if rss_ours <= 20.0 { "yes" } else { "**no**" },
        ));
    }
    if let Some(fat) = fat {
        out.push_str(&format!(
            "| FAT re-run copies nothing (FAT keeps 2 s times, no modes) | {} files copied | {} |\n",
            fat.recopied,
            if fat.recopied == 0 { "yes" } else { "**no**" },
        ));
    }
    out
}
