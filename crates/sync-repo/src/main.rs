//! `sync-repo`: fetch a git repo and fast-forward its checkout, never losing local work.
//!
//! Thin by design: parse arguments, call `driftless_core::sync`, print, map to an exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use driftless_core::cli::{CommonArgs, looks_like_path};
use driftless_core::exit::Exit;
use driftless_core::sync::{self, Options, Outcome, Target};

const EXAMPLES: &str = "\
Examples:
  sync-repo /srv/observability-hub        sync a checkout, no config needed
  sync-repo observability-hub             sync the repo named in /etc/driftless/driftless.yaml
  sync-repo --all --jobs 4                sync every configured repo (phase 2)
  sync-repo --dry-run --json hub          what would change, as JSON
  sync-repo --force hub                   take the remote state; local work is preserved
                                          under refs/driftless/preserved/<time>

Under systemd (one oneshot run per timer tick):
  systemctl enable --now sync-repo@observability-hub.timer
  systemctl start sync-repo@observability-hub.service     # run now, by hand
  journalctl -u sync-repo@observability-hub.service

From cron, on hosts without systemd:
  */5 * * * * root sync-repo --all --quiet

Exit codes: 0 in sync or updated, 2 usage or config error, 3 refused (a person must decide;
nothing was changed), 74 local I/O failure, 75 temporary failure (remote unreachable, lock
busy). With --all, the worst. See docs/exit-codes.md.";

/// Fetch a git repo and fast-forward its checkout, never losing local work.
///
/// Only the paths that changed are written. A checkout with modified tracked files, local
/// commits, a detached HEAD or an unfinished merge is refused with exit code 3 and the
/// commands that resolve it; --force takes the remote state after preserving all local work.
#[derive(Debug, Parser)]
#[command(name = "sync-repo", version, after_help = EXAMPLES)]
struct Args {
    /// A repo name from the config, or the path of a checkout
    #[arg(value_name = "REPO|PATH", required_unless_present = "all", conflicts_with = "all")]
    target: Option<String>,

    /// Sync every repo in the config
    #[arg(long)]
    all: bool,

    /// With --all, how many repos to sync at once [default: number of cores]
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,

    /// Take the remote state even when refused, after preserving local commits and changes
    /// under refs/driftless/preserved/<time>
    #[arg(long)]
    force: bool,

    /// Wait up to SECONDS for another run on the same repo instead of exiting with 75
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    wait_lock: u64,

    /// Fetch from URL instead of the config's remote or the checkout's origin
    #[arg(long, value_name = "URL", conflicts_with = "all")]
    remote: Option<String>,

    /// Follow BRANCH instead of the config's branch (default: main)
    #[arg(long, value_name = "BRANCH", conflicts_with = "all")]
    branch: Option<String>,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    driftless_core::cli::main("sync-repo", &args.common, || run(&args))
}

fn run(args: &Args) -> Result<Exit, Box<dyn std::error::Error>> {
    let (config, state) = args.common.load()?;
    let options = Options {
        dry_run: args.common.dry_run,
        force: args.force,
        wait_lock: Duration::from_secs(args.wait_lock),
        metrics_dir: config.metrics_dir.clone(),
    };

    let targets = if args.all {
        if config.repos.is_empty() {
            return Err(format!(
                "--all: no repos configured in {}",
                config.source.as_deref().map_or_else(
                    || driftless_core::config::DEFAULT_CONFIG_PATH.into(),
                    |p| p.display().to_string()
                )
            )
            .into());
        }
        config
            .repos
            .iter()
            .map(|(name, repo)| Target::configured(name, repo))
            .collect()
    } else {
        let text = args.target.as_deref().unwrap_or_default();
        let mut target = if looks_like_path(text) {
            Target::from_path(&PathBuf::from(text), &config)
        } else {
            Target::configured(text, config.repo(text)?)
        };
        if let Some(remote) = &args.remote {
            target.remote = Some(remote.clone());
        }
        if let Some(branch) = &args.branch {
            target.branch = branch.clone();
        }
        vec![target]
    };

    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let reports = sync::sync_all(&targets, &state, &options, jobs);
    for report in &reports {
        if args.common.json {
            println!("{}", serde_json::to_string(report)?);
        } else {
            println!("{}", report.summary());
        }
        if matches!(report.outcome, Outcome::Refused | Outcome::Failed) || report.preserved_ref.is_some() {
            for line in &report.resolve {
                eprintln!("  {line}");
            }
        }
    }
    Ok(Exit::worst(reports.iter().map(|r| r.exit)))
}
