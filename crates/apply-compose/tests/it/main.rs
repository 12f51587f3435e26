//! Integration tests for the `apply-compose` binary, run through the real executable against git
//! fixture checkouts: against a real private dockerd with Compose v2 where the outcome is about
//! containers, and with a recording fake compose where it is about the decision (parsing).

mod apply;
mod bad_deploys;
mod contract;
mod dirty;
mod dry_run;
use driftless_tests::engine;
mod failures;
mod hold;
mod inputs;
mod output;
mod parsing;
mod prune;
mod pull;
mod resolution;
mod robustness;
mod rollback;
mod validate;

use std::path::PathBuf;
use std::sync::Arc;

use driftless_tests::TestEnv;
use driftless_tests::fixture::{remove, write_exec, write_file};
use engine::Engine;
use serde_json::Value;

/// A `TestEnv` that knows where cargo built `apply-compose`.
pub fn env() -> TestEnv {
    TestEnv::new().with_bin("apply-compose", env!("CARGO_BIN_EXE_apply-compose"))
}

/// A compose file with one service `app` that runs for an hour, plus `extra` lines indented
/// under the service (4 spaces) and `tail` appended at top level.
pub fn compose(extra: &str, tail: &str) -> String {
    // `sleep` as PID 1 ignores SIGTERM: without SIGKILL every recreate or `down` waits 10 s.
    format!(
        "services:\n  app:\n    image: {}\n    command: [\"sleep\", \"3600\"]\n    pull_policy: never\n    stop_signal: SIGKILL\n{extra}{tail}",
        engine::IMAGE
    )
}

/// One test's checkout (repo `name` in the config), its config and state, and how to run
/// `apply-compose` on it: against `engine`, or with the recording fake compose.
pub struct Hub {
    pub env: TestEnv,
    /// Repo name in the config; also the prefix of every stack's project name, so tests
    /// sharing one engine never touch each other's containers.
    pub name: String,
    pub checkout: PathBuf,
    pub engine: Option<Arc<Engine>>,
    compose_command: Option<String>,
}

/// What one run printed and how it exited (`--json` runs also parsed).
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The one `--json` record (Null for runs without `--json`).
    pub json: Value,
}

impl Hub {
    /// A checkout with one commit (`README.md`) and a config `repos.<name>: {stacks: ["stacks/*"]}`.
    pub fn new(name: &str, engine: Option<Arc<Engine>>) -> Hub {
        let env = env();
        let checkout = env.path(format!("checkouts/{name}"));
        std::fs::create_dir_all(&checkout).expect("create checkout dir");
        env.git(&checkout, &["init", "-q", "-b", "main"]);
        let hub = Hub {
            env,
            name: name.to_owned(),
            checkout,
            engine,
            compose_command: None,
        };
        hub.write("README.md", "# hub\n");
        hub.commit("initial commit");
        hub.configure("    stacks: [\"stacks/*\"]\n");
        hub
    }

    /// Project name of stack `short` (`<name>-<short>`), also its directory below `stacks/`.
    pub fn project(&self, short: &str) -> String {
        format!("{}-{short}", self.name)
    }

    /// `stacks/<name>-<short>`.
    pub fn stack_dir(&self, short: &str) -> String {
        format!("stacks/{}", self.project(short))
    }

    /// A stack with service `app` reading `app.env` (`GREETING=<greeting>`), not committed.
    pub fn add_stack(&self, short: &str, greeting: &str) {
        let dir = self.stack_dir(short);
        self.write(&format!("{dir}/compose.yaml"), &compose("    env_file: app.env\n", ""));
        self.set_greeting(short, greeting);
    }

    /// Rewrite stack `short`'s `app.env`.
    pub fn set_greeting(&self, short: &str, greeting: &str) {
        self.write(
            &format!("{}/app.env", self.stack_dir(short)),
            &format!("GREETING={greeting}\n"),
        );
    }

    /// Write the repo entry: `path:` plus `body` (lines indented 4 spaces).
    pub fn configure(&self, body: &str) {
        self.env.write_config(&format!(
            "repos:\n  {}:\n    path: {}\n{body}",
            self.name,
            self.checkout.display()
        ));
    }

    /// Write a file in the checkout (not committed).
    pub fn write(&self, rel: &str, content: &str) {
        write_file(&self.checkout, rel, content);
    }

    /// Delete a file or directory in the checkout (not committed).
    pub fn remove(&self, rel: &str) {
        remove(&self.checkout, rel);
    }

