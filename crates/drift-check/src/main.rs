//! `drift-check`: desired state (git) against live state (checkout, running stacks, mirror),
//! for people (a table), for monitoring (a Prometheus textfile) and for systemd (exit code).
//!
//! Thin by design: parse arguments, call `driftless_core::drift`, print, map to an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use drift_check::cli::Args;
use driftless_cli::{Detail, looks_like_path};
use driftless_core::compose::runner::Compose;
use driftless_core::drift::{self, Options, Target, output};
use driftless_core::exit::Exit;
use driftless_core::state::RepoId;

fn main() -> ExitCode {
    driftless_cli::answer_completion::<Args>();
    let args = Args::parse();
    driftless_cli::main("drift-check", &args.common, || run(&args))
}

fn run(args: &Args) -> Result<Exit, Box<dyn std::error::Error>> {
    let path_run = args.target.as_deref().is_some_and(looks_like_path);
    let (config, state) = args.common.load_for("drift-check", path_run)?;
    let compose = Compose::from_flag_or_config(args.compose_command.as_deref(), &config)?;
    // -n: look only at what is here; ask no remote and write no metrics.
    let dry_run = args.common.dry_run;
    let options = Options {
        no_fetch: args.no_fetch || dry_run,
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
                .map(|(name, repo)| Target::in_config(name, repo, &config))
                .collect()
        }
        Some(text) if looks_like_path(text) => vec![Target::from_path(&PathBuf::from(text), &config)?],
        Some(name) => vec![Target::in_config(name, config.repo(name)?, &config)],
    };
    let reports: Vec<_> = targets.iter().map(|t| drift::check(t, &state, &options)).collect();
    let mut exit = reports.iter().map(|r| r.exit()).fold(Exit::Ok, |a, b| {
        if a == Exit::Drift || b == Exit::Drift {
            Exit::Drift
        } else {
            a.max(b)
        }
    });

    let mut metrics_errors = Vec::new();
    if let Some(dir) = args.metrics_dir.as_ref().or(config.metrics_dir.as_ref())
        && !dry_run
    {
        let checked: Vec<_> = targets.iter().map(|t| &t.id).zip(&reports).collect();
        let configured: Vec<RepoId> = config.repos.keys().map(|name| RepoId::Named(name.clone())).collect();
        metrics_errors = output::write_metrics(dir, &checked, &configured, driftless_core::time::now_unix());
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
    // After the table: the check itself is complete, only monitoring will not see it.
    for err in &metrics_errors {
        eprintln!(
            "drift-check: error: {}; the report above is complete but monitoring will not see it: \
             fix the directory (or metrics_dir, --metrics-dir) and run again",
            driftless_core::redact::error_chain(err)
        );
        exit = exit.max(Exit::Io);
    }
    Ok(exit)
}
