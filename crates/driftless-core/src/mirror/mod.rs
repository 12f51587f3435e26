//! What `mirror-copy` does: a one-way copy of a repo to a backup place, never destructive by
//! default.
//!
//! - [`filter`]: exclude patterns (rclone syntax), with the seed's four as defaults.
//! - [`source`]: the working tree, or the committed tree read from git.
//! - [`local`]: the native engine for a local destination.
//! - [`rclone`]: the real `rclone` for remotes such as Google Drive.
//!
//! Semantics are `copy` (the mirror gains and updates files, never loses any) unless `delete`
//! asks for a true mirror, guarded by `max_delete`.

pub mod filter;
pub mod local;
pub mod rclone;
pub mod source;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::Links;
use crate::config::{Config, MirrorFrom, RepoConfig};
use crate::exit::Exit;
use crate::metrics::Kind as MetricKind;
use crate::redact::error_chain;
use crate::redact::redact;
use crate::run::{RunHead, RunRecord};
use crate::state::{RepoId, StateDir};
use filter::Excludes;
use source::Source;

/// The tool name used in state records, metrics and JSON.
pub const TOOL: &str = "mirror-copy";

/// One mirror to make.
#[derive(Debug, Clone)]
pub struct Request {
    /// State and lock key.
    pub id: RepoId,
    /// The checkout.
    pub path: PathBuf,
    /// A local directory or an rclone remote.
    pub to: String,
    /// Working tree or committed tree.
    pub from: MirrorFrom,
    /// Patterns added to [`DEFAULT_EXCLUDES`].
    pub exclude: Vec<String>,
    /// What to keep in line.
    pub policy: Policy,
}

/// What a mirror keeps in line, whichever engine copies (the local one or rclone).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// True mirror: delete what the source no longer has.
    pub delete: bool,
    /// With `delete`: abort, deleting nothing, when more than this many files would go.
    pub max_delete: Option<usize>,
    /// Compare content, not just size and mtime.
    pub checksum: bool,
    /// Copy or skip symbolic links.
    pub links: Links,
}

impl Request {
    /// The mirror configured for repo `name`.
    pub fn configured(name: &str, repo: &RepoConfig) -> Option<Request> {
        let mirror = repo.mirror.as_ref()?;
        Some(Request {
            id: RepoId::Named(name.to_owned()),
            path: repo.path.clone(),
            to: mirror.to.clone(),
            from: mirror.from,
            exclude: mirror.exclude.clone(),
            policy: Policy {
                delete: mirror.delete,
                max_delete: mirror.max_delete,
                checksum: mirror.checksum,
                links: mirror.links,
            },
        })
    }

    /// A checkout given by path; its config entry's mirror settings apply when there is one.
    pub fn for_path(path: &std::path::Path, config: &Config, to: Option<String>) -> Option<Request> {
        if let Some(name) = config.repo_name_for_path(path)
            && let Some(mut request) = Request::configured(name, &config.repos[name])
        {
            if let Some(to) = to {
                request.to = to;
            }
            return Some(request);
        }
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        Some(Request {
            id: config.repo_name_for_path(path).map_or_else(
                || RepoId::Path(canonical.clone()),
                |name| RepoId::Named(name.to_owned()),
            ),
            path: canonical,
            to: to?,
            from: MirrorFrom::Worktree,
            exclude: Vec::new(),
            policy: Policy::default(),
        })
    }
}

/// The directory in a repo's state directory that holds the committed tree for rclone.
pub const EXPORT_DIR: &str = "mirror-export";

/// The export of a commit for rclone, removed when the run ends (and by the next run, if this
/// one was killed).
struct Export(PathBuf);

impl Export {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Count what would change; write nothing.
    pub dry_run: bool,
    /// Do nothing when the last success is more recent than this (cron's catch-up).
    pub if_older_than: Option<Duration>,
    /// How long to wait for another run's lock.
    pub wait_lock: Duration,
    /// Copy threads for a local destination.
    pub jobs: usize,
    /// The rclone program.
    pub rclone: String,
    /// Where to write `.prom` files.
    pub metrics_dir: Option<PathBuf>,
    /// Modification times this close are equal; `None`: 2 s on FAT-like destinations, else 0.
    pub modify_window: Option<Duration>,
    /// Permission bits are not compared, and failing to set them is no error.
    pub no_perms: bool,
}

