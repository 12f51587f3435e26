//! Start the sync of repos, the way a timer tick does: `systemctl start --no-block
//! sync-repo@NAME.service`, so the chain hung off the unit (apply, notify) runs as always.
//!
//! `--no-block` only queues the start job, so the answer never waits for a fetch. And systemd
//! merges a start of a unit that is starting or running into that job: a burst of pushes is one
//! run (or two, when one arrives after the run ended), with no rate memory of our own. A push
//! that lands while a run already fetched is picked up by the next push or timer tick.

use std::path::PathBuf;
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

/// How long systemctl may take to queue the jobs: the answer must not wait longer.
const SYSTEMCTL_TIMEOUT: Duration = Duration::from_millis(900);

impl Starter {
    /// Start the sync of `names` (valid repo names).
    pub fn start(&self, names: &[String]) -> Result<(), Error> {
        match self {
            Starter::Systemd { systemctl, user } => {
                let mut args: Vec<String> = Vec::new();
                if *user {
                    args.push("--user".into());
                }
                args.extend(["start".into(), "--no-block".into(), "--".into()]);
                args.extend(names.iter().map(|n| unit(n)));
                let command = format!("{} {}", systemctl.display(), args.join(" "));
                let handle = duct::cmd(systemctl, &args)
                    .stdin_null()
                    .stdout_null()
                    .stderr_capture()
                    .unchecked()
                    .start()
                    .map_err(|source| Error::Spawn {
                        program: systemctl.clone(),
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
                            program: systemctl.clone(),
                            source,
                        });
                    }
                };
                if !output.status.success() {
                    return Err(Error::Failed {
                        command,
                        status: output.status.to_string(),
                        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                    });
                }
                Ok(())
            }
            Starter::Direct { sync_repo } => {
                for name in names {
                    let status = duct::cmd(sync_repo, [name])
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
                Ok(())
            }
        }
    }
}
