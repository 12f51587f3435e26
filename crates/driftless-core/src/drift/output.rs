//! How drift is shown: a short table for people, and a Prometheus textfile for monitoring.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Item, RepoReport, Status};
use crate::metrics::{Kind, Metrics};

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

/// Render every gauge of every report, families with HELP and TYPE, as one textfile.
pub fn metrics(reports: &[RepoReport], exit_code: u8, now: u64) -> Metrics {
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
    for report in reports {
        for (name, labels, value) in &report.gauges {
            families.entry(name).or_default().push((labels, *value));
        }
    }
    let mut m = Metrics::new();
    for (name, samples) in families {
        m.family(name, Kind::Gauge, help.get(name).copied().unwrap_or("driftless gauge."));
        for (labels, value) in samples {
            let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            m.sample(name, &labels, value);
        }
    }
    m.family("driftless_drift_items", Kind::Gauge, "Items found drifted, per repo.");
    for report in reports {
        let drift = report.items.iter().filter(|i| i.status == Status::Drift).count();
        m.sample("driftless_drift_items", &[("repo", report.repo.as_str())], drift as f64);
    }
    m.family(
        "driftless_check_exit_code",
        Kind::Gauge,
        "Exit code of the last drift-check run.",
    )
    .sample("driftless_check_exit_code", &[], f64::from(exit_code))
    .family(
        "driftless_check_timestamp_seconds",
        Kind::Gauge,
        "When drift-check last ran.",
    )
    .sample("driftless_check_timestamp_seconds", &[], now as f64);
    m
}

/// Write `driftless.prom` into `dir` atomically.
pub fn write_metrics(dir: &Path, metrics: &Metrics) -> std::io::Result<()> {
    metrics.write(dir, "driftless")
}
