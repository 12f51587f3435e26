//! Runs the real compose (`docker compose`, `docker-compose` or `podman compose`) through duct.
//! Its output goes to the log, each line prefixed with the stack's name.

use std::collections::BTreeMap;
use std::io::BufRead;

use super::images::ServiceImage;
use super::resolve::COMPOSE_ENV_VARS;
use super::stacks::Stack;

/// How to call compose.
#[derive(Debug, Clone)]
pub struct Compose {
    /// Program and leading arguments, e.g. `["docker", "compose"]`.
    pub command: Vec<String>,
}

/// Why a compose call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{command}` was not found; install Docker Compose v2 or set `compose_command` in the config")]
    Missing { command: String },
    #[error("the container engine is unreachable (`{command} ls` failed: {message}); is docker running?")]
    EngineDown { command: String, message: String },
    #[error(
        "`{command}` does not work: {message}; install the compose plugin (Debian: docker-compose-plugin or docker-compose) or set `compose_command` in the config"
    )]
    Broken { command: String, message: String },
    #[error("compose {action} of stack {stack} failed (exit {code}): {message}")]
    Failed {
        action: &'static str,
        stack: String,
        code: i32,
        message: String,
    },
}

impl Error {
    /// A compose that is missing or broken is a set-up error (2): retrying does not help. An
    /// engine that is down may be back on the next tick (75); a failed apply is 4.
    pub fn exit(&self) -> crate::exit::Exit {
        match self {
            Error::Missing { .. } | Error::Broken { .. } => crate::exit::Exit::Usage,
            Error::EngineDown { .. } => crate::exit::Exit::TempFail,
            Error::Failed { .. } => crate::exit::Exit::ApplyFailed,
        }
    }
}

/// A container of a compose project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub service: String,
    /// `running`, `exited`, ...
    pub state: String,
    /// `healthy`, `unhealthy`, `starting`, or empty without a healthcheck.
    pub health: String,
    /// The `com.docker.compose.config-hash` label.
    pub config_hash: String,
    /// The `com.docker.compose.project.config_files` label: the files compose loaded, comma-separated.
    pub config_files: String,
    /// The `com.docker.compose.project.working_dir` label: the project directory it used.
    pub working_dir: String,
    /// The `com.docker.compose.image` label: the id of the image it was created from (empty
    /// for containers compose did not label).
    pub image_id: String,
}

impl Default for Compose {
    fn default() -> Self {
        Compose {
            command: vec!["docker".into(), "compose".into()],
        }
    }
}

impl Compose {
    /// The compose command: `--compose-command` if given, else the config's
    /// `compose_command`, else `docker compose`.
    pub fn from_flag_or_config(flag: Option<&str>, config: &crate::config::Config) -> Result<Compose, String> {
        let command: Vec<String> = match flag {
            Some(text) => text.split_whitespace().map(str::to_owned).collect(),
            None => config
                .compose_command
                .clone()
                .unwrap_or_else(|| Compose::default().command),
        };
        if command.is_empty() {
            return Err("the compose command is empty".into());
        }
        Ok(Compose { command })
    }

