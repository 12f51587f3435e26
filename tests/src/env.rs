//! An isolated environment per test: a temp dir that owns every file the test makes, and commands
//! (the tools under test and the git CLI) that see none of the host's config or environment.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use tempfile::TempDir;

/// Identity used for every commit the fixtures (and the tools under test) make.
pub const GIT_NAME: &str = "Driftless Test";
/// E-mail of [`GIT_NAME`].
pub const GIT_EMAIL: &str = "test@driftless.invalid";

/// One test's world: a temp dir with `home/`, `state/` and whatever the test builds in it.
///
/// Dropping it deletes everything.
#[derive(Debug)]
pub struct TestEnv {
    dir: TempDir,
    bins: BTreeMap<String, PathBuf>,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    /// A fresh environment in a new temp dir.
    pub fn new() -> TestEnv {
        let dir = temp_dir("driftless-test.");
        for sub in ["home", "state"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create TestEnv subdir");
        }
        TestEnv {
            dir,
            bins: BTreeMap::new(),
        }
    }

    /// Use `path` for the binary `name` (pass `env!("CARGO_BIN_EXE_<name>")` from an integration test).
    pub fn with_bin(mut self, name: &str, path: impl Into<PathBuf>) -> TestEnv {
        self.bins.insert(name.to_owned(), path.into());
        self
    }

    /// The root of the temp dir (canonical, so it compares equal to what tools print).
    pub fn root(&self) -> PathBuf {
        std::fs::canonicalize(self.dir.path()).expect("canonicalize TestEnv root")
    }

    /// `rel` below the root.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root().join(rel)
    }

    /// `$HOME` of every command run from this environment.
    pub fn home(&self) -> PathBuf {
        self.path("home")
    }

    /// The state directory [`TestEnv::sync_repo`] passes with `--state-dir`.
    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    /// Where the binary `name` is: registered with [`TestEnv::with_bin`], else [`bin_path`].
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bins.get(name).cloned().unwrap_or_else(|| bin_path(name))
    }

    /// A command for a workspace binary, with a cleared environment: only `HOME`, `PATH`, git's
    /// isolation (`GIT_CONFIG_GLOBAL=/dev/null`, `GIT_CONFIG_NOSYSTEM=1`) and a fixed identity.
    pub fn cmd(&self, bin: &str) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(self.bin(bin));
        cmd.env_clear()
            .envs(isolated_env(&self.home()))
            .current_dir(self.root());
        cmd
    }

    /// A plain `std::process::Command` for a workspace binary, isolated like [`TestEnv::cmd`]
    /// (for tests that need to spawn and signal the process).
    pub fn std_cmd(&self, bin: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new(self.bin(bin));
        cmd.env_clear()
            .envs(isolated_env(&self.home()))
            .current_dir(self.root());
        cmd
    }

    /// `sync-repo --state-dir <root>/state`, ready for more arguments.
    pub fn sync_repo(&self) -> assert_cmd::Command {
        let mut cmd = self.cmd("sync-repo");
        cmd.arg("--state-dir").arg(self.state_dir());
        cmd
    }

    /// Like [`TestEnv::sync_repo`], as a `std::process::Command`.
    pub fn sync_repo_std(&self) -> std::process::Command {
        let mut cmd = self.std_cmd("sync-repo");
        cmd.arg("--state-dir").arg(self.state_dir());
        cmd
    }

    /// Write `yaml` to `<root>/driftless.yaml` and return its path.
    pub fn write_config(&self, yaml: &str) -> PathBuf {
        let path = self.path("driftless.yaml");
        std::fs::write(&path, yaml).expect("write driftless.yaml");
        path
    }

    /// Run the git CLI in `dir` under this environment; panic with its stderr on failure.
    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        run_git(dir, args, &self.home())
    }
}

