//! What `apply-compose` does: bring compose stacks in line with the checkout, applying only
//! the stacks whose inputs changed, each decision with a reason a person can read.
//!
//! - [`stacks`]: which directories are stacks, with which options.
//! - [`resolve`]: what compose itself picks in a stack directory (files, name, env, profiles).
//! - [`model`]: which files a stack reads (the only compose YAML parser).
//! - [`read`]: bounded reads of a stack's own files, special files refused.
//! - [`runner`]: the real compose command.
//! - [`images`]: which services run another image than their tag names now (`--pull`).
//! - [`rollback`]: the last good revision of a stack whose apply failed (`rollback: true`).
//! - [`validate`]: `--validate`, the checks a config repo runs before a push.
//!
//! A stack's digest covers every input it reads from the repo, identified by git's own object
//! ids at HEAD (tree ids for directories), so a no-change run hashes nothing and never starts
//! docker. The digest of the last successful apply is kept in the state directory; a stack is
//! applied when it differs, was never applied, or last failed.

pub mod images;
pub mod model;
pub mod read;
pub mod resolve;
pub mod rollback;
pub mod runner;
pub mod stacks;
pub mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gix::bstr::ByteSlice;
use serde::{Deserialize, Serialize};

use crate::config::{Config, RepoConfig, StackEntry};
use crate::exit::Exit;
use crate::git::checkout::Checkout;
use crate::git::short;
use crate::metrics::Kind as MetricKind;
use crate::redact::error_chain;
use crate::run::{RunHead, RunRecord};
use crate::state::{RepoId, StateDir};
use runner::Compose;
use stacks::Stack;

/// The tool name used in state records, metrics and JSON.
pub const TOOL: &str = "apply-compose";

/// The repo whose stacks to apply.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: RepoId,
    pub path: PathBuf,
    pub stacks: Vec<StackEntry>,
    pub prune: bool,
    /// Globs of untracked inputs identified by content (`inputs.watch`).
    pub watch: Vec<String>,
    /// How long a failed digest is skipped (`retry_after`).
    pub retry_after: Duration,
    /// Re-apply a stack's last good revision when its apply fails (`rollback`; a stack's own
    /// setting wins).
    pub rollback: bool,
}

impl Target {
    /// The configured repo `name`.
    pub fn configured(name: &str, repo: &RepoConfig) -> Target {
        Target {
            id: RepoId::Named(name.to_owned()),
            path: repo.path.clone(),
            stacks: repo.stacks.clone(),
            prune: repo.prune,
            watch: repo.inputs.watch.clone(),
            retry_after: repo
                .retry_after
                .as_deref()
                .and_then(|t| crate::time::parse_duration(t).ok())
                .unwrap_or(crate::config::DEFAULT_RETRY_AFTER),
            rollback: repo.rollback,
        }
    }

    /// A checkout by path: its config entry if it has one, else every directory of the
    /// checkout holding a compose file (and the top itself), with no pruning.
    pub fn from_path(path: &Path, config: &Config) -> Target {
        if let Some(name) = config.repo_name_for_path(path) {
            return Target::configured(name, &config.repos[name]);
        }
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        let mut stacks = vec![StackEntry::Glob("*".into())];
        if stacks::is_stack_dir(&canonical) {
            stacks.push(StackEntry::Stack(crate::config::StackConfig::default_for("")));
        }
        Target {
            id: RepoId::Path(canonical.clone()),
            path: canonical,
            stacks,
            prune: false,
            watch: Vec::new(),
            retry_after: crate::config::DEFAULT_RETRY_AFTER,
            rollback: false,
        }
    }
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Decide and report; run nothing.
    pub dry_run: bool,
    /// Apply stacks whose tracked inputs are modified in the checkout (one-off manual runs).
    pub allow_dirty: bool,
    /// Apply even unchanged stacks (after a manual `docker compose down`, say).
    pub force: bool,
    /// Re-create the containers of the stacks applied (`up --force-recreate`): containers
    /// started by hand from other files or another directory carry those in their labels until
    /// they are re-created. Implies `force`.
    pub recreate: bool,
    /// Pull each stack's images and re-create the services whose image changed (`--pull`).
    /// Never on a normal run.
    pub pull: bool,
    /// Only these stacks (project names); all when empty.
    pub only: Vec<String>,
    /// How long to wait for another run's lock.
    pub wait_lock: Duration,
    /// The compose command.
    pub compose: Compose,
    /// Where to write `.prom` files.
    pub metrics_dir: Option<PathBuf>,
}

