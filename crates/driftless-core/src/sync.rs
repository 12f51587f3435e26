//! What `sync-repo` does to one repo, and to all configured repos in one process.
//!
//! Per repo: take the lock, finish an interrupted run if one left a journal, check that the
//! checkout may be moved, fetch, then fast-forward, report "in sync", or refuse with the reason
//! and the commands that resolve it. `--force` preserves local work and takes the remote state.
//! Every run ends in a [`Report`] (printed, and recorded in the state directory).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gix::bstr::{BString, ByteSlice};
use serde::{Deserialize, Serialize};

use crate::config::{Config, RepoConfig};
use crate::exit::Exit;
use crate::git::checkout::{Checkout, Head};
use crate::git::fast_forward::{self, ChangeKind, Journal, Plan, RefUpdate};
use crate::git::fetch::{self, Remote};
use crate::git::history::{self, Relation};
use crate::git::locks;
use crate::git::{preserve, shell_quote, short};
use crate::redact::{error_chain, redact};
use crate::state::{RepoId, StateDir};

/// The tool name used in state records, metrics and JSON.
pub const TOOL: &str = "sync-repo";

/// A repo to sync: from the config, or a checkout path given on the command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    /// State and lock key.
    pub id: RepoId,
    /// The checkout.
    pub path: PathBuf,
    /// URL override; else the checkout's `origin`.
    pub remote: Option<String>,
    /// Branch to follow.
    pub branch: String,
}

impl Target {
    /// The configured repo `name`.
    pub fn configured(name: &str, repo: &RepoConfig) -> Target {
        Target {
            id: RepoId::Named(name.to_owned()),
            path: repo.path.clone(),
            remote: repo.remote.clone(),
            branch: repo.branch().to_owned(),
        }
    }

    /// A checkout given by path. When the config has an entry for the same checkout, that entry
    /// is used, so a manual run shares the unit's lock and state.
    pub fn from_path(path: &Path, config: &Config) -> Target {
        if let Some(name) = config.repo_name_for_path(path) {
            return Target::configured(name, &config.repos[name]);
        }
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        Target {
            id: RepoId::Path(canonical.clone()),
            path: canonical,
            remote: None,
            branch: crate::config::DEFAULT_BRANCH.to_owned(),
        }
    }
}

fn tool() -> &'static str {
    TOOL
}

/// How to sync.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Options {
    /// Fetch and report only.
    pub dry_run: bool,
    /// Preserve local work, then take the remote state.
    pub force: bool,
    /// How long to wait for another run's lock.
    pub wait_lock: Duration,
    /// Where to write `.prom` files, if anywhere.
    pub metrics_dir: Option<PathBuf>,
}

/// How a repo's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Local and remote tips are the same.
    InSync,
    /// Fast-forwarded (or, with --force, reset) to the remote tip.
    Updated,
    /// `--dry-run`: this is what an update would do.
    WouldUpdate,
    /// Nothing changed because a person has to decide.
    Refused,
    /// Something failed; nothing was lost, the next run retries.
    Failed,
}

/// One changed path, for `--json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathChange {
    /// Repo-relative path.
    pub path: String,
    /// What happened to it.
    pub change: ChangeKind,
    /// For a submodule (a gitlink): the commit it recorded before, if it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// For a submodule: the commit it records now, if it still exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

impl PathChange {
    /// "submodule lib/x moved 1a2b3c4..5d6e7f8" (or added, removed), for a submodule's change.
    fn submodule_note(&self) -> Option<String> {
        let short = |id: &str| id[..id.len().min(7)].to_owned();
        match (self.from.as_deref(), self.to.as_deref()) {
            (Some(from), Some(to)) => Some(format!("submodule {} moved {}..{}", self.path, short(from), short(to))),
            (None, Some(to)) => Some(format!("submodule {} added at {}", self.path, short(to))),
            (Some(from), None) => Some(format!("submodule {} removed (was {})", self.path, short(from))),
            (None, None) => None,
        }
    }
}

/// The result of syncing one repo: printed as the summary line or as one `--json` record, and
/// the reply of a privilege-separated worker ([`crate::privsep`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    #[serde(skip_deserializing, default = "tool")]
    pub tool: &'static str,
    pub repo: String,
    pub path: PathBuf,
    pub branch: String,
    pub remote: Option<String>,
    pub outcome: Outcome,
    pub exit_code: u8,
    pub before: Option<String>,
    pub after: Option<String>,
    pub remote_tip: Option<String>,
    pub commits: usize,
    pub files: usize,
    pub changes: Vec<PathChange>,
    pub reason: Option<String>,
    pub resolve: Vec<String>,
    pub preserved_ref: Option<String>,
    pub duration_ms: u64,
    #[serde(skip)]
    pub exit: Exit,
}

