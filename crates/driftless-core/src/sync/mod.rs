//! What `sync-repo` does to one repo, and to all configured repos in one process.
//!
//! Per repo: take the lock, finish an interrupted run if one left a journal, check that the
//! checkout may be moved, fetch, then fast-forward, report "in sync", or refuse with the reason
//! and the commands that resolve it. `--force` preserves local work and takes the remote state.
//! Every run ends in a [`Report`] (printed, and recorded in the state directory).
//!
//! The stages are modules: [`run`] drives one repo through them, [`decide`] turns what it
//! observed into a [`decide::Decision`] without I/O, [`execute`] carries that out, [`recover`]
//! handles what an interrupted run or another git left, [`submodules`] moves populated
//! submodules along when recursion is asked for, and [`worker`] runs it all as a checkout's
//! owner when root meets someone else's checkout.

mod decide;
mod execute;
mod recover;
mod report;
mod run;
mod submodules;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::{Config, RepoConfig};
use crate::exit::Exit;
use crate::redact::error_chain;
use crate::state::{RepoId, StateDir};

pub(crate) use report::list_paths;
pub use report::{Outcome, PathChange, Record, Report};
pub use worker::serve_worker;

/// The tool name used in state records, metrics and JSON.
pub const TOOL: &str = "sync-repo";

/// A repo to sync: from the config, or a checkout path given on the command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    /// State and lock key.
    pub id: RepoId,
    /// The checkout.
    pub path: PathBuf,
    /// URL override; else the checkout's `origin`.
    pub remote: Option<String>,
    /// Branch to follow.
    pub branch: String,
    /// Check moved gitlinks out in populated submodules too (`submodules: recurse`,
    /// `--recurse-submodules`), as `git pull --recurse-submodules` does.
    #[serde(default)]
    pub recurse_submodules: bool,
    /// The trust gate (`verify:`): a new tip must be signed by a trusted key.
    #[serde(default)]
    pub verify: Option<crate::config::VerifyConfig>,
}

impl Target {
    /// The configured repo `name`.
    pub fn configured(name: &str, repo: &RepoConfig) -> Target {
        Target {
            id: RepoId::Named(name.to_owned()),
            path: repo.path.clone(),
            remote: repo.remote.clone(),
            branch: repo.branch().to_owned(),
            recurse_submodules: repo.submodules == crate::config::Submodules::Recurse,
            verify: repo.verify.clone(),
        }
    }

    /// The configured repo `name`, with the config's top-level `verify:` when it has none.
    pub fn in_config(name: &str, repo: &RepoConfig, config: &Config) -> Target {
        Target {
            verify: config.verify_for(repo).cloned(),
            ..Target::configured(name, repo)
        }
    }

    /// A checkout given by path. When the config has an entry for the same checkout, that entry
    /// is used, so a manual run shares the unit's lock and state.
    pub fn from_path(path: &Path, config: &Config) -> Target {
        if let Some(name) = config.repo_name_for_path(path) {
            return Target::in_config(name, &config.repos[name], config);
        }
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        Target {
            id: RepoId::Path(canonical.clone()),
            path: canonical,
            remote: None,
            branch: crate::config::DEFAULT_BRANCH.to_owned(),
            recurse_submodules: false,
            // The default gate is for every repo, configured or not.
            verify: config.verify.clone(),
        }
    }
}

/// How to sync.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Options {
    /// Fetch and report only.
    pub dry_run: bool,
    /// Preserve local work, then take the remote state.
    pub force: bool,
    /// How long to wait for another run's lock.
    pub wait_lock: Duration,
    /// Where to write `.prom` files, if anywhere.
    pub metrics_dir: Option<PathBuf>,
    /// The tool's `-v` count minus its `-q` count: a privilege-separated worker logs at it.
    pub verbosity: i8,
}

/// Sync every target, `jobs` at a time. One repo's failure does not stop the others; reports
/// come back in the order of `targets`.
pub fn sync_all(targets: &[Target], state: &StateDir, options: &Options, jobs: usize) -> Vec<Report> {
    let next = AtomicUsize::new(0);
    let reports = Mutex::new(vec![None; targets.len()]);
    crate::workers::each_worker(jobs.min(targets.len()), |_| {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(target) = targets.get(i) else { break };
            let report = sync(target, state, options);
            if let Ok(mut reports) = reports.lock() {
                reports[i] = Some(report);
            }
        }
    });
    reports.into_inner().unwrap_or_default().into_iter().flatten().collect()
}

/// Sync one repo: lock, run, record.
pub fn sync(target: &Target, state: &StateDir, options: &Options) -> Report {
    let started = Instant::now();
    let started_at = crate::time::now_unix();
    let _span = tracing::info_span!("sync", repo = %target.id.label()).entered();

    let lock = match state.lock(&target.id, options.wait_lock) {
        Ok(lock) => lock,
        Err(err) => return finish(Report::new(target).fail(err.exit(), &err), started),
    };
    let mut report = finish(worker::run_as_owner(target, options), started);
    if !options.dry_run {
        record(target, state, options, &mut report, started_at);
    }
    drop(lock);
    report
}

// The outcome is not logged here: the tool prints it, and under systemd that line is the one
// the journal keeps (logging it too put every event in the journal twice).
fn finish(mut report: Report, started: Instant) -> Report {
    report.run.duration_ms = started.elapsed().as_millis() as u64;
    report
}

/// Write the state record and the metrics file. A failure to record turns a success into an
/// I/O failure: the other tools rely on the record.
fn record(target: &Target, state: &StateDir, options: &Options, report: &mut Report, started_at: u64) {
    let previous: Option<Record> = state.read(&target.id, TOOL).ok().flatten();
    let success = matches!(report.outcome, Outcome::InSync | Outcome::Updated);
    let run = report
        .run
        .record(started_at, success, previous.as_ref().map(|p| &p.run));
    let record = Record {
        path: report.run.path.clone(),
        branch: report.branch.clone(),
        outcome: report.outcome,
        before: report.before.clone(),
        after: report.after.clone(),
        remote_tip: report.remote_tip.clone(),
        last_update_at: if report.outcome == Outcome::Updated {
            Some(run.finished_at)
        } else {
            previous.as_ref().and_then(|p| p.last_update_at)
        },
        // The checked-out commit keeps the signer verified when the checkout moved to it.
        signer: match (&report.signer, &previous) {
            (Some(signer), _) => Some(signer.clone()),
            (None, Some(previous))
                if previous.after.is_some()
                    && previous.after.as_ref() == report.after.as_ref().or(report.before.as_ref()) =>
            {
                previous.signer.clone()
            }
            _ => None,
        },
        unverified_tip: report.unverified_tip.clone(),
        run,
    };
    if let Err(err) = state.write(&target.id, TOOL, &record) {
        tracing::error!("{}", error_chain(&err));
        if report.run.exit == Exit::Ok {
            *report = report.clone().fail(Exit::Io, &err);
        }
    }
    if let Some(dir) = &options.metrics_dir {
        let run = record.run.metrics();
        let mut metrics = run.metrics();
        if target.verify.is_some() {
            let failed = if record.unverified_tip.is_some() { 1.0 } else { 0.0 };
            metrics
                .family(
                    "driftless_verify_failed",
                    crate::metrics::Kind::Gauge,
                    "1 when the last run refused a remote tip that is not signed by a trusted key.",
                )
                .sample("driftless_verify_failed", &[("repo", record.run.repo.as_str())], failed);
        }
        run.write(dir, &target.id, &metrics);
    }
}