/// What happened to one stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Applied now.
    Applied,
    /// `--dry-run`: would be applied.
    WouldApply,
    /// `--pull`: inputs unchanged, images pulled, the services whose image changed re-created.
    Pulled,
    /// `--pull --dry-run`: would pull the stack's images.
    WouldPull,
    /// Inputs unchanged since the last successful apply.
    Unchanged,
    /// On hold: never touched.
    Held,
    /// Tracked inputs are modified in the checkout: not applied.
    Refused,
    /// Compose failed (or the engine was down); state not advanced. The same inputs are
    /// skipped until a new commit changes them, `--force`, or `retry_after`.
    Failed,
    /// These inputs failed to apply before: not tried again yet (not a failure of this run).
    Skipped,
    /// Removed from git and taken down (`prune: true`).
    Pruned,
    /// `--dry-run`: would be taken down.
    WouldPrune,
    /// Removed from git; left running because `prune` is off.
    Orphaned,
}

/// One stack's line in the report.
#[derive(Debug, Clone, Serialize)]
pub struct StackReport {
    pub stack: String,
    pub dir: String,
    pub action: Action,
    pub reasons: Vec<String>,
    pub digest: Option<String>,
    /// `--pull`: the services whose image changed, old and new image ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<images::ImageChange>,
}

/// The result for one repo: summary lines or one `--json` record.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub run: RunHead,
    pub commit: Option<String>,
    pub stacks: Vec<StackReport>,
}

/// What the state directory keeps per stack.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StackRecord {
    pub dir: String,
    /// Digest of the last successful apply.
    pub applied_digest: Option<String>,
    /// Its inputs, repo-relative path to object id, to explain the next change.
    pub applied_inputs: BTreeMap<String, String>,
    pub applied_commit: Option<String>,
    pub applied_at: Option<u64>,
    /// The last attempt's error, if it failed.
    pub last_error: Option<String>,
    /// The digest whose apply failed, so the next runs skip it instead of failing again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_digest: Option<String>,
    /// The commit whose apply failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_commit: Option<String>,
    pub last_attempt_at: Option<u64>,
    pub held: bool,
}

/// What the state directory keeps of the last apply run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    /// `last_success_at` is the last run in which every stack was applied or unchanged.
    #[serde(flatten)]
    pub run: RunRecord,
    pub commit: Option<String>,
    pub stacks: BTreeMap<String, StackRecord>,
}

impl Report {
    /// Human summary: one line per stack.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(reason) = &self.run.reason {
            lines.push(format!("{}: {reason}", self.run.repo));
        }
        for stack in &self.stacks {
            let action = serde_json::to_value(stack.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
                .replace('_', " ");
            lines.push(format!(
                "{}/{}: {action}: {}",
                self.run.repo,
                stack.stack,
                stack.reasons.join("; ")
            ));
        }
        if lines.is_empty() {
            lines.push(format!("{}: no stacks", self.run.repo));
        }
        lines
    }
}

/// Apply one repo's stacks: lock, decide, run, record.
pub fn apply(target: &Target, state: &StateDir, options: &Options) -> Report {
    let started = Instant::now();
    let started_at = crate::time::now_unix();
    let _span = tracing::info_span!("apply", repo = %target.id.label()).entered();
    let mut report = Report {
        run: RunHead::new(TOOL, target.id.label(), target.path.clone()),
        commit: None,
        stacks: Vec::new(),
    };
    let fail = |mut report: Report, exit: Exit, err: &(dyn std::error::Error + 'static)| {
        report.run.fail(exit, err);
        report
    };
    let lock = match state.lock(&target.id, options.wait_lock) {
        Ok(lock) => lock,
        Err(err) => return fail(report, err.exit(), &err),
    };
    let previous = read_record(state, &target.id);
    let rollback_dir = match state.repo_dir(&target.id) {
        Ok(dir) => dir.join(rollback::DIR),
        Err(err) => return fail(report, err.exit(), &err),
    };
    let mut record = match run(target, options, &previous, &rollback_dir, &mut report) {
        Ok(record) => record,
        Err((exit, err)) => return fail(report, exit, err.as_ref()),
    };
    let exit = Exit::worst(report.stacks.iter().map(|s| match s.action {
        Action::Refused => Exit::Refused,
        Action::Failed => Exit::ApplyFailed,
        _ => Exit::Ok,
    }))
    .max(report.run.exit);
    report.run.set_exit(exit);
    report.run.duration_ms = started.elapsed().as_millis() as u64;
    if !options.dry_run {
        record.run = report.run.record(started_at, exit == Exit::Ok, Some(&previous.run));
        if let Err(err) = state.write(&target.id, TOOL, &record) {
            tracing::error!("{}", error_chain(&err));
            report.run.set_exit(exit.max(Exit::Io));
            record.run.exit_code = report.run.exit_code;
        }
        write_metrics(target, options, &report, &record);
    }
    // Not logged: the tool prints the summary, the journal's one record of it.
    drop(lock);
    report
}

