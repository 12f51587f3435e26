//! Executing a decision: the fast-forward, and `--force` (preserve all local work, then take
//! the remote state).

use gix::ObjectId;
use gix::bstr::{BString, ByteSlice};

use super::decide::Decision;
use super::report::{Outcome, Report, list_paths};
use super::run::Run;
use super::submodules;
use crate::exit::Exit;
use crate::git::checkout::Checkout;
use crate::git::fast_forward::{self, Plan, RefUpdate};
use crate::git::{preserve, shell_quote, short};

/// Carry out `decision` for a checkout at `local` whose remote is at `tip`.
pub(super) fn execute(
    run: &Run,
    mut report: Report,
    decision: Decision,
    local: ObjectId,
    tip: ObjectId,
    modified: &[BString],
) -> Report {
    match decision {
        Decision::InSync => {
            report.after = Some(local.to_string());
            // With recursion, submodules left behind (by a kill after the superproject moved,
            // or from before recursion was turned on) are moved now.
            let moves = match submodules::prepare(run, &report, None) {
                Ok(moves) => moves,
                Err(done) => return *done,
            };
            if moves.is_empty() {
                report.end(Outcome::InSync, Exit::Ok)
            } else if run.options.dry_run {
                submodules::mark(&mut report, &moves);
                report.end(Outcome::WouldUpdate, Exit::Ok)
            } else {
                submodules::apply(run, report.end(Outcome::Updated, Exit::Ok), moves)
            }
        }
        Decision::FastForward { commits } => {
            report.commits = commits;
            fast_forward(run, report, local, tip)
        }
        Decision::Force { commits } => {
            report.commits = commits;
            force(run, report, local, tip, modified)
        }
        Decision::Refuse { reason, resolve } => report.refuse(reason, resolve),
    }
}

fn fast_forward(run: &Run, mut report: Report, local: ObjectId, tip: ObjectId) -> Report {
    let Run {
        checkout,
        options,
        target,
        cmd,
        ..
    } = run;
    let plan = match plan(run, &mut report, local, tip, &[]) {
        Ok(plan) => plan,
        Err(done) => return *done,
    };
    let obstacles = plan.obstacles(checkout);
    if !obstacles.is_empty() && options.force {
        return force(run, report, local, tip, &[]);
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
                    cmd.target
                ),
            ],
        );
    }
    // Submodules are fetched and checked before anything is written (see [`submodules`]).
    let moves = match submodules::prepare(run, &report, Some(&plan)) {
        Ok(moves) => moves,
        Err(done) => return *done,
    };
    if options.dry_run {
        submodules::mark(&mut report, &moves);
        return report.end(Outcome::WouldUpdate, Exit::Ok);
    }
    let reflog = format!("sync-repo: fast-forward {}..{}", short(&local), short(&tip));
    let update = RefUpdate::FastForward { branch: &target.branch };
    let mut report = report.applied(fast_forward::apply(checkout, &plan, update, &reflog), tip);
    if report.outcome == Outcome::Updated {
        return submodules::apply(run, report, moves);
    }
    if report.outcome == Outcome::Failed {
        report.resolve = vec![
            format!(
                "sync-repo {}   # run again: it finishes the interrupted update",
                cmd.target
            ),
            format!("{} status", cmd.git),
        ];
    }
    report
}

/// `--force`: preserve everything local, then take the remote state.
fn force(run: &Run, mut report: Report, local: ObjectId, tip: ObjectId, modified: &[BString]) -> Report {
    let Run {
        checkout,
        options,
        target,
        cmd,
        ..
    } = run;
    let git = &cmd.git;
    let plan = match plan(run, &mut report, local, tip, modified) {
        Ok(plan) => plan,
        Err(done) => return *done,
    };
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
                format!("sync-repo --force {}", cmd.target),
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
    let moves = match submodules::prepare(run, &report, Some(&plan)) {
        Ok(moves) => moves,
        Err(done) => return *done,
    };
    if options.dry_run {
        submodules::mark(&mut report, &moves);
        report.run.reason = Some(format!(
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
    let update = RefUpdate::Reset { branch: &target.branch };
    let report = report.applied(fast_forward::apply(checkout, &plan, update, &reflog), tip);
    if report.outcome == Outcome::Updated {
        return submodules::apply(run, report, moves);
    }
    report
}

/// The refusal when files of the update need a filter driver this host cannot run (git-lfs not
/// installed): writing the stored blobs would deploy pointer files as content. `--force` cannot
/// help, so it refuses too.
/// The plan from `local` to `tip`, described in `report`; the finished report instead when it
/// cannot be made or a filter it needs is missing.
fn plan(
    run: &Run,
    report: &mut Report,
    local: ObjectId,
    tip: ObjectId,
    modified: &[BString],
) -> Result<Plan, Box<Report>> {
    let plan =
        Plan::new(&run.checkout, local, tip, modified).map_err(|err| Box::new(report.clone().fail(Exit::Io, &err)))?;
    report.describe(&plan);
    match refuse_missing_drivers(run, &plan, report) {
        Some(refused) => Err(Box::new(refused)),
        None => Ok(plan),
    }
}

fn refuse_missing_drivers(run: &Run, plan: &Plan, report: &Report) -> Option<Report> {
    let missing = match plan.missing_drivers(&run.checkout) {
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
    resolve.push(format!("sync-repo {}   # once the filter is there", run.cmd.target));
    Some(report.clone().refuse(
        format!(
            "{}; the stored blobs would be deployed as if they were the files",
            reasons.join("; ")
        ),
        resolve,
    ))
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