/// What the state directory keeps of the last run, for the other tools.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub tool: String,
    pub repo: String,
    pub path: PathBuf,
    pub branch: String,
    pub outcome: Outcome,
    pub exit_code: u8,
    pub before: Option<String>,
    pub after: Option<String>,
    pub remote_tip: Option<String>,
    pub reason: Option<String>,
    pub started_at: u64,
    pub finished_at: u64,
    pub duration_ms: u64,
    /// The last run that ended in sync or updated.
    pub last_success_at: Option<u64>,
    /// The last run that moved the checkout.
    pub last_update_at: Option<u64>,
}

impl Report {
    fn new(target: &Target) -> Report {
        Report {
            tool: TOOL,
            repo: target.id.label(),
            path: target.path.clone(),
            branch: target.branch.clone(),
            remote: target.remote.as_deref().map(redact),
            outcome: Outcome::Failed,
            exit_code: 0,
            before: None,
            after: None,
            remote_tip: None,
            commits: 0,
            files: 0,
            changes: Vec::new(),
            reason: None,
            resolve: Vec::new(),
            preserved_ref: None,
            duration_ms: 0,
            exit: Exit::Ok,
        }
    }

    fn end(mut self, outcome: Outcome, exit: Exit) -> Report {
        self.outcome = outcome;
        self.exit = exit;
        self.exit_code = exit.code();
        self
    }

    fn refuse(self, reason: String, resolve: Vec<String>) -> Report {
        let mut report = self.end(Outcome::Refused, Exit::Refused);
        report.reason = Some(reason);
        report.resolve = resolve;
        report
    }

    fn fail(mut self, exit: Exit, error: &(dyn std::error::Error + 'static)) -> Report {
        self.reason = Some(error_chain(error));
        self.end(Outcome::Failed, exit)
    }

    /// The one-line human summary.
    pub fn summary(&self) -> String {
        let range = |r: &Report| {
            format!(
                "{}..{} ({} commit{}, {} file{})",
                r.before.as_deref().map_or("-", |s| &s[..s.len().min(7)]),
                r.after
                    .as_deref()
                    .or(r.remote_tip.as_deref())
                    .map_or("-", |s| &s[..s.len().min(7)]),
                r.commits,
                if r.commits == 1 { "" } else { "s" },
                r.files,
                if r.files == 1 { "" } else { "s" },
            )
        };
        let detail = match self.outcome {
            Outcome::InSync => {
                format!(
                    "in sync at {}",
                    self.after.as_deref().map_or("-", |s| &s[..s.len().min(7)])
                )
            }
            Outcome::Updated => format!("updated {}", range(self)),
            Outcome::WouldUpdate => format!("would update {} [dry run]", range(self)),
            Outcome::Refused => format!("refused: {}", self.reason.as_deref().unwrap_or("")),
            Outcome::Failed => format!("failed: {}", self.reason.as_deref().unwrap_or("")),
        };
        let preserved = self
            .preserved_ref
            .as_deref()
            .map(|r| format!("; local work preserved at {r}"))
            .unwrap_or_default();
        let submodules: String = match self.outcome {
            Outcome::Updated | Outcome::WouldUpdate => self
                .changes
                .iter()
                .filter_map(PathChange::submodule_note)
                .map(|note| format!("; {note}"))
                .collect(),
            _ => String::new(),
        };
        format!("{}: {detail}{submodules}{preserved}", self.repo)
    }
}

/// Sync every target, `jobs` at a time. One repo's failure does not stop the others; reports
/// come back in the order of `targets`.
pub fn sync_all(targets: &[Target], state: &StateDir, options: &Options, jobs: usize) -> Vec<Report> {
    let next = AtomicUsize::new(0);
    let reports = Mutex::new(vec![None; targets.len()]);
    crate::workers::each_worker(jobs.min(targets.len()), |_| {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(target) = targets.get(i) else { break };
            let report = sync(target, state, options);
            if let Ok(mut reports) = reports.lock() {
                reports[i] = Some(report);
            }
        }
    });
    reports.into_inner().unwrap_or_default().into_iter().flatten().collect()
}

/// Sync one repo: lock, run, record.
pub fn sync(target: &Target, state: &StateDir, options: &Options) -> Report {
    let started = Instant::now();
    let started_at = crate::time::now_unix();
    let _span = tracing::info_span!("sync", repo = %target.id.label()).entered();

    let lock = match state.lock(&target.id, options.wait_lock) {
        Ok(lock) => lock,
        Err(err) => return finish(Report::new(target).fail(err.exit(), &err), started),
    };
    let mut report = finish(run_as_owner(target, options), started);
    if !options.dry_run {
        record(target, state, options, &mut report, started_at);
    }
    drop(lock);
    report
}

