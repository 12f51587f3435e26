//! `apply-compose`: bring compose stacks in line with the checkout, only the ones whose
//! inputs changed, and say why.
//!
//! Thin by design: parse arguments, call `driftless_core::compose`, print, map to an exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use driftless_core::cli::{CommonArgs, looks_like_path};
use driftless_core::compose::runner::Compose;
use driftless_core::compose::{self, Options, Target};
use driftless_core::exit::Exit;

const EXAMPLES: &str = "\
Examples:
  apply-compose observability-hub            apply the stacks of repos.observability-hub
  apply-compose /srv/lab                     every directory with a compose file, no config needed
  apply-compose hub --dry-run                what would be applied, and why
  apply-compose hub --stack grafana --force  re-apply one stack even if unchanged
  touch /srv/hub/stacks/loki/.driftless-hold  put a stack on hold: never touched

Phase 3 under systemd (sync-repo triggers it after an update):
  systemctl enable apply-compose@observability-hub.service

When nothing changed, docker is not even started. Exit codes: 0 ok, 2 usage or config error,
3 refused (tracked inputs modified in the checkout), 65 a stack's compose failed (its state
is kept, the next run retries), 74 local I/O failure, 75 engine unreachable or lock busy.";

/// Bring docker compose stacks in line with what the checkout says.
///
/// A stack is applied when the digest of everything it reads from the repo (compose files,
/// includes, env files, configs, secrets, bind mounts, build contexts) differs from the last
/// successful apply, when it was never applied, or when its last apply failed.
#[derive(Debug, Parser)]
#[command(name = "apply-compose", version, after_help = EXAMPLES)]
struct Args {
    /// A repo name from the config, or the path of a checkout
    #[arg(value_name = "REPO|PATH", required_unless_present = "all", conflicts_with = "all")]
    target: Option<String>,

    /// Apply the stacks of every configured repo
    #[arg(long)]
    all: bool,

    /// Only this stack (project name or directory; repeatable)
    #[arg(long, value_name = "STACK")]
    stack: Vec<String>,

    /// Apply even stacks whose inputs did not change
    #[arg(long)]
    force: bool,

    /// Apply stacks whose tracked inputs are modified in the checkout (one-off manual runs)
    #[arg(long)]
    allow_dirty: bool,

    /// The compose command [default: from the config, else `docker compose`]
    #[arg(long, value_name = "COMMAND")]
    compose_command: Option<String>,

    /// Wait up to SECONDS for another run on the same repo instead of exiting with 75
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    wait_lock: u64,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    driftless_core::cli::main("apply-compose", &args.common, || run(&args))
}

fn run(args: &Args) -> Result<Exit, Box<dyn std::error::Error>> {
    let (config, state) = args.common.load()?;
    let compose = Compose::from_flag_or_config(args.compose_command.as_deref(), &config)?;
    let options = Options {
        dry_run: args.common.dry_run,
        allow_dirty: args.allow_dirty,
        force: args.force,
        only: args.stack.clone(),
        wait_lock: Duration::from_secs(args.wait_lock),
        compose,
        metrics_dir: config.metrics_dir.clone(),
    };
    let targets: Vec<Target> = if args.all {
        config
            .repos
            .iter()
            .filter(|(_, r)| !r.stacks.is_empty())
            .map(|(n, r)| Target::configured(n, r))
            .collect()
    } else {
        let text = args.target.as_deref().unwrap_or_default();
        if looks_like_path(text) {
            vec![Target::from_path(&PathBuf::from(text), &config)]
        } else {
            let repo = config.repo(text)?;
            if repo.stacks.is_empty() {
                return Err(format!("repos.{text} has no `stacks:` to apply").into());
            }
            vec![Target::configured(text, repo)]
        }
    };
    if targets.is_empty() {
        return Err("--all: no repo in the config has `stacks:`".into());
    }
    let mut worst = Exit::Ok;
    for target in &targets {
        let report = compose::apply(target, &state, &options);
        if args.common.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            for line in report.summary() {
                println!("{line}");
            }
        }
        worst = worst.max(report.exit);
    }
    Ok(worst)
}