/// How a mirror run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Files were copied or deleted.
    Copied,
    /// The mirror already matched.
    Unchanged,
    /// `--if-older-than`: the last success is recent enough; nothing was done.
    Skipped,
    /// `--dry-run`.
    WouldCopy,
    /// A guard stopped the run (`--max-delete`); nothing was deleted.
    Refused,
    /// Something failed; what was copied stays, the next run goes on.
    Failed,
}

/// The result of one mirror run: the summary line or one `--json` record.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub run: RunHead,
    pub destination: String,
    pub from: MirrorFrom,
    pub outcome: Outcome,
    pub commit: Option<String>,
    /// What was copied (the engine's count; left at zero for rclone, which logs its own).
    #[serde(flatten)]
    pub stats: local::Stats,
}

/// What the state directory keeps of the last mirror run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// `last_success_at` is the last run that left the mirror complete.
    #[serde(flatten)]
    pub run: RunRecord,
    pub destination: String,
    pub from: MirrorFrom,
    pub outcome: Outcome,
    pub commit: Option<String>,
    pub copied: usize,
    pub unchanged: usize,
    pub deleted: usize,
    pub bytes: u64,
    /// The source commit of the last successful run.
    pub last_success_commit: Option<String>,
}

impl Report {
    fn new(request: &Request) -> Report {
        Report {
            run: RunHead::new(TOOL, request.id.label(), request.path.clone()),
            destination: redact(&request.to),
            from: request.from,
            outcome: Outcome::Failed,
            commit: None,
            stats: local::Stats::default(),
        }
    }

    fn end(mut self, outcome: Outcome, exit: Exit) -> Report {
        self.outcome = outcome;
        self.run.set_exit(exit);
        self
    }

