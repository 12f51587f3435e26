//! driftless-cli: the command line every driftless tool shares. The common flags, the output
//! contract (what reaches stdout at each verbosity), the one writer that survives a closed pipe,
//! how errors are printed, and the log set-up ([`logging`]).
//!
//! It sits between the binaries and `driftless-core`, so that the core, where every decision
//! lives, imports no CLI crate and prints nothing.

pub mod logging;

use std::io::Write;
use std::path::PathBuf;

/// Flags every driftless tool accepts, flattened into each tool's arguments.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// Config file [default: /etc/driftless/driftless.yaml; it may be absent]
    #[arg(long, env = "DRIFTLESS_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// State directory [default: $STATE_DIRECTORY, the config's state_dir, or /var/lib/driftless]
    #[arg(long, value_name = "DIR", global = true)]
    pub state_dir: Option<PathBuf>,

    /// Say what would change, change nothing
    #[arg(short = 'n', long, global = true)]
    pub dry_run: bool,

    /// Print one JSON record per repo on stdout instead of the summary
    #[arg(long, global = true)]
    pub json: bool,

    /// Print the effective config (the file with every default filled in) as YAML, and exit
    #[arg(long, global = true)]
    pub print_config: bool,

    /// Every item on stdout, and more log detail on stderr (-v info, -vv debug, -vvv trace);
    /// DRIFTLESS_LOG overrides the log level
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Only failures and refusals on stdout (nothing on success, so cron mails only on trouble),
    /// and only errors on stderr
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
}

impl CommonArgs {
    /// The config (from `--config`, `DRIFTLESS_CONFIG` or the default file, which may be
    /// absent) and the state directory it and the flags point to.
    pub fn load(
        &self,
    ) -> Result<(driftless_core::config::Config, driftless_core::state::StateDir), driftless_core::config::Error> {
        let config = driftless_core::config::Config::load(self.config.as_deref())?;
        let state = driftless_core::state::StateDir::resolve(self.state_dir.as_deref(), &config);
        Ok((config, state))
    }

    /// Like [`CommonArgs::load`], for a run whose target may be a checkout path (`path_run`),
    /// which needs no config: there a config that cannot be read or parsed is a warning on
    /// stderr (printed even under `-q`, since someone must fix it) and the run goes on with the
    /// defaults; a run that needs the config still fails on it.
    pub fn load_for(
        &self,
        tool: &str,
        path_run: bool,
    ) -> Result<(driftless_core::config::Config, driftless_core::state::StateDir), driftless_core::config::Error> {
        match self.load() {
            Err(err) if path_run => {
                let report = error_report(tool, &err).replacen(": error: ", ": warning: ", 1);
                Output::new(Detail::Quiet).note(&format!(
                    "{report}\n  {tool} goes on without it: a checkout path needs no config"
                ));
                let config = driftless_core::config::Config::default();
                let state = driftless_core::state::StateDir::resolve(self.state_dir.as_deref(), &config);
                Ok((config, state))
            }
            loaded => loaded,
        }
    }

    /// `-v` count minus `-q` count, for [`logging::init`].
    pub fn verbosity(&self) -> i8 {
        (self.verbose.min(3) as i8) - (self.quiet.min(3) as i8)
    }

    /// How much goes to stdout, from `-q`/`-v`.
    pub fn detail(&self) -> Detail {
        match self.verbosity() {
            i8::MIN..=-1 => Detail::Quiet,
            0 => Detail::Default,
            _ => Detail::Verbose,
        }
    }

    /// The stdout writer for this run's results.
    pub fn output(&self) -> Output {
        Output::new(self.detail())
    }
}

/// How much a tool prints on stdout: the output contract every tool follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// `-q`: failures and refusals only; a run where all went well prints nothing.
    Quiet,
    /// One line per changed or failed item and one summary line for the rest.
    Default,
    /// `-v`: one line per item.
    Verbose,
}

/// What one item of a run came to, which decides whether its line is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Nothing to do: counted in the summary line (printed itself under `-v`).
    Unchanged,
    /// Something was changed (or would be, under `--dry-run`): printed unless `-q`.
    Changed,
    /// A failure or a refusal: always printed.
    Failed,
}

