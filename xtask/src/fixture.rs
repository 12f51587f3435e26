//! Benchmark fixtures: one template history made with `git fast-import`, copied into many
//! distinct origin repos and checkouts, and a pusher that advances every origin by one commit.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Context, Result, bail};
use crate::sandbox::{Sandbox, describe, run};

/// Files changed by each commit after the first.
const FILES_PER_COMMIT: usize = 4;

/// Path of fixture file `i`: ten folders, so trees have some depth.
fn file_path(i: usize, files: usize) -> String {
    let per_dir = files.div_ceil(10).max(1);
    format!("d{:02}/f{i:03}.txt", i / per_dir)
}

/// A `git fast-import` stream: `files` files in the first commit, then `commits - 1` commits
/// that each change a few of them.
pub fn fast_import_stream(files: usize, commits: usize) -> Vec<u8> {
    let mut contents: Vec<String> = (0..files)
        .map(|i| {
            (0..32)
                .map(|line| format!("file {i} line {line}: setting_{line} = value-{}\n", i * line))
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    for c in 0..commits.max(1) {
        let changed: Vec<usize> = if c == 0 {
            (0..files).collect()
        } else {
            (0..FILES_PER_COMMIT).map(|k| (c * 7 + k * 13) % files).collect()
        };
        for &i in &changed {
            if c > 0 {
                contents[i].push_str(&format!("revision {c}\n"));
            }
        }
        let message = if c == 0 {
            "Initial import\n".to_owned()
        } else {
            format!("Change {c}\n")
        };
        out.extend_from_slice(b"commit refs/heads/main\n");
        out.extend_from_slice(format!("mark :{}\n", c + 1).as_bytes());
        out.extend_from_slice(
            format!(
                "committer Driftless Bench <bench@example.invalid> {} +0000\n",
                1_700_000_000 + c * 3600
            )
            .as_bytes(),
        );
        out.extend_from_slice(format!("data {}\n{message}", message.len()).as_bytes());
        if c > 0 {
            out.extend_from_slice(format!("from :{c}\n").as_bytes());
        }
        for &i in &changed {
            let body = &contents[i];
            out.extend_from_slice(format!("M 100644 inline {}\ndata {}\n", file_path(i, files), body.len()).as_bytes());
            out.extend_from_slice(body.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
    }
    out
}

/// Create the bare template repo at `dir` from [`fast_import_stream`].
pub fn make_template(sb: &Sandbox, dir: &Path, files: usize, commits: usize) -> Result<()> {
    run(sb
        .command("git")
        .args(["init", "--quiet", "--bare", "-b", "main"])
        .arg(dir))?;
    let mut cmd = sb.git(dir);
    cmd.args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("starting `{}`", describe(&cmd)))?;
    let stream = fast_import_stream(files, commits);
    child
        .stdin
        .take()
        .context("fast-import has no stdin")?
        .write_all(&stream)
        .context("feeding git fast-import")?;
    let output = child.wait_with_output().context("waiting for git fast-import")?;
    if !output.status.success() {
        bail!("git fast-import failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}

/// A distinct bare repo at `dest` with the template's history (objects hard-linked).
pub fn clone_bare(sb: &Sandbox, template: &Path, dest: &Path) -> Result<()> {
    run(sb
        .command("git")
        .args(["clone", "--quiet", "--bare"])
        .arg(template)
        .arg(dest))?;
    Ok(())
}

/// A checkout of `origin` at `dest` whose `origin` remote is then pointed at `url`.
pub fn clone_checkout(sb: &Sandbox, origin: &Path, dest: &Path, url: &str) -> Result<()> {
    run(sb.command("git").args(["clone", "--quiet"]).arg(origin).arg(dest))?;
    set_origin_url(dest, url)
}

/// Point a checkout's `origin` at `url` by editing `.git/config` (no git process needed).
pub fn set_origin_url(checkout: &Path, url: &str) -> Result<()> {
    let config_path = checkout.join(".git/config");
    let config = std::fs::read_to_string(&config_path).with_context(|| format!("reading {}", config_path.display()))?;
    let mut in_origin = false;
    let mut replaced = false;
    let mut out = String::with_capacity(config.len() + url.len());
    for line in config.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_origin = trimmed == r#"[remote "origin"]"#;
        }
        if in_origin && trimmed.starts_with("url =") {
            out.push_str(&format!("\turl = {url}\n"));
            replaced = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !replaced {
        bail!("{} has no remote \"origin\" url", config_path.display());
    }
    std::fs::write(&config_path, out).with_context(|| format!("writing {}", config_path.display()))
}

/// Run `f` on every item using a few threads; the first error wins.
pub fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> Result<R> + Sync) -> Result<Vec<R>> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get() * 2)
        .min(items.len());
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<Result<R>>> = (0..items.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, f(item)));
                    }
                    done
                })
            })
            .collect();
        for handle in handles {
            if let Ok(done) = handle.join() {
                for (i, result) in done {
                    results[i] = Some(result);
                }
            }
        }
    });
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(crate::error::Error::msg("a worker thread panicked"))))
        .collect()
}

