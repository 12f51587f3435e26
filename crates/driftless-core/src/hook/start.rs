//! Start the sync of repos, the way a timer tick does: `systemctl start --no-block
//! sync-repo@NAME.service`, so the chain hung off the unit (apply, notify) runs as always.
//!
//! `--no-block` only queues the start job, so the answer never waits for a fetch. A run already
//! in progress may have fetched before this push, and systemd would merge another start into
//! it; so then the hook queues one more run instead: a transient timer and service
//! `driftless-hook-again-NAME` (`systemd-run`, ordered `After=` the sync) that starts the sync
//! again once [`MIN_INTERVAL`] after the last start passed and the running one ended. Its fixed
//! name is the rate limit: while it is queued, further pushes find it and add nothing. A burst
//! of pushes is so at most two runs, the last of which fetches after the last push.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the sync is started.
#[derive(Debug, Clone)]
pub enum Starter {
    /// Through systemd: `systemctl [--user] start --no-block sync-repo@NAME.service`.
    Systemd {
        /// The systemctl program.
        systemctl: PathBuf,
        /// Talk to the user's manager (`--user`) instead of the system's.
        user: bool,
    },
    /// Without systemd: run `sync-repo NAME` and wait for it (the `--listen` mode).
    Direct {
        /// The sync-repo program.
        sync_repo: PathBuf,
    },
}

/// Why a start failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot run {program}: {source}", program = program.display())]
    Spawn { program: PathBuf, source: std::io::Error },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
}

/// The unit that syncs repo `name`.
pub fn unit(name: &str) -> String {
    format!("sync-repo@{name}.service")
}

/// The least time between two runs the hook starts of one repo's sync. A burst of pushes is
/// so one run at once and one more after this long, whatever the burst's length; and systemd's
/// start limit (5 starts in 10 s, then the unit fails) is never reached by the hook.
pub const MIN_INTERVAL: Duration = Duration::from_secs(3);

/// What became of one repo's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// The unit was started.
    Now(String),
    /// A run of the unit was queued after the running or recent one.
    Queued(String),
    /// A run was already queued; this request is part of it.
    Coalesced(String),
}

impl std::fmt::Display for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Started::Now(unit) => write!(f, "started {unit}"),
            Started::Queued(unit) => write!(f, "queued {unit} after its current run"),
            Started::Coalesced(unit) => write!(f, "{unit} already queued"),
        }
    }
}

/// When to start a sync whose unit is in `active_state` and last started `since_start` ago.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Now.
    Now,
    /// After this delay (and after the running run, by ordering).
    Later(Duration),
}

/// The decision: a run in progress may have fetched before this push, so one more run is
/// queued after it; a run started less than [`MIN_INTERVAL`] ago makes the next wait out
/// the rest of it.
pub fn when(active_state: &str, since_start: Option<Duration>) -> Timing {
    let running = matches!(active_state, "activating" | "reloading" | "deactivating");
    match since_start {
        Some(since) if since < MIN_INTERVAL => Timing::Later(MIN_INTERVAL - since),
        _ if running => Timing::Later(MIN_INTERVAL),
        _ => Timing::Now,
    }
}

/// Queue one run of `unit` after `delay` and after its running job: a transient timer and
/// service `driftless-hook-again-NAME` (`systemd-run`), ordered `After=` the unit. Its fixed
/// name is the coalescing: while it is queued, another is refused as existing.
fn queue(systemctl: &Path, scope: &[&str], name: &str, unit: &str, delay: Duration) -> Result<Started, Error> {
    let again = format!("--unit=driftless-hook-again-{name}");
    let after = format!("--property=After={unit}");
    let on_active = format!("--on-active={}ms", delay.as_millis().max(1));
    let systemctl_text = systemctl.display().to_string();
    // Beside systemctl (a bare name stays a bare name, found on PATH).
    let systemd_run = systemctl.with_file_name("systemd-run");
    let mut args = vec![
        again.as_str(),
        after.as_str(),
        on_active.as_str(),
        "--timer-property=AccuracySec=100ms",
        "--timer-property=RemainAfterElapse=no",
        "--collect",
        "--quiet",
        "--",
        systemctl_text.as_str(),
    ];
    args.extend(scope);
    args.extend(["start", "--no-block", "--", unit]);
    match run(&systemd_run, scope, &args) {
        Ok(_) => Ok(Started::Queued(unit.to_owned())),
        // The name is taken: a run is queued already, and it comes after this push.
        Err(Error::Failed { stderr, .. }) if stderr.contains("already") => Ok(Started::Coalesced(unit.to_owned())),
        Err(err) => Err(err),
    }
}

