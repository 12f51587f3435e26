//! Mirrors to an rclone remote (`gdrive:Backups/lab`): the real `rclone`, never a cloud API of
//! our own. The same exclude patterns are passed as `--exclude` flags.

use std::path::Path;

use super::Policy;
use super::filter::Excludes;
use crate::config::Links;
use crate::redact::redact;

/// How to call rclone.
#[derive(Debug, Clone)]
pub struct Options {
    /// `sync` (deletes) or `copy`; `--max-delete`; `--checksum`; `--links` (as `.rclonelink`
    /// files) or `--skip-links`.
    pub policy: Policy,
    /// `--dry-run`.
    pub dry_run: bool,
    /// The rclone binary.
    pub program: String,
}

/// Why rclone failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{program}` was not found; install rclone (apt install rclone) or mirror to a local path")]
    Missing { program: String },
    #[error(
        "{count} files would be deleted from {remote}, more than --max-delete {max}; nothing was deleted. \
         Check the source, then raise --max-delete or run without --delete"
    )]
    TooManyDeletes { remote: String, count: usize, max: usize },
    #[error("rclone {verb} to {remote} failed with exit code {code}: {message}")]
    Failed {
        verb: &'static str,
        remote: String,
        code: i32,
        message: String,
    },
}

impl Error {
    /// rclone exit code 1 is a syntax or usage error; the others (network, quota, API
    /// errors) may pass by the next run.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Missing { .. } | Error::Failed { code: 1, .. })
    }
}

/// Whether `dest` names an rclone remote (`name:path`) rather than a local path.
pub fn is_remote(dest: &str) -> bool {
    // A connection string (`:local:/x`, `:s3,provider=AWS:bucket`) names its backend inline.
    if dest.starts_with(':') {
        return dest.len() > 1;
    }
    match dest.split_once(':') {
        Some((name, _)) => {
            !dest.starts_with('/')
                && !dest.starts_with('.')
                && !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-. ".contains(c))
        }
        None => false,
    }
}

/// Run `rclone copy|sync SRC REMOTE` with the excludes; rclone's output goes to the log.
///
/// With `--delete` and `--max-delete`, a dry run counts the deletions first and the run is
/// refused before anything is deleted (rclone's own `--max-delete` deletes up to the limit, then
/// fails): the real run follows only when the count is within the limit.
pub fn mirror(source: &Path, remote: &str, excludes: &Excludes, options: &Options) -> Result<(), Error> {
    if let (true, Some(max), false) = (options.policy.delete, options.policy.max_delete, options.dry_run) {
        // Without rclone's own --max-delete, which would stop the count at the limit.
        let dry = Options {
            dry_run: true,
            policy: Policy {
                max_delete: None,
                ..options.policy
            },
            ..options.clone()
        };
        let text = run(source, remote, excludes, &dry)?;
        let count = text
            .lines()
            .filter(|l| l.contains("Skipped delete as --dry-run is set"))
            .count();
        if count > max {
            return Err(Error::TooManyDeletes {
                remote: redact(remote),
                count,
                max,
            });
        }
    }
    run(source, remote, excludes, options).map(|_| ())
}

/// One rclone run; its output (stdout and stderr).
fn run(source: &Path, remote: &str, excludes: &Excludes, options: &Options) -> Result<String, Error> {
    let verb = if options.policy.delete { "sync" } else { "copy" };
    let mut args: Vec<String> = vec![verb.into(), source.display().to_string(), remote.into()];
    for pattern in excludes.rclone_patterns() {
        args.push("--exclude".into());
        args.push(pattern.into());
    }
    if options.policy.checksum {
        args.push("--checksum".into());
    }
    args.push(
        if options.policy.links == Links::Copy {
            "--links"
        } else {
            "--skip-links"
        }
        .into(),
    );
    if let (true, Some(max)) = (options.policy.delete, options.policy.max_delete) {
        args.push(format!("--max-delete={max}"));
    }
    if options.dry_run {
        args.push("--dry-run".into());
    }
    args.extend(["--stats-one-line".into(), "--stats-log-level".into(), "NOTICE".into()]);
    tracing::info!("running {} {}", options.program, redact(&args.join(" ")));
    let output = duct::cmd(&options.program, &args)
        .stderr_to_stdout()
        .stdout_capture()
        .unchecked()
        .run();
    let output = match output {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Missing {
                program: options.program.clone(),
            });
        }
        Err(err) => {
            return Err(Error::Failed {
                verb,
                remote: redact(remote),
                code: -1,
                message: err.to_string(),
            });
        }
    };
    let text = String::from_utf8_lossy(&output.stdout);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        tracing::info!("rclone: {}", redact(line));
    }
    match output.status.code() {
        Some(0) => Ok(text.into_owned()),
        code => Err(Error::Failed {
            verb,
            remote: redact(remote),
            code: code.unwrap_or(-1),
            message: redact(
                text.lines()
                    .rev()
                    .find(|l| l.contains("ERROR") || l.contains("Failed"))
                    .unwrap_or_else(|| text.lines().last().unwrap_or(""))
                    .trim(),
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn remotes_and_local_paths_are_told_apart() {
        assert!(super::is_remote("gdrive:Backups/lab"));
        assert!(super::is_remote("mirror:/dst"));
        assert!(super::is_remote(":local:/srv/backup"));
        assert!(super::is_remote(":s3,provider=AWS:bucket/lab"));
        assert!(!super::is_remote("/mnt/backup/lab"));
        assert!(!super::is_remote("./rel:ative"));
        assert!(!super::is_remote("relative/path"));
    }
}
