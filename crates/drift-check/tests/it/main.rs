//! Integration tests for the `drift-check` binary, run through the real executable against git
//! fixture checkouts whose state was recorded by the real `sync-repo` and `mirror-copy`, with the
//! git CLI, `promtool` and node_exporter as oracles. One test binary; each module covers one concern.

mod checkout;
mod contract;
mod metrics;
mod mirror;
mod output;
mod remote;
mod stacks;

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub use driftless_tests::Run;
use driftless_tests::{Origin, TestEnv};
use serde_json::Value;

/// The repo name every test host uses in its config.
pub const REPO: &str = "hub";

/// Exit codes of docs/exit-codes.md that drift-check uses.
pub const NO_DRIFT: i32 = 0;
pub const DRIFT: i32 = 1;
pub const USAGE: i32 = 2;
pub const IO: i32 = 74;
pub const TEMP_FAIL: i32 = 75;

/// A `TestEnv` that knows where cargo built `drift-check`, `sync-repo` and `mirror-copy`.
pub fn env() -> TestEnv {
    TestEnv::new()
        .with_bin("drift-check", env!("CARGO_BIN_EXE_drift-check"))
        .with_bin("sync-repo", sibling_bin("sync-repo"))
        .with_bin("mirror-copy", sibling_bin("mirror-copy"))
        .with_bin("apply-compose", sibling_bin("apply-compose"))
}

/// A workspace binary of another crate, built next to `drift-check`.
///
/// Cargo only builds the binaries of the crate under test, so the first call runs
/// `cargo build -p sync-repo -p mirror-copy` into the same target dir and profile: once per
/// process, and under nextest (one process per test) once per run, guarded by a file lock.
pub fn sibling_bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(build_siblings);
    driftless_tests::bin_path(name)
}

