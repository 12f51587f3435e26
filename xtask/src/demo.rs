//! `cargo xtask demo`: a narrated tour of the whole job on a throwaway forge (sync-repo, then
//! mirror-copy, drift-check with its metrics, and apply-compose when a docker engine is
//! reachable), which doubles as a smoke test: it exits non-zero as soon as a step does not
//! behave as documented.

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
    /// mirror-copy, drift-check and apply-compose, in that order.
    others: [PathBuf; 3],
    chapter: usize,
}

impl Tour<'_> {
    /// Paths shown relative to `$DEMO`, the binary shown by name.
    fn shorten(&self, text: &str) -> String {
        let mut text = text.replace(&self.bin.display().to_string(), "sync-repo");
        for (bin, name) in self.others.iter().zip(OTHERS) {
            text = text.replace(&bin.display().to_string(), name);
        }
        text.replace(&self.sb.root().display().to_string(), "$DEMO")
    }

    /// One of the other tools, with the demo's config.
    fn tool(&self, which: usize, config: &Path, args: &[&str]) -> Command {
        let mut cmd = self.sb.command(&self.others[which]);
        cmd.arg("--config").arg(config).args(args);
        cmd
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
        println!("$ printf '{}' {op} {shown}", self.shorten(&text.replace('\n', "\\n")));
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

/// The tools after sync-repo, as [`Tour::others`] holds them.
const OTHERS: [&str; 3] = ["mirror-copy", "drift-check", "apply-compose"];
const MIRROR: usize = 0;
const DRIFT: usize = 1;
const APPLY: usize = 2;

/// Run the tour; an error names the step that misbehaved.
pub fn run_demo(keep: bool) -> Result<()> {
    let bins = workspace::build_bins(&["sync-repo", OTHERS[0], OTHERS[1], OTHERS[2]], false)?;
    let [bin, mirror, drift, apply]: [PathBuf; 4] =
        bins.try_into().map_err(|_| crate::error::Error::msg("four binaries"))?;
    let mut sb = Sandbox::new("driftless-demo-")?;
    let result = tour(&sb, bin, [mirror, drift, apply]);
    if keep || result.is_err() {
        let kept = sb.keep();
        eprintln!("xtask: demo files kept in {}", kept.display());
    }
    result
}

fn tour(sb: &Sandbox, bin: PathBuf, others: [PathBuf; 3]) -> Result<()> {
    let mut t = Tour {
        sb,
        bin,
        others,
        chapter: 0,
    };
    let root = sb.root().to_owned();
    let forge_root = root.join("forge");
    let forge = forge_root.join("hub.git");
    let laptop = root.join("laptop");
    let host = root.join("srv/hub");
    let state = root.join("state");

    println!("driftless demo: sync-repo keeps a checkout on a host fast-forwarded to its forge;");
    println!("mirror-copy backs it up, drift-check reports what differs, apply-compose runs its stacks.");
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

    pipeline(&mut t, &url, &laptop, &host)?;

    drop(http);
    println!("\ndemo OK: every step behaved as documented.");
    Ok(())
}

/// The rest of the job, as a host runs it from its config: sync, mirror, drift, compose.
fn pipeline(t: &mut Tour, url: &str, laptop: &Path, host: &Path) -> Result<()> {
    let sb = t.sb;
    let root = sb.root().to_owned();
    let (backup, metrics) = (root.join("backup"), root.join("metrics"));
    let config = root.join("driftless.yaml");

    t.chapter("A config for the whole job: the repo, its mirror, its metrics");
    t.say("On a host this is /etc/driftless/driftless.yaml, and every tool takes the repo's name.");
    let yaml = format!(
        "state_dir: {state}\nmetrics_dir: {metrics}\nrepos:\n  hub:\n    path: {host}\n    remote: {url}\n    mirror:\n      to: {backup}\n",
        state = root.join("state-hub").display(),
        metrics = metrics.display(),
        host = host.display(),
        backup = backup.display(),
    );
    t.write(&config, &yaml, false)?;
    t.say("driftless never creates a mirror's destination (a backup disk that is not mounted must");
    t.say("not fill the root disk instead), nor the node_exporter directory:");
    t.expect(sb.command("mkdir").arg(&backup).arg(&metrics), 0)?;
    t.say("The hot fix is upstream now (the README push above stands in for it): take the forge's state.");
    let mut force = t.sb.command(&t.bin);
    force.arg("--config").arg(&config).args(["--force", "hub"]);
    t.expect(&mut force, 0)?;
    let status = t.expect(sb.git(host).args(["status", "--short"]), 0)?;
    ensure(status.stdout.is_empty(), "the host is clean at the forge's tip")?;

    t.chapter("mirror-copy: a one-way backup, without .git");
    t.expect(&mut t.tool(MIRROR, &config, &["hub"]), 0)?;
    ensure(
        std::fs::read_to_string(backup.join("app.env"))? == "LOG_LEVEL=debug\n",
        "the backup has app.env as the checkout has it",
    )?;
    ensure(
        !backup.join(".git").exists(),
        "no .git in the backup (excluded by default)",
    )?;

    t.chapter("drift-check: git against the host, for people, for Prometheus and by exit code");
    let out = t.expect(&mut t.tool(DRIFT, &config, &["hub"]), 0)?;
    ensure(
        String::from_utf8_lossy(&out.stdout).contains("no drift"),
        "drift-check reports no drift (exit 0)",
    )?;
    let prom = metrics.join("driftless-hub.prom");
    ensure(prom.is_file(), "a Prometheus textfile for node_exporter")?;
    t.expect(sb.command("grep").args(["-v", "^#"]).arg(&prom), 0)?;
    t.say("A push the host has not taken yet is drift (exit 1), with the command that fixes it:");
    t.write(&laptop.join("alerts.yaml"), "groups: [{name: disk}]\n", false)?;
    t.commit_and_push(laptop, "Alert on disk space")?;
    t.expect(&mut t.tool(DRIFT, &config, &["hub"]), 1)?;
    let mut sync = t.sb.command(&t.bin);
    sync.arg("--config").arg(&config).arg("hub");
    t.expect(&mut sync, 0)?;
    t.expect(&mut t.tool(DRIFT, &config, &["hub"]), 0)?;

    t.chapter("apply-compose: the stacks, as `docker compose up -d` in their directory");
    match docker_engine(sb) {
        Some(engine) => {
            t.say(&format!(
                "A docker engine answers ({engine}). A dry run shows what would be applied,"
            ));
            t.say("without starting anything on your machine (grafana:11 would be pulled):");
            let stacks = root.join("driftless-stacks.yaml");
            t.write(
                &stacks,
                &format!("{yaml}    stacks: [{{dir: \".\", project: demo-hub}}]\n"),
                false,
            )?;
            t.expect(docker_env(&mut t.tool(APPLY, &stacks, &["--dry-run", "hub"])), 0)?;
        }
        None => t.say(
            "No docker engine with Compose is reachable here, so this step is skipped: \
             apply-compose needs one (make test starts a private dockerd for its tests).",
        ),
    }
    Ok(())
}

/// `cmd` with the caller's docker settings: the sandbox clears the environment, but the engine
/// and the Compose plugin are the user's (`DOCKER_HOST`, `DOCKER_CONFIG` or `~/.docker`).
fn docker_env(cmd: &mut Command) -> &mut Command {
    if let Some(host) = std::env::var_os("DOCKER_HOST") {
        cmd.env("DOCKER_HOST", host);
    }
    let config = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")));
    if let Some(config) = config {
        cmd.env("DOCKER_CONFIG", config);
    }
    cmd
}

/// The engine's version when `docker compose` can talk to a running engine, else `None`.
fn docker_engine(sb: &Sandbox) -> Option<String> {
    let version = docker_env(&mut sb.command("docker"))
        .args(["version", "--format", "{{.Server.Version}}"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let compose = docker_env(&mut sb.command("docker"))
        .args(["compose", "version"])
        .output()
        .ok()?;
    compose
        .status
        .success()
        .then(|| format!("docker {}", String::from_utf8_lossy(&version.stdout).trim()))
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
