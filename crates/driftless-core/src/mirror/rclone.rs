//! Mirrors to an rclone remote (`gdrive:Backups/lab`): the real `rclone`, never a cloud API of
//! our own. The same exclude patterns are passed as `--exclude` flags.

use std::path::{Path, PathBuf};

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
    #[error(
        "{} is a symbolic link where the source has a {kind}: rclone would write through it, so nothing was copied. \
         Remove the link (`rm {}`), or mirror to the local path itself: the local engine replaces links instead of following them",
        path.display(),
        path.display()
    )]
    LinkInTheWay { path: PathBuf, kind: &'static str },
    #[error("{} cannot be checked for symbolic links: {source}", path.display())]
    Walk { path: PathBuf, source: std::io::Error },
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
    if let Some(root) = local_root(remote, &options.program)? {
        refuse_links_in_the_way(source, &root, excludes)?;
    }
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

/// The directory an rclone destination writes to when its backend is the local file system (a
/// `local` remote, an alias of one, `:local:PATH`), as rclone itself resolves it: there rclone
/// opens and creates paths following symbolic links.
fn local_root(remote: &str, program: &str) -> Result<Option<PathBuf>, Error> {
    let text = output(
        program,
        "backend",
        &["backend".into(), "features".into(), remote.into()],
        remote,
    )?;
    // rclone logs notices (a missing config file) before the JSON object.
    let json = text.find('{').map_or("", |at| &text[at..]);
    let features: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let local = features["String"]
        .as_str()
        .is_some_and(|s| s.starts_with("Local file system at "));
    Ok(features["Root"].as_str().filter(|_| local).map(PathBuf::from))
}

/// Refuse a local destination holding a symbolic link where the source has a file or a
/// directory: rclone would write through it (a directory's files land wherever the link points).
/// Such a link is what a mirrored source link leaves behind once the source owner replaces it by
/// a directory. Excluded paths are neither walked nor written by rclone.
fn refuse_links_in_the_way(source: &Path, root: &Path, excludes: &Excludes) -> Result<(), Error> {
    use crate::git::checkout::path_to_bytes;
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        let entries = match std::fs::read_dir(root.join(&rel)) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && rel.as_os_str().is_empty() => return Ok(()),
            Err(source) => {
                return Err(Error::Walk {
                    path: root.join(&rel),
                    source,
                });
            }
        };
        for entry in entries {
            let entry = entry.map_err(|source| Error::Walk {
                path: root.join(&rel),
                source,
            })?;
            let rel = rel.join(entry.file_name());
            // The type of the entry itself, never of what a link points to.
            let Ok(file_type) = entry.file_type() else { continue };
            if file_type.is_dir() && !excludes.excludes_dir(path_to_bytes(&rel)) {
                dirs.push(rel);
            } else if file_type.is_symlink() && !excludes.excludes_file(path_to_bytes(&rel)) {
                match std::fs::symlink_metadata(source.join(&rel)) {
                    Ok(meta) if meta.is_dir() => {
                        return Err(Error::LinkInTheWay {
                            path: root.join(rel),
                            kind: "directory",
                        });
                    }
                    Ok(meta) if !meta.file_type().is_symlink() => {
                        return Err(Error::LinkInTheWay {
                            path: root.join(rel),
                            kind: "file",
                        });
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
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
    let text = output(&options.program, verb, &args, remote)?;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        tracing::info!("rclone: {}", redact(line));
    }
    Ok(text)
}

/// Run `program args`, waiting for it; its stdout and stderr, or an error naming `verb` and the
/// (redacted) remote.
fn output(program: &str, verb: &'static str, args: &[String], remote: &str) -> Result<String, Error> {
    let output = duct::cmd(program, args)
        .stderr_to_stdout()
        .stdout_capture()
        .unchecked()
        .run();
    let output = match output {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::Missing {
                program: program.to_owned(),
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