// The outcome is not logged here: the tool prints it, and under systemd that line is the one
// the journal keeps (logging it too put every event in the journal twice).
fn finish(mut report: Report, started: Instant) -> Report {
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

/// Write the state record and the metrics file. A failure to record turns a success into an
/// I/O failure: the other tools rely on the record.
fn record(target: &Target, state: &StateDir, options: &Options, report: &mut Report, started_at: u64) {
    let finished_at = crate::time::now_unix();
    let previous: Option<Record> = state.read(&target.id, TOOL).ok().flatten();
    let success = matches!(report.outcome, Outcome::InSync | Outcome::Updated);
    let record = Record {
        tool: TOOL.to_owned(),
        repo: report.repo.clone(),
        path: report.path.clone(),
        branch: report.branch.clone(),
        outcome: report.outcome,
        exit_code: report.exit_code,
        before: report.before.clone(),
        after: report.after.clone(),
        remote_tip: report.remote_tip.clone(),
        reason: report.reason.clone(),
        started_at,
        finished_at,
        duration_ms: report.duration_ms,
        last_success_at: if success {
            Some(finished_at)
        } else {
            previous.as_ref().and_then(|p| p.last_success_at)
        },
        last_update_at: if report.outcome == Outcome::Updated {
            Some(finished_at)
        } else {
            previous.as_ref().and_then(|p| p.last_update_at)
        },
    };
    if let Err(err) = state.write(&target.id, TOOL, &record) {
        tracing::error!("{}", error_chain(&err));
        if report.exit == Exit::Ok {
            *report = report.clone().fail(Exit::Io, &err);
        }
    }
    if let Some(dir) = &options.metrics_dir {
        let run = crate::metrics::Run {
            tool: TOOL,
            repo: &record.repo,
            duration_ms: record.duration_ms,
            exit_code: record.exit_code,
            finished_at: record.finished_at,
            last_success_at: record.last_success_at,
        };
        run.write(dir, &target.id, &run.metrics());
    }
}

/// [`run`], as the checkout's owner when root meets a checkout someone else owns
/// ([`crate::privsep`]): this process keeps the lock and the record, the worker does the git work.
fn run_as_owner(target: &Target, options: &Options) -> Report {
    let Some(owner) = crate::privsep::foreign_owner(&target.path) else {
        return run(target, options);
    };
    tracing::debug!(
        "{} is owned by {}: syncing it as that user",
        target.path.display(),
        owner.name
    );
    let request = WorkerRequest {
        target: target.clone(),
        options: options.clone(),
        verbosity: crate::logging::verbosity(),
    };
    match crate::privsep::run_as::<_, Report>(&owner, &target.path, &request) {
        Ok(mut report) => {
            report.exit = Exit::from_code(report.exit_code);
            report
        }
        Err(err) => Report::new(target).fail(Exit::Io, &err),
    }
}

/// What the parent asks a privilege-separated worker to do.
#[derive(Debug, Serialize, Deserialize)]
struct WorkerRequest {
    target: Target,
    options: Options,
    verbosity: i8,
}

/// In `sync-repo`'s `main`: serve one [`run`] as a privilege-separated worker, when this process
/// is one ([`crate::privsep::serve`]).
pub fn serve_worker() -> Option<std::process::ExitCode> {
    crate::privsep::serve(|request: WorkerRequest| {
        crate::logging::init(request.verbosity);
        run(&request.target, &request.options)
    })
}

/// The decision and the work, without lock or record.
fn run(target: &Target, options: &Options) -> Report {
    let mut report = Report::new(target);
    let checkout = match Checkout::open(&target.path) {
        Ok(checkout) => checkout,
        Err(err) => return report.fail(Exit::Usage, &err),
    };
    let remote = match Remote::resolve(&checkout, target.remote.as_deref(), &target.branch) {
        Ok(remote) => remote,
        Err(err) => return report.fail(Exit::Usage, &err),
    };
    report.remote = Some(remote.display());
    let branch_ref = format!("refs/heads/{}", target.branch);
    let planted = checkout.planted_links(&[branch_ref.as_str(), remote.tracking_ref.as_str()]);
    if !planted.is_empty() {
        // Not even --force goes on: nothing is written through a link, and removing one is the
        // owner's call.
        let shown: Vec<String> = planted.iter().map(|p| shell_quote(&p.display().to_string())).collect();
        return report.refuse(
            format!(
                "symlinks stand in .git where git writes files, which git never makes: {}",
                shown.join(" ")
            ),
            vec![
                format!(
                    "ls -l {}   # see where they point; if nobody needs them:",
                    shown.join(" ")
                ),
                format!("rm {}", shown.join(" ")),
            ],
        );
    }
    let stale = checkout.remove_stale_temp_packs(Duration::from_secs(6 * 3600));
    if stale > 0 {
        tracing::info!("removed {stale} partial pack file(s) left by interrupted fetches");
    }
    if let Some(done) = clear_locks(&checkout, target, &remote, options, &report) {
        return done;
    }
    let git = format!("git -C {}", shell_quote(&checkout.workdir.display().to_string()));

    let mut journal_dropped = false;
    if let Some((old, new)) = Journal::read(&checkout) {
        match resume(&checkout, target, options, old, new, &git, report.clone()) {
            Some(done) => {
                // The interrupted run would have recorded its tip last; so do we, unless the
                // tracking ref has moved past it since (a `git fetch` of the user's).
                let tracked = remote.tracked_tip(&checkout);
                let passed = tracked.is_some_and(|tracked| {
                    !matches!(
                        history::relation(&checkout.repo, tracked, new),
                        Ok(Relation::Same | Relation::Behind { .. })
                    )
                });
                return if passed {
                    done
                } else {
                    record_tip(&checkout, &remote, new, options, done)
                };
            }
            None => {
                journal_dropped = true;
                report = Report::new(target).with_remote(&remote);
            }
        }
    }

    let head = match checkout.head() {
        Ok(head) => head,
        Err(err) => return report.fail(Exit::Io, &err),
    };
    let local = match &head {
        Head::Branch { id: Some(id), .. } | Head::Detached(id) => *id,
        Head::Branch { id: None, name } => {
            return report.refuse(
                format!("branch `{name}` has no commits yet"),
                vec![format!("{git} fetch origin && {git} checkout -f {}", target.branch)],
            );
        }
    };
    report.before = Some(local.to_string());

    // Refusals that need no network.
    let mut blockers: Vec<(String, Vec<String>)> = Vec::new();
    match &head {
        Head::Detached(id) => blockers.push((
            format!("HEAD is detached at {}, not on branch `{}`", short(id), target.branch),
            vec![format!("{git} checkout {}", target.branch)],
        )),
        Head::Branch { name, .. } if *name != target.branch => blockers.push((
            format!("the checkout is on branch `{name}`, not `{}`", target.branch),
            vec![format!("{git} checkout {}", target.branch)],
        )),
        Head::Branch { .. } => {}
    }
    if let Some(op) = checkout.operation_in_progress() {
        blockers.push((format!("a {op} is in progress"), vec![abort_command(&git, op)]));
    }
    if !blockers.is_empty() && !options.force {
        let (reasons, resolve): (Vec<_>, Vec<_>) = blockers.into_iter().unzip();
        let mut resolve: Vec<String> = resolve.into_iter().flatten().collect();
        resolve.push(format!(
            "or: sync-repo --force {}  (preserves local work first)",
            target_arg(target)
        ));
        return report.refuse(reasons.join("; "), resolve);
    }

    // A run that dropped a stale journal may have left files of its own: the worktree is checked
    // even when the tips agree, so nothing half-written is ever called "in sync".
    let after_interruption = journal_dropped;
    let fetched = match remote.fetch(&checkout) {
        Ok(fetched) => fetched,
        Err(
            err @ (fetch::Error::NoSuchBranch { .. }
            | fetch::Error::NoRemote { .. }
            | fetch::Error::CleartextCredentials { .. }
            | fetch::Error::AuthenticationFailed { .. }
            | fetch::Error::NotFound { .. }
            | fetch::Error::Redirected { .. }
            | fetch::Error::SshRefused { .. }),
        ) => {
            return report.fail(Exit::Usage, &err);
        }
        Err(err) if err.is_local_storage() => return report.fail(Exit::Io, &err),
        Err(err) => return report.fail(Exit::TempFail, &err),
    };
    let tip = fetched.tip;
    report.remote_tip = Some(tip.to_string());

    let relation = match history::relation(&checkout.repo, local, tip) {
        Ok(relation) => relation,
        Err(err) => return report.fail(Exit::Io, &err),
    };
    // Scanning the worktree is the costly part of a no-change tick; only an update needs it.
    let needs_status = options.force || after_interruption || !matches!(relation, Relation::Same);
    let modified = match needs_status.then(|| checkout.modified_paths()).transpose() {
        Ok(paths) => paths.unwrap_or_default(),
        Err(err) => return report.fail(Exit::Io, &err),
    };

    if options.force
        && (!blockers.is_empty()
            || !modified.is_empty()
            || !matches!(relation, Relation::Same | Relation::Behind { .. }))
    {
        let report = force(
            &checkout, target, options, report, local, tip, relation, &modified, &git,
        );
        return record_tip(&checkout, &remote, tip, options, report);
    }

    let report = decide(
        &checkout, target, options, report, local, &fetched, relation, &modified, &git,
    );
    record_tip(&checkout, &remote, tip, options, report)
}

/// Lock files in `.git` on what a sync writes: the index, HEAD, the branch, the tracking ref and
/// packed-refs. A killed sync-repo's own are taken back ([`locks`]). Anyone else's refuse the run
/// before anything is written; `--force` clears them once a minute old (git holds its locks for
/// milliseconds). `Some` is the run's final report.
fn clear_locks(
    checkout: &Checkout,
    target: &Target,
    remote: &Remote,
    options: &Options,
    report: &Report,
) -> Option<Report> {
    let repo = &checkout.repo;
    let abandoned = if options.dry_run {
        locks::abandoned(repo) // Only looked at: the real run takes these back.
    } else {
        for lock in locks::release_abandoned(repo) {
            tracing::warn!("removed {}, left by a sync-repo run that was killed", lock.display());
        }
        Vec::new()
    };
    let branch = format!("refs/heads/{}", target.branch);
    let resources = ["index", "HEAD", &branch, &remote.tracking_ref, "packed-refs"];
    let held: Vec<PathBuf> = locks::existing(repo, &resources)
        .into_iter()
        .filter(|lock| !abandoned.contains(lock))
        .collect();
    if held.is_empty() {
        return None;
    }
    let files: Vec<String> = held.iter().map(|l| shell_quote(&l.display().to_string())).collect();
    if !options.force {
        let verb = if held.len() == 1 { "exists" } else { "exist" };
        return Some(report.clone().refuse(
            format!(
                "{} {verb}: another git process is writing, or one crashed",
                files.join(" and ")
            ),
            vec![
                "pgrep -a git   # if no git process works in this checkout:".to_owned(),
                format!("rm {}", files.join(" ")),
                format!(
                    "or: sync-repo --force {}  (clears a lock older than a minute; also preserves local work and takes the remote)",
                    target_arg(target)
                ),
            ],
        ));
    }
    for lock in &held {
        let modified = std::fs::metadata(lock).and_then(|m| m.modified());
        let age = modified.ok().and_then(|m| m.elapsed().ok()).unwrap_or_default();
        if age < Duration::from_secs(60) {
            let mut report = report.clone().end(Outcome::Failed, Exit::TempFail);
            report.reason = Some(format!(
                "{} is fresh: a git process may be working; try again in a minute",
                lock.display()
            ));
            return Some(report);
        }
    }
    if !options.dry_run {
        for lock in &held {
            if let Err(err) = std::fs::remove_file(lock) {
                return Some(report.clone().fail(Exit::Io, &err));
            }
            tracing::warn!("--force: removed {}, older than a minute", lock.display());
        }
    }
    None
}

/// After a successful sync, move the tracking ref to the fetched tip; refusals and dry runs
/// leave every ref as it was.
fn record_tip(checkout: &Checkout, remote: &Remote, tip: gix::ObjectId, options: &Options, report: Report) -> Report {
    if options.dry_run || !matches!(report.outcome, Outcome::InSync | Outcome::Updated) {
        return report;
    }
    match remote.record_tip(checkout, tip) {
        Ok(()) => report,
        Err(err) if err.is_temporary() => report.fail(Exit::TempFail, &err),
        Err(err) => report.fail(Exit::Io, &err),
    }
}

/// In sync, fast-forward, or refuse: the normal (not `--force`) path once the remote is known.
#[allow(clippy::too_many_arguments)]
fn decide(
    checkout: &Checkout,
    target: &Target,
    options: &Options,
    mut report: Report,
    local: gix::ObjectId,
    fetched: &fetch::Fetched,
    relation: Relation,
    modified: &[BString],
    git: &str,
) -> Report {
    let tip = fetched.tip;
    match relation {
        Relation::Same if !modified.is_empty() => report.refuse(
            // Only looked at after an interrupted update whose journal no longer applied.
            format!(
                "the checkout is at the remote tip but tracked files differ from it: {}",
                list_paths(modified)
            ),
            vec![
                format!("{git} status   # see what differs, then either"),
                format!("{git} checkout -- .   # take the committed state, or"),
                format!(
                    "sync-repo --force {}   # preserve the files, then take it",
                    target_arg(target)
                ),
            ],
        ),
        Relation::Same => {
            report.after = Some(local.to_string());
            report.end(Outcome::InSync, Exit::Ok)
        }
        Relation::Behind { commits } => {
            report.commits = commits;
            if !modified.is_empty() {
                return report.refuse(
                    format!("tracked files are modified: {}", list_paths(modified)),
                    vec![
                        format!("{git} stash push   # keep the changes aside, or"),
                        format!("{git} checkout -- .   # throw them away, or"),
                        format!(
                            "sync-repo --force {}   # preserve them under refs/driftless/preserved/ and update",
                            target_arg(target)
                        ),
                    ],
                );
            }
            fast_forward(checkout, target, options, report, local, tip, git)
        }
        Relation::Ahead { commits } => report.refuse(
            format!("the local branch has {commits} commit(s) that are not on the remote"),
            vec![
                format!("{git} push origin {}   # publish them, or", target.branch),
                format!(
                    "sync-repo --force {}   # preserve them under refs/driftless/preserved/ and take the remote",
                    target_arg(target)
                ),
            ],
        ),
        Relation::Diverged { ahead, behind } => {
            let force_pushed = fetched
                .previous_tip
                .is_some_and(|prev| prev != tip && !history::is_ancestor(&checkout.repo, prev, tip));
            if force_pushed {
                let reason = format!(
                    "the remote branch was force-pushed: {} is no longer in the history of {} \
                     ({ahead} commit(s) here are not in the new history)",
                    short(&fetched.previous_tip.unwrap_or(local)),
                    short(&tip)
                );
                return report.refuse(
                    reason,
                    vec![
                        format!("{git} branch before-force-push   # keep the old history, then either"),
                        format!(
                            "{git} fetch origin {} && {git} reset --keep FETCH_HEAD   # take the new history, or",
                            target.branch
                        ),
                        format!(
                            "sync-repo --force {}   # preserve the old history under refs/driftless/preserved/ and take the new",
                            target_arg(target)
                        ),
                    ],
                );
            }
            report.refuse(
                format!("the local branch and the remote have diverged ({ahead} local, {behind} remote commit(s))"),
                vec![
                    format!("{git} branch saved-local   # keep the local history, then either"),
                    format!("{git} pull --rebase origin {}   # replay local commits on the remote, or", target.branch),
                    format!(
                        "sync-repo --force {}   # preserve local commits under refs/driftless/preserved/ and take the remote",
                        target_arg(target)
                    ),
                ],
            )
        }
    }
}

fn fast_forward(
    checkout: &Checkout,
    target: &Target,
    options: &Options,
    mut report: Report,
    local: gix::ObjectId,
    tip: gix::ObjectId,
    git: &str,
) -> Report {
    let plan = match Plan::new(checkout, local, tip, &[]) {
        Ok(plan) => plan,
        Err(err) => return report.fail(Exit::Io, &err),
    };
    describe(&mut report, &plan);
    if let Some(refused) = refuse_missing_drivers(checkout, &plan, target, &report) {
        return refused;
    }
    let obstacles = plan.obstacles(checkout);
    if !obstacles.is_empty() && options.force {
        let commits = report.commits;
        return force(
            checkout,
            target,
            options,
            report,
            local,
            tip,
            Relation::Behind { commits },
            &[],
            git,
        );
    }
    if !obstacles.is_empty() {
        let paths: Vec<BString> = obstacles.iter().map(|o| o.path.clone()).collect();
        return report.refuse(
            format!("the update is blocked by {}: {}", obstacles[0].what, list_paths(&paths)),
            vec![
                format!(
                    "mv {} /somewhere/safe   # move it out of the way, or",
                    shell_quote(&checkout.worktree_path(paths[0].as_ref()).display().to_string())
                ),
                format!(
                    "sync-repo --force {}   # preserve it under refs/driftless/preserved/ and update",
                    target_arg(target)
                ),
            ],
        );
    }
    if options.dry_run {
        return report.end(Outcome::WouldUpdate, Exit::Ok);
    }
    let reflog = format!("sync-repo: fast-forward {}..{}", short(&local), short(&tip));
    match fast_forward::apply(
        checkout,
        &plan,
        RefUpdate::FastForward { branch: &target.branch },
        &reflog,
    ) {
        Ok(_) => {
            report.after = Some(tip.to_string());
            report.end(Outcome::Updated, Exit::Ok)
        }
        Err(err) => {
            let exit = if err.is_io() { Exit::Io } else { Exit::TempFail };
            let mut report = report.fail(exit, &err);
            report.resolve = vec![
                format!(
                    "sync-repo {}   # run again: it finishes the interrupted update",
                    target_arg(target)
                ),
                format!("{git} status"),
            ];
            report
        }
    }
}

/// `--force`: preserve everything local, then take the remote state.
#[allow(clippy::too_many_arguments)]
fn force(
    checkout: &Checkout,
    target: &Target,
    options: &Options,
    mut report: Report,
    local: gix::ObjectId,
    tip: gix::ObjectId,
    relation: Relation,
    modified: &[BString],
    git: &str,
) -> Report {
    if let Relation::Behind { commits } | Relation::Diverged { behind: commits, .. } = relation {
        report.commits = commits;
    }
    let plan = match Plan::new(checkout, local, tip, modified) {
        Ok(plan) => plan,
        Err(err) => return report.fail(Exit::Io, &err),
    };
    describe(&mut report, &plan);
    if let Some(refused) = refuse_missing_drivers(checkout, &plan, target, &report) {
        return refused;
    }
    let obstacles: Vec<BString> = plan.obstacles(checkout).into_iter().map(|o| o.path).collect();
    // A preserved ref holds files and links only: what else stands in the way is never removed.
    if let Some((path, what)) = obstacles
        .iter()
        .chain(modified)
        .find_map(|p| preserve::unpreservable(checkout, p.as_bstr()))
    {
        let shown = checkout.worktree_path(path.as_bstr()).display().to_string();
        return report.refuse(
            format!(
                "--force would have to remove {what} at `{}`, which a preserved ref cannot hold",
                Checkout::display(path.as_bstr())
            ),
            vec![
                format!(
                    "mv {} /somewhere/safe   # move it out of the way yourself, then",
                    shell_quote(&shown)
                ),
                format!("sync-repo --force {}", target_arg(target)),
            ],
        );
    }
    let branch_tip = checkout
        .repo
        .try_find_reference(format!("refs/heads/{}", target.branch).as_str())
        .ok()
        .flatten()
        .and_then(|r| r.target().try_id().map(ToOwned::to_owned))
        .filter(|id| *id != local);
    if options.dry_run {
        report.reason = Some(format!(
            "--force would preserve {} modified and {} untracked path(s) and local commits, then take the remote state",
            modified.len(),
            obstacles.len()
        ));
        return report.end(Outcome::WouldUpdate, Exit::Ok);
    }
    let work = preserve::Work {
        head: local,
        modified,
        in_the_way: &obstacles,
        also: branch_tip,
    };
    match preserve::preserve(checkout, &work, tip) {
        Ok(Some(preserved)) => {
            tracing::warn!(
                "local work preserved at {} ({})",
                preserved.reference,
                short(&preserved.commit)
            );
            report.preserved_ref = Some(preserved.reference.clone());
            report.resolve = vec![
                format!("{git} log --stat {}   # see what was preserved", preserved.reference),
                format!(
                    "{git} checkout -b rescued {}   # get it back on a branch",
                    preserved.reference
                ),
            ];
        }
        Ok(None) => {}
        Err(err) => return report.fail(Exit::Io, &err),
    }
    // The preserved commit holds all of it now: clear the way.
    for path in &obstacles {
        let abs = checkout.worktree_path(path.as_ref());
        let removed = if std::fs::symlink_metadata(&abs).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir_all(&abs)
        } else {
            std::fs::remove_file(&abs)
        };
        if let Err(err) = removed {
            return report.fail(Exit::Io, &err);
        }
    }
    abort_operation(checkout);
    let reflog = format!("sync-repo --force: reset to remote {}", short(&tip));
    match fast_forward::apply(checkout, &plan, RefUpdate::Reset { branch: &target.branch }, &reflog) {
        Ok(_) => {
            report.after = Some(tip.to_string());
            report.end(Outcome::Updated, Exit::Ok)
        }
        Err(err) => report.fail(if err.is_io() { Exit::Io } else { Exit::TempFail }, &err),
    }
}