fn build_siblings() {
    let exe = std::env::current_exe().expect("locate the test executable");
    let mut profile_dir = exe.parent().expect("test executable has a parent dir").to_path_buf();
    if profile_dir.ends_with("deps") {
        profile_dir.pop();
    }
    let profile_name = profile_dir
        .file_name()
        .expect("profile dir has a name")
        .to_string_lossy()
        .into_owned();
    let above = profile_dir.parent().expect("profile dir has a parent");
    // `target/<profile>` or, when cross-building, `target/<triple>/<profile>`.
    let (target_dir, triple) = if above.join("CACHEDIR.TAG").exists() {
        (above.to_path_buf(), None)
    } else {
        let triple = above.file_name().map(|n| n.to_string_lossy().into_owned());
        (
            above.parent().expect("target dir above the triple").to_path_buf(),
            triple,
        )
    };

    let lock_path = target_dir.join("drift-check-it-siblings.lock");
    let mut lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("open {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    let run_id = std::env::var("NEXTEST_RUN_ID").ok();
    let mut last = String::new();
    lock.read_to_string(&mut last)
        .unwrap_or_else(|e| panic!("read {}: {e}", lock_path.display()));
    if run_id.as_deref().is_some_and(|id| id == last.trim()) {
        return;
    }

    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--quiet",
            "-p",
            "sync-repo",
            "-p",
            "mirror-copy",
            "-p",
            "apply-compose",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    match profile_name.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    if let Some(triple) = &triple {
        cmd.args(["--target", triple]);
    }
    let out = cmd.output().expect("spawn cargo build for sibling binaries");
    assert!(
        out.status.success(),
        "cargo build -p sync-repo -p mirror-copy failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(id) = run_id {
        lock.set_len(0).expect("truncate the sibling build marker");
        (&lock)
            .write_all(id.as_bytes())
            .expect("write the sibling build marker");
    }
}

/// One test's host: an origin, a checkout of it configured as repo [`REPO`], a config with
/// `state_dir` and `metrics_dir` in the test root, and an existing (empty) mirror directory.
pub struct Host {
    pub env: TestEnv,
    pub origin: Origin,
    pub checkout: PathBuf,
    pub config: PathBuf,
    /// `<root>/mirror`, the local mirror destination (`{mirror}` in the repo YAML).
    pub mirror: PathBuf,
    /// `<root>/metrics`, the config's `metrics_dir`.
    pub metrics: PathBuf,
    /// Extra environment for every command (a test engine's DOCKER_HOST and DOCKER_CONFIG).
    pub extra_env: Vec<(String, String)>,
}

impl Host {
    /// A host in sync: [`Host::unsynced`], then `sync-repo hub` and, when a mirror is
    /// configured, `mirror-copy hub` (both must succeed).
    pub fn new(repo_yaml: &str) -> Host {
        let host = Host::unsynced(repo_yaml);
        host.tool(&format!("sync-repo {REPO}")).expect_code(0);
        if repo_yaml.contains("mirror:") {
            host.tool(&format!("mirror-copy {REPO}")).expect_code(0);
        }
        host
    }

    /// A host whose checkout was cloned but never synced or mirrored by the tools.
    /// `repo_yaml` is added under `repos.hub` (indent its lines by 4 spaces; `{mirror}` is
    /// replaced by the mirror directory).
    pub fn unsynced(repo_yaml: &str) -> Host {
        let env = env();
        let origin = Origin::new(&env, "hub");
        origin
            .write("a.txt", "alpha\n")
            .write("src/lib.rs", "pub fn f() {}\n")
            .write("docs/guide.md", "# guide\n")
            .write(".gitignore", "*.log\n");
        origin.commit("base tree");
        let checkout = origin.checkout(&env);
        let mirror = env.path("mirror");
        let metrics = env.path("metrics");
        for dir in [&mirror, &metrics] {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        }
        let config = env.path("driftless.yaml");
        let host = Host {
            env,
            origin,
            checkout,
            config,
            mirror,
            metrics,
            extra_env: Vec::new(),
        };
        host.write_config(repo_yaml);
        host
    }

    /// Rewrite the config with `repo_yaml` under `repos.hub` (see [`Host::unsynced`]).
    pub fn write_config(&self, repo_yaml: &str) {
        let repo_yaml = repo_yaml.replace("{mirror}", &self.mirror.display().to_string());
        let yaml = format!(
            "state_dir: {state}\nmetrics_dir: {metrics}\nrepos:\n  {REPO}:\n    path: {path}\n{repo_yaml}",
            state = self.env.state_dir().display(),
            metrics = self.metrics.display(),
            path = self.checkout.display(),
        );
        std::fs::write(&self.config, yaml).expect("write driftless.yaml");
    }

    /// `drift-check ARGS` with the host's config as the default config (`DRIFTLESS_CONFIG`).
    pub fn check(&self, args: &[&str]) -> Run {
        let mut cmd = self.env.cmd("drift-check");
        cmd.env("DRIFTLESS_CONFIG", &self.config)
            .envs(self.extra_env.iter().cloned())
            .args(args);
        Run::of(&mut cmd)
    }

    /// [`Host::check`] with `--json`, every stdout line parsed.
    pub fn check_json(&self, args: &[&str]) -> (Run, Vec<Value>) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let run = self.check(&all);
        let items = run.json_lines();
        (run, items)
    }

    /// Run a command line as drift-check prints it in a `run:` line (`sync-repo hub`,
    /// `git -C /path checkout main`, `mirror-copy hub --force   # comment`), as an admin
    /// would on this host: the comment dropped, the host's config as the default config.
    pub fn tool(&self, line: &str) -> Run {
        let command = line.split('#').next().unwrap_or_default();
        let words: Vec<&str> = command.split_whitespace().collect();
        let (program, args) = words
            .split_first()
            .unwrap_or_else(|| panic!("empty command line: {line:?}"));
        let mut cmd = match *program {
            "sync-repo" | "mirror-copy" | "drift-check" | "apply-compose" => self.env.cmd(program),
            "git" => {
                let mut cmd = assert_cmd::Command::new("git");
                cmd.env_clear()
                    .envs(driftless_tests::env::isolated_env(&self.env.home()))
                    .current_dir(self.env.root());
                cmd
            }
            other => panic!("drift-check suggested an unexpected program `{other}` in {line:?}"),
        };
        cmd.env("DRIFTLESS_CONFIG", &self.config)
            .envs(self.extra_env.iter().cloned())
            .args(args);
        Run::of(&mut cmd)
    }

    /// Run the fix drift-check suggested and require it to succeed.
    #[track_caller]
    pub fn run_fix(&self, fix: &str) {
        let run = self.tool(fix);
        assert_eq!(
            run.code, 0,
            "the suggested fix `{fix}` failed\n--- stdout\n{}\n--- stderr\n{}",
            run.stdout, run.stderr
        );
    }

    /// Run git in the checkout.
    pub fn git(&self, args: &[&str]) -> String {
        self.env.git(&self.checkout, args)
    }

    /// `git -C <checkout>` as drift-check spells it in fix commands.
    pub fn git_c(&self) -> String {
        format!("git -C {}", self.checkout.display())
    }

    /// The record `tool` last wrote for the repo in the state directory.
    pub fn state_path(&self, tool: &str) -> PathBuf {
        self.env.state_dir().join(format!("repos/{REPO}/{tool}.json"))
    }

    /// Move `last_success_at` of `tool`'s state record `secs` seconds into the past.
    pub fn age_last_success(&self, tool: &str, secs: u64) {
        let path = self.state_path(tool);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let mut record: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let at = record["last_success_at"]
            .as_u64()
            .unwrap_or_else(|| panic!("no last_success_at in {}: {record}", path.display()));
        record["last_success_at"] = Value::from(at - secs);
        std::fs::write(&path, serde_json::to_vec_pretty(&record).expect("serialize record"))
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Assert the host has no drift: exit 0 and the `no drift` summary line.
    #[track_caller]
    pub fn assert_clean(&self, args: &[&str]) {
        let run = self.check(args);
        run.expect_code(NO_DRIFT);
        assert!(
            run.stdout.starts_with("no drift ("),
            "want the `no drift` line\n--- stdout\n{}\n--- stderr\n{}",
            run.stdout,
            run.stderr
        );
    }

    /// Assert `drift-check ARGS` exits 1 with a DRIFT row `part`/`item` whose reason contains
    /// `reason`; returns that row (its fix is the table's `run:` line).
    #[track_caller]
    pub fn assert_drift(&self, args: &[&str], part: &str, item: &str, reason: &str) -> Row {
        let run = self.check(args);
        run.expect_code(DRIFT);
        let row = run.row(part, item);
        assert_eq!(row.status, "DRIFT", "{row:?}\n--- stdout\n{}", run.stdout);
        assert!(
            row.reason.contains(reason),
            "reason of {part}/{item} should contain {reason:?}: {row:?}\n--- stdout\n{}",
            run.stdout
        );
        row
    }
}

/// One row of drift-check's table.
#[derive(Debug, Clone)]
pub struct Row {
    pub status: String,
    /// The reason, whitespace-normalized.
    pub reason: String,
    /// The `run:` line under the row, if any.
    pub fix: Option<String>,
}

impl Row {
    /// The `run:` line; panics if the row has none.
    #[track_caller]
    pub fn fix(&self) -> &str {
        self.fix
            .as_deref()
            .unwrap_or_else(|| panic!("row has no `run:` line: {self:?}"))
    }
}

/// drift-check's table, read from a finished [`Run`]'s stdout.
pub trait Table {
    /// The table row `part`/`item` of repo [`REPO`]; panics if there is none.
    fn row(&self, part: &str, item: &str) -> Row;
    /// The table row `part`/`item` of repo [`REPO`], if listed.
    fn find_row(&self, part: &str, item: &str) -> Option<Row>;
}

impl Table for Run {
    #[track_caller]
    fn row(&self, part: &str, item: &str) -> Row {
        self.find_row(part, item).unwrap_or_else(|| {
            panic!(
                "no row {part}/{item} in the table\n--- stdout\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }

    fn find_row(&self, part: &str, item: &str) -> Option<Row> {
        let lines: Vec<&str> = self.stdout.lines().collect();
        let want: Vec<&str> = item.split_whitespace().collect();
        for (i, line) in lines.iter().enumerate() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let n = want.len();
            if words.len() < 3 + n
                || words[0] != REPO
                || words[1] != part
                || words[2..2 + n] != want[..]
                || !["ok", "held", "unknown", "DRIFT"].contains(&words[2 + n])
            {
                continue;
            }
            let fix = lines
                .get(i + 1)
                .and_then(|next| next.trim_start().strip_prefix("run: "))
                .map(str::to_owned);
            return Some(Row {
                status: words[2 + n].to_owned(),
                reason: words[3 + n..].join(" "),
                fix,
            });
        }
        None
    }
}

/// The `--json` item `part`/`name`; panics if absent.
#[track_caller]
pub fn item<'a>(items: &'a [Value], part: &str, name: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["part"] == part && i["name"] == name)
        .unwrap_or_else(|| panic!("no item {part}/{name} in {items:#?}"))
}

/// The text of the first backticked span in `text` that contains `needle`.
#[track_caller]
pub fn backticked(text: &str, needle: &str) -> String {
    text.split('`')
        .skip(1)
        .step_by(2)
        .find(|span| span.contains(needle))
        .unwrap_or_else(|| panic!("no `...{needle}...` in {text:?}"))
        .to_owned()
}

/// Where an external program is on `PATH`, if installed.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// An external tool a test needs: its path, or `None` after saying why the test is skipped.
/// Under `CI=true` a missing tool fails the test, since `.ci/run` installs it.
pub fn require_tool(program: &str, package: &str) -> Option<PathBuf> {
    if let Some(path) = which(program) {
        return Some(path);
    }
    let why = format!("`{program}` not found on PATH (Debian package `{package}`)");
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("skipped: {why}");
    None
}

/// Whether `path` is an existing file, for readable asserts.
pub fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}