/// Where test temp dirs go: `$DRIFTLESS_TEST_TMPDIR` when set, else `/dev/shm` when it is a
/// writable directory (fixtures create tens of thousands of files; on a tmpfs that takes
/// milliseconds instead of seconds on a busy VM disk), else the system temp dir.
pub fn temp_base() -> PathBuf {
    if let Some(dir) = std::env::var_os("DRIFTLESS_TEST_TMPDIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    let writable = shm.is_dir()
        && tempfile::Builder::new()
            .prefix("driftless-probe.")
            .tempdir_in(shm)
            .is_ok();
    if writable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// A new temp dir below [`temp_base`], removed on drop.
pub fn temp_dir(prefix: &str) -> TempDir {
    let base = temp_base();
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&base)
        .unwrap_or_else(|e| panic!("create temp dir in {}: {e}", base.display()))
}

/// The environment every command gets (after `env_clear()`).
pub fn isolated_env(home: &Path) -> Vec<(String, String)> {
    let mut vars = vec![
        ("HOME".to_owned(), home.display().to_string()),
        (
            "PATH".to_owned(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ),
        ("GIT_CONFIG_GLOBAL".to_owned(), "/dev/null".to_owned()),
        ("GIT_CONFIG_NOSYSTEM".to_owned(), "1".to_owned()),
        ("GIT_AUTHOR_NAME".to_owned(), GIT_NAME.to_owned()),
        ("GIT_AUTHOR_EMAIL".to_owned(), GIT_EMAIL.to_owned()),
        ("GIT_COMMITTER_NAME".to_owned(), GIT_NAME.to_owned()),
        ("GIT_COMMITTER_EMAIL".to_owned(), GIT_EMAIL.to_owned()),
        ("GIT_TERMINAL_PROMPT".to_owned(), "0".to_owned()),
        ("LC_ALL".to_owned(), "C".to_owned()),
    ];
    // Rust's own tooling needs these when present; they carry no git or driftless config.
    for key in ["RUST_BACKTRACE", "LLVM_PROFILE_FILE", "TMPDIR"] {
        if let Ok(value) = std::env::var(key) {
            vars.push((key.to_owned(), value));
        }
    }
    vars
}

/// Where a workspace binary was built.
///
/// Looks at `CARGO_BIN_EXE_<name>` at run time (set by nextest), then next to the running
/// executable (`target/<profile>/deps/it-*` or `target/<profile>/xtask` -> `target/<profile>/<name>`).
/// Integration tests should prefer `TestEnv::with_bin(name, env!("CARGO_BIN_EXE_<name>"))`.
pub fn bin_path(name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(format!("CARGO_BIN_EXE_{name}")) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("locate the running executable");
    let mut dir = exe.parent().expect("executable has a parent dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let candidate = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        candidate.exists(),
        "binary `{name}` not found at {}; build it first with `cargo build -p {name}`",
        candidate.display()
    );
    candidate
}

/// Run the git CLI in `dir` isolated from the host's config; panic with stderr on failure.
/// Returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    run_git(dir, args, &std::env::temp_dir())
}

/// Run the git CLI in `dir` isolated from the host's config and return its output, whatever
/// the exit status.
pub fn git_output(dir: &Path, args: &[&str]) -> Output {
    git_command(dir, args, &std::env::temp_dir())
        .output()
        .expect("spawn git")
}

fn git_command<S: AsRef<OsStr>>(dir: &Path, args: &[S], home: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new("git");
    cmd.env_clear()
        .envs(isolated_env(home))
        // Fixtures need no durability, and fsync per object makes a 10k-file `git add` take
        // seconds on slow disks; an automatic gc after it would take seconds more. Only the
        // git CLI gets these, never the tools under test.
        .env("GIT_CONFIG_COUNT", "3")
        .env("GIT_CONFIG_KEY_0", "core.fsync")
        .env("GIT_CONFIG_VALUE_0", "none")
        .env("GIT_CONFIG_KEY_1", "gc.auto")
        .env("GIT_CONFIG_VALUE_1", "0")
        .env("GIT_CONFIG_KEY_2", "maintenance.auto")
        .env("GIT_CONFIG_VALUE_2", "false")
        .current_dir(dir)
        .args(args);
    cmd
}

fn run_git(dir: &Path, args: &[&str], home: &Path) -> String {
    let output = git_command(dir, args, home).output().expect("spawn git");
    assert!(
        output.status.success(),
        "git {} in {} failed ({}):\nstdout: {}\nstderr: {}",
        args.join(" "),
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("git output is UTF-8")
}
