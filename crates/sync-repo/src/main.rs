//! `sync-repo`: fetch a git repo and fast-forward its checkout, never losing local work.
//!
//! Thin by design: parse arguments, call `driftless_core::sync`, print, map to an exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use driftless_cli::{Kind, looks_like_path};
use driftless_core::exit::Exit;
use driftless_core::sync::{self, Options, Outcome, Target};
use sync_repo::cli::Args;

fn main() -> ExitCode {
    if let Some(code) = sync::serve_worker(driftless_cli::logging::init) {
        return code;
    }
    driftless_cli::answer_completion::<Args>();
    let args = Args::parse();
    driftless_cli::main("sync-repo", &args.common, || run(&args))
}

fn run(args: &Args) -> Result<Exit, Box<dyn std::error::Error>> {
    let path_run = !args.all && looks_like_path(args.target.as_deref().unwrap_or_default());
    let (config, state) = args.common.load_for("sync-repo", path_run)?;
    let options = Options {
        dry_run: args.common.dry_run,
        force: args.force,
        wait_lock: Duration::from_secs(args.wait_lock),
        metrics_dir: config.metrics_dir.clone(),
        verbosity: args.common.verbosity(),
    };

    let mut targets: Vec<Target> = if args.all {
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
            .map(|(name, repo)| Target::in_config(name, repo, &config))
            .collect()
    } else {
        let text = args.target.as_deref().unwrap_or_default();
        let mut target = if looks_like_path(text) {
            Target::from_path(&PathBuf::from(text), &config)
        } else {
            Target::in_config(text, config.repo(text)?, &config)
        };
        if let Some(remote) = &args.remote {
            target.remote = Some(remote.clone());
        }
        if let Some(branch) = &args.branch {
            target.branch = branch.clone();
        }
        vec![target]
    };
    if args.recurse_submodules {
        for target in &mut targets {
            target.recurse_submodules = true;
        }
    }

    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let reports = sync::sync_all(&targets, &state, &options, jobs);
    let mut out = args.common.output();
    for report in &reports {
        if args.common.json {
            out.line(&serde_json::to_string(report)?);
        } else {
            let kind = match report.outcome {
                Outcome::InSync => Kind::Unchanged,
                Outcome::Updated | Outcome::WouldUpdate => Kind::Changed,
                Outcome::Refused | Outcome::Failed => Kind::Failed,
            };
            out.item(kind, "repo", "in sync", &report.summary());
        }
        if matches!(report.outcome, Outcome::Refused | Outcome::Failed) || report.preserved_ref.is_some() {
            for line in &report.resolve {
                out.note(&format!("  {line}"));
            }
        }
    }
    out.finish();
    Ok(Exit::worst(reports.iter().map(|r| r.run.exit)))
}