type Failure = (Exit, Box<dyn std::error::Error + Send + Sync>);

/// The state record of the last run; one that cannot be read or parsed is reported, naming
/// the file, and the stacks are treated as never applied (applying is idempotent in compose).
pub fn read_record(state: &StateDir, id: &RepoId) -> Record {
    match state.read(id, TOOL) {
        Ok(record) => record.unwrap_or_default(),
        Err(err) => {
            tracing::warn!("{}; treating every stack as never applied", error_chain(&err));
            Record::default()
        }
    }
}

/// Why a stack whose current digest already failed is not tried again on this run, if it is
/// not: a failed deploy fails the unit (and notifies) once, not on every tick.
fn skip_failed(record: &StackRecord, digest: &str, force: bool, target: &Target, project: &str) -> Option<String> {
    if force || record.failed_digest.as_deref() != Some(digest) {
        return None;
    }
    let since = crate::time::now_unix().saturating_sub(record.last_attempt_at.unwrap_or(0));
    let after = target.retry_after.as_secs();
    if since >= after {
        return None;
    }
    Some(format!(
        "commit {} failed to apply {since}s ago: {}; skipped until a new commit changes its inputs, \
         retry_after ({after}s) passes, or `apply-compose {} --stack {project} --force`",
        short_commit(record.failed_commit.as_deref()),
        record.last_error.as_deref().unwrap_or("unknown error"),
        target.id.label(),
    ))
}

/// The first 7 characters of a recorded commit, whatever the state file holds.
fn short_commit(commit: Option<&str>) -> String {
    commit.map_or("-".into(), |c| c.chars().take(7).collect())
}

