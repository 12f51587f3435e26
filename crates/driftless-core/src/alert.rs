//! When a failed unit is worth a notification, and when its recovery is.
//!
//! systemd starts `driftless-notify@UNIT` on every failure of UNIT (`OnFailure=`). Alerting on
//! each would page someone every five minutes for a forge that was down for one. So each unit
//! has a [`Streak`] in the state directory (`notify/UNIT.json`) from its first failure until its
//! next success, and [`on_failure`] decides from it:
//!
//! - a temporary failure (exit 75, or a timeout) alerts once it persists: after
//!   `alert_after_failures` failed runs in a row, or `alert_after` since the first;
//! - any other failure (a refusal, a config error, a compose failure, drift) alerts at once, and
//!   once per distinct cause: the same refusal on every tick is one alert;
//! - the first success after an alert sends one "recovered" ([`on_success`], run by
//!   `driftless-resolved@UNIT` from `OnSuccess=`, which systemd only starts while the streak
//!   file exists), and ends the streak either way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::exit::Exit;

/// Failed runs in a row after which a temporary failure alerts.
pub const DEFAULT_AFTER_FAILURES: u32 = 3;
/// Time since the first failure after which a temporary failure alerts.
pub const DEFAULT_AFTER: Duration = Duration::from_secs(30 * 60);

/// How long temporary failures may last before they alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub after_failures: u32,
    pub after: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            after_failures: DEFAULT_AFTER_FAILURES,
            after: DEFAULT_AFTER,
        }
    }
}

/// One unit's failures since its last success.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Streak {
    /// Failed runs in a row.
    pub failures: u32,
    /// When the first of them was reported (Unix seconds).
    pub since: u64,
    /// The cause of the last failure.
    pub cause: String,
    /// The cause last alerted, and when: while it stays the same, nothing is sent again.
    pub alerted: Option<Alerted>,
}

/// An alert that was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alerted {
    pub cause: String,
    pub at: u64,
}

/// How a unit's run failed, as systemd tells the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The main process's exit status, when it exited (not killed).
    pub exit_status: Option<u8>,
    /// systemd's result: `exit-code`, `timeout`, `signal`, `core-dump`...
    pub result: String,
    /// What identifies the problem beyond the exit code (the run's own messages, digits
    /// removed, so a count or an age does not make every run a new cause).
    pub detail: String,
}

impl Failure {
    /// A failure the next run may well not have: the forge or the engine was unreachable
    /// (exit 75), or the run took too long.
    pub fn is_temporary(&self) -> bool {
        self.exit_status == Some(Exit::TempFail.code()) || self.result == "timeout"
    }

    /// What makes two failures the same problem. Every temporary failure is one cause: an
    /// outage is one alert, whatever the error of each run.
    pub fn cause(&self) -> String {
        let status = self
            .exit_status
            .map_or_else(|| self.result.clone(), |s| format!("exit {s}"));
        if self.is_temporary() {
            return format!("{status}: temporary");
        }
        let detail: String = self.detail.chars().filter(|c| !c.is_ascii_digit()).collect();
        format!("{status}: {}", detail.trim())
    }
}

/// What the handler does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send the alert.
    Alert,
    /// Stay quiet, for this reason (printed, so a manual run shows why).
    Hold(String),
}

/// Record a failure in `streak` (the unit's, `None` at its first failure) and decide.
pub fn on_failure(streak: Option<Streak>, failure: &Failure, now: u64, policy: Policy) -> (Streak, Verdict) {
    let mut streak = streak.unwrap_or(Streak {
        since: now,
        ..Streak::default()
    });
    streak.failures += 1;
    streak.cause = failure.cause();
    if streak.alerted.as_ref().is_some_and(|a| a.cause == streak.cause) {
        let at = streak.alerted.as_ref().map_or(0, |a| a.at);
        let verdict = Verdict::Hold(format!(
            "already alerted {} ago for this cause ({} failed run(s) in a row); the next alert is its recovery or another cause",
            crate::time::human_age(Duration::from_secs(now.saturating_sub(at))),
            streak.failures
        ));
        return (streak, verdict);
    }
    if failure.is_temporary() {
        let age = Duration::from_secs(now.saturating_sub(streak.since));
        if streak.failures < policy.after_failures && age < policy.after {
            let verdict = Verdict::Hold(format!(
                "temporary failure {} of {} in a row, for {}: alerting after {} in a row or {}",
                streak.failures,
                policy.after_failures,
                crate::time::human_age(age),
                policy.after_failures,
                crate::time::human_age(policy.after)
            ));
            return (streak, verdict);
        }
    }
    (streak, Verdict::Alert)
}

/// Whether the success that ends `streak` is worth a "recovered": only after an alert.
pub fn on_success(streak: &Streak) -> bool {
    streak.alerted.is_some()
}

/// Where a unit's streak is kept: `STATE/notify/UNIT.json` (the unit file's
/// `ConditionPathExists=%S/driftless/notify/%i.json` checks the same path).
pub fn streak_path(state_root: &Path, unit: &str) -> PathBuf {
    // A unit name has no `/`; one given by hand could, and must not leave the directory.
    state_root
        .join("notify")
        .join(format!("{}.json", unit.replace('/', "_")))
}

