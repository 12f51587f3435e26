//! Mirrors to an rclone remote (`gdrive:Backups/lab`): the real `rclone`, never a cloud API of
//! our own. The same exclude patterns are passed as `--exclude` flags.

use std::path::Path;

use super::Policy;
use super::filter::Excludes;
use super::local::Links;
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
pub fn mirror(source: &Path, remote: &str, excludes: &Excludes, options: &Options) -> Result<(), Error> {
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
        Some(0) => Ok(()),
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
        assert!(!super::is_remote("/mnt/backup/lab"));
        assert!(!super::is_remote("./rel:ative"));
        assert!(!super::is_remote("relative/path"));
    }
}