    /// Check that the engine answers, before anything is applied (`compose ls` talks to it).
    pub fn check_engine(&self) -> Result<(), Error> {
        let (program, args) = self.split(&["ls", "--quiet"]);
        match without_compose_env(duct::cmd(program, &args))
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
        {
            Ok(out) if out.status.success() => Ok(()),
            // `ls` needs the engine, `version` only compose: when that fails too, compose itself
            // is missing or broken (`docker: 'compose' is not a docker command`), which no
            // retry fixes.
            Ok(out) => Err(match self.version_error() {
                Some(message) => Error::Broken {
                    command: self.command.join(" "),
                    message,
                },
                None => Error::EngineDown {
                    command: self.command.join(" "),
                    message: last_line(&String::from_utf8_lossy(&out.stderr)),
                },
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(Error::Missing {
                command: self.command.join(" "),
            }),
            Err(err) => Err(Error::EngineDown {
                command: self.command.join(" "),
                message: err.to_string(),
            }),
        }
    }

    /// Whether compose itself runs (`compose version`, which needs no engine): `Missing` when
    /// the program is not found, `Broken` when it fails (`'compose' is not a docker command`).
    pub fn check_installed(&self) -> Result<(), Error> {
        let (program, _) = self.split(&[]);
        if which_program(program).is_none() {
            return Err(Error::Missing {
                command: self.command.join(" "),
            });
        }
        match self.version_error() {
            Some(message) => Err(Error::Broken {
                command: self.command.join(" "),
                message,
            }),
            None => Ok(()),
        }
    }

    /// `compose config --quiet` with every choice driftless resolved for the stack: compose's
    /// own validation of the merged model, which needs no engine. `Err` carries compose's message.
    pub fn check_config(&self, stack: &Stack) -> Result<(), Error> {
        let mut args = self.project_args(stack);
        args.extend(["config", "--quiet"].map(String::from));
        let extra: Vec<&str> = args.iter().map(String::as_str).collect();
        self.capture("config", &stack.project, &extra).map(drop)
    }

    /// Why `compose version` fails, if it does (compose's own last line).
    fn version_error(&self) -> Option<String> {
        let (program, args) = self.split(&["version"]);
        let out = without_compose_env(duct::cmd(program, &args))
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .ok()?;
        (!out.status.success()).then(|| {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stdout = String::from_utf8_lossy(&out.stdout);
            // The first line says what is wrong (`docker: 'compose' is not a docker command.`);
            // the last is docker's "Run 'docker --help' for more information".
            let text = if stderr.trim().is_empty() { &stdout } else { &stderr };
            text.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("")
                .to_owned()
        })
    }

    /// `compose -p P --project-directory D -f ... up -d --remove-orphans [--wait]
    /// [--force-recreate]`.
    pub fn up(&self, stack: &Stack, recreate: bool) -> Result<(), Error> {
        let mut args = self.project_args(stack);
        args.extend(["up", "-d", "--remove-orphans"].map(String::from));
        if recreate {
            args.push("--force-recreate".into());
        }
        if let Some(timeout) = stack.wait {
            args.push("--wait".into());
            if let Some(timeout) = timeout {
                args.push("--wait-timeout".into());
                args.push(timeout.to_string());
            }
        }
        self.run("up", &stack.project, &args, Some(stack))
    }

    /// `compose -p P down`: for a stack removed from git, with `prune: true`.
    pub fn down(&self, project: &str) -> Result<(), Error> {
        let args = ["-p", project, "down", "--remove-orphans"].map(String::from).to_vec();
        self.run("down", project, &args, None)
    }

    /// The containers of a project as compose sees them (`ps -a --format json`).
    pub fn containers(&self, project: &str) -> Result<Vec<Container>, Error> {
        let out = self.capture("ps", project, &["-p", project, "ps", "-a", "--format", "json"])?;
        // Compose >= 2.21 prints one object per line; older versions one array.
        let mut containers = Vec::new();
        for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let value: serde_json::Value = serde_json::from_str(line).map_err(|e| Error::Failed {
                action: "ps",
                stack: project.into(),
                code: 0,
                message: format!("unexpected output: {e}"),
            })?;
            let items = match value {
                serde_json::Value::Array(items) => items,
                other => vec![other],
            };
            for item in items {
                let text = |key: &str| item.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
                let labels = labels(&text("Labels"));
                let label = |key: &str| labels.get(key).cloned().unwrap_or_default();
                containers.push(Container {
                    service: text("Service"),
                    state: text("State"),
                    health: text("Health"),
                    config_hash: label("com.docker.compose.config-hash"),
                    config_files: label("com.docker.compose.project.config_files"),
                    working_dir: label("com.docker.compose.project.working_dir"),
                    image_id: label("com.docker.compose.image"),
                });
            }
        }
        Ok(containers)
    }

    /// The services the stack defines and the config hash compose would give each
    /// (`config --hash '*'`), to compare with the running containers' labels.
    pub fn config_hashes(&self, stack: &Stack) -> Result<Vec<(String, String)>, Error> {
        let mut args = self.project_args(stack);
        args.extend(["config", "--hash", "*"].map(String::from));
        let extra: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.capture("config", &stack.project, &extra)?;
        Ok(out
            .lines()
            .filter_map(|l| {
                l.split_once(' ')
                    .map(|(s, h)| (s.trim().to_owned(), h.trim().to_owned()))
            })
            .collect())
    }

    /// The services `up` would recreate, asked of compose itself (`up -d --dry-run`): the
    /// arbiter when a container's config-hash label and `config --hash` disagree, which compose
    /// 2.40 does for services with an `env_file` even when `up` would change nothing.
    pub fn would_recreate(&self, stack: &Stack) -> Result<Vec<String>, Error> {
        let mut args = self.project_args(stack);
        args.extend(["up", "-d", "--dry-run"].map(String::from));
        let extra: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.capture_all("up --dry-run", &stack.project, &extra)?;
        let prefix = format!("{}-", stack.project);
        Ok(out
            .lines()
            .filter(|l| l.trim_end().ends_with(" Recreate"))
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with(&prefix)))
            .filter_map(|name| {
                name.strip_prefix(&prefix)
                    .and_then(|rest| rest.rsplit_once('-'))
                    .map(|(s, _)| s.to_owned())
            })
            .collect())
    }

    /// Each service's image as the stack's model names it (`config --format json`, which needs
    /// no engine), and whether `compose pull` pulls it.
    pub fn service_images(&self, stack: &Stack) -> Result<BTreeMap<String, ServiceImage>, Error> {
        let mut args = self.project_args(stack);
        args.extend(["config", "--format", "json"].map(String::from));
        let extra: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.capture("config", &stack.project, &extra)?;
        let model: serde_json::Value = serde_json::from_str(&out).map_err(|e| Error::Failed {
            action: "config",
            stack: stack.project.clone(),
            code: 0,
            message: format!("unexpected output: {e}"),
        })?;
        Ok(super::images::service_images(&model))
    }

    /// `compose pull --ignore-buildable` with the stack's files, project and env: the registry's
    /// current image for every tag the stack names, skipping `pull_policy: never`/`build` (which
    /// compose skips itself) and services it can build.
    pub fn pull(&self, stack: &Stack) -> Result<(), Error> {
        let mut args = self.project_args(stack);
        args.extend(["pull", "--ignore-buildable"].map(String::from));
        self.run("pull", &stack.project, &args, Some(stack))
    }

    /// Re-create exactly `services` of the stack (`up -d --no-deps --force-recreate SERVICE...`,
    /// with the stack's `--wait`): after a pull, only the services whose image changed.
    pub fn recreate_services(&self, stack: &Stack, services: &[String]) -> Result<(), Error> {
        let mut args = self.project_args(stack);
        args.extend(["up", "-d", "--no-deps", "--force-recreate"].map(String::from));
        if let Some(timeout) = stack.wait {
            args.push("--wait".into());
            if let Some(timeout) = timeout {
                args.push("--wait-timeout".into());
                args.push(timeout.to_string());
            }
        }
        args.extend(services.iter().cloned());
        self.run("up", &stack.project, &args, Some(stack))
    }

    /// The id of the local image `image` names now (`image inspect`, through the engine's own
    /// CLI: compose has no command for it); `None` when there is no such image locally.
    pub fn image_id(&self, image: &str) -> Result<Option<String>, Error> {
        let program = self.engine_program();
        let args = ["image", "inspect", "--format", "{{.Id}}", image];
        match without_compose_env(duct::cmd(program, args))
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
        {
            Ok(out) if out.status.success() => {
                Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()).filter(|id| !id.is_empty()))
            }
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                if stderr.to_lowercase().contains("no such image") {
                    Ok(None)
                } else {
                    Err(Error::Failed {
                        action: "image inspect",
                        stack: image.into(),
                        code: out.status.code().unwrap_or(-1),
                        message: last_line(&stderr),
                    })
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(Error::Missing {
                command: program.to_owned(),
            }),
            Err(err) => Err(Error::Failed {
                action: "image inspect",
                stack: image.into(),
                code: -1,
                message: err.to_string(),
            }),
        }
    }

    /// The engine's CLI beside compose: `podman` for `podman compose`, else `docker` (for
    /// `docker compose`, `docker-compose` and wrapper scripts alike).
    fn engine_program(&self) -> &str {
        match self.command.as_slice() {
            [program, sub, ..] if sub == "compose" && !program.ends_with("docker-compose") => program,
            _ => "docker",
        }
    }

    fn capture(&self, action: &'static str, stack: &str, extra: &[&str]) -> Result<String, Error> {
        self.capture_inner(action, stack, extra, false)
    }

    /// Like `capture`, with stderr merged in (compose prints progress there).
    fn capture_all(&self, action: &'static str, stack: &str, extra: &[&str]) -> Result<String, Error> {
        self.capture_inner(action, stack, extra, true)
    }

    fn capture_inner(&self, action: &'static str, stack: &str, extra: &[&str], merge: bool) -> Result<String, Error> {
        let (program, args) = self.split(extra);
        let cmd = without_compose_env(duct::cmd(program, &args));
        let cmd = if merge {
            cmd.stderr_to_stdout()
        } else {
            cmd.stderr_capture()
        };
        match cmd.stdout_capture().unchecked().run() {
            Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            Ok(out) => Err(Error::Failed {
                action,
                stack: stack.into(),
                code: out.status.code().unwrap_or(-1),
                message: last_line(&String::from_utf8_lossy(&out.stderr)),
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(Error::Missing {
                command: self.command.join(" "),
            }),
            Err(err) => Err(Error::Failed {
                action,
                stack: stack.into(),
                code: -1,
                message: err.to_string(),
            }),
        }
    }

    /// Every choice compose would otherwise make itself, made explicit: the project name and
    /// directory, the files, the env files and the profiles driftless resolved and digested.
    /// The default `.env` is passed only when it exists (compose refuses a missing `--env-file`).
    fn project_args(&self, stack: &Stack) -> Vec<String> {
        let mut args = vec![
            "--project-name".to_owned(),
            stack.project.clone(),
            "--project-directory".to_owned(),
            stack.project_dir.display().to_string(),
        ];
        for file in &stack.files {
            args.push("-f".into());
            args.push(file.display().to_string());
        }
        for env in stack.env_files.iter().filter(|e| stack.env_explicit || e.is_file()) {
            args.push("--env-file".into());
            args.push(env.display().to_string());
        }
        for profile in &stack.profiles {
            args.push("--profile".into());
            args.push(profile.clone());
        }
        args
    }

    /// Run compose with its output (stdout and stderr, read as bytes: compose prints whatever
    /// its containers' names and images hold) logged line by line, and always wait for it.
    fn run(&self, action: &'static str, stack: &str, args: &[String], dir: Option<&Stack>) -> Result<(), Error> {
        let extra: Vec<&str> = args.iter().map(String::as_str).collect();
        let (program, all) = self.split(&extra);
        tracing::info!("[{stack}] running {} {}", program, all.join(" "));
        let mut cmd = without_compose_env(duct::cmd(program, &all));
        if let Some(dir) = dir {
            cmd = cmd.dir(&dir.path);
        }
        let reader = match cmd.stderr_to_stdout().unchecked().reader() {
            Ok(reader) => reader,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Missing {
                    command: self.command.join(" "),
                });
            }
            Err(err) => {
                return Err(Error::Failed {
                    action,
                    stack: stack.into(),
                    code: -1,
                    message: err.to_string(),
                });
            }
        };
        let mut tail: Vec<String> = Vec::new();
        let mut lines = std::io::BufReader::new(&reader);
        let mut line = Vec::new();
        loop {
            line.clear();
            match lines.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    tracing::warn!("[{stack}] reading compose's output failed: {err}; waiting for it to finish");
                    // Keep its pipe drained so it cannot block on a write.
                    let _ = std::io::copy(&mut lines, &mut std::io::sink());
                    break;
                }
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            if !text.is_empty() {
                tracing::info!("[{stack}] {text}");
                tail.push(text.to_owned());
                if tail.len() > 5 {
                    tail.remove(0);
                }
            }
        }
        // Compose is never left running behind a report: wait for it whatever the reading did.
        let status = loop {
            match reader.try_wait() {
                Ok(Some(out)) => break Some(out.status),
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(20)),
                Err(_) => break None,
            }
        };
        match status {
            Some(status) if status.success() => Ok(()),
            status => Err(Error::Failed {
                action,
                stack: stack.into(),
                code: status.and_then(|s| s.code()).unwrap_or(-1),
                message: tail
                    .iter()
                    .rev()
                    .find(|l| l.to_lowercase().contains("error"))
                    .cloned()
                    .unwrap_or_else(|| tail.join(" | ")),
            }),
        }
    }

    fn split<'a>(&'a self, extra: &[&'a str]) -> (&'a str, Vec<&'a str>) {
        let program = self.command.first().map_or("docker", String::as_str);
        let mut args: Vec<&str> = self.command.iter().skip(1).map(String::as_str).collect();
        args.extend_from_slice(extra);
        (program, args)
    }
}