/// CLOCK_MONOTONIC, the clock of systemd's `*TimestampMonotonic` properties.
fn monotonic_now() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    Duration::new(now.tv_sec.max(0) as u64, now.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// How long systemctl may take to queue the jobs: the answer must not wait longer.
const SYSTEMCTL_TIMEOUT: Duration = Duration::from_millis(900);

impl Starter {
    /// Start the sync of `names` (valid repo names): now, or queued after [`MIN_INTERVAL`].
    pub fn start(&self, names: &[String]) -> Result<Vec<Started>, Error> {
        match self {
            Starter::Systemd { systemctl, user } => {
                let scope: &[&str] = if *user { &["--user"] } else { &[] };
                let mut done = Vec::new();
                for name in names {
                    let unit = unit(name);
                    let shown = run(
                        systemctl,
                        scope,
                        &[
                            "show",
                            "--property=ActiveState,InactiveExitTimestampMonotonic",
                            "--",
                            &unit,
                        ],
                    )?;
                    let property = |key: &str| {
                        shown
                            .lines()
                            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                            .unwrap_or_default()
                    };
                    let since_start = property("InactiveExitTimestampMonotonic")
                        .parse::<u64>()
                        .ok()
                        .filter(|&t| t > 0)
                        .map(|t| monotonic_now().saturating_sub(Duration::from_micros(t)));
                    match when(property("ActiveState"), since_start) {
                        Timing::Now => {
                            run(systemctl, scope, &["start", "--no-block", "--", &unit])?;
                            done.push(Started::Now(unit));
                        }
                        Timing::Later(delay) => done.push(queue(systemctl, scope, name, &unit, delay)?),
                    }
                }
                Ok(done)
            }
            Starter::Direct { sync_repo } => {
                for name in names {
                    let status = duct::cmd(sync_repo.as_os_str(), [name])
                        .stdin_null()
                        .unchecked()
                        .run()
                        .map_err(|source| Error::Spawn {
                            program: sync_repo.clone(),
                            source,
                        })?
                        .status;
                    if !status.success() {
                        tracing::warn!("`{} {name}` ended with {status}", sync_repo.display());
                    }
                }
                Ok(names.iter().map(|n| Started::Now(format!("sync-repo {n}"))).collect())
            }
        }
    }
}

/// Run `program SCOPE ARGS` (as an `OsStr`: duct would make a bare `Path` name `./name`) within
/// [`SYSTEMCTL_TIMEOUT`]; its stdout, or why it failed.
fn run(program: &Path, scope: &[&str], args: &[&str]) -> Result<String, Error> {
    let args: Vec<&str> = scope.iter().chain(args).copied().collect();
    let command = format!("{} {}", program.display(), args.join(" "));
    let handle = duct::cmd(program.as_os_str(), &args)
        .stdin_null()
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .start()
        .map_err(|source| Error::Spawn {
            program: program.to_owned(),
            source,
        })?;
    let output = match handle.wait_timeout(SYSTEMCTL_TIMEOUT) {
        Ok(Some(output)) => output.clone(),
        Ok(None) => {
            let _ = handle.kill();
            return Err(Error::Failed {
                command,
                status: "timed out".into(),
                stderr: format!("no answer within {} ms", SYSTEMCTL_TIMEOUT.as_millis()),
            });
        }
        Err(source) => {
            return Err(Error::Spawn {
                program: program.to_owned(),
                source,
            });
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(Error::Failed {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_one_run_now_and_one_after_the_interval() {
        assert_eq!(when("inactive", None), Timing::Now, "never ran");
        assert_eq!(when("failed", Some(Duration::from_secs(60))), Timing::Now);
        assert_eq!(when("inactive", Some(MIN_INTERVAL)), Timing::Now);
        assert_eq!(
            when("inactive", Some(Duration::from_secs(1))),
            Timing::Later(MIN_INTERVAL - Duration::from_secs(1)),
            "ended, but started less than the interval ago"
        );
        assert_eq!(
            when("activating", Some(Duration::from_millis(100))),
            Timing::Later(MIN_INTERVAL - Duration::from_millis(100))
        );
        assert_eq!(
            when("activating", Some(Duration::from_secs(60))),
            Timing::Later(MIN_INTERVAL),
            "a long run"
        );
    }
}
