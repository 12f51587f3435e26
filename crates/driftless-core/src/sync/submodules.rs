//! `submodules: recurse` (or `--recurse-submodules`): every populated submodule is moved to the
//! commit its superproject records, with a detached HEAD, as `git pull --recurse-submodules`
//! (`git submodule update --recursive`, checkout mode) leaves it. Unpopulated submodules stay
//! unpopulated (no `--init`). Without recursion nothing here runs.
//!
//! The order, and what a kill between the steps leaves:
//!
//! 1. [`prepare`], before the superproject is written: for each populated submodule whose HEAD
//!    is not the commit that will be recorded, take back the locks of a killed run, refuse
//!    symlinks planted in its `.git`, fetch the commit from the submodule's own `origin` into
//!    its object store (through gix), then refuse local changes, files in the way and missing
//!    filter drivers, and plan the move; then the same inside it, at most [`MAX_DEPTH`] levels.
//!    A refusal (exit 3) or a failed fetch (75, or 2 for a commit the remote does not have)
//!    leaves every worktree, index and HEAD as it was: only objects were added.
//! 2. The superproject moves, under its own journal.
//! 3. [`apply`] moves each submodule, parents first, with the superproject's machinery
//!    ([`fast_forward::apply`]: journal in the submodule's git dir, `index.lock`, temp files
//!    renamed into place, HEAD detached last).
//!
//! Killed between 2 and 3, or during 3, the superproject is at the new commit and a submodule
//! is behind what its index records. The next run finds it: step 1 compares every populated
//! submodule with the recorded commit on every run, not only those this update moves, and a
//! submodule's own journal lets its half-written move be finished (every path its old or its
//! new version) rather than refused as local changes.

use gix::ObjectId;
use gix::bstr::{BStr, BString, ByteSlice};
use gix::index::entry::Mode;

use super::report::{PathChange, Report, list_paths};
use super::run::{Run, fetch_exit};
use crate::exit::Exit;
use crate::git::checkout::{Checkout, Head, SubmoduleHead};
use crate::git::fast_forward::{self, ChangeKind, Journal, Plan, RefUpdate};
use crate::git::fetch::Remote;
use crate::git::{locks, shell_quote, short};

/// How deep submodules inside submodules are followed; deeper ones are left as they are, with a
/// warning. git has no bound, but a checkout nested this deep is a mistake, not a layout.
pub(super) const MAX_DEPTH: usize = 8;

/// One submodule to move, ready: its commit fetched, its worktree checked clean, its plan made.
pub(super) struct Move {
    /// Its path from the top of the superproject synced (`vendor/lib/nested`).
    path: BString,
    checkout: Checkout,
    plan: Plan,
}

