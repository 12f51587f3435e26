//! `mirror-copy`: a one-way mirror of a repo to a backup place, fast and never destructive.
//!
//! Thin by design: parse arguments, call `driftless_core::mirror`, print, map to an exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use driftless_cli::{Kind, looks_like_path};
use driftless_core::config::Links;
use driftless_core::exit::Exit;
use driftless_core::mirror::{self, Options, Outcome, Request};
use mirror_copy::cli::Args;

fn main() -> ExitCode {
    driftless_cli::answer_completion::<Args>();
    let args = Args::parse();
    driftless_cli::main("mirror-copy", &args.common, || run(&args))
}

fn run(args: &Args) -> Result<Exit, Box<dyn std::error::Error>> {
    let path_run = !args.all && looks_like_path(args.target.as_deref().unwrap_or_default());
    let (config, state) = args.common.load_for("mirror-copy", path_run)?;
    let options = Options {
        dry_run: args.common.dry_run,
        if_older_than: args.if_older_than,
        wait_lock: Duration::from_secs(args.wait_lock),
        jobs: args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        rclone: args.rclone.clone(),
        metrics_dir: config.metrics_dir.clone(),
        modify_window: args.modify_window.map(Duration::from_secs),
        no_perms: args.no_perms,
    };

    let mut requests = if args.all {
        let all: Vec<Request> = config
            .repos
            .iter()
            .filter_map(|(name, repo)| Request::configured(name, repo))
            .collect();
        if all.is_empty() {
            return Err("--all: no repo in the config has a `mirror:` entry".into());
        }
        all
    } else {
        let text = args.target.as_deref().unwrap_or_default();
        let request = if looks_like_path(text) {
            Request::for_path(&PathBuf::from(text), &config, args.to.clone())
        } else {
            let repo = config.repo(text)?;
            Request::configured(text, repo).map(|mut request| {
                if let Some(to) = &args.to {
                    request.to = to.clone();
                }
                request
            })
        };
        vec![request.ok_or_else(|| {
            format!("no destination for `{text}`: pass --to DEST or add `mirror: {{to: ...}}` to its config entry")
        })?]
    };
    for request in &mut requests {
        if let Some(from) = args.from {
            request.from = from.into();
        }
        request.exclude.extend(args.exclude.iter().cloned());
        request.policy.delete |= args.delete;
        if args.max_delete.is_some() {
            request.policy.max_delete = args.max_delete;
        }
        request.policy.checksum |= args.checksum;
        if args.skip_links {
            request.policy.links = Links::Skip;
        }
    }

    let mut worst = Exit::Ok;
    let mut out = args.common.output();
    for request in &requests {
        let report = mirror::mirror(request, &state, &options);
        if args.common.json {
            out.line(&serde_json::to_string(&report)?);
        } else {
            let (kind, state) = match report.outcome {
                Outcome::Copied | Outcome::WouldCopy => (Kind::Changed, ""),
                Outcome::Unchanged => (Kind::Unchanged, "unchanged"),
                Outcome::Skipped => (Kind::Unchanged, "skipped"),
                Outcome::Refused | Outcome::Failed => (Kind::Failed, ""),
            };
            out.item(kind, "mirror", state, &report.summary());
        }
        for failure in report.stats.failed.iter().skip(3) {
            out.note(&format!("  {failure}"));
        }
        worst = worst.max(report.run.exit);
    }
    out.finish();
    Ok(worst)
}
