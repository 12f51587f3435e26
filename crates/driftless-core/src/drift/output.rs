//! How drift is shown: a short table for people, and a Prometheus textfile per repo for
//! monitoring (`driftless-REPO.prom`, each series labelled with its repo).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{Item, RepoReport, Status};
use crate::metrics::{Kind, Metrics};
use crate::state::RepoId;

/// One row per item: repo, part, item, status, reason; the fix command under a drifted row.
/// With `all`, items that are fine are listed too.
pub fn table(reports: &[RepoReport], all: bool) -> String {
    let rows: Vec<&Item> = reports
        .iter()
        .flat_map(|r| &r.items)
        .filter(|i| all || i.status != Status::Ok)
        .collect();
    if rows.is_empty() {
        let checked: usize = reports.iter().map(|r| r.items.len()).sum();
        return format!("no drift ({checked} checks on {} repo(s))\n", reports.len());
    }
    let label = |s: Status| match s {
        Status::Ok => "ok",
        Status::Held => "held",
        Status::Unknown => "unknown",
        Status::Drift => "DRIFT",
    };
    let part = |i: &Item| format!("{:?}", i.part).to_lowercase();
    let w_repo = rows.iter().map(|i| i.repo.len()).max().unwrap_or(4).max(4);
    let w_part = 8;
    let w_name = rows.iter().map(|i| i.name.len()).max().unwrap_or(4).clamp(4, 28);
    let mut out = format!(
        "{:w_repo$}  {:w_part$}  {:w_name$}  {:7}  REASON\n",
        "REPO", "PART", "ITEM", "STATUS"
    );
    for item in rows {
        out.push_str(&format!(
            "{:w_repo$}  {:w_part$}  {:w_name$}  {:7}  {}\n",
            item.repo,
            part(item),
            item.name,
            label(item.status),
            item.reason
        ));
        if let Some(fix) = item.fix.as_ref().filter(|_| item.status == Status::Drift) {
            out.push_str(&format!("{:w$}  run: {fix}\n", "", w = w_repo + w_part + w_name + 13));
        }
    }
    out
}

/// The textfile of one repo's check: `driftless-STEM.prom` (STEM as in the state dir), so each
/// `drift-check@NAME` instance owns its file and several instances never overwrite each other.
pub fn file_stem(id: &RepoId) -> String {
    format!("{FILE_PREFIX}{}", id.file_stem())
}

/// What every drift-check textfile's name starts with.
const FILE_PREFIX: &str = "driftless-";

/// The file one drift-check wrote for every repo before each repo had its own; it would
/// publish the same series as the per-repo files, which node_exporter rejects.
const LEGACY_FILE: &str = "driftless.prom";

/// Render one repo's gauges, families with HELP and TYPE; every series carries the repo label.
pub fn metrics(report: &RepoReport, now: u64) -> Metrics {
    let help: BTreeMap<&str, &str> = [
        (
            "driftless_repo_behind_commits",
            "Commits the checkout is behind the remote.",
        ),
        ("driftless_repo_ahead_commits", "Local commits not on the remote."),
        (
            "driftless_repo_dirty",
            "1 if tracked files are modified in the checkout.",
        ),
        ("driftless_repo_untracked_files", "Untracked paths in the checkout."),
        (
            "driftless_repo_wrong_branch",
            "1 if HEAD is detached or on another branch.",
        ),
        (
            "driftless_repo_last_sync_age_seconds",
            "Seconds since the last successful sync-repo run.",
        ),
        (
            "driftless_stack_drift",
            "1 if the stack differs from what the checkout says.",
        ),
        (
            "driftless_mirror_age_seconds",
            "Seconds since the last successful mirror-copy run.",
        ),
        (
            "driftless_mirror_missing_files",
            "Source files missing or of another size in the mirror (--deep).",
        ),
    ]
    .into_iter()
    .collect();
    let mut families: BTreeMap<&str, Vec<(&super::Labels, f64)>> = BTreeMap::new();
    for (name, labels, value) in &report.gauges {
        families.entry(name).or_default().push((labels, *value));
    }
    let mut m = Metrics::new();
    for (name, samples) in families {
        m.family(name, Kind::Gauge, help.get(name).copied().unwrap_or("driftless gauge."));
        for (labels, value) in samples {
            let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            m.sample(name, &labels, value);
        }
    }
    let repo = [("repo", report.repo.as_str())];
    let drift = report.items.iter().filter(|i| i.status == Status::Drift).count();
    m.family("driftless_drift_items", Kind::Gauge, "Items found drifted, per repo.")
        .sample("driftless_drift_items", &repo, drift as f64)
        .family(
            "driftless_check_exit_code",
            Kind::Gauge,
            "Exit code of the last drift-check of the repo.",
        )
        .sample("driftless_check_exit_code", &repo, f64::from(report.exit().code()))
        .family(
            "driftless_check_timestamp_seconds",
            Kind::Gauge,
            "When drift-check last checked the repo.",
        )
        .sample("driftless_check_timestamp_seconds", &repo, now as f64);
    m
}

/// A textfile that could not be written or removed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}", path.display())]
pub struct WriteError {
    /// `write` or `remove`.
    pub action: &'static str,
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Write each checked repo's textfile into `dir` atomically, then remove the files of repos
/// that are neither checked now nor in `configured` (stems of the config's repos), and the
/// legacy `driftless.prom`. Every file is tried; the failures are returned.
pub fn write_metrics(
    dir: &Path,
    checked: &[(&RepoId, &RepoReport)],
    configured: &[RepoId],
    now: u64,
) -> Vec<WriteError> {
    let mut errors = Vec::new();
    let mut keep: BTreeSet<String> = configured.iter().map(file_stem).collect();
    for (id, report) in checked {
        let stem = file_stem(id);
        if let Err(source) = metrics(report, now).write(dir, &stem) {
            errors.push(WriteError {
                action: "write",
                path: dir.join(format!("{stem}.prom")),
                source,
            });
        }
        keep.insert(stem);
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // The writes above already said why the directory is unusable.
        Err(_) => return errors,
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale = match name.strip_suffix(".prom") {
            _ if name == LEGACY_FILE => true,
            Some(stem) => stem.starts_with(FILE_PREFIX) && !keep.contains(stem),
            None => false,
        };
        // Unlinking a name never follows it, whatever it is; a directory of that name fails.
        if stale && let Err(source) = std::fs::remove_file(entry.path()) {
            errors.push(WriteError {
                action: "remove",
                path: entry.path(),
                source,
            });
        }
    }
    errors
}
