//! `cargo xtask bench sync`: sync-repo against the RFC 005 bash controller and `git ls-remote`,
//! over many loopback repos served by a real smart HTTP forge (and git daemon).
//!
//! Every figure is a whole sequential loop over all repos timed with `Instant`, divided by the
//! number of repos; each loop is repeated `rounds` times and the report gives the median.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use driftless_tests::forge::{GitDaemon, SmartHttp};
use serde_json::json;

use super::median;
use super::report::{self, Machine, Results, RssRow, Series};
use crate::error::{Context, Error, Result, bail};
use crate::fixture::{Pusher, clone_bare, clone_checkout, make_template, parallel, set_origin_url};
use crate::sandbox::{self, Sandbox, describe, has_program, stdout_of};
use crate::workspace;

/// Files in every fixture repo.
pub const FILES: usize = 200;
/// Commits in every fixture repo's history.
pub const COMMITS: usize = 50;
/// Processes whose peak RSS is sampled per case.
const RSS_SAMPLES: usize = 5;
/// Commits the far-behind checkout lacks.
pub const BEHIND: usize = 2_000;
/// The user who owns the checkouts of the privilege-separated case: `nobody`.
const FOREIGN_OWNER: &str = "65534:65534";

/// The controller from RFC 005, verbatim: what sync-repo replaces.
pub const RFC005_SCRIPT: &str = r#"#!/bin/bash
set -euo pipefail
REPO_PATH=$1
cd "$REPO_PATH"
git fetch origin main --quiet
LOCAL_HASH=$(git rev-parse HEAD)
REMOTE_HASH=$(git rev-parse origin/main)
if [ "$LOCAL_HASH" != "$REMOTE_HASH" ]; then
    echo "Changes detected. Synchronizing repository..."
    git pull origin main
else
    echo "Repository in sync."
fi
"#;

/// What `cargo xtask bench sync` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Origin repos (and checkouts per tool).
    pub repos: usize,
    /// Timed rounds per case (after one warm-up round for the no-change case).
    pub rounds: usize,
    /// Overwrite the generated section of docs/benchmarks.md.
    pub write_docs: bool,
    /// Keep the temp dir with the fixtures for inspection.
    pub keep: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            repos: 100,
            rounds: 3,
            write_docs: true,
            keep: false,
        }
    }
}

/// How the contenders reach the origins.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// lighttpd + `git http-backend` on 127.0.0.1: what a forge looks like.
    Http,
    /// The origin's path as a file:// URL: no forge in between, so only client cost differs.
    File,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::File => "file",
        }
    }

    /// Series keys are prefixed per transport: `single`, `file-single`.
    fn key(self, key: &'static str) -> &'static str {
        match (self, key) {
            (Transport::Http, key) => key,
            (Transport::File, "script") => "file-script",
            (Transport::File, "ls-remote") => "file-ls-remote",
            (Transport::File, "single") => "file-single",
            (Transport::File, "all") => "file-all",
            (Transport::File, "all-j1") => "file-all-j1",
            (Transport::File, "script-change") => "file-script-change",
            (Transport::File, "single-change") => "file-single-change",
            (Transport::File, other) => other,
        }
    }
}

/// One fixture repo: its origin, the two checkouts (one per contender) and its URLs.
struct Repo {
    name: String,
    origin: PathBuf,
    /// Checkout the RFC 005 script keeps in sync.
    script_checkout: PathBuf,
    /// Checkout sync-repo keeps in sync.
    sync_checkout: PathBuf,
    http_url: String,
    file_url: String,
    git_url: Option<String>,
}

impl Repo {
    fn url(&self, transport: Transport) -> &str {
        match transport {
            Transport::Http => &self.http_url,
            Transport::File => &self.file_url,
        }
    }
}

/// Everything the timing loops need.
struct Bench<'a> {
    sb: &'a Sandbox,
    bin: PathBuf,
    script: PathBuf,
    /// The forge's folder and its HTTP base URL, to rewrite one into the other for the script.
    forge: PathBuf,
    http_base: String,
    /// `--all` configs: the checkouts' origin (HTTP), and the same repos with file:// remotes.
    http_config: PathBuf,
    file_config: PathBuf,
    state_dir: PathBuf,
    repos: Vec<Repo>,
}

