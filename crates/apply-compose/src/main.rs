//! `apply-compose`: bring compose stacks in line with the checkout, only the ones whose
//! inputs changed, and say why.
//!
//! Thin by design: parse arguments, call `driftless_core::compose`, print, map to an exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use apply_compose::cli::Args;
use clap::Parser;
use driftless_core::cli::looks_like_path;
use driftless_core::compose::runner::Compose;
use driftless_core::compose::{self, Options, Target};
use driftless_core::exit::Exit;

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