/// A working clone of the template that makes one new commit per round and pushes it.
pub struct Pusher {
    dir: PathBuf,
    round: usize,
}

impl Pusher {
    /// Clone `template` into `dir`.
    pub fn new(sb: &Sandbox, template: &Path, dir: PathBuf) -> Result<Self> {
        run(sb.command("git").args(["clone", "--quiet"]).arg(template).arg(&dir))?;
        Ok(Pusher { dir, round: 0 })
    }

    /// Commit a change to one tracked file and one new file.
    pub fn commit(&mut self, sb: &Sandbox) -> Result<()> {
        self.round += 1;
        let round = self.round;
        let changed = self.dir.join("d00/f000.txt");
        let mut text = std::fs::read_to_string(&changed).with_context(|| format!("reading {}", changed.display()))?;
        text.push_str(&format!("bench round {round}\n"));
        std::fs::write(&changed, text)?;
        let added = self.dir.join(format!("rounds/round-{round:03}.txt"));
        std::fs::create_dir_all(self.dir.join("rounds"))?;
        std::fs::write(&added, format!("pushed by the benchmark, round {round}\n"))?;
        run(sb.git(&self.dir).args(["add", "-A"]))?;
        run(sb
            .git(&self.dir)
            .args(["commit", "--quiet", "-m"])
            .arg(format!("Bench round {round}")))?;
        Ok(())
    }

    /// Push the current commit to `origin`'s main.
    pub fn push(&self, sb: &Sandbox, origin: &Path) -> Result<()> {
        run(sb
            .git(&self.dir)
            .args(["push", "--quiet"])
            .arg(origin)
            .arg("HEAD:refs/heads/main"))?;
        Ok(())
    }

    /// Full hex id of the current commit.
    pub fn head(&self, sb: &Sandbox) -> Result<String> {
        crate::sandbox::stdout_of(sb.git(&self.dir).args(["rev-parse", "HEAD"]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::stdout_of;

    #[test]
    fn template_has_the_asked_files_and_commits() -> Result<()> {
        let sb = Sandbox::new("xtask-fixture-test-")?;
        let template = sb.root().join("t.git");
        make_template(&sb, &template, 20, 5)?;
        let commits = stdout_of(sb.git(&template).args(["rev-list", "--count", "main"]))?;
        let files = stdout_of(sb.git(&template).args(["ls-tree", "-r", "--name-only", "main"]))?;
        assert_eq!(commits, "5");
        assert_eq!(files.lines().count(), 20);
        run(sb.git(&template).args(["fsck", "--strict"]))?;

        let checkout = sb.root().join("c");
        clone_checkout(&sb, &template, &checkout, "http://127.0.0.1:1/git/t.git")?;
        let url = stdout_of(sb.git(&checkout).args(["remote", "get-url", "origin"]))?;
        assert_eq!(url, "http://127.0.0.1:1/git/t.git");
        Ok(())
    }

    #[test]
    fn pusher_advances_an_origin_by_one_commit() -> Result<()> {
        let sb = Sandbox::new("xtask-fixture-test-")?;
        let template = sb.root().join("t.git");
        make_template(&sb, &template, 10, 2)?;
        let origin = sb.root().join("o.git");
        clone_bare(&sb, &template, &origin)?;
        let mut pusher = Pusher::new(&sb, &template, sb.root().join("p"))?;
        pusher.commit(&sb)?;
        pusher.push(&sb, &origin)?;
        let tip = stdout_of(sb.git(&origin).args(["rev-parse", "main"]))?;
        assert_eq!(tip, pusher.head(&sb)?);
        assert_eq!(stdout_of(sb.git(&origin).args(["rev-list", "--count", "main"]))?, "3");
        Ok(())
    }
}
