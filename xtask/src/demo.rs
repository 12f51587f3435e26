//! `cargo xtask demo`: a narrated tour of sync-repo on a throwaway forge, which doubles as a
//! smoke test: it exits non-zero as soon as a step does not behave as documented.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use driftless_tests::forge::SmartHttp;

use crate::error::{Context, Result, bail};
use crate::sandbox::{Sandbox, describe, run, stdout_of};
use crate::workspace;

/// The tour's state: the sandbox, the binary and where things live.
struct Tour<'a> {
    sb: &'a Sandbox,
    bin: PathBuf,
    chapter: usize,
}

impl Tour<'_> {
    /// Paths shown relative to `$DEMO`, the binary shown by name.
    fn shorten(&self, text: &str) -> String {
        text.replace(&self.bin.display().to_string(), "sync-repo")
            .replace(&self.sb.root().display().to_string(), "$DEMO")
    }

    fn chapter(&mut self, title: &str) {
        self.chapter += 1;
        println!("\n== {}. {title} ==\n", self.chapter);
    }

    fn say(&self, text: &str) {
        for line in text.lines() {
            println!("# {line}");
        }
    }

    /// Print the command, run it, print what it printed; the caller judges the exit code.
    fn show(&self, cmd: &mut Command) -> Result<Output> {
        println!("$ {}", self.shorten(&describe(cmd)));
        let output = cmd
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("starting `{}`", describe(cmd)))?;
        for stream in [&output.stdout, &output.stderr] {
            for line in String::from_utf8_lossy(stream).lines() {
                println!("  {}", self.shorten(line));
            }
        }
        if let Some(code) = output.status.code().filter(|c| *c != 0) {
            println!("  [exit {code}]");
        }
        Ok(output)
    }

    /// [`Tour::show`], then fail unless it exited with `code`.
    fn expect(&self, cmd: &mut Command, code: i32) -> Result<Output> {
        let output = self.show(cmd)?;
        if output.status.code() != Some(code) {
            bail!(
                "expected exit {code} from `{}`, got {}",
                self.shorten(&describe(cmd)),
                output.status
            );
        }
        Ok(output)
    }

    fn sync_repo(&self, state: &Path, args: &[&str], checkout: &Path) -> Command {
        let mut cmd = self.sb.command(&self.bin);
        cmd.arg("--state-dir").arg(state).args(args).arg(checkout);
        cmd
    }

    /// Write `text` to `file` in the demo, shown as the shell command that would do it.
    fn write(&self, file: &Path, text: &str, append: bool) -> Result<()> {
        let shown = self.shorten(&file.display().to_string());
        let op = if append { ">>" } else { ">" };
        println!("$ printf '{}' {op} {shown}", text.replace('\n', "\\n"));
        let mut content = if append {
            std::fs::read_to_string(file).unwrap_or_default()
        } else {
            String::new()
        };
        content.push_str(text);
        std::fs::write(file, content).with_context(|| format!("writing {}", file.display()))
    }

    /// Commit everything in `repo` and push it to `forge`.
    fn commit_and_push(&self, repo: &Path, message: &str) -> Result<String> {
        self.expect(self.sb.git(repo).args(["add", "-A"]), 0)?;
        self.expect(self.sb.git(repo).args(["commit", "--quiet", "-m", message]), 0)?;
        self.expect(self.sb.git(repo).args(["push", "--quiet", "origin", "HEAD:main"]), 0)?;
        stdout_of(self.sb.git(repo).args(["rev-parse", "HEAD"]))
    }
}

fn head(sb: &Sandbox, repo: &Path) -> Result<String> {
    stdout_of(sb.git(repo).args(["rev-parse", "HEAD"]))
}

fn ensure(condition: bool, what: &str) -> Result<()> {
    if !condition {
        bail!("demo check failed: {what}");
    }
    println!("  ok: {what}");
    Ok(())
}

/// Run the tour; an error names the step that misbehaved.
pub fn run_demo(keep: bool) -> Result<()> {
    let bin = workspace::build_bin("sync-repo", false)?;
    let mut sb = Sandbox::new("driftless-demo-")?;
    let result = tour(&sb, bin);
    if keep || result.is_err() {
        let kept = sb.keep();
        eprintln!("xtask: demo files kept in {}", kept.display());
    }
    result
}

