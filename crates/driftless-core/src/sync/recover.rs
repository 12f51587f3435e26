//! Recovering what an earlier run or another process left: lock files in `.git`, and the
//! journal of an update a crash interrupted.

use std::path::PathBuf;
use std::time::Duration;

use gix::ObjectId;

use super::report::{Outcome, Report, list_paths};
use super::run::Run;
use crate::exit::Exit;
use crate::git::checkout::Head;
use crate::git::fast_forward::{self, Journal, Plan, RefUpdate};
use crate::git::history::{self, Relation};
use crate::git::{locks, shell_quote, short};

/// Lock files in `.git` on what a sync writes: the index, HEAD, the branch, the tracking ref and
/// packed-refs. A killed sync-repo's own are taken back ([`locks`]). Anyone else's refuse the run
/// before anything is written; `--force` clears them once a minute old (git holds its locks for
/// milliseconds). `Some` is the run's final report.
pub(super) fn clear_locks(run: &Run, report: &Report) -> Option<Report> {
    let Run {
        checkout,
        options,
        target,
        remote,
        cmd,
    } = run;
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
                    cmd.target
                ),
            ],
        ));
    }
    for lock in &held {
        let modified = std::fs::metadata(lock).and_then(|m| m.modified());
        let age = modified.ok().and_then(|m| m.elapsed().ok()).unwrap_or_default();
        if age < Duration::from_secs(60) {
            let mut report = report.clone().end(Outcome::Failed, Exit::TempFail);
            report.run.reason = Some(format!(
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

/// Finish a run that a crash interrupted, if the journal still applies. `None` when the journal
/// was stale and the normal path should run.
pub(super) fn resume(run: &Run, old: ObjectId, new: ObjectId, mut report: Report) -> Option<Report> {
    let Run {
        checkout,
        options,
        target,
        cmd,
        ..
    } = run;
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
    report.describe(&plan);
    let foreign = match checkout.modified_paths() {
        Ok(modified) => plan.verify_resumable(checkout, modified),
        Err(err) => return Some(report.fail(Exit::Io, &err)),
    };
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
                format!("{} status", cmd.git),
                format!(
                    "sync-repo --force {}   # preserve everything and take the remote",
                    cmd.target
                ),
            ],
        ));
    }
    if options.dry_run {
        report.run.reason = Some(format!(
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
    Some(report.applied(fast_forward::apply(checkout, &plan, update, &reflog), new))
}
