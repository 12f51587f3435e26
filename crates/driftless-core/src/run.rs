//! What every tool says about one run on one repo, whatever the tool: the head of its report
//! ([`RunHead`]: printed, `--json`) and of its state record ([`RunRecord`]: read by drift-check
//! and by the tool's next run), and the run gauges in its metrics file.
//!
//! Each tool's `Report` and `Record` flatten these, so the JSON and the state files keep one
//! shape for the fields they share.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::exit::Exit;
use crate::redact::error_chain;

/// The head of every tool's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunHead {
    /// The tool's name; a privilege-separated worker's reply is given it back by the parent.
    #[serde(skip_deserializing)]
    pub tool: &'static str,
    /// The repo's label: its config name or its path.
    pub repo: String,
    /// The checkout.
    pub path: PathBuf,
    /// [`RunHead::exit`] as a number.
    pub exit_code: u8,
    /// Why the run refused or failed (or, in a dry run, what it would do).
    pub reason: Option<String>,
    pub duration_ms: u64,
    #[serde(skip)]
    pub exit: Exit,
}

impl RunHead {
    pub fn new(tool: &'static str, repo: String, path: PathBuf) -> RunHead {
        RunHead {
            tool,
            repo,
            path,
            exit_code: 0,
            reason: None,
            duration_ms: 0,
            exit: Exit::Ok,
        }
    }

    /// Set the exit, and its code with it.
    pub fn set_exit(&mut self, exit: Exit) {
        self.exit = exit;
        self.exit_code = exit.code();
    }

    /// End the run with `exit` because of `error`.
    pub fn fail(&mut self, exit: Exit, error: &(dyn std::error::Error + 'static)) {
        self.reason = Some(error_chain(error));
        self.set_exit(exit);
    }

    /// The record of this run, which started at `started_at` and ends now: `success` moves
    /// `last_success_at` to now, otherwise it is carried over from the `previous` record.
    pub fn record(&self, started_at: u64, success: bool, previous: Option<&RunRecord>) -> RunRecord {
        let finished_at = crate::time::now_unix();
        RunRecord {
            tool: self.tool.to_owned(),
            repo: self.repo.clone(),
            exit_code: self.exit_code,
            reason: self.reason.clone(),
            started_at,
            finished_at,
            duration_ms: self.duration_ms,
            last_success_at: if success {
                Some(finished_at)
            } else {
                previous.and_then(|p| p.last_success_at)
            },
            last_success_started_at: if success {
                Some(started_at)
            } else {
                previous.and_then(|p| p.last_success_started_at)
            },
        }
    }
}

/// The head of every tool's state record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunRecord {
    pub tool: String,
    pub repo: String,
    pub exit_code: u8,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub started_at: u64,
    pub finished_at: u64,
    #[serde(default)]
    pub duration_ms: u64,
    /// The last run that ended well (in sync, copied, applied).
    pub last_success_at: Option<u64>,
    /// When that run started: the slot `--if-older-than` counts from, so a run that takes a
    /// minute does not push the next one an hour later every day.
    #[serde(default)]
    pub last_success_started_at: Option<u64>,
}

impl RunRecord {
    /// Whether a run starting at `now` comes too soon after the last success for `--if-older-than
    /// limit`. Counted from the scheduled slot (the last success's start), with a grace of a
    /// tenth of `limit` up to 5 minutes for a timer's or cron's jitter: an hourly cron line with
    /// `24h` acts once a day, at the same hour every day.
    pub fn too_recent(&self, now: u64, limit: std::time::Duration) -> Option<std::time::Duration> {
        let slot = self.last_success_started_at.or(self.last_success_at)?;
        let age = std::time::Duration::from_secs(now.saturating_sub(slot));
        let grace = (limit / 10).min(std::time::Duration::from_secs(300));
        (age + grace < limit).then_some(age)
    }
}

impl RunRecord {
    /// The run gauges every tool writes to its metrics file.
    pub fn metrics(&self) -> crate::metrics::Run<'_> {
        crate::metrics::Run {
            tool: &self.tool,
            repo: &self.repo,
            duration_ms: self.duration_ms,
            exit_code: self.exit_code,
            finished_at: self.finished_at,
            last_success_at: self.last_success_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_keeps_the_last_success_and_a_good_one_moves_it() {
        let mut head = RunHead::new("sync-repo", "hub".into(), "/srv/hub".into());
        let first = head.record(10, true, None);
        assert!(first.last_success_at.is_some_and(|at| at >= first.started_at));
        head.fail(Exit::TempFail, &std::io::Error::other("forge down"));
        let second = head.record(20, false, Some(&first));
        assert_eq!(second.last_success_at, first.last_success_at);
        assert_eq!(second.exit_code, 75);
        assert_eq!(second.reason.as_deref(), Some("forge down"));
        assert_eq!(head.record(30, false, None).last_success_at, None);
    }

    #[test]
    fn if_older_than_counts_from_the_slot_so_a_daily_run_keeps_its_hour() {
        use std::time::Duration;
        const HOUR: u64 = 3600;
        let day = Duration::from_secs(24 * HOUR);
        // An hourly cron line with --if-older-than 24h; each run takes 90 s. Five days of ticks.
        let mut record: Option<RunRecord> = None;
        let mut ran_at = Vec::new();
        for tick in 0..(5 * 24) {
            let now = 1_000_000 + tick * HOUR;
            if record.as_ref().and_then(|r| r.too_recent(now, day)).is_some() {
                continue;
            }
            ran_at.push(tick);
            let head = RunHead::new("mirror-copy", "hub".into(), "/srv/hub".into());
            let mut done = head.record(now, true, record.as_ref());
            (done.finished_at, done.last_success_at) = (now + 90, Some(now + 90));
            record = Some(done);
        }
        assert_eq!(ran_at, [0, 24, 48, 72, 96], "once a day, at the same hour");
        // Counted from the end instead, each day would start an hour later.
        let mut from_end = record.expect("a run");
        from_end.last_success_started_at = None;
        let next_day = from_end.started_at + 24 * HOUR;
        assert!(
            from_end.too_recent(next_day, day).is_none(),
            "the grace covers the run's 90 s"
        );
        assert!(from_end.too_recent(next_day - 600, day).is_some());
    }

    #[test]
    fn records_written_before_the_shared_head_still_read() {
        // apply-compose's records had no reason, start or duration.
        let old = r#"{"tool":"apply-compose","repo":"hub","exit_code":0,"finished_at":5,"last_success_at":5}"#;
        let record: RunRecord = serde_json::from_str(old).expect("old record reads");
        assert_eq!(
            (record.started_at, record.duration_ms, record.last_success_at),
            (0, 0, Some(5))
        );
    }
}