/// The unit's streak, if it has one; a file that cannot be parsed counts as none (the worst
/// that does is one more alert).
pub fn read_streak(path: &Path) -> std::io::Result<Option<Streak>> {
    let file = match crate::safe_fs::open_regular(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(at(path, err)),
    };
    use std::io::Read as _;
    let mut text = String::new();
    // A streak is a few hundred bytes; a larger file is not ours.
    file.take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| at(path, e))?;
    Ok(serde_json::from_str(&text).ok())
}

/// Write the unit's streak (atomically: the condition of the recovery unit reads its path).
pub fn write_streak(path: &Path, streak: &Streak) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
    }
    let text = serde_json::to_vec_pretty(streak).map_err(std::io::Error::other)?;
    crate::atomic_file::write(path, &text, crate::atomic_file::Durability::Atomic).map_err(|e| at(path, e))
}

/// `err`, naming the file it is about (its kind kept).
fn at(path: &Path, err: std::io::Error) -> std::io::Error {
    std::io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(status: u8, detail: &str) -> Failure {
        Failure {
            exit_status: Some(status),
            result: "exit-code".into(),
            detail: detail.into(),
        }
    }

    #[test]
    fn a_temporary_failure_alerts_only_once_it_persists() {
        let policy = Policy::default();
        let down = failure(75, "forge unreachable: connection refused");
        let (streak, first) = on_failure(None, &down, 1000, policy);
        assert!(
            matches!(first, Verdict::Hold(ref why) if why.starts_with("temporary failure 1 of 3")),
            "{first:?}"
        );
        let (streak, second) = on_failure(Some(streak), &failure(75, "timed out"), 1300, policy);
        assert!(matches!(second, Verdict::Hold(_)));
        let (mut streak, third) = on_failure(Some(streak), &down, 1600, policy);
        assert_eq!((third, streak.failures, streak.since), (Verdict::Alert, 3, 1000));
        streak.alerted = Some(Alerted {
            cause: streak.cause.clone(),
            at: 1600,
        });
        let (streak, fourth) = on_failure(Some(streak), &down, 1900, policy);
        assert!(
            matches!(fourth, Verdict::Hold(ref why) if why.starts_with("already alerted 5m")),
            "{fourth:?}"
        );
        assert!(on_success(&streak));
    }

    #[test]
    fn a_long_outage_alerts_on_age_even_with_few_runs() {
        let policy = Policy {
            after_failures: 10,
            after: Duration::from_secs(1800),
        };
        let down = failure(75, "");
        let (streak, _) = on_failure(None, &down, 0, policy);
        assert_eq!(on_failure(Some(streak), &down, 1800, policy).1, Verdict::Alert);
    }

    #[test]
    fn other_failures_alert_at_once_and_once_per_cause() {
        let policy = Policy::default();
        let refused = failure(3, "hub: refused: tracked files are modified: app.env (2 paths)");
        let (mut streak, verdict) = on_failure(None, &refused, 10, policy);
        assert_eq!(verdict, Verdict::Alert);
        streak.alerted = Some(Alerted {
            cause: streak.cause.clone(),
            at: 10,
        });
        // The same refusal, with another count in it: no new alert.
        let again = failure(3, "hub: refused: tracked files are modified: app.env (3 paths)");
        let (streak, verdict) = on_failure(Some(streak), &again, 310, policy);
        assert!(matches!(verdict, Verdict::Hold(_)), "{verdict:?}");
        // Another cause alerts.
        let config = failure(2, "driftless.yaml: unknown key");
        assert_eq!(on_failure(Some(streak), &config, 610, policy).1, Verdict::Alert);
    }

    #[test]
    fn a_success_without_an_alert_sends_nothing() {
        let (streak, _) = on_failure(None, &failure(75, ""), 0, Policy::default());
        assert!(!on_success(&streak));
    }

    #[test]
    fn a_timeout_is_temporary_and_a_kill_is_not() {
        let timeout = Failure {
            exit_status: None,
            result: "timeout".into(),
            detail: String::new(),
        };
        assert!(timeout.is_temporary());
        let killed = Failure {
            exit_status: None,
            result: "signal".into(),
            detail: String::new(),
        };
        assert!(!killed.is_temporary());
        assert_eq!(killed.cause(), "signal: ");
    }

    #[test]
    fn streaks_round_trip_and_stay_in_their_directory() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = streak_path(dir.path(), "sync-repo@hub.service");
        assert_eq!(path, dir.path().join("notify/sync-repo@hub.service.json"));
        assert_eq!(
            streak_path(dir.path(), "../x").parent(),
            Some(dir.path().join("notify").as_path())
        );
        assert_eq!(read_streak(&path)?, None);
        let (streak, _) = on_failure(None, &failure(3, "refused"), 5, Policy::default());
        write_streak(&path, &streak)?;
        assert_eq!(read_streak(&path)?, Some(streak));
        Ok(())
    }
}