/// The refusal when files of the update need a filter driver this host cannot run (git-lfs not
/// installed): writing the stored blobs would deploy pointer files as content. `--force` cannot
/// help, so it refuses too.
fn refuse_missing_drivers(checkout: &Checkout, plan: &Plan, target: &Target, report: &Report) -> Option<Report> {
    let missing = match plan.missing_drivers(checkout) {
        Ok(missing) if missing.is_empty() => return None,
        Ok(missing) => missing,
        Err(err) => return Some(report.clone().fail(Exit::Io, &err)),
    };
    let reasons: Vec<String> = missing
        .iter()
        .map(|m| {
            format!(
                "`{}` needs the `{}` filter, but {}",
                Checkout::display(m.path.as_bstr()),
                m.name,
                m.why
            )
        })
        .collect();
    let mut resolve: Vec<String> = missing
        .iter()
        .map(|m| match m.name.as_str() {
            "lfs" => "apt-get install git-lfs && git lfs install --system   # then run again".to_owned(),
            name => format!("install and configure the `{name}` filter (filter.{name}.smudge or .process in git config), then run again"),
        })
        .collect();
    resolve.push(format!("sync-repo {}   # once the filter is there", target_arg(target)));
    Some(report.clone().refuse(
        format!(
            "{}; the stored blobs would be deployed as if they were the files",
            reasons.join("; ")
        ),
        resolve,
    ))
}

