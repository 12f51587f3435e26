//! Command-line pieces every tool shares: the common flags and how errors are printed.

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

    /// More log detail on stderr (-v info, -vv debug, -vvv trace); DRIFTLESS_LOG overrides
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Less log detail on stderr
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
}

impl CommonArgs {
    /// The config (from `--config`, `DRIFTLESS_CONFIG` or the default file, which may be
    /// absent) and the state directory it and the flags point to.
    pub fn load(&self) -> Result<(crate::config::Config, crate::state::StateDir), crate::config::Error> {
        let config = crate::config::Config::load(self.config.as_deref())?;
        let state = crate::state::StateDir::resolve(self.state_dir.as_deref(), &config);
        Ok((config, state))
    }

    /// `-v` count minus `-q` count, for [`crate::logging::init`].
    pub fn verbosity(&self) -> i8 {
        (self.verbose.min(3) as i8) - (self.quiet.min(3) as i8)
    }
}

/// Render an error and its `source()` chain as `TOOL: error: ...` lines, credentials redacted.
pub fn error_report(tool: &str, error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = format!("{tool}: error: {}", crate::redact::redact(&error.to_string()));
    let mut seen = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        // thiserror's `{source}` in a message repeats the cause; print each text once.
        if !seen.contains(&message) {
            text.push_str(&format!("\n  caused by: {}", crate::redact::redact(&message)));
            seen.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// A tool's `main`: set up logging, call `run`, and turn its outcome into the exit code. An
/// error escaping `run` is a usage or config error (exit 2), printed with its causes.
#[allow(clippy::print_stderr)]
pub fn main(
    tool: &str,
    common: &CommonArgs,
    run: impl FnOnce() -> Result<crate::exit::Exit, Box<dyn std::error::Error>>,
) -> std::process::ExitCode {
    crate::logging::init(common.verbosity());
    match run() {
        Ok(exit) => exit.into(),
        Err(err) => {
            eprintln!("{}", error_report(tool, err.as_ref()));
            crate::exit::Exit::Usage.into()
        }
    }
}

/// Whether a command-line target names a checkout path rather than a configured repo: repo
/// names never contain `/`.
pub fn looks_like_path(text: &str) -> bool {
    text.contains('/') || text == "." || text == ".." || std::path::Path::new(text).is_dir()
}