    fn fail(mut self, exit: Exit, error: &(dyn std::error::Error + 'static)) -> Report {
        self.run.reason = Some(error_chain(error));
        let outcome = if exit == Exit::Refused {
            Outcome::Refused
        } else {
            Outcome::Failed
        };
        self.end(outcome, exit)
    }

    /// The one-line human summary.
    pub fn summary(&self) -> String {
        let counts = format!(
            "{} copied ({}), {} unchanged, {} deleted",
            self.stats.copied,
            human_bytes(self.stats.bytes),
            self.stats.unchanged,
            self.stats.deleted
        );
        let detail = match self.outcome {
            Outcome::Copied | Outcome::Unchanged => format!("{counts} in {} ms", self.run.duration_ms),
            Outcome::WouldCopy => format!("would copy: {counts} [dry run]"),
            Outcome::Skipped => format!("skipped: {}", self.run.reason.as_deref().unwrap_or("")),
            Outcome::Refused => format!("refused: {}", self.run.reason.as_deref().unwrap_or("")),
            Outcome::Failed => format!(
                "failed: {}{}",
                self.run.reason.as_deref().unwrap_or(""),
                if self.stats.copied > 0 {
                    format!(" ({counts})")
                } else {
                    String::new()
                }
            ),
        };
        format!("{} -> {}: {detail}", self.run.repo, self.destination)
    }
}

/// Mirror one repo: lock, copy, record.
pub fn mirror(request: &Request, state: &StateDir, options: &Options) -> Report {
    let started = Instant::now();
    let started_at = crate::time::now_unix();
    let _span = tracing::info_span!("mirror", repo = %request.id.label()).entered();
    let previous: Option<Record> = state.read(&request.id, TOOL).ok().flatten();

    if let Some(limit) = options.if_older_than
        && let Some(age) = previous.as_ref().and_then(|p| p.run.too_recent(started_at, limit))
    {
        let mut report = Report::new(request).end(Outcome::Skipped, Exit::Ok);
        report.run.reason = Some(format!(
            "last success started {} ago, within --if-older-than {}",
            crate::time::human_age(age),
            crate::time::duration_text(limit)
        ));
        return report;
    }

    let lock = match state.lock(&request.id, options.wait_lock) {
        Ok(lock) => lock,
        Err(err) => return Report::new(request).fail(err.exit(), &err),
    };
    let mut report = run(request, state, options);
    report.run.duration_ms = started.elapsed().as_millis() as u64;
    if !options.dry_run {
        record(request, state, options, &mut report, previous, started_at);
    }
    // Not logged: the tool prints the summary, the journal's one record of it.
    drop(lock);
    report
}

fn run(request: &Request, state: &StateDir, options: &Options) -> Report {
    let mut report = Report::new(request);
    let checkout = match crate::git::checkout::Checkout::open(&request.path) {
        Ok(checkout) => checkout,
        Err(err) => return report.fail(Exit::Usage, &err),
    };
    let commit = checkout.repo.head_id().ok().map(|id| id.detach());
    report.commit = commit.map(|c| c.to_string());
    let excludes = match Excludes::with_defaults(&request.exclude) {
        Ok(excludes) => excludes,
        Err(message) => return report.fail(Exit::Usage, &std::io::Error::other(message)),
    };
    let source = match (request.from, commit) {
        (MirrorFrom::Worktree, _) => Source::Worktree(checkout.workdir.clone()),
        (MirrorFrom::Commit, Some(commit)) => Source::Commit {
            repo: checkout.repo.git_dir().to_owned(),
            commit,
        },
        (MirrorFrom::Commit, None) => {
            return report.fail(
                Exit::Usage,
                &std::io::Error::other("--from commit: the checkout has no commit yet"),
            );
        }
    };
    let local_options = local::Options {
        policy: request.policy,
        dry_run: options.dry_run,
        jobs: options.jobs.max(1),
        wait_lock: options.wait_lock,
        modify_window: options.modify_window,
        no_perms: options.no_perms,
    };

    if rclone::is_remote(&request.to) {
        let rclone_options = rclone::Options {
            policy: request.policy,
            dry_run: options.dry_run,
            program: options.rclone.clone(),
        };
        // rclone reads a directory: the working tree itself, or the commit exported first.
        // The export lives in the repo's state directory, under the repo lock: a killed run's
        // export is removed by the next one, instead of piling up in the temp dir.
        let export = match state.repo_dir(&request.id) {
            Ok(dir) => Export(dir.join(EXPORT_DIR)),
            Err(err) => return report.fail(Exit::Io, &err),
        };
        let from_dir = match &source {
            Source::Worktree(dir) => dir.clone(),
            Source::Commit { .. } => {
                let _ = std::fs::remove_dir_all(export.path());
                if let Err(err) = std::fs::create_dir(export.path()) {
                    return report.fail(Exit::Io, &err);
                }
                let listing = match source.list(&excludes) {
                    Ok(listing) => listing,
                    Err(err) => return report.fail(Exit::Io, &err),
                };
                let export_options = local::Options {
                    policy: Policy {
                        delete: false,
                        max_delete: None,
                        ..request.policy
                    },
                    dry_run: false,
                    ..local_options
                };
                if let Err(err) = local::mirror(&source, &listing.entries, export.path(), &excludes, &export_options) {
                    return report.fail(Exit::Io, &err);
                }
                export.path().to_owned()
            }
        };
        return match rclone::mirror(&from_dir, &request.to, &excludes, &rclone_options) {
            Ok(()) if options.dry_run => report.end(Outcome::WouldCopy, Exit::Ok),
            Ok(()) => report.end(Outcome::Copied, Exit::Ok),
            Err(err) => {
                let exit = match err {
                    rclone::Error::TooManyDeletes { .. } | rclone::Error::LinkInTheWay { .. } => Exit::Refused,
                    rclone::Error::Walk { .. } => Exit::Io,
                    _ if err.is_usage() => Exit::Usage,
                    _ => Exit::TempFail,
                };
                report.fail(exit, &err)
            }
        };
    }

    let dest = PathBuf::from(&request.to);
    if let Some(err) = nested(&checkout.workdir, &dest) {
        return report.fail(Exit::Usage, &err);
    }
    let listing = match source.list(&excludes) {
        Ok(listing) => listing,
        Err(err) => return report.fail(Exit::Io, &err),
    };
    // A backup is only ever added to unless the source is fully known: a directory that could
    // not be read would look empty and have its whole mirror deleted (rsync: "IO error
    // encountered -- skipping file deletion").
    let mut local_options = local_options;
    let deletions_skipped = local_options.policy.delete && !listing.unreadable.is_empty();
    if deletions_skipped {
        local_options.policy.delete = false;
    }
    let stats = match local::mirror(&source, &listing.entries, &dest, &excludes, &local_options) {
        Ok(stats) => stats,
        Err(err) => {
            let exit = match err {
                local::Error::TooManyDeletes { .. } => Exit::Refused,
                local::Error::DestinationMissing { .. } | local::Error::DestinationBusy { .. } => Exit::TempFail,
                _ => Exit::Io,
            };
            return report.fail(exit, &err);
        }
    };
    let unreadable = listing
        .unreadable
        .iter()
        .map(|(path, why)| format!("{}: cannot read: {why}", String::from_utf8_lossy(path)));
    let skipped = deletions_skipped.then(|| {
        format!(
            "deletions skipped: {} source path(s) could not be read, so nothing was deleted; \
             fix their permissions (or the disk) and run again",
            listing.unreadable.len()
        )
    });
    report.stats = local::Stats {
        failed: unreadable.chain(skipped).chain(stats.failed).collect(),
        ..stats
    };
    if !report.stats.failed.is_empty() {
        report.run.reason = Some(format!(
            "{} path(s) could not be copied, the rest was: {}",
            report.stats.failed.len(),
            report
                .stats
                .failed
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        ));
        return report.end(Outcome::Failed, Exit::Io);
    }
    let outcome = match (options.dry_run, report.stats.copied + report.stats.deleted) {
        (true, _) => Outcome::WouldCopy,
        (false, 0) => Outcome::Unchanged,
        (false, _) => Outcome::Copied,
    };
    report.end(outcome, Exit::Ok)
}

/// A destination inside the checkout would be copied into itself, one level deeper each run.
fn nested(workdir: &std::path::Path, dest: &std::path::Path) -> Option<std::io::Error> {
    let workdir = std::fs::canonicalize(workdir).ok()?;
    let dest = std::fs::canonicalize(dest).ok()?;
    dest.starts_with(&workdir).then(|| {
        std::io::Error::other(format!(
            "the destination {} is inside the checkout {}; choose a destination outside it \
             (it would be mirrored into itself)",
            dest.display(),
            workdir.display()
        ))
    })
}

fn record(
    request: &Request,
    state: &StateDir,
    options: &Options,
    report: &mut Report,
    previous: Option<Record>,
    started_at: u64,
) {
    let success = matches!(report.outcome, Outcome::Copied | Outcome::Unchanged);
    let record = Record {
        run: report
            .run
            .record(started_at, success, previous.as_ref().map(|p| &p.run)),
        destination: report.destination.clone(),
        from: report.from,
        outcome: report.outcome,
        commit: report.commit.clone(),
        copied: report.stats.copied,
        unchanged: report.stats.unchanged,
        deleted: report.stats.deleted,
        bytes: report.stats.bytes,
        last_success_commit: if success {
            report.commit.clone()
        } else {
            previous.as_ref().and_then(|p| p.last_success_commit.clone())
        },
    };
    if let Err(err) = state.write(&request.id, TOOL, &record) {
        tracing::error!("{}", error_chain(&err));
        if report.run.exit == Exit::Ok {
            *report = report.clone().fail(Exit::Io, &err);
        }
    }
    if let Some(dir) = &options.metrics_dir {
        let run = record.run.metrics();
        let mut m = run.metrics();
        m.family(
            "driftless_mirror_copied_bytes",
            MetricKind::Gauge,
            "Bytes copied by the last mirror run.",
        )
        .sample(
            "driftless_mirror_copied_bytes",
            &[("repo", record.run.repo.as_str())],
            record.bytes as f64,
        );
        run.write(dir, &request.id, &m);
    }
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