/// Finish a run that a crash interrupted, if the journal still applies. `None` when the journal
/// was stale and the normal path should run.
fn resume(
    checkout: &Checkout,
    target: &Target,
    options: &Options,
    old: gix::ObjectId,
    new: gix::ObjectId,
    git: &str,
    mut report: Report,
) -> Option<Report> {
    let head = checkout.head().ok()?;
    let at = match head {
        Head::Branch { name, id: Some(id) } if name == target.branch && (id == old || id == new) => id,
        _ => {
            if !options.dry_run {
                tracing::warn!("removing a stale sync journal: HEAD moved since the interrupted run");
                let _ = Journal::remove(&Journal::path(checkout));
            }
            return None;
        }
    };
    if !options.dry_run {
        tracing::warn!("finishing an interrupted update {}..{}", short(&old), short(&new));
    }
    report.before = Some(old.to_string());
    if let Ok(Relation::Behind { commits }) = history::relation(&checkout.repo, old, new) {
        report.commits = commits;
    }
    let plan = match Plan::new(checkout, old, new, &[]) {
        Ok(plan) => plan,
        Err(err) => return Some(report.fail(Exit::Io, &err)),
    };
    describe(&mut report, &plan);
    let mut foreign = plan.verify_resumable(checkout);
    let planned: std::collections::HashSet<&BString> = plan.changes.iter().map(|c| &c.path).collect();
    match checkout.modified_paths() {
        Ok(paths) => foreign.extend(paths.into_iter().filter(|p| !planned.contains(p))),
        Err(err) => return Some(report.fail(Exit::Io, &err)),
    }
    if !foreign.is_empty() && options.force && !options.dry_run {
        // --force takes it from here: the normal path preserves whatever the worktree holds
        // (half old, half new, plus the changes) and then takes the remote state.
        tracing::warn!(
            "an interrupted update {}..{} cannot be finished ({}); --force preserves the worktree and takes the remote",
            short(&old),
            short(&new),
            list_paths(&foreign)
        );
        let _ = Journal::remove(&Journal::path(checkout));
        return None;
    }
    if !foreign.is_empty() {
        return Some(report.refuse(
            format!(
                "an interrupted update {}..{} cannot be finished: these paths were changed since: {}",
                short(&old),
                short(&new),
                list_paths(&foreign)
            ),
            vec![
                format!("{git} status"),
                format!(
                    "sync-repo --force {}   # preserve everything and take the remote",
                    target_arg(target)
                ),
            ],
        ));
    }
    if options.dry_run {
        report.reason = Some(format!(
            "an interrupted update {}..{} would be finished",
            short(&old),
            short(&new)
        ));
        return Some(report.end(Outcome::WouldUpdate, Exit::Ok));
    }
    let update = if at == old {
        RefUpdate::FastForward { branch: &target.branch }
    } else {
        RefUpdate::AlreadyMoved
    };
    let reflog = format!("sync-repo: fast-forward {}..{} (resumed)", short(&old), short(&new));
    Some(match fast_forward::apply(checkout, &plan, update, &reflog) {
        Ok(_) => {
            report.after = Some(new.to_string());
            report.end(Outcome::Updated, Exit::Ok)
        }
        Err(err) => report.fail(if err.is_io() { Exit::Io } else { Exit::TempFail }, &err),
    })
}