fn tour(sb: &Sandbox, bin: PathBuf) -> Result<()> {
    let mut t = Tour { sb, bin, chapter: 0 };
    let root = sb.root().to_owned();
    let forge_root = root.join("forge");
    let forge = forge_root.join("hub.git");
    let laptop = root.join("laptop");
    let host = root.join("srv/hub");
    let state = root.join("state");

    println!("driftless demo: sync-repo keeps a checkout on a host fast-forwarded to its forge.");
    println!(
        "$DEMO = {} (removed at the end; pass --keep to keep it)",
        root.display()
    );

    t.chapter("A forge, a developer's clone and the host's checkout");
    t.expect(
        sb.command("git")
            .args(["init", "--quiet", "--bare", "-b", "main"])
            .arg(&forge),
        0,
    )?;
    std::fs::create_dir_all(&forge_root)?;
    let http = SmartHttp::start(&forge_root);
    let url = match &http {
        Ok(server) => {
            t.say("The forge is served over smart HTTP (lighttpd + git http-backend) on 127.0.0.1.");
            server.url("hub.git")
        }
        Err(e) => {
            t.say(&format!(
                "No smart HTTP forge ({e}); the host fetches from the forge's path."
            ));
            forge.display().to_string()
        }
    };
    t.say("The developer pushes straight to the forge's disk (standing in for an authenticated push).");
    t.expect(sb.command("git").args(["clone", "--quiet"]).arg(&forge).arg(&laptop), 0)?;
    t.write(
        &laptop.join("compose.yaml"),
        "services:\n  grafana:\n    image: grafana:11\n    env_file: app.env\n",
        false,
    )?;
    t.write(&laptop.join("app.env"), "LOG_LEVEL=info\n", false)?;
    t.commit_and_push(&laptop, "Add the observability stack")?;
    t.say("The host clones it once; from now on sync-repo keeps it current.");
    t.expect(sb.command("git").args(["clone", "--quiet", &url]).arg(&host), 0)?;

    t.chapter("A developer pushes; sync-repo fast-forwards the host");
    t.write(&laptop.join("app.env"), "LOG_LEVEL=debug\n", false)?;
    let tip = t.commit_and_push(&laptop, "Turn on debug logs")?;
    let out = t.expect(&mut t.sync_repo(&state, &[], &host), 0)?;
    ensure(
        String::from_utf8_lossy(&out.stdout).contains("updated"),
        "sync-repo reports `updated`",
    )?;
    ensure(head(sb, &host)? == tip, "the host's HEAD is the forge's tip")?;
    ensure(
        std::fs::read_to_string(host.join("app.env"))? == "LOG_LEVEL=debug\n",
        "app.env has the pushed content",
    )?;
    let status = t.expect(sb.git(&host).args(["status", "--short"]), 0)?;
    ensure(
        status.stdout.is_empty(),
        "`git status` is clean: index and worktree agree with HEAD",
    )?;
    t.expect(sb.git(&host).args(["reflog", "-2"]), 0)?;

    t.chapter("Nothing new: in sync, and the same as JSON");
    let out = t.expect(&mut t.sync_repo(&state, &[], &host), 0)?;
    ensure(
        String::from_utf8_lossy(&out.stdout).contains("in sync"),
        "sync-repo reports `in sync`",
    )?;
    let out = t.expect(&mut t.sync_repo(&state, &["--json"], &host), 0)?;
    let line = String::from_utf8_lossy(&out.stdout);
    let record: serde_json::Value = serde_json::from_str(line.trim()).context("parsing the --json line")?;
    ensure(
        record["outcome"] == "in_sync",
        "the JSON record says outcome \"in_sync\"",
    )?;
    if let Some(state_file) = find_file(&state, "sync-repo.json") {
        t.say("Every run leaves its outcome in the state dir, for monitoring and the other tools:");
        t.expect(sb.command("cat").arg(&state_file), 0)?;
    } else {
        bail!("no sync-repo.json under {}", state.display());
    }

    t.chapter("--dry-run: fetch and report, change nothing");
    t.write(&laptop.join("alerts.yaml"), "groups: []\n", false)?;
    let pending = t.commit_and_push(&laptop, "Add alert rules")?;
    let out = t.expect(&mut t.sync_repo(&state, &["--dry-run"], &host), 0)?;
    ensure(
        String::from_utf8_lossy(&out.stdout).contains("would update"),
        "sync-repo reports `would update`",
    )?;
    ensure(head(sb, &host)? == tip, "HEAD did not move")?;
    ensure(!host.join("alerts.yaml").exists(), "alerts.yaml is not there yet")?;

    t.chapter("Someone hot-fixes the host: sync-repo refuses and changes nothing");
    t.write(&host.join("app.env"), "HOTFIX=1\n", true)?;
    let out = t.expect(&mut t.sync_repo(&state, &[], &host), 3)?;
    ensure(
        String::from_utf8_lossy(&out.stdout).contains("refused"),
        "sync-repo reports `refused` (exit 3: needs a human)",
    )?;
    ensure(head(sb, &host)? == tip, "HEAD did not move")?;
    ensure(
        std::fs::read_to_string(host.join("app.env"))?.contains("HOTFIX=1"),
        "the hot fix is still in app.env",
    )?;

    t.chapter("--force: take the forge's state, keep the hot fix under refs/driftless/preserved/");
    t.expect(&mut t.sync_repo(&state, &["--force"], &host), 0)?;
    ensure(head(sb, &host)? == pending, "the host's HEAD is the forge's tip")?;
    ensure(host.join("alerts.yaml").exists(), "alerts.yaml arrived")?;
    ensure(
        std::fs::read_to_string(host.join("app.env"))? == "LOG_LEVEL=debug\n",
        "app.env is the forge's version again",
    )?;
    let refs = t.expect(
        sb.git(&host)
            .args(["for-each-ref", "--format=%(refname)", "refs/driftless/preserved/"]),
        0,
    )?;
    let refs: Vec<String> = String::from_utf8_lossy(&refs.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    ensure(!refs.is_empty(), "a preserved ref exists")?;
    let mut rescued = false;
    for preserved in &refs {
        t.expect(sb.git(&host).args(["log", "--oneline", "-3", preserved]), 0)?;
        let env = t.show(sb.git(&host).args(["show", &format!("{preserved}:app.env")]))?;
        rescued |= String::from_utf8_lossy(&env.stdout).contains("HOTFIX=1");
    }
    ensure(rescued, "the hot fix is recorded in a preserved ref")?;
    let newest = refs.last().context("no preserved ref")?;
    t.expect(sb.git(&host).args(["diff", "HEAD", newest, "--", "app.env"]), 0)?;

    t.chapter("Getting the hot fix back");
    t.say("The preserved commits sit on the HEAD they were taken from, so HEAD..<ref> is exactly");
    t.say("the local work; cherry-pick re-applies it on the new HEAD (docs/runbook.md has more):");
    t.expect(sb.git(&host).args(["log", "--oneline", &format!("HEAD..{newest}")]), 0)?;
    t.expect(
        sb.git(&host)
            .args(["cherry-pick", "--no-commit", &format!("HEAD..{newest}")]),
        0,
    )?;
    t.expect(sb.git(&host).args(["status", "--short"]), 0)?;
    let env = std::fs::read_to_string(host.join("app.env"))?;
    ensure(
        env.contains("HOTFIX=1") && env.contains("LOG_LEVEL=debug"),
        "app.env has the forge's change and the hot fix",
    )?;
    t.say("While the forge has nothing new, there is nothing to do: `in sync`, changes left alone:");
    t.expect(&mut t.sync_repo(&state, &[], &host), 0)?;
    t.say("Once the forge moves on, it refuses again rather than overwrite the fix, until the");
    t.say("fix is committed upstream from a clone that can push:");
    t.write(&laptop.join("README.md"), "Observability hub\n", false)?;
    t.commit_and_push(&laptop, "Add a README")?;
    t.expect(&mut t.sync_repo(&state, &[], &host), 3)?;

    drop(http);
    println!("\ndemo OK: every step behaved as documented.");
    Ok(())
}

/// The first file named `name` below `dir`, depth first.
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

/// Fail early with a clear message if git is missing.
pub fn check_tools() -> Result<()> {
    run(Command::new("git").arg("--version"))
        .map(|_| ())
        .context("git is required")
}
