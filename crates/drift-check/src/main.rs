//! `drift-check`: desired state (git) against live state (checkout, running stacks, mirror),
//! for people (a table), for monitoring (a Prometheus textfile) and for systemd (exit code).
//!
//! Thin by design: parse arguments, call `driftless_core::drift`, print, map to an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use driftless_core::cli::{CommonArgs, looks_like_path};
use driftless_core::compose::runner::Compose;
use driftless_core::drift::{self, Options, Target, output};
use driftless_core::exit::Exit;

const EXAMPLES: &str = "\
Examples:
  drift-check                                  every configured repo
  drift-check observability-hub --all-items    one repo, listing what is fine too
  drift-check /srv/lab --no-fetch              a checkout, against the last fetched refs
  drift-check --deep --json                    compare mirror content too, as JSON
  drift-check --metrics-dir /var/lib/prometheus/node-exporter

Under systemd: systemctl enable --now drift-check@observability-hub.timer
Drift makes the unit fail (exit 1) and so fires the OnFailure notifier; to make drift a
warning only, add `SuccessExitStatus=1` in a drop-in (docs/runbook.md).

Exit codes: 0 no drift, 1 drift found, 2 usage or config error, 75 a part could not be
checked (remote unreachable, docker down) and no drift was found elsewhere.";

/// Compare what git says with what runs, and report every difference with its fix.
#[derive(Debug, Parser)]
#[command(name = "drift-check", version, after_help = EXAMPLES)]
struct Args {
    /// A repo name from the config, or the path of a checkout [default: every configured repo]
    #[arg(value_name = "REPO|PATH")]
    target: Option<String>,

    /// Use the last fetched refs instead of asking the remote
    #[arg(long)]
    no_fetch: bool,

    /// Also compare the mirror's content (file list and sizes, or `rclone check --one-way`)
    #[arg(long)]
    deep: bool,

    /// Write driftless.prom (Prometheus textfile) into DIR [default: the config's metrics_dir]
    #[arg(long, value_name = "DIR")]
    metrics_dir: Option<PathBuf>,

    /// List every check in the table, not only what drifted
    #[arg(long)]
    all_items: bool,

    /// The compose command [default: from the config, else `docker compose`]
    #[arg(long, value_name = "COMMAND")]
    compose_command: Option<String>,

    /// The rclone program, for --deep on a remote mirror
    #[arg(long, value_name = "PROGRAM", env = "DRIFTLESS_RCLONE", default_value = "rclone")]
    rclone: String,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    driftless_core::cli::main("drift-check", &args.common, || run(&args))
}

fn run(args: &Args) -> Result<Exit, Box<dyn std::error::Error>> {
    let (config, state) = args.common.load()?;
    let compose = Compose::from_flag_or_config(args.compose_command.as_deref(), &config)?;
    let options = Options {
        no_fetch: args.no_fetch,
        deep: args.deep,
        compose,
        rclone: args.rclone.clone(),
    };
    let targets: Vec<Target> = match args.target.as_deref() {
        None => {
            if config.repos.is_empty() {
                return Err("no repos configured; name a checkout path or add repos to the config".into());
            }
            config
                .repos
                .iter()
                .map(|(name, repo)| Target::configured(name, repo))
                .collect()
        }
        Some(text) if looks_like_path(text) => {
            vec![Target::from_path(&PathBuf::from(text), &config)]
        }
        Some(name) => vec![Target::configured(name, config.repo(name)?)],
    };
    let reports: Vec<_> = targets.iter().map(|t| drift::check(t, &state, &options)).collect();
    let exit = reports.iter().map(|r| r.exit()).fold(Exit::Ok, |a, b| {
        if a == Exit::Drift || b == Exit::Drift {
            Exit::Drift
        } else {
            a.max(b)
        }
    });

    if let Some(dir) = args.metrics_dir.as_ref().or(config.metrics_dir.as_ref()) {
        let metrics = output::metrics(&reports, exit.code(), driftless_core::time::now_unix());
        output::write_metrics(dir, &metrics)
            .map_err(|e| format!("cannot write {}/driftless.prom: {e}", dir.display()))?;
    }
    if args.common.json {
        for report in &reports {
            for item in &report.items {
                println!("{}", serde_json::to_string(item)?);
            }
        }
    } else {
        print!("{}", output::table(&reports, args.all_items));
    }
    Ok(exit)
}