impl Report {
    fn with_remote(mut self, remote: &Remote) -> Report {
        self.remote = Some(remote.display());
        self
    }
}

fn describe(report: &mut Report, plan: &Plan) {
    report.files = plan.files();
    report.changes = plan
        .changes
        .iter()
        .map(|c| {
            let gitlink = |side: Option<fast_forward::Side>| {
                side.filter(|s| s.mode == gix::index::entry::Mode::COMMIT)
                    .map(|s| s.id.to_string())
            };
            PathChange {
                path: Checkout::display(c.path.as_ref()),
                change: c.kind,
                from: gitlink(c.old),
                to: gitlink(c.new),
            }
        })
        .collect();
}

/// Clear the state files of an unfinished merge, rebase, cherry-pick, revert or am. The
/// worktree and index are reset by the update itself; the work was preserved before.
fn abort_operation(checkout: &Checkout) {
    let git_dir = checkout.repo.git_dir();
    // Preserved first ([`preserve::OPERATION_STATE`]), so nothing of it is lost.
    for name in preserve::OPERATION_STATE {
        let path = git_dir.join(name);
        let _ = if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
}

fn abort_command(git: &str, op: &str) -> String {
    match op {
        "bisect" => format!("{git} bisect reset"),
        "am" => format!("{git} am --abort"),
        op => format!("{git} {op} --abort"),
    }
}

fn target_arg(target: &Target) -> String {
    match &target.id {
        RepoId::Named(name) => name.clone(),
        RepoId::Path(path) => shell_quote(&path.display().to_string()),
    }
}

/// Up to five paths for a message, then "and N more".
pub(crate) fn list_paths(paths: &[BString]) -> String {
    const SHOWN: usize = 5;
    let mut text = paths
        .iter()
        .take(SHOWN)
        .map(|p| Checkout::display(p.as_ref()))
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > SHOWN {
        text.push_str(&format!(" and {} more", paths.len() - SHOWN));
    }
    text
}