    /// Commit everything in the checkout; returns the sha.
    pub fn commit(&self, message: &str) -> String {
        self.env.git(&self.checkout, &["add", "-A"]);
        self.env.git(
            &self.checkout,
            &["commit", "-q", "--allow-empty", "--no-verify", "-m", message],
        );
        self.env.git(&self.checkout, &["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// Run compose through a script that appends each call's arguments to `compose-calls.log`
    /// and exits 0 without doing anything: the decision is under test, not compose.
    pub fn use_fake_compose(&mut self) {
        let log = self.env.path("compose-calls.log");
        let script = format!("#!/bin/sh\necho \"$*\" >> '{}'\nexit 0\n", log.display());
        self.set_compose_script(&script);
    }

    /// Run the real `docker compose` through a script that first records each call.
    pub fn use_recording_compose(&mut self) {
        let log = self.env.path("compose-calls.log");
        let script = format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec docker compose \"$@\"\n",
            log.display()
        );
        self.set_compose_script(&script);
    }

    /// Run compose through `script` (a shell script standing in for compose).
    pub fn set_compose_script(&mut self, script: &str) {
        write_exec(&self.env.root(), "compose-wrapper.sh", script);
        self.compose_command = Some(self.env.path("compose-wrapper.sh").display().to_string());
    }

    /// Every compose call recorded so far, one line each.
    pub fn compose_calls(&self) -> Vec<String> {
        String::from_utf8_lossy(&std::fs::read(self.env.path("compose-calls.log")).unwrap_or_default())
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// `apply-compose` with a cleared environment, `--config`, `--state-dir`, and the engine's
    /// `DOCKER_HOST`/`DOCKER_CONFIG` (a socket that does not exist when there is no engine, so
    /// nothing can reach the host's docker).
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = self.env.cmd("apply-compose");
        cmd.arg("--config")
            .arg(self.env.path("driftless.yaml"))
            .arg("--state-dir")
            .arg(self.env.state_dir());
        self.add_engine_env(&mut cmd);
        cmd
    }

    fn add_engine_env(&self, cmd: &mut assert_cmd::Command) {
        match &self.engine {
            Some(engine) => {
                cmd.envs(engine.client_env());
            }
            None => {
                cmd.env(
                    "DOCKER_HOST",
                    format!("unix://{}", self.env.path("no-docker.sock").display()),
                )
                .env("DOCKER_CONFIG", self.env.path("no-docker-config"));
            }
        }
        if let Some(command) = &self.compose_command {
            cmd.arg("--compose-command").arg(command);
        }
    }

    /// `apply-compose <name> --json ARGS`.
    pub fn apply(&self, args: &[&str]) -> Outcome {
        let mut cmd = self.cmd();
        cmd.arg(&self.name).arg("--json").args(args);
        run(cmd)
    }

    /// `apply-compose <name> ARGS` without `--json`.
    pub fn apply_text(&self, args: &[&str]) -> Outcome {
        let mut cmd = self.cmd();
        cmd.arg(&self.name).args(args);
        run(cmd)
    }

    /// `<state>/repos/<name>/apply-compose.json`.
    pub fn state_file(&self) -> PathBuf {
        self.env
            .state_dir()
            .join("repos")
            .join(&self.name)
            .join("apply-compose.json")
    }

    /// The state record, parsed.
    pub fn state(&self) -> Value {
        let path = self.state_file();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON ({e}): {text}", path.display()))
    }

    /// The state record of stack `short`.
    pub fn stack_state(&self, short: &str) -> Value {
        self.state()["stacks"][self.project(short)].clone()
    }

    /// The engine; panics when the hub was made without one.
    pub fn engine(&self) -> &Engine {
        self.engine.as_deref().expect("this test was set up with an engine")
    }

    /// Running containers of stack `short`: name -> id.
    pub fn containers(&self, short: &str) -> std::collections::BTreeMap<String, String> {
        self.engine().containers(&self.project(short))
    }

    /// The `GREETING` the `app` container of stack `short` runs with.
    pub fn running_greeting(&self, short: &str) -> Option<String> {
        let name = format!("{}-app-1", self.project(short));
        self.engine()
            .container_env(&name)
            .into_iter()
            .find_map(|e| e.strip_prefix("GREETING=").map(str::to_owned))
    }
}

/// Run a prepared command and collect what it did; `--json` output is parsed when present.
pub fn run(mut cmd: assert_cmd::Command) -> Outcome {
    let out = cmd.output().expect("run apply-compose");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = stdout
        .lines()
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout,
        stderr,
        json,
    }
}

impl Outcome {
    /// Panic with everything printed unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Outcome {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    fn stack(&self, project: &str) -> &Value {
        self.json["stacks"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["stack"] == project))
            .unwrap_or_else(|| panic!("no stack {project} in the report:\n{}\n{}", self.stdout, self.stderr))
    }

    /// The reported action of stack `project` (`applied`, `unchanged`, ...).
    pub fn action(&self, project: &str) -> String {
        self.stack(project)["action"].as_str().unwrap_or_default().to_owned()
    }

    /// The reported reasons of stack `project`.
    pub fn reasons(&self, project: &str) -> Vec<String> {
        self.stack(project)["reasons"]
            .as_array()
            .map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// Assert stack `project` got `action`, with every fragment in `reasons` found in some reason.
    pub fn expect_stack(&self, project: &str, action: &str, reasons: &[&str]) -> &Outcome {
        let got = self.reasons(project);
        assert_eq!(
            self.action(project),
            action,
            "{project}: reasons {got:?}\nstderr:\n{}",
            self.stderr
        );
        for want in reasons {
            assert!(
                got.iter().any(|r| r.contains(want)),
                "{project}: no reason contains {want:?}: {got:?}"
            );
        }
        self
    }

    /// Every stack named in the report.
    pub fn stacks(&self) -> Vec<String> {
        self.json["stacks"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(|s| s["stack"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}
