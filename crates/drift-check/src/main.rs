//! `drift-check`: desired state (git) against live state (checkout, running stacks, mirror),
//! for people (a table), for monitoring (a Prometheus textfile) and for systemd (exit code).
//!
//! Thin by design: parse arguments, call `driftless_core::drift`, print, map to an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use drift_check::cli::Args;
use driftless_core::cli::{Detail, looks_like_path};
use driftless_core::compose::runner::Compose;
use driftless_core::drift::{self, Options, Target, output};
use driftless_core::exit::Exit;

fn main() -> ExitCode {
    let args = Args::parse();
    driftless_core::cli::main("drift-check", &args.common, || run(&args))
}

fn run(args: &Args) -> Result<Exit, Box<dyn std::error::Error>> {
    let path_run = args.target.as_deref().is_some_and(looks_like_path);
    let (config, state) = args.common.load_for("drift-check", path_run)?;
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
    let mut out = args.common.output();
    if args.common.json {
        for report in &reports {
            for item in &report.items {
                out.line(&serde_json::to_string(item)?);
            }
        }
    } else if !(out.detail() == Detail::Quiet && exit == Exit::Ok) {
        // The table is drift-check's one line per item: -v lists every item, -q prints it only
        // when something is wrong.
        let all = args.all_items || out.detail() == Detail::Verbose;
        out.text(&output::table(&reports, all));
    }
    Ok(exit)
}