/// The command without the process environment's `COMPOSE_*` choices: driftless passes its
/// own, resolved per stack.
fn without_compose_env(mut cmd: duct::Expression) -> duct::Expression {
    for var in COMPOSE_ENV_VARS {
        cmd = cmd.env_remove(var);
    }
    cmd
}

/// `program` as the shell would find it: a path as is, else the first match on `PATH`.
fn which_program(program: &str) -> Option<std::path::PathBuf> {
    if program.contains('/') {
        return std::path::Path::new(program).is_file().then(|| program.into());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The labels of `compose ps --format json`'s one `k=v,k=v` string. A value holds commas too
/// (`config_files` lists every file, `/a/compose.yaml,/a/compose.override.yaml`): a piece that
/// is not `key=value` with a key that is no path continues the value before it.
fn labels(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut labels = std::collections::BTreeMap::new();
    let mut last: Option<String> = None;
    for piece in text.split(',') {
        match piece.split_once('=') {
            Some((key, value)) if !key.is_empty() && !key.contains('/') => {
                labels.insert(key.to_owned(), value.to_owned());
                last = Some(key.to_owned());
            }
            _ => {
                if let Some(value) = last.as_ref().and_then(|k| labels.get_mut(k)) {
                    value.push(',');
                    value.push_str(piece);
                }
            }
        }
    }
    labels
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_with_commas_are_kept_whole() {
        let labels = super::labels(
            "com.docker.compose.config-hash=abc,com.docker.compose.project.config_files=/s/a/compose.yaml,/s/a/extra=1.yaml,com.docker.compose.project.working_dir=/s/a,x=",
        );
        assert_eq!(labels["com.docker.compose.config-hash"], "abc");
        assert_eq!(
            labels["com.docker.compose.project.config_files"],
            "/s/a/compose.yaml,/s/a/extra=1.yaml"
        );
        assert_eq!(labels["com.docker.compose.project.working_dir"], "/s/a");
        assert_eq!(labels["x"], "");
    }
}