fn run(
    target: &Target,
    options: &Options,
    previous: &Record,
    rollback_dir: &Path,
    report: &mut Report,
) -> Result<Record, Failure> {
    let checkout = Checkout::open(&target.path).map_err(|e| (Exit::Usage, e.into()))?;
    let root = checkout.workdir.clone();
    let head = checkout.repo.head_commit().map_err(|e| (Exit::Usage, e.into()))?;
    let head_id = head.id;
    let head_tree = head.tree().map_err(|e| (Exit::Io, e.into()))?;
    report.commit = Some(head_id.to_string());
    let stacks = stacks::discover(&root, &target.stacks).map_err(|e| (Exit::Usage, e.into()))?;
    let stacks: Vec<Stack> = stacks
        .into_iter()
        .filter(|s| options.only.is_empty() || options.only.iter().any(|o| *o == s.project || *o == s.dir))
        .collect();
    if let Some(unknown) = options
        .only
        .iter()
        .find(|o| !stacks.iter().any(|s| s.project == **o || s.dir == **o) && !previous.stacks.contains_key(*o))
    {
        return Err((
            Exit::Usage,
            format!("no stack `{unknown}` in {}", root.display()).into(),
        ));
    }
    // Only computed when some stack's inputs must be checked against it.
    let mut modified: Option<BTreeSet<String>> = None;

    let mut record = Record {
        commit: Some(head_id.to_string()),
        stacks: previous.stacks.clone(),
        ..Record::default()
    };
    // Decide first; only touch docker if something has to change.
    let mut plan: Vec<(Stack, StackReport, BTreeMap<String, String>)> = Vec::new();
    // `--pull`: unchanged stacks whose images to pull.
    let mut pulls: Vec<(Stack, StackReport)> = Vec::new();
    for stack in stacks {
        let mut line = StackReport {
            stack: stack.project.clone(),
            dir: stack.dir.clone(),
            action: Action::Unchanged,
            reasons: Vec::new(),
            digest: None,
            images: Vec::new(),
        };
        if stack.hold {
            line.action = Action::Held;
            line.reasons.push(format!(
                "on hold (remove {}/{} or `hold: true` to release)",
                stack.dir,
                stacks::HOLD_FILE
            ));
            if let Some(r) = record.stacks.get_mut(&stack.project) {
                r.held = true;
            }
            report.stacks.push(line);
            continue;
        }
        let inputs = match model::inputs(&stack.project_dir, &stack.files, &stack.env_files) {
            Ok(inputs) => inputs,
            Err(err) => {
                // Let compose itself say what is wrong: digest the files we know of and apply.
                tracing::debug!("[{}] {}", stack.project, error_chain(&err));
                model::Inputs {
                    paths: stack
                        .files
                        .iter()
                        .chain(&stack.env_files)
                        .map(|f| (f.clone(), "compose file"))
                        .collect(),
                    ..Default::default()
                }
            }
        };
        if modified.is_none() {
            // Not knowing whether inputs are edited is not "clean": nothing is deployed.
            let paths = checkout.modified_paths().map_err(|err| {
                let message = format!(
                    "cannot tell whether the stacks' inputs are modified in the checkout ({}); nothing applied: check it with `git -C {} status`",
                    error_chain(&err),
                    root.display()
                );
                (Exit::Io, message.into())
            })?;
            modified = Some(paths.into_iter().map(|p| p.to_str_lossy().into_owned()).collect());
        }
        let Some(modified) = modified.as_ref() else { continue };
        // With --allow-dirty compose deploys the edited files, so the digest records their
        // content: undoing the edit later is a change again.
        let worktree_paths = if options.allow_dirty {
            modified.clone()
        } else {
            BTreeSet::new()
        };
        let (digest, ids, kinds) = digest(
            &checkout,
            &head_tree,
            &root,
            &stack,
            &inputs,
            &worktree_paths,
            &target.watch,
        );
        line.digest = Some(digest.clone());
        let before = previous.stacks.get(&stack.project);
        let dirty: Vec<&String> = ids
            .keys()
            .filter(|p| modified.contains(*p) || modified.iter().any(|m| m.starts_with(&format!("{p}/"))))
            .collect();
        let changed = before.and_then(|b| b.applied_digest.as_deref()) != Some(digest.as_str());
        // Desired state is what is committed: edited inputs need a person, changed or not.
        if !dirty.is_empty() && !options.allow_dirty {
            line.action = Action::Refused;
            line.reasons.push(format!(
                "tracked inputs are modified in the checkout: {} (commit them, `git -C {} checkout -- <path>` them, or pass --allow-dirty)",
                dirty.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                root.display()
            ));
            report.stacks.push(line);
            continue;
        }
        if let Some(b) = before
            && let Some(skip) = skip_failed(b, &digest, options.force || options.recreate, target, &stack.project)
        {
            line.action = Action::Skipped;
            line.reasons.push(skip);
            report.stacks.push(line);
            continue;
        }
        match before {
            None => line.reasons.push("never applied".into()),
            Some(b) if b.applied_digest.is_none() => line.reasons.push("never applied successfully".into()),
            Some(b) if b.last_error.is_some() => {
                line.reasons.push(format!(
                    "last apply failed: {}",
                    b.last_error.as_deref().unwrap_or_default()
                ));
            }
            Some(b) if changed => line
                .reasons
                .extend(explain(&b.applied_inputs, &ids, &kinds, b, head_id)),
            Some(_) if options.recreate => line.reasons.push("--recreate".into()),
            Some(_) if options.force => line.reasons.push("--force".into()),
            Some(b) => {
                line.reasons
                    .push(format!("unchanged since {}", short_commit(b.applied_commit.as_deref())));
                if let Some(r) = record.stacks.get_mut(&stack.project) {
                    r.held = false;
                }
                if options.pull {
                    pulls.push((stack, line));
                } else {
                    report.stacks.push(line);
                }
                continue;
            }
        }
        line.action = if options.dry_run {
            Action::WouldApply
        } else {
            Action::Applied
        };
        plan.push((stack, line, ids));
    }

    // Stacks in state that are gone from git (and not filtered out by --only).
    let present: BTreeSet<String> = report
        .stacks
        .iter()
        .map(|s| s.stack.clone())
        .chain(plan.iter().map(|p| p.0.project.clone()))
        .collect();
    let mut removed = Vec::new();
    for (project, rec) in &previous.stacks {
        if present.contains(project) || (!options.only.is_empty() && !options.only.contains(project)) {
            continue;
        }
        if root.join(&rec.dir).is_dir() && stacks::is_stack_dir(&root.join(&rec.dir)) && options.only.is_empty() {
            // Still in the repo but no longer selected by the config: leave it be.
            continue;
        }
        removed.push(project.clone());
    }

    let needs_engine = !plan.is_empty() || !pulls.is_empty() || (target.prune && !removed.is_empty());
    if needs_engine && !options.dry_run {
        options.compose.check_engine().map_err(|e| (e.exit(), e.into()))?;
    }

    for (stack, mut line, ids) in plan {
        let now = crate::time::now_unix();
        let entry = record.stacks.entry(stack.project.clone()).or_default();
        entry.dir = stack.dir.clone();
        entry.held = false;
        if options.dry_run {
            if options.pull {
                line.reasons.push(would_pull(&options.compose, &stack));
            }
            report.stacks.push(line);
            continue;
        }
        entry.last_attempt_at = Some(now);
        if options.pull {
            // Pulled first, so the apply's `up` re-creates the services whose image changed too.
            match pull(&options.compose, &stack) {
                Ok(changes) => {
                    line.reasons.extend(changes.iter().map(images::ImageChange::line));
                    line.images = changes;
                }
                Err(err) => {
                    line.action = Action::Failed;
                    line.reasons.push(error_chain(&err));
                    report.stacks.push(line);
                    continue;
                }
            }
        }
        match options.compose.up(&stack, options.recreate) {
            Ok(()) => {
                entry.applied_digest = line.digest.clone();
                entry.applied_inputs = ids;
                entry.applied_commit = Some(head_id.to_string());
                entry.applied_at = Some(now);
                entry.last_error = None;
                entry.failed_digest = None;
                entry.failed_commit = None;
                rollback::forget(rollback_dir, &stack.project);
            }
            Err(err) => {
                line.action = Action::Failed;
                line.reasons.push(error_chain(&err));
                entry.last_error = Some(error_chain(&err));
                entry.failed_digest = line.digest.clone();
                entry.failed_commit = Some(head_id.to_string());
                if stack.rollback.unwrap_or(target.rollback) {
                    // Still a failed deploy (65): the commit did not go out.
                    let good = entry.clone();
                    line.reasons
                        .push(roll_back(&checkout, &stack, &good, target, options, rollback_dir));
                }
            }
        }
        report.stacks.push(line);
    }

    for (stack, mut line) in pulls {
        if options.dry_run {
            line.action = Action::WouldPull;
            line.reasons.push(would_pull(&options.compose, &stack));
            report.stacks.push(line);
            continue;
        }
        match pull(&options.compose, &stack) {
            Ok(changes) if changes.is_empty() => {
                line.reasons
                    .push("every image is the one its tag names after the pull".into());
            }
            Ok(changes) => {
                let services: Vec<String> = changes.iter().map(|c| c.service.clone()).collect();
                match options.compose.recreate_services(&stack, &services) {
                    Ok(()) => {
                        line.action = Action::Pulled;
                        line.reasons = changes.iter().map(images::ImageChange::line).collect();
                        for change in &line.reasons {
                            tracing::info!("[{}] re-created {change}", stack.project);
                        }
                    }
                    Err(err) => {
                        line.action = Action::Failed;
                        line.reasons = changes.iter().map(images::ImageChange::line).collect();
                        line.reasons.push(error_chain(&err));
                        // The next tick applies the stack again (`last apply failed`), as
                        // after any failed `up`.
                        if let Some(entry) = record.stacks.get_mut(&stack.project) {
                            entry.last_error = Some(error_chain(&err));
                            entry.last_attempt_at = Some(crate::time::now_unix());
                        }
                    }
                }
                line.images = changes;
            }
            Err(err) => {
                // The running containers are untouched: nothing to record.
                line.action = Action::Failed;
                line.reasons.push(error_chain(&err));
            }
        }
        report.stacks.push(line);
    }

    for project in removed {
        let dir = previous.stacks.get(&project).map(|r| r.dir.clone()).unwrap_or_default();
        let mut line = StackReport {
            stack: project.clone(),
            dir,
            action: Action::Orphaned,
            reasons: Vec::new(),
            digest: None,
            images: Vec::new(),
        };
        if !target.prune {
            line.reasons
                .push("removed from git; left running (set `prune: true` to take removed stacks down)".into());
        } else if options.dry_run {
            line.action = Action::WouldPrune;
            line.reasons.push("removed from git; would run compose down".into());
        } else {
            match options.compose.down(&project) {
                Ok(()) => {
                    line.action = Action::Pruned;
                    line.reasons.push("removed from git; taken down".into());
                    record.stacks.remove(&project);
                }
                Err(err) => {
                    line.action = Action::Failed;
                    line.reasons.push(error_chain(&err));
                }
            }
        }
        report.stacks.push(line);
    }
    report.stacks.sort_by(|a, b| a.stack.cmp(&b.stack));
    Ok(record)
}

