//! `apply-compose`: bring compose stacks in line with the checkout, only the ones whose
//! inputs changed, and say why.
//!
//! Thin by design: parse arguments, call `driftless_core::compose`, print, map to an exit code.

mod validate;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use apply_compose::cli::Args;
use clap::Parser;
use driftless_cli::{Kind, Output, looks_like_path};
use driftless_core::compose::runner::Compose;
use driftless_core::compose::{self, Action, Options, Report, Target};
use driftless_core::exit::Exit;

fn main() -> ExitCode {
    driftless_cli::answer_completion::<Args>();
    let args = Args::parse();
    driftless_cli::main("apply-compose", &args.common, || run(&args))
}

fn run(args: &Args) -> Result<Exit, Box<dyn std::error::Error>> {
    if args.validate {
        return validate::run(args);
    }
    let path_run = !args.all && looks_like_path(args.target.as_deref().unwrap_or_default());
    let (config, state) = args.common.load_for("apply-compose", path_run)?;
    let compose = Compose::from_flag_or_config(args.compose_command.as_deref(), &config)?;
    let options = Options {
        dry_run: args.common.dry_run,
        allow_dirty: args.allow_dirty,
        force: args.force,
        recreate: args.recreate,
        pull: args.pull,
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
    let mut out = args.common.output();
    for target in &targets {
        let report = compose::apply(target, &state, &options);
        if args.common.json {
            out.line(&serde_json::to_string(&report)?);
        } else {
            print_report(&mut out, &report);
        }
        worst = worst.max(report.run.exit);
    }
    out.finish();
    Ok(worst)
}

/// One line per stack (and one for a failure of the whole repo), each printed or counted as the
/// output contract says.
fn print_report(out: &mut Output, report: &Report) {
    if let Some(reason) = &report.run.reason {
        out.item(Kind::Failed, "repo", "", &format!("{}: {reason}", report.run.repo));
    }
    for stack in &report.stacks {
        let (kind, action) = match stack.action {
            Action::Unchanged => (Kind::Unchanged, "unchanged"),
            Action::Held => (Kind::Unchanged, "held"),
            Action::Applied => (Kind::Changed, "applied"),
            Action::WouldApply => (Kind::Changed, "would apply"),
            Action::Pulled => (Kind::Changed, "pulled"),
            Action::WouldPull => (Kind::Changed, "would pull"),
            Action::Pruned => (Kind::Changed, "pruned"),
            Action::WouldPrune => (Kind::Changed, "would prune"),
            Action::Orphaned => (Kind::Changed, "orphaned"),
            Action::Refused => (Kind::Failed, "refused"),
            Action::Failed => (Kind::Failed, "failed"),
            // A failure already reported by the run that failed: one line by default, none
            // under -q, so cron and the unit do not alert again every tick.
            Action::Skipped => (Kind::Changed, "skipped"),
        };
        let reasons = stack.reasons.join("; ");
        // "unchanged since ..." already says what happened: say it once.
        let line = if reasons.is_empty() {
            format!("{}/{}: {action}", report.run.repo, stack.stack)
        } else if reasons.starts_with(action) {
            format!("{}/{}: {reasons}", report.run.repo, stack.stack)
        } else {
            format!("{}/{}: {action}: {reasons}", report.run.repo, stack.stack)
        };
        out.item(kind, "stack", action, &line);
    }
    if report.run.reason.is_none() && report.stacks.is_empty() {
        out.item(
            Kind::Unchanged,
            "repo",
            "without stacks",
            &format!("{}: no stacks", report.run.repo),
        );
    }
}