/// What a run must print for the loop to count.
#[derive(Clone, Copy)]
enum Expect {
    /// Exit 0 and stdout contains the text.
    Stdout(&'static str),
}

impl Bench<'_> {
    fn script(&self, repo: &Repo, transport: Transport) -> Command {
        let mut cmd = self.sb.command("bash");
        if transport == Transport::File {
            // The checkouts' origin is the HTTP URL; have every git the script runs read it as
            // the forge's path instead (url.<base>.insteadOf), leaving the script untouched.
            cmd.env("GIT_CONFIG_COUNT", "1")
                .env(
                    "GIT_CONFIG_KEY_0",
                    format!("url.file://{}/.insteadOf", self.forge.display()),
                )
                .env("GIT_CONFIG_VALUE_0", &self.http_base);
        }
        cmd.arg(&self.script).arg(&repo.script_checkout);
        cmd
    }

    fn ls_remote(&self, url: &str, protocol_v0: bool) -> Command {
        let mut cmd = self.sb.command("git");
        if protocol_v0 {
            cmd.args(["-c", "protocol.version=0"]);
        }
        cmd.args(["ls-remote", url, "refs/heads/main"]);
        cmd
    }

    fn sync_single(&self, repo: &Repo, remote: Option<&str>) -> Command {
        let mut cmd = self.sb.command(&self.bin);
        cmd.arg("--state-dir").arg(&self.state_dir);
        if let Some(remote) = remote {
            cmd.args(["--remote", remote]);
        }
        cmd.arg(&repo.sync_checkout);
        cmd
    }

    /// `sync-repo PATH` over `transport`: the checkout's own origin for HTTP, `--remote` for file.
    fn sync_over(&self, repo: &Repo, transport: Transport) -> Command {
        match transport {
            Transport::Http => self.sync_single(repo, None),
            Transport::File => self.sync_single(repo, Some(&repo.file_url)),
        }
    }

    fn sync_all(&self, transport: Transport, jobs: Option<usize>) -> Command {
        let mut cmd = self.sb.command(&self.bin);
        let config = match transport {
            Transport::Http => &self.http_config,
            Transport::File => &self.file_config,
        };
        cmd.arg("--all").arg("--config").arg(config);
        if let Some(jobs) = jobs {
            cmd.args(["--jobs", &jobs.to_string()]);
        }
        cmd
    }

    /// Run `make(repo)` for every repo in turn; milliseconds per repo for the whole loop.
    fn per_repo(&self, expect: Expect, make: impl Fn(&Repo) -> Command) -> Result<f64> {
        let commands: Vec<Command> = self.repos.iter().map(make).collect();
        let mut outputs = Vec::with_capacity(commands.len());
        let start = Instant::now();
        for mut cmd in commands {
            let output = cmd.stdin(Stdio::null()).output();
            outputs.push((cmd, output));
        }
        let elapsed = start.elapsed();
        for (cmd, output) in outputs {
            check(&cmd, output, expect)?;
        }
        Ok(elapsed.as_secs_f64() * 1000.0 / self.repos.len() as f64)
    }

    /// Run one command that covers all repos; milliseconds per repo.
    fn one_process(&self, expect: Expect, mut cmd: Command) -> Result<f64> {
        let start = Instant::now();
        let output = cmd.stdin(Stdio::null()).output();
        let elapsed = start.elapsed();
        check(&cmd, output, expect)?;
        Ok(elapsed.as_secs_f64() * 1000.0 / self.repos.len() as f64)
    }

    /// Peak RSS in kB of `cmd` (the largest process of its tree), via `/usr/bin/time -v`.
    fn peak_rss_kb(&self, cmd: &Command, expect: Expect) -> Result<u64> {
        let report = self.sb.root().join("time-v.txt");
        let mut timed = self.sb.command("/usr/bin/time");
        timed
            .arg("-v")
            .arg("-o")
            .arg(&report)
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            if let Some(value) = value {
                timed.env(key, value);
            }
        }
        let output = timed.stdin(Stdio::null()).output();
        check(&timed, output, expect)?;
        let text = std::fs::read_to_string(&report).context("reading /usr/bin/time's report")?;
        text.lines()
            .find_map(|line| line.trim().strip_prefix("Maximum resident set size (kbytes):"))
            .and_then(|kb| kb.trim().parse().ok())
            .with_context(|| format!("no peak RSS in /usr/bin/time's report:\n{text}"))
    }
}