/// Pull `stack`'s images; the running services whose image is no longer the one its tag names,
/// with both ids, each logged.
fn pull(compose: &Compose, stack: &Stack) -> Result<Vec<images::ImageChange>, runner::Error> {
    compose.pull(stack)?;
    let wanted = compose.service_images(stack)?;
    let containers = compose.containers(&stack.project)?;
    // Looked up first, so an engine error is an error and not "no such image".
    let mut ids = BTreeMap::new();
    for want in wanted.values().filter(|w| w.pulled) {
        if !ids.contains_key(&want.image) {
            ids.insert(want.image.clone(), compose.image_id(&want.image)?);
        }
    }
    let changes = images::stale(&containers, &wanted, true, |image| ids.get(image).cloned().flatten());
    for change in &changes {
        tracing::info!("[{}] pulled {} for {}", stack.project, change.image, change.line());
    }
    Ok(changes)
}

/// What `--pull --dry-run` would pull for `stack` (its model only: nothing is pulled).
fn would_pull(compose: &Compose, stack: &Stack) -> String {
    match compose.service_images(stack) {
        Ok(wanted) => {
            let pulled: Vec<String> = wanted
                .iter()
                .filter(|(_, w)| w.pulled)
                .map(|(service, w)| format!("{service} ({})", w.image))
                .collect();
            if pulled.is_empty() {
                "--pull: no service image to pull (pull_policy never/build, or built locally)".into()
            } else {
                format!(
                    "would pull {} and re-create the services whose image changed",
                    pulled.join(", ")
                )
            }
        }
        Err(err) => format!("would pull the stack's images ({})", error_chain(&err)),
    }
}