/// stdout and stderr for a tool's results, following the output contract.
///
/// A write that fails (a closed pipe: `sync-repo --all | head -1`) ends that stream's output
/// quietly and the run goes on to its normal exit code: `println!` would panic, which under
/// `panic = "abort"` is exit 134 after the work was done.
#[derive(Debug)]
pub struct Output {
    detail: Detail,
    stdout_closed: bool,
    stderr_closed: bool,
    /// Unchanged items not printed yet: (what is counted, how it is described, its own line).
    rest: Vec<(&'static str, String, String)>,
}

impl Output {
    /// A writer printing at `detail`.
    pub fn new(detail: Detail) -> Output {
        Output {
            detail,
            stdout_closed: false,
            stderr_closed: false,
            rest: Vec::new(),
        }
    }

    /// The detail this writer prints at.
    pub fn detail(&self) -> Detail {
        self.detail
    }

    /// One item's line: printed or counted as its `kind` and the detail say. `noun` (`repo`,
    /// `stack`) and `state` (`in sync`, `unchanged`) describe an unchanged item in the summary.
    pub fn item(&mut self, kind: Kind, noun: &'static str, state: &str, line: &str) {
        match (kind, self.detail) {
            (Kind::Failed, _) | (Kind::Changed, Detail::Default | Detail::Verbose) | (_, Detail::Verbose) => {
                self.line(line)
            }
            (Kind::Unchanged, Detail::Default) => self.rest.push((noun, state.to_owned(), line.to_owned())),
            (Kind::Changed | Kind::Unchanged, Detail::Quiet) => {}
        }
    }