fn check(cmd: &Command, output: std::io::Result<Output>, expect: Expect) -> Result<()> {
    let output = output.with_context(|| format!("starting `{}`", describe(cmd)))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Expect::Stdout(wanted) = expect;
    if !output.status.success() || !stdout.contains(wanted) {
        bail!(
            "`{}` did not exit 0 with {wanted:?} on stdout ({}):\nstdout:\n{stdout}\nstderr:\n{}",
            describe(cmd),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// Build the fixtures, run every case, print the report and (by default) write it to the docs.
pub fn run(opts: &Options) -> Result<()> {
    if opts.repos == 0 || opts.rounds == 0 {
        bail!("--repos and --rounds must be at least 1");
    }
    let started = Instant::now();
    let bin = workspace::build_bin("sync-repo", true)?;
    let mut sb = Sandbox::new("driftless-bench-")?;
    let root = sb.root().to_owned();
    let result = run_in(opts, &sb, bin, &root);
    if opts.keep || result.is_err() {
        let kept = sb.keep();
        eprintln!("xtask: fixtures kept in {}", kept.display());
    }
    let results = result?;
    let markdown = report::render(&results);
    println!("{markdown}");
    let json_path = workspace::target_dir().join("xtask/bench-sync.json");
    if let Some(dir) = json_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&json_path, serde_json::to_string_pretty(&report::to_json(&results))?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    eprintln!("xtask: raw figures in {}", json_path.display());
    if opts.write_docs {
        let doc = workspace::root().join("docs/benchmarks.md");
        report::write_generated_section(&doc, &markdown)?;
        eprintln!("xtask: updated the generated section of {}", doc.display());
    }
    eprintln!("xtask: bench sync took {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Progress on stderr, with the seconds since the bench started.
fn step(text: &str) {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let elapsed = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    eprintln!("xtask: [{elapsed:5.0} s] {text}");
}

fn run_in(opts: &Options, sb: &Sandbox, bin: PathBuf, root: &Path) -> Result<Results> {
    let n = opts.repos;
    let mut notes = Vec::new();
    let load_before = report::load_average();

    step(&format!(
        "building {n} origin repos ({FILES} files, {COMMITS} commits each)"
    ));
    let fixture_start = Instant::now();
    let template = root.join("template.git");
    make_template(sb, &template, FILES, COMMITS)?;
    let forge = root.join("forge");
    std::fs::create_dir_all(&forge)?;
    let names: Vec<String> = (0..n).map(|i| format!("r{i:03}")).collect();
    parallel(&names, |name| {
        clone_bare(sb, &template, &forge.join(format!("{name}.git")))
    })?;

    let http = SmartHttp::start(&forge).map_err(|e| {
        Error::msg(format!(
            "starting the smart HTTP forge failed (`make deps` installs lighttpd): {e}"
        ))
    })?;
    let daemon = match GitDaemon::start(&forge) {
        Ok(daemon) => Some(daemon),
        Err(e) => {
            let note = format!("git daemon could not be started, git:// cases skipped: {e}");
            eprintln!("xtask: {note}");
            notes.push(note);
            None
        }
    };

    let checkouts = root.join("checkouts");
    let repos: Vec<Repo> = names
        .iter()
        .map(|name| {
            let repo_file = format!("{name}.git");
            let origin = forge.join(&repo_file);
            Repo {
                name: name.clone(),
                file_url: format!("file://{}", origin.display()),
                origin,
                script_checkout: checkouts.join("script").join(name),
                sync_checkout: checkouts.join("sync-repo").join(name),
                http_url: http.url(&repo_file),
                git_url: daemon.as_ref().map(|d| d.url(&repo_file)),
            }
        })
        .collect();
    step(&format!("cloning {} checkouts", 2 * n));
    parallel(&repos, |repo| {
        clone_checkout(sb, &repo.origin, &repo.script_checkout, &repo.http_url)?;
        clone_checkout(sb, &repo.origin, &repo.sync_checkout, &repo.http_url)
    })?;
    let mut pusher = Pusher::new(sb, &template, root.join("pusher"))?;
    step(&format!(
        "fixtures ready in {:.1} s",
        fixture_start.elapsed().as_secs_f64()
    ));

    let script = root.join("rfc005-controller.sh");
    std::fs::write(&script, RFC005_SCRIPT)?;
    let http_config = root.join("driftless-http.yaml");
    let file_config = root.join("driftless-file.yaml");
    for (config, transport) in [(&http_config, Transport::Http), (&file_config, Transport::File)] {
        let state = root.join(format!("state-all-{}", transport.name()));
        let mut yaml = format!("state_dir: {}\nrepos:\n", state.display());
        for repo in &repos {
            yaml.push_str(&format!(
                "  {}:\n    path: {}\n",
                repo.name,
                repo.sync_checkout.display()
            ));
            if transport == Transport::File {
                yaml.push_str(&format!("    remote: {}\n", repo.file_url));
            }
        }
        std::fs::write(config, yaml)?;
    }

    let bench = Bench {
        sb,
        bin,
        script,
        forge: forge.clone(),
        http_base: http.url(""),
        http_config,
        file_config,
        state_dir: root.join("state"),
        repos,
    };
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let transports = [Transport::Http, Transport::File];

    // No change: one warm-up round (fills caches, writes the first state files), then `rounds`.
    let mut no_change = Vec::new();
    for t in transports {
        let floor = match t {
            Transport::Http => "`git ls-remote` per repo (CLI floor)",
            Transport::File => "`git ls-remote` per repo (CLI floor; spawns upload-pack)",
        };
        no_change.extend([
            Series::new(t.key("script"), "RFC 005 script, one `bash` per repo", t.name()).baseline(),
            Series::new(t.key("ls-remote"), floor, t.name()),
            Series::new(t.key("single"), "`sync-repo PATH`, one process per repo", t.name()),
            Series::new(
                t.key("all"),
                &format!("`sync-repo --all` (default -j: {jobs} cores)"),
                t.name(),
            ),
            Series::new(t.key("all-j1"), "`sync-repo --all -j 1`", t.name()),
        ]);
    }
    for round in 0..=opts.rounds {
        let warm = if round == 0 { " (warm-up)" } else { "" };
        step(&format!("no change, round {round}/{}{warm}", opts.rounds));
        let mut figures = Vec::new();
        for t in transports {
            figures.extend([
                bench.per_repo(Expect::Stdout("Repository in sync."), |r| bench.script(r, t))?,
                bench.per_repo(Expect::Stdout("refs/heads/main"), |r| bench.ls_remote(r.url(t), false))?,
                bench.per_repo(Expect::Stdout("in sync"), |r| bench.sync_over(r, t))?,
                bench.one_process(Expect::Stdout("in sync"), bench.sync_all(t, None))?,
                bench.one_process(Expect::Stdout("in sync"), bench.sync_all(t, Some(1)))?,
            ]);
        }
        if round > 0 {
            for (series, ms) in no_change.iter_mut().zip(figures) {
                series.samples.push(ms);
            }
        }
    }

    // git:// : the CLI's protocol v2 stalls on loopback, so v0 is shown as well.
    let mut git_daemon = Vec::new();
    if daemon.is_some() {
        let rounds = opts.rounds.min(2);
        git_daemon = vec![
            Series::new(
                "git-ls-remote-v2",
                "`git ls-remote` per repo (protocol v2, the default)",
                "git",
            ),
            Series::new(
                "git-ls-remote-v0",
                "`git -c protocol.version=0 ls-remote` per repo",
                "git",
            ),
            Series::new(
                "git-single",
                "`sync-repo --remote git://… PATH`, one process per repo",
                "git",
            ),
        ];
        for round in 0..=rounds {
            let warm = if round == 0 { " (warm-up)" } else { "" };
            step(&format!("git:// no change, round {round}/{rounds}{warm}"));
            let url = |r: &Repo| r.git_url.clone().unwrap_or_default();
            let figures = [
                bench.per_repo(Expect::Stdout("refs/heads/main"), |r| bench.ls_remote(&url(r), false))?,
                bench.per_repo(Expect::Stdout("refs/heads/main"), |r| bench.ls_remote(&url(r), true))?,
                bench.per_repo(Expect::Stdout("in sync"), |r| bench.sync_single(r, Some(&url(r))))?,
            ];
            if round > 0 {
                for (series, ms) in git_daemon.iter_mut().zip(figures) {
                    series.samples.push(ms);
                }
            }
        }
    }

    // Change: before each measurement every origin gets one new commit, so both checkout sets
    // are exactly one commit behind and every round starts from the same situation.
    let mut change = Vec::new();
    for t in transports {
        change.extend([
            Series::new(t.key("script-change"), "RFC 005 script, one `bash` per repo", t.name()).baseline(),
            Series::new(
                t.key("single-change"),
                "`sync-repo PATH`, one process per repo",
                t.name(),
            ),
        ]);
    }
    for round in 1..=opts.rounds {
        step(&format!("change, round {round}/{}", opts.rounds));
        for (i, t) in transports.into_iter().enumerate() {
            push_all(&bench, &mut pusher, None)?;
            let script = || bench.per_repo(Expect::Stdout("Changes detected"), |r| bench.script(r, t));
            let single = || bench.per_repo(Expect::Stdout("updated"), |r| bench.sync_over(r, t));
            // Alternate who goes first, so neither always meets the colder cache.
            let (script_ms, single_ms) = if round % 2 == 1 {
                let s = script()?;
                (s, single()?)
            } else {
                let c = single()?;
                (script()?, c)
            };
            change[2 * i].samples.push(script_ms);
            change[2 * i + 1].samples.push(single_ms);
        }
    }
    step("checking every checkout against its origin");
    verify_checkouts(&bench, &pusher.head(bench.sb)?)?;

    // Cross-check the loop figures on one repo with hyperfine, when it is installed.
    let hyperfine = if has_program("hyperfine") {
        step("hyperfine cross-check on one repo");
        match hyperfine_one(&bench) {
            Ok(rows) => Some(rows),
            Err(e) => {
                notes.push(format!("hyperfine cross-check failed: {e}"));
                None
            }
        }
    } else {
        notes.push("hyperfine not installed: no cross-check (`make deps` installs it)".into());
        None
    };

    let rss = if Path::new("/usr/bin/time").exists() {
        step("peak RSS");
        peak_rss(&bench, &mut pusher)?
    } else {
        notes.push("/usr/bin/time missing: no peak RSS (`make deps` installs package `time`)".into());
        Vec::new()
    };

    let foreign = if is_root() {
        step("foreign owner: checkouts owned by nobody, synced by root");
        foreign_owner(&bench, &template, &http, root, opts.rounds)?
    } else {
        notes.push("not root: no foreign-owner (privilege-separated) case".into());
        Vec::new()
    };
    step(&format!("{BEHIND} commits behind"));
    let behind = far_behind(&bench, &http, root, opts.rounds)?;

    drop(daemon);
    drop(http);
    Ok(Results {
        repos: n,
        rounds: opts.rounds,
        files: FILES,
        commits: COMMITS,
        machine: Machine::probe(bench.sb, &bench.bin, load_before),
        no_change,
        change,
        git_daemon,
        foreign,
        behind,
        hyperfine,
        rss,
        notes,
    })
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The privilege-separated path: every checkout owned by `nobody` (as one cloned by a `deploy`
/// user), the state dir root's, sync-repo run by root, so the git work runs in a worker with
/// the owner's uid. The script runs as root on its own such checkouts, with `safe.directory=*`
/// (without it git refuses a foreign owner's repo). Own origins and pusher, so the other
/// cases' checkouts stay where their rounds left them.
fn foreign_owner(bench: &Bench, template: &Path, http: &SmartHttp, root: &Path, rounds: usize) -> Result<Vec<Series>> {
    use std::os::unix::fs::PermissionsExt;
    let sb = bench.sb;
    let names: Vec<String> = (0..bench.repos.len()).map(|i| format!("f{i:03}")).collect();
    parallel(&names, |name| {
        clone_bare(sb, template, &bench.forge.join(format!("{name}.git")))
    })?;
    let checkouts = root.join("foreign");
    let repos: Vec<Repo> = names
        .iter()
        .map(|name| {
            let repo_file = format!("{name}.git");
            let origin = bench.forge.join(&repo_file);
            Repo {
                name: name.clone(),
                file_url: format!("file://{}", origin.display()),
                origin,
                script_checkout: checkouts.join("script").join(name),
                sync_checkout: checkouts.join("sync-repo").join(name),
                http_url: http.url(&repo_file),
                git_url: None,
            }
        })
        .collect();
    parallel(&repos, |repo| {
        clone_checkout(sb, &repo.origin, &repo.script_checkout, &repo.http_url)?;
        clone_checkout(sb, &repo.origin, &repo.sync_checkout, &repo.http_url)
    })?;
    // The sandbox is 0700; the owner must reach its checkouts.
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
    sandbox::run(sb.command("chown").args(["-R", FOREIGN_OWNER]).arg(&checkouts))?;
    let state_dir = root.join("state-foreign");
    std::fs::create_dir_all(&state_dir)?;
    let foreign = Bench {
        sb,
        bin: bench.bin.clone(),
        script: bench.script.clone(),
        forge: bench.forge.clone(),
        http_base: bench.http_base.clone(),
        http_config: bench.http_config.clone(),
        file_config: bench.file_config.clone(),
        state_dir,
        repos,
    };
    let script = |repo: &Repo| {
        let mut cmd = foreign.script(repo, Transport::Http);
        cmd.env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "safe.directory")
            .env("GIT_CONFIG_VALUE_0", "*");
        cmd
    };
    let sync = |repo: &Repo| foreign.sync_single(repo, None);
    let mut series = vec![
        Series::new("foreign-script", "RFC 005 script as root, one `bash` per repo", "http").baseline(),
        Series::new(
            "foreign-single",
            "`sync-repo PATH` as root (worker as the owner), one process per repo",
            "http",
        ),
        Series::new(
            "foreign-script-change",
            "one new commit: RFC 005 script as root, one `bash` per repo",
            "http",
        )
        .baseline(),
        Series::new(
            "foreign-single-change",
            "one new commit: `sync-repo PATH` as root (worker as the owner)",
            "http",
        ),
    ];
    for round in 0..=rounds {
        let warm = if round == 0 { " (warm-up)" } else { "" };
        step(&format!("foreign owner, no change, round {round}/{rounds}{warm}"));
        let script_ms = foreign.per_repo(Expect::Stdout("Repository in sync."), script)?;
        let sync_ms = foreign.per_repo(Expect::Stdout("in sync"), sync)?;
        if round > 0 {
            series[0].samples.push(script_ms);
            series[1].samples.push(sync_ms);
        }
    }
    let mut pusher = Pusher::new(sb, template, root.join("foreign-pusher"))?;
    for round in 1..=rounds {
        step(&format!("foreign owner, change, round {round}/{rounds}"));
        pusher.commit(sb)?;
        parallel(&foreign.repos, |repo| pusher.push(sb, &repo.origin))?;
        let script_ms = || foreign.per_repo(Expect::Stdout("Changes detected"), script);
        let sync_ms = || foreign.per_repo(Expect::Stdout("updated"), sync);
        let (script_ms, sync_ms) = if round % 2 == 1 {
            let s = script_ms()?;
            (s, sync_ms()?)
        } else {
            let c = sync_ms()?;
            (script_ms()?, c)
        };
        series[2].samples.push(script_ms);
        series[3].samples.push(sync_ms);
    }
    let tip = pusher.head(sb)?;
    parallel(&foreign.repos, |repo| {
        let checkout = &repo.sync_checkout;
        let git = || {
            let mut cmd = sb.command("git");
            cmd.args(["-c", "safe.directory=*", "-C"]).arg(checkout);
            cmd
        };
        // Ownership first: `git status` as root would rewrite the index as root's.
        let root_owned = stdout_of(
            sb.command("find")
                .arg(checkout)
                .args(["-not", "-user", "65534", "-print", "-quit"]),
        )?;
        let head = stdout_of(git().args(["rev-parse", "HEAD"]))?;
        let status = stdout_of(git().args(["--no-optional-locks", "status", "--porcelain"]))?;
        if head != tip || !status.is_empty() || !root_owned.is_empty() {
            bail!(
                "{}: HEAD {head}, expected {tip}; status:\n{status}\nnot the owner's: {root_owned}",
                checkout.display()
            );
        }
        Ok(())
    })?;
    Ok(series)
}

/// A checkout [`BEHIND`] commits behind its origin, over http and over a local path: sync-repo
/// against `git pull --ff-only`, each run on a fresh copy of the same behind checkout (the copy
/// is not timed). The origin's history comes from `git fast-import`, packed with deltas.
fn far_behind(bench: &Bench, http: &SmartHttp, root: &Path, rounds: usize) -> Result<Vec<Series>> {
    let sb = bench.sb;
    let long = bench.forge.join("long.git");
    make_template(sb, &long, FILES, BEHIND + 1)?;
    sandbox::run(
        sb.git(&long)
            .args(["update-ref", "refs/heads/base", &format!("main~{BEHIND}")]),
    )?;
    let tip = stdout_of(sb.git(&long).args(["rev-parse", "main"]))?;
    let state_dir = root.join("state-behind");
    let mut series = Vec::new();
    for t in [Transport::Http, Transport::File] {
        let url = match t {
            Transport::Http => http.url("long.git"),
            Transport::File => long.display().to_string(),
        };
        // Only the base's objects (no hard links to the origin's), on `main` tracking `main`.
        let pristine = root.join(format!("behind-{}", t.name()));
        sandbox::run(
            sb.command("git")
                .args(["clone", "--quiet", "--no-local", "--single-branch", "-b", "base"])
                .arg(&long)
                .arg(&pristine),
        )?;
        for args in [
            &["branch", "-m", "base", "main"][..],
            &["config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"],
            &["config", "branch.main.merge", "refs/heads/main"],
            &["update-ref", "refs/remotes/origin/main", "HEAD"],
            &["update-ref", "-d", "refs/remotes/origin/base"],
        ] {
            sandbox::run(sb.git(&pristine).args(args))?;
        }
        let _ = sb
            .git(&pristine)
            .args(["symbolic-ref", "-d", "refs/remotes/origin/HEAD"])
            .output();
        set_origin_url(&pristine, &url)?;
        let work = root.join(format!("behind-work-{}", t.name()));
        let fresh = || -> Result<()> {
            match std::fs::remove_dir_all(&work) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
            sandbox::run(sb.command("cp").arg("-a").arg(&pristine).arg(&work))?;
            Ok(())
        };
        let timed = |mut cmd: Command, expect: Expect| -> Result<f64> {
            fresh()?;
            let start = Instant::now();
            let output = cmd.stdin(Stdio::null()).output();
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            check(&cmd, output, expect)?;
            let head = stdout_of(sb.git(&work).args(["rev-parse", "HEAD"]))?;
            if head != tip {
                bail!("`{}` left HEAD at {head}, not {tip}", describe(&cmd));
            }
            Ok(ms)
        };
        let git = || {
            let mut cmd = sb.git(&work);
            cmd.args(["pull", "--quiet", "--ff-only"]);
            cmd
        };
        let sync = || {
            let mut cmd = sb.command(&bench.bin);
            cmd.arg("--state-dir").arg(&state_dir).arg(&work);
            cmd
        };
        let (git_key, sync_key) = match t {
            Transport::Http => ("behind-git", "behind-single"),
            Transport::File => ("file-behind-git", "file-behind-single"),
        };
        let mut git_series = Series::new(git_key, "`git pull --ff-only`", t.name()).baseline();
        let mut sync_series = Series::new(sync_key, "`sync-repo PATH`", t.name());
        for round in 0..=rounds {
            let warm = if round == 0 { " (warm-up)" } else { "" };
            step(&format!("{BEHIND} behind ({}), round {round}/{rounds}{warm}", t.name()));
            let (git_ms, sync_ms) = if round % 2 == 1 {
                let g = timed(git(), Expect::Stdout(""))?;
                (g, timed(sync(), Expect::Stdout("updated"))?)
            } else {
                let s = timed(sync(), Expect::Stdout("updated"))?;
                (timed(git(), Expect::Stdout(""))?, s)
            };
            if round > 0 {
                git_series.samples.push(git_ms);
                sync_series.samples.push(sync_ms);
            }
        }
        series.extend([git_series, sync_series]);
    }
    Ok(series)
}

/// Commit once in the pusher and push that commit to every origin (or the first `only` ones).
fn push_all(bench: &Bench, pusher: &mut Pusher, only: Option<usize>) -> Result<()> {
    pusher.commit(bench.sb)?;
    let repos = &bench.repos[..only.unwrap_or(bench.repos.len()).min(bench.repos.len())];
    parallel(repos, |repo| pusher.push(bench.sb, &repo.origin))?;
    Ok(())
}

/// Both checkouts of every repo are at `tip` with a clean worktree, as `git` sees them.
fn verify_checkouts(bench: &Bench, tip: &str) -> Result<()> {
    parallel(&bench.repos, |repo| {
        for checkout in [&repo.script_checkout, &repo.sync_checkout] {
            let head = stdout_of(bench.sb.git(checkout).args(["rev-parse", "HEAD"]))?;
            let status = stdout_of(bench.sb.git(checkout).args(["status", "--porcelain"]))?;
            if head != tip || !status.is_empty() {
                bail!("{}: HEAD {head}, expected {tip}; status:\n{status}", checkout.display());
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// Peak RSS of the script and of sync-repo, no change then change, on the first few repos,
/// over both transports.
fn peak_rss(bench: &Bench, pusher: &mut Pusher) -> Result<Vec<RssRow>> {
    let sample = &bench.repos[..RSS_SAMPLES.min(bench.repos.len())];
    let mut rows = Vec::new();
    for t in [Transport::Http, Transport::File] {
        let name = t.name();
        let mut script_same = RssRow::new(&format!("RFC 005 script, no change ({name})"));
        let mut sync_same = RssRow::new(&format!("`sync-repo PATH`, no change ({name})"));
        let mut script_new = RssRow::new(&format!("RFC 005 script, one new commit ({name})"));
        let mut sync_new = RssRow::new(&format!("`sync-repo PATH`, one new commit ({name})"));
        for repo in sample {
            let script = bench.script(repo, t);
            script_same
                .kb
                .push(bench.peak_rss_kb(&script, Expect::Stdout("Repository in sync."))?);
            let sync = bench.sync_over(repo, t);
            sync_same.kb.push(bench.peak_rss_kb(&sync, Expect::Stdout("in sync"))?);
        }
        push_all(bench, pusher, Some(sample.len()))?;
        for repo in sample {
            let script = bench.script(repo, t);
            script_new
                .kb
                .push(bench.peak_rss_kb(&script, Expect::Stdout("Changes detected"))?);
            let sync = bench.sync_over(repo, t);
            sync_new.kb.push(bench.peak_rss_kb(&sync, Expect::Stdout("updated"))?);
        }
        rows.extend([script_same, sync_same, script_new, sync_new]);
    }
    let mut all = RssRow::new(&format!(
        "`sync-repo --all` over {} repos, no change (http)",
        bench.repos.len()
    ));
    all.kb
        .push(bench.peak_rss_kb(&bench.sync_all(Transport::Http, None), Expect::Stdout("in sync"))?);
    rows.push(all);
    Ok(rows)
}

/// hyperfine's mean and median for the three no-change commands on the first repo.
fn hyperfine_one(bench: &Bench) -> Result<Vec<(String, f64, f64)>> {
    let repo = bench.repos.first().context("no repos")?;
    let export = bench.sb.root().join("hyperfine.json");
    let commands = [
        ("RFC 005 script", bench.script(repo, Transport::Http)),
        ("git ls-remote", bench.ls_remote(&repo.http_url, false)),
        ("sync-repo PATH", bench.sync_single(repo, None)),
    ];
    let mut cmd = bench.sb.command("hyperfine");
    cmd.args([
        "--shell=none",
        "--warmup",
        "3",
        "--runs",
        "30",
        "--style",
        "none",
        "--export-json",
    ])
    .arg(&export);
    for (name, command) in &commands {
        cmd.args(["--command-name", name]).arg(describe(command));
    }
    sandbox::run(&mut cmd)?;
    let parsed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&export)?)?;
    let rows = parsed["results"]
        .as_array()
        .context("hyperfine JSON has no results")?
        .iter()
        .zip(commands.iter())
        .map(|(result, (name, _))| {
            let ms = |key: &str| result[key].as_f64().unwrap_or(f64::NAN) * 1000.0;
            ((*name).to_owned(), ms("mean"), ms("median"))
        })
        .collect();
    Ok(rows)
}

impl Series {
    fn new(key: &'static str, label: &str, transport: &'static str) -> Self {
        Series {
            key,
            label: label.to_owned(),
            transport,
            samples: Vec::new(),
            is_baseline: false,
        }
    }

    /// Mark as the figure the others are compared with ("script ÷ this").
    fn baseline(mut self) -> Self {
        self.is_baseline = true;
        self
    }

    /// Median milliseconds per repo over the rounds.
    pub fn median(&self) -> f64 {
        median(&self.samples)
    }
}

impl RssRow {
    fn new(label: &str) -> Self {
        RssRow {
            label: label.to_owned(),
            kb: Vec::new(),
        }
    }
}

/// Raw figures as JSON, for `target/xtask/bench-sync.json`.
pub fn series_json(series: &[Series]) -> serde_json::Value {
    series
        .iter()
        .map(|s| json!({"key": s.key, "label": s.label, "transport": s.transport, "ms_per_repo": s.samples, "median": s.median()}))
        .collect()
}