/// Apply `stack`'s last good revision after its apply failed; the reason line saying how that went.
fn roll_back(
    checkout: &Checkout,
    stack: &Stack,
    record: &StackRecord,
    target: &Target,
    options: &Options,
    dir: &Path,
) -> String {
    let good = match rollback::materialise(checkout, stack, record, &target.stacks, dir) {
        Ok(good) => good,
        Err(err) => return format!("not rolled back: {}", error_chain(&err)),
    };
    let (good, commit) = good;
    tracing::info!(
        "[{}] rolling back to {} from {}",
        stack.project,
        short(&commit),
        good.path.display()
    );
    match options.compose.up(&good, false) {
        Ok(()) => format!(
            "rolled back to {} (its last good commit), which runs again; fix the stack and commit to move forward",
            short(&commit)
        ),
        Err(err) => format!("rolling back to {} failed too: {}", short(&commit), error_chain(&err)),
    }
}

/// Each input's id keyed by repo-relative path.
pub type InputIds = BTreeMap<String, String>;

/// The stack's digest, and each input's id: git's object id at HEAD for tracked paths (a tree
/// id for a directory); for paths git does not track, their existence and type, plus their
/// content (hashed as a stream) when `watch` lists them as configuration; paths in
/// `from_worktree` (edited inputs deployed with --allow-dirty) by their worktree content.
/// Special files are never opened. Stack options are part of the digest too. drift-check
/// computes the desired digest with this same function.
pub fn digest(
    checkout: &Checkout,
    head_tree: &gix::Tree<'_>,
    root: &Path,
    stack: &Stack,
    inputs: &model::Inputs,
    from_worktree: &BTreeSet<String>,
    watch: &[String],
) -> (String, InputIds, BTreeMap<String, &'static str>) {
    let mut ids = BTreeMap::new();
    let mut kinds = BTreeMap::new();
    for (path, kind) in &inputs.paths {
        let Ok(rela_path) = path.strip_prefix(root) else {
            continue;
        }; // Outside the repo: not desired state.
        let rela = rela_path.to_string_lossy().into_owned();
        let edited = from_worktree.contains(&rela) || from_worktree.iter().any(|m| m.starts_with(&format!("{rela}/")));
        // Looked up by the exact path: a directory name that is not UTF-8 is still found.
        let id = match head_tree.lookup_entry_by_path(rela_path) {
            Ok(Some(entry)) if !edited => entry.object_id().to_string(),
            _ => {
                let watched = watch
                    .iter()
                    .any(|w| crate::mirror::filter::glob(w.trim_matches('/').as_bytes(), rela.as_bytes()));
                worktree_id(path, edited || watched, checkout.repo.object_hash())
            }
        };
        ids.insert(rela.clone(), id);
        kinds.insert(rela, *kind);
    }
    // Written so that a stack compose resolves the way earlier versions did keeps its digest:
    // the default `.env` and the stack directory as project directory add nothing.
    let env: &[PathBuf] = if stack.env_explicit { &stack.env_files } else { &[] };
    let mut text = format!(
        "project {}\nfiles {:?}\nenv {:?}\nprofiles {:?}\nwait {:?}\n",
        stack.project, stack.files, env, stack.profiles, stack.wait
    );
    if stack.project_dir != stack.path {
        text.push_str(&format!("project_dir {:?}\n", stack.project_dir));
    }
    for (path, id) in &ids {
        text.push_str(&format!("{path}\0{id}\n"));
    }
    let digest = gix::objs::compute_hash(checkout.repo.object_hash(), gix::object::Kind::Blob, text.as_bytes())
        .map_or_else(|_| "0".repeat(40), |id| id.to_string());
    (digest, ids, kinds)
}