/// A failure inside a submodule, named.
#[derive(Debug, thiserror::Error)]
#[error("submodule {path}")]
struct InSubmodule {
    path: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

fn in_submodule(path: &BStr, source: impl std::error::Error + Send + Sync + 'static) -> InSubmodule {
    InSubmodule {
        path: Checkout::display(path),
        source: Box::new(source),
    }
}

/// Step 1: the submodule moves this run makes, parents before children, after the superproject
/// moves by `plan` (`None`: it stays where it is). `Err` is the run's final report (boxed: it is
/// large and rare): a refusal or
/// a failure, with nothing written to any worktree. Empty without recursion.
pub(super) fn prepare(run: &Run, report: &Report, plan: Option<&Plan>) -> Result<Vec<Move>, Box<Report>> {
    let mut moves = Vec::new();
    if run.target.recurse_submodules {
        collect(run, report, &run.checkout, BStr::new(b""), plan, 1, &mut moves)?;
    }
    Ok(moves)
}

fn collect(
    run: &Run,
    report: &Report,
    parent: &Checkout,
    prefix: &BStr,
    plan: Option<&Plan>,
    depth: usize,
    moves: &mut Vec<Move>,
) -> Result<(), Box<Report>> {
    let submodules = parent.submodules().map_err(|err| {
        let err = in_submodule(prefix, err);
        Box::new(report.clone().fail(Exit::Io, &err))
    })?;
    for submodule in submodules {
        let mut path = BString::from(prefix);
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(&submodule.path);
        // The commit it will record: the plan's for a gitlink the update moves, the index's
        // for the others; a gitlink the update removes or replaces is no longer a submodule.
        let target = match plan.and_then(|p| p.changes.iter().find(|c| c.path == submodule.path)) {
            Some(change) => match change.new {
                Some(side) if side.mode == Mode::COMMIT => side.id,
                _ => continue,
            },
            None => submodule.recorded,
        };
        match &submodule.checked_out {
            SubmoduleHead::Unpopulated => continue,
            SubmoduleHead::Unreadable(why) => {
                let dir = parent.worktree_path(submodule.path.as_bstr());
                return Err(Box::new(report.clone().refuse(
                    format!(
                        "cannot read the HEAD of submodule {}: {why}",
                        Checkout::display(path.as_bstr())
                    ),
                    vec![format!("git -C {} status", shell_quote(&dir.display().to_string()))],
                )));
            }
            SubmoduleHead::At(_) => {}
        }
        if depth > MAX_DEPTH {
            tracing::warn!(
                "submodule {} is nested more than {MAX_DEPTH} deep: left as it is",
                Checkout::display(path.as_bstr())
            );
            continue;
        }
        let dir = parent.worktree_path(submodule.path.as_bstr());
        let checkout = Checkout::open(&dir).map_err(|err| {
            let err = in_submodule(path.as_bstr(), err);
            report.clone().fail(Exit::Io, &err)
        })?;
        let head = match checkout.head() {
            Ok(Head::Detached(id) | Head::Branch { id: Some(id), .. }) => id,
            Ok(Head::Branch { id: None, .. }) => target, // Nothing checked out to move from.
            Err(err) => {
                let err = in_submodule(path.as_bstr(), err);
                return Err(Box::new(report.clone().fail(Exit::Io, &err)));
            }
        };
        let own_plan = if head == target {
            None
        } else {
            prepare_one(run, report, path.as_bstr(), &checkout, head, target)?
        };
        let mut children = Vec::new();
        collect(
            run,
            report,
            &checkout,
            path.as_bstr(),
            own_plan.as_ref(),
            depth + 1,
            &mut children,
        )?;
        if let Some(plan) = own_plan {
            moves.push(Move { path, checkout, plan });
        }
        moves.extend(children);
    }
    Ok(())
}

/// Fetch, check and plan one submodule's move from `head` to `target`. `None` in a dry run
/// that has not got the commit (a dry run fetches nothing into a submodule).
fn prepare_one(
    run: &Run,
    report: &Report,
    path: &BStr,
    checkout: &Checkout,
    head: ObjectId,
    target: ObjectId,
) -> Result<Option<Plan>, Box<Report>> {
    let shown = Checkout::display(path);
    let dir = shell_quote(&checkout.workdir.display().to_string());
    let git = format!("git -C {dir}");
    let planted = checkout.planted_links(&[]);
    if !planted.is_empty() {
        let links: Vec<String> = planted.iter().map(|p| shell_quote(&p.display().to_string())).collect();
        return Err(Box::new(report.clone().refuse(
            format!(
                "symlinks stand in the .git of submodule {shown} where git writes files: {}",
                links.join(" ")
            ),
            vec![format!("ls -l {}   # then, if nobody needs them: rm", links.join(" "))],
        )));
    }
    let dry_run = run.options.dry_run;
    if !dry_run {
        for lock in locks::release_abandoned(&checkout.repo) {
            tracing::warn!("removed {}, left by a sync-repo run that was killed", lock.display());
        }
        let fetched = Remote::resolve(checkout, None, &run.target.branch).and_then(|remote| {
            tracing::debug!(
                "submodule {shown}: fetching {} from {}",
                short(&target),
                remote.display()
            );
            remote.fetch_commit(checkout, target)
        });
        if let Err(err) = fetched {
            let exit = fetch_exit(&err);
            return Err(Box::new(report.clone().fail(exit, &in_submodule(path, err))));
        }
    }
    let modified = checkout.modified_paths().map_err(|err| {
        let err = in_submodule(path, err);
        Box::new(report.clone().fail(Exit::Io, &err))
    })?;
    let refuse_changes = |changed: &[BString]| {
        Box::new(report.clone().refuse(
            format!(
                "submodule {shown} has local changes the update would overwrite: {}",
                list_paths(changed)
            ),
            vec![
                format!("{git} status"),
                format!("{git} stash   # or commit them there; --force does not reach into submodules"),
                format!("sync-repo {}   # then run again", run.cmd.target),
            ],
        ))
    };
    if !checkout.repo.has_object(target) {
        // A dry run without the commit: the local changes are all it can judge.
        return if modified.is_empty() {
            Ok(None)
        } else {
            Err(refuse_changes(&modified))
        };
    }
    let plan = Plan::new(checkout, head, target, &[]).map_err(|err| {
        let err = in_submodule(path, err);
        Box::new(report.clone().fail(Exit::Io, &err))
    })?;
    // A killed run's move of this very submodule: finished if every path it touched holds its
    // old or its new version; any other change is the owner's and refuses.
    let foreign: Vec<BString> = match Journal::read(checkout) {
        Some((old, new)) if old == head && new == target => plan.verify_resumable(checkout, modified),
        Some(_) => {
            if !dry_run {
                tracing::warn!("submodule {shown}: removing a stale sync journal");
                let _ = Journal::remove(&Journal::path(checkout));
            }
            modified
        }
        None => modified,
    };
    if !foreign.is_empty() {
        return Err(refuse_changes(&foreign));
    }
    let obstacles = plan.obstacles(checkout);
    if !obstacles.is_empty() {
        let paths: Vec<BString> = obstacles.iter().map(|o| o.path.clone()).collect();
        return Err(Box::new(report.clone().refuse(
            format!(
                "the update of submodule {shown} is blocked by {}: {}",
                obstacles[0].what,
                list_paths(&paths)
            ),
            vec![
                format!("{git} status --ignored   # move them out of the way, then"),
                format!("sync-repo {}", run.cmd.target),
            ],
        )));
    }
    match plan.missing_drivers(checkout) {
        Ok(missing) if missing.is_empty() => {}
        Ok(missing) => {
            let names: Vec<&str> = missing.iter().map(|m| m.name.as_str()).collect();
            return Err(Box::new(report.clone().refuse(
                format!(
                    "submodule {shown} needs the filter(s) {} that this host cannot run",
                    names.join(", ")
                ),
                vec![format!(
                    "install and configure them, then: sync-repo {}",
                    run.cmd.target
                )],
            )));
        }
        Err(err) => return Err(Box::new(report.clone().fail(Exit::Io, &in_submodule(path, err)))),
    }
    Ok(Some(plan))
}

/// Say in the report which submodules move (or, in a dry run, would): the summary calls them
/// updated, `--json` marks their change `checked_out`.
pub(super) fn mark(report: &mut Report, moves: &[Move]) {
    for m in moves {
        let path = Checkout::display(m.path.as_bstr());
        match report.changes.iter_mut().find(|c| c.path == path) {
            Some(change) => change.checked_out = true,
            None => report.changes.push(PathChange {
                path,
                change: ChangeKind::Submodule,
                from: Some(m.plan.old.to_string()),
                to: Some(m.plan.new.to_string()),
                checked_out: true,
            }),
        }
    }
}

/// Step 3: move each prepared submodule, parents first. A failure ends the run (74 for local
/// I/O, else 75); the next run finishes what is left (see the module docs).
pub(super) fn apply(run: &Run, mut report: Report, moves: Vec<Move>) -> Report {
    mark(&mut report, &moves);
    for m in &moves {
        let reflog = format!(
            "sync-repo: checkout {} (submodule update)",
            m.plan.new.to_hex_with_len(40)
        );
        if let Err(err) = fast_forward::apply(&m.checkout, &m.plan, RefUpdate::Detach, &reflog) {
            let exit = if err.is_io() { Exit::Io } else { Exit::TempFail };
            let mut report = report.fail(exit, &in_submodule(m.path.as_bstr(), err));
            report.resolve = vec![format!(
                "sync-repo {}   # run again: it finishes the submodules",
                run.cmd.target
            )];
            return report;
        }
    }
    report
}