    /// Print the summary of the unchanged items (default detail only): the item's own line when
    /// there is one, else the counts (`5 repos in sync`, `4 stacks unchanged, 1 held`).
    pub fn finish(&mut self) {
        let rest = std::mem::take(&mut self.rest);
        if let [(_, _, line)] = rest.as_slice() {
            self.line(line);
            return;
        }
        let mut groups: Vec<(&'static str, &str, usize)> = Vec::new();
        for (noun, state, _) in &rest {
            match groups.iter_mut().find(|(n, s, _)| n == noun && s == state) {
                Some(group) => group.2 += 1,
                None => groups.push((noun, state, 1)),
            }
        }
        let mut parts = Vec::new();
        let mut last_noun = "";
        for (noun, state, count) in groups {
            if noun == last_noun {
                parts.push(format!("{count} {state}"));
            } else {
                let plural = if count == 1 { "" } else { "s" };
                parts.push(format!("{count} {noun}{plural} {state}"));
                last_noun = noun;
            }
        }
        if !parts.is_empty() {
            self.line(&parts.join(", "));
        }
    }

    /// A line on stdout whatever the detail (a `--json` record, a `--dry-run` preview).
    pub fn line(&mut self, text: &str) {
        Self::write(&mut std::io::stdout().lock(), &mut self.stdout_closed, text);
    }

    /// Text on stdout as it is (a table that ends in its own newline).
    pub fn text(&mut self, text: &str) {
        if !self.stdout_closed && std::io::stdout().lock().write_all(text.as_bytes()).is_err() {
            self.stdout_closed = true;
        }
    }

    /// A line on stderr (what to run to resolve a refusal).
    pub fn note(&mut self, text: &str) {
        Self::write(&mut std::io::stderr().lock(), &mut self.stderr_closed, text);
    }

    fn write(out: &mut impl Write, closed: &mut bool, text: &str) {
        if !*closed && writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
            *closed = true;
        }
    }
}

/// Render an error and its `source()` chain as `TOOL: error: ...` lines, credentials redacted.
pub fn error_report(tool: &str, error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = format!("{tool}: error: {}", driftless_core::redact::redact(&error.to_string()));
    let mut seen = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        // thiserror's `{source}` in a message repeats the cause; print each text once.
        if !seen.contains(&message) {
            text.push_str(&format!("\n  caused by: {}", driftless_core::redact::redact(&message)));
            seen.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// A tool's `main`: set up logging, call `run`, and turn its outcome into the exit code. An
/// error escaping `run` is a usage or config error (exit 2), printed with its causes.
pub fn main(
    tool: &str,
    common: &CommonArgs,
    run: impl FnOnce() -> Result<driftless_core::exit::Exit, Box<dyn std::error::Error>>,
) -> std::process::ExitCode {
    crate::logging::init(common.verbosity());
    if common.print_config {
        return match common.load() {
            Ok((config, state)) => {
                Output::new(Detail::Default).text(&effective_config(&config, &state));
                driftless_core::exit::Exit::Ok.into()
            }
            Err(err) => {
                Output::new(Detail::Quiet).note(&error_report(tool, &err));
                driftless_core::exit::Exit::Usage.into()
            }
        };
    }
    match run() {
        Ok(exit) => exit.into(),
        Err(err) => {
            Output::new(Detail::Quiet).note(&error_report(tool, err.as_ref()));
            driftless_core::exit::Exit::Usage.into()
        }
    }
}

/// `--print-config`: the config as the tools use it, as YAML: the file's settings, with the state
/// directory, compose command and each repo's branch resolved to what a run would use.
pub fn effective_config(config: &driftless_core::config::Config, state: &driftless_core::state::StateDir) -> String {
    use serde_yaml::Value;
    let mut value = serde_yaml::to_value(config).unwrap_or(Value::Null);
    if let Value::Mapping(top) = &mut value {
        top.insert("state_dir".into(), state.root().display().to_string().into());
        let compose = config
            .compose_command
            .clone()
            .unwrap_or_else(|| driftless_core::compose::runner::Compose::default().command);
        top.insert(
            "compose_command".into(),
            Value::Sequence(compose.into_iter().map(Value::from).collect()),
        );
        if let Some(Value::Mapping(repos)) = top.get_mut("repos") {
            for (name, repo) in repos.iter_mut() {
                let branch = name
                    .as_str()
                    .and_then(|n| config.repos.get(n))
                    .map(|r| r.branch().to_owned());
                if let (Value::Mapping(repo), Some(branch)) = (repo, branch) {
                    repo.insert("branch".into(), branch.into());
                }
            }
        }
    }
    let source = config.source.as_deref().map_or_else(
        || {
            format!(
                "no config file ({} is absent): the defaults",
                driftless_core::config::DEFAULT_CONFIG_PATH
            )
        },
        |p| p.display().to_string(),
    );
    let yaml = serde_yaml::to_string(&value).unwrap_or_default();
    format!("# effective config, from {source}\n{yaml}")
}

/// Whether a command-line target names a checkout path rather than a configured repo: repo
/// names never contain `/`.
pub fn looks_like_path(text: &str) -> bool {
    text.contains('/') || text == "." || text == ".." || std::path::Path::new(text).is_dir()
}

/// The environment variable that turns a tool run into a shell-completion request (clap's
/// dynamic completion, as jj uses). Namespaced: a stray `COMPLETE=1` must not break a run.
pub const COMPLETE_VAR: &str = "DRIFTLESS_COMPLETE";

/// Answer a completion request and exit, when [`COMPLETE_VAR`] names a shell; a no-op otherwise.
/// Called first in every tool's `main`, before anything reaches stdout.
pub fn answer_completion<A: clap::CommandFactory>() {
    clap_complete::CompleteEnv::with_factory(A::command)
        .var(COMPLETE_VAR)
        .complete();
}

/// Completes a `REPO|PATH` argument: the repo names of the config that start with what was
/// typed (the repo's path as the description), or, once the word looks like a path, folders.
/// The config is the one `--config` names earlier on the command line, else
/// `DRIFTLESS_CONFIG`, else the default file; one that cannot be read offers no names.
pub fn complete_target(current: &std::ffi::OsStr) -> Vec<clap_complete::CompletionCandidate> {
    use clap_complete::engine::ValueCompleter;
    let Some(text) = current.to_str() else {
        return Vec::new();
    };
    if text.contains('/') || text.starts_with('.') || text.starts_with('~') {
        return clap_complete::PathCompleter::dir().complete(current);
    }
    let Ok(config) = driftless_core::config::Config::load(completion_config().as_deref()) else {
        return Vec::new();
    };
    config
        .repos
        .iter()
        .filter(|(name, _)| name.starts_with(text))
        .map(|(name, repo)| {
            clap_complete::CompletionCandidate::new(name).help(Some(repo.path.display().to_string().into()))
        })
        .collect()
}

/// The config file a completion request points to (see [`complete_target`]).
fn completion_config() -> Option<PathBuf> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut found = None;
    for (i, arg) in args.iter().enumerate() {
        let Some(arg) = arg.to_str() else { continue };
        if arg == "--config" {
            found = args.get(i + 1).map(PathBuf::from);
        } else if let Some(path) = arg.strip_prefix("--config=") {
            found = Some(PathBuf::from(path));
        }
    }
    found.or_else(|| std::env::var_os("DRIFTLESS_CONFIG").map(PathBuf::from))
}