/// How a path git does not have at HEAD is identified: by type, and by content when `content`.
fn worktree_id(path: &Path, content: bool, hash: gix::hash::Kind) -> String {
    match std::fs::metadata(path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => "missing".to_owned(),
        Err(_) => "unreadable".to_owned(),
        Ok(meta) if meta.is_dir() => "worktree-dir".to_owned(),
        Ok(meta) if !meta.is_file() => "special-file".to_owned(),
        Ok(_) if !content => "untracked-file".to_owned(),
        Ok(_) => match read::blob_id(path, hash) {
            Ok(Some(id)) => format!("worktree:{id}"),
            Ok(None) => "missing".to_owned(),
            Err(read::Error::NotRegular { .. }) => "special-file".to_owned(),
            Err(_) => "unreadable".to_owned(),
        },
    }
}

/// Why a stack's digest changed, one reason per input ("env_file stacks/x/x.env changed in 3f2a9c1").
pub fn explain(
    before: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
    kinds: &BTreeMap<String, &'static str>,
    record: &StackRecord,
    head: gix::ObjectId,
) -> Vec<String> {
    let since = short_commit(record.applied_commit.as_deref());
    let at = short(&head);
    let mut reasons = Vec::new();
    for (path, id) in now {
        let kind = kinds.get(path).copied().unwrap_or("input");
        match before.get(path) {
            None => reasons.push(format!("{kind} {path} added in {since}..{at}")),
            Some(old) if old != id => reasons.push(format!("{kind} {path} changed in {since}..{at}")),
            Some(_) => {}
        }
    }
    for path in before.keys().filter(|p| !now.contains_key(*p)) {
        reasons.push(format!("input {path} no longer used (since {since})"));
    }
    if reasons.is_empty() {
        reasons.push("stack options changed in the config".into());
    }
    reasons
}

fn write_metrics(target: &Target, options: &Options, report: &Report, record: &Record) {
    let Some(dir) = &options.metrics_dir else { return };
    let run = record.run.metrics();
    let mut m = run.metrics();
    m.family(
        "driftless_stack_apply_failed",
        MetricKind::Gauge,
        "1 if the stack's last apply failed.",
    );
    for (project, stack) in &record.stacks {
        m.sample(
            "driftless_stack_apply_failed",
            &[("repo", report.run.repo.as_str()), ("stack", project)],
            if stack.last_error.is_some() { 1.0 } else { 0.0 },
        );
    }
    run.write(dir, &target.id, &m);
}
