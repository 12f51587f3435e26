//! Drift of the checkout: against the remote (behind, ahead, diverged), local changes (dirty,
//! untracked), where HEAD is, and how long ago sync-repo last succeeded.

use super::{Opened, Part, RepoReport, Status, Target, duration_setting, target_arg};
use crate::git::checkout::{Checkout, Head};
use crate::git::fetch::Remote;
use crate::git::history::{self, Relation};
use crate::redact::error_chain;
use crate::state::StateDir;

/// Check the checkout; returns it opened for the stack checks, or `None` if it cannot be read.
pub fn check(target: &Target, state: &StateDir, options: &super::Options, report: &mut RepoReport) -> Option<Opened> {
    let repo_cfg = &target.repo;
    let branch = repo_cfg.branch().to_owned();
    let sync = format!("sync-repo {}", target_arg(&target.id));
    let checkout = match Checkout::open(&repo_cfg.path) {
        Ok(checkout) => checkout,
        Err(err) => {
            report.push(Part::Checkout, "checkout", Status::Drift, error_chain(&err), None);
            return None;
        }
    };
    let git = format!("git -C {}", checkout.workdir.display());

    let head = checkout.head().ok();
    let local = match &head {
        Some(Head::Branch { name, id: Some(id) }) if *name == branch => {
            report.push(Part::Checkout, "branch", Status::Ok, format!("on {branch}"), None);
            report.gauge("driftless_repo_wrong_branch", &[], 0.0);
            Some(*id)
        }
        Some(Head::Branch { name, id }) => {
            report.push(
                Part::Checkout,
                "branch",
                Status::Drift,
                format!("on branch `{name}`, not `{branch}`"),
                Some(format!("{git} checkout {branch}")),
            );
            report.gauge("driftless_repo_wrong_branch", &[], 1.0);
            *id
        }
        Some(Head::Detached(id)) => {
            report.push(
                Part::Checkout,
                "branch",
                Status::Drift,
                format!("HEAD is detached at {}", crate::git::short(id)),
                Some(format!("{git} checkout {branch}")),
            );
            report.gauge("driftless_repo_wrong_branch", &[], 1.0);
            Some(*id)
        }
        None => None,
    };

    if let (Some(verify), Some(local)) = (&repo_cfg.verify, local) {
        signature(&checkout, verify, local, &git, report);
    }

    // Remote: fetch (objects only, no ref written; nothing at all when the tip is already here)
    // or the last fetched tracking ref.
    let remote = Remote::resolve(&checkout, repo_cfg.remote.as_deref(), &branch);
    let tip = match (&remote, options.no_fetch) {
        (Err(err), _) => {
            report.push(Part::Checkout, "remote", Status::Unknown, error_chain(err), None);
            None
        }
        (Ok(remote), false) => match remote.fetch(&checkout) {
            Ok(fetched) => Some(fetched.tip),
            // The unit's sandbox has the checkout read-only: the remote's new commits cannot be
            // fetched to count them, but its advertised tip still tells that they exist.
            Err(err) if err.is_local_storage() => {
                match remote.advertised_tip(&checkout) {
                    Ok(tip) if checkout.repo.has_object(tip) => Some(tip),
                    Ok(tip) => {
                        report.push(
                            Part::Checkout,
                            "remote",
                            Status::Drift,
                            format!(
                                "behind the remote: its tip {} is not in this checkout \
                                 (not fetched to count the commits: {})",
                                crate::git::short(&tip),
                                error_chain(&err)
                            ),
                            Some(sync.clone()),
                        );
                        // A lower bound: at least the tip itself is missing here.
                        report.gauge("driftless_repo_behind_commits", &[], 1.0);
                        None
                    }
                    Err(ls) => {
                        report.push(Part::Checkout, "remote", Status::Unknown, error_chain(&ls), None);
                        None
                    }
                }
            }
            Err(err) => {
                report.push(Part::Checkout, "remote", Status::Unknown, error_chain(&err), None);
                None
            }
        },
        (Ok(remote), true) => {
            let tip = remote.tracked_tip(&checkout);
            if tip.is_none() {
                report.push(
                    Part::Checkout,
                    "remote",
                    Status::Unknown,
                    format!("--no-fetch: {} was never fetched", remote.tracking_ref),
                    Some(sync.clone()),
                );
            }
            tip
        }
    };
    if let (Some(local), Some(tip)) = (local, tip) {
        let (ahead, behind, reason, fix) = match history::relation(&checkout.repo, local, tip) {
            Ok(Relation::Same) => (0, 0, format!("at the remote tip {}", crate::git::short(&tip)), None),
            Ok(Relation::Behind { commits }) => (
                0,
                commits,
                format!("{commits} commit(s) behind the remote"),
                Some(sync.clone()),
            ),
            Ok(Relation::Ahead { commits }) => (
                commits,
                0,
                format!("{commits} local commit(s) not on the remote"),
                Some(format!("{git} push origin {branch}   # or: {sync} --force")),
            ),
            Ok(Relation::Diverged { ahead, behind }) => (
                ahead,
                behind,
                format!("diverged: {ahead} local, {behind} remote commit(s)"),
                Some(format!("{sync} --force   # preserves local commits first")),
            ),
            Err(err) => (0, 0, error_chain(&err), None),
        };
        let status = if ahead + behind > 0 { Status::Drift } else { Status::Ok };
        report.push(Part::Checkout, "remote", status, reason, fix);
        report.gauge("driftless_repo_behind_commits", &[], behind as f64);
        report.gauge("driftless_repo_ahead_commits", &[], ahead as f64);
    }

    match checkout.modified_paths() {
        Ok(paths) if paths.is_empty() => {
            report.push(
                Part::Checkout,
                "dirty",
                Status::Ok,
                "no tracked file modified".into(),
                None,
            );
            report.gauge("driftless_repo_dirty", &[], 0.0);
        }
        Ok(paths) => {
            report.push(
                Part::Checkout,
                "dirty",
                Status::Drift,
                format!(
                    "{} tracked file(s) modified: {}",
                    paths.len(),
                    crate::sync::list_paths(&paths)
                ),
                Some(format!(
                    "{git} diff   # then commit, `{git} stash`, or `{git} checkout -- .`"
                )),
            );
            report.gauge("driftless_repo_dirty", &[], 1.0);
        }
        Err(err) => report.push(Part::Checkout, "dirty", Status::Unknown, error_chain(&err), None),
    }
    let recurse = repo_cfg.submodules == crate::config::Submodules::Recurse;
    submodules(&checkout, &git, recurse.then_some(sync.as_str()), report);
    match checkout.untracked_paths() {
        Ok(mut paths) => {
            // A `.driftless-hold` marker puts a stack on hold on purpose: not drift.
            paths.retain(|p| !p.ends_with(crate::compose::stacks::HOLD_FILE.as_bytes()));
            report.gauge("driftless_repo_untracked_files", &[], paths.len() as f64);
            if paths.is_empty() {
                report.push(
                    Part::Checkout,
                    "untracked",
                    Status::Ok,
                    "no untracked files".into(),
                    None,
                );
            } else {
                report.push(
                    Part::Checkout,
                    "untracked",
                    Status::Drift,
                    format!("{} untracked path(s): {}", paths.len(), crate::sync::list_paths(&paths)),
                    Some(format!(
                        "{git} status   # commit them, move them away, or add them to .gitignore"
                    )),
                );
            }
        }
        Err(err) => report.push(Part::Checkout, "untracked", Status::Unknown, error_chain(&err), None),
    }

    let record: Option<crate::sync::Record> = state.read(&target.id, crate::sync::TOOL).ok().flatten();
    let now = crate::time::now_unix();
    match record.as_ref().and_then(|r| r.run.last_success_at) {
        Some(at) => {
            let age = now.saturating_sub(at);
            report.gauge("driftless_repo_last_sync_age_seconds", &[], age as f64);
            match duration_setting(repo_cfg.max_sync_age.as_deref()) {
                Some(max) if age > max.as_secs() => report.push(
                    Part::Checkout,
                    "last sync",
                    Status::Drift,
                    format!(
                        "last successful sync {age}s ago, more than max_sync_age {}s",
                        max.as_secs()
                    ),
                    Some(sync.clone()),
                ),
                _ => report.push(
                    Part::Checkout,
                    "last sync",
                    Status::Ok,
                    format!("last successful sync {age}s ago"),
                    None,
                ),
            }
        }
        None if repo_cfg.max_sync_age.is_some() => report.push(
            Part::Checkout,
            "last sync",
            Status::Drift,
            "sync-repo has not succeeded on this repo yet".into(),
            Some(sync),
        ),
        None => report.push(
            Part::Checkout,
            "last sync",
            Status::Ok,
            "sync-repo has not succeeded on this repo yet (no max_sync_age set)".into(),
            None,
        ),
    }
    let root = checkout.workdir.clone();
    Some(Opened { checkout, root })
}

/// Submodules whose checked-out commit is not the one the checkout records: by default
/// sync-repo moves the gitlink only (as `git pull` does without `--recurse-submodules`), so a
/// populated submodule stays behind until someone updates it. With `submodules: recurse`
/// (`sync`: the command that syncs this repo) the next sync-repo run moves it, which is the fix
/// shown. An unpopulated one is no drift: `git status` shows nothing for it either. No row at
/// all for a repo without submodules.
/// With `verify:`: whether HEAD is signed by a trusted key. sync-repo only moves a checkout to
/// such a commit, so one that is not was moved by hand (or the trusted keys changed since).
fn signature(
    checkout: &Checkout,
    verify: &crate::config::VerifyConfig,
    head: gix::ObjectId,
    git: &str,
    report: &mut RepoReport,
) {
    let checked = crate::trust::Gate::load(verify).and_then(|gate| gate.check(&checkout.repo, head));
    let (status, reason, fix, unverified) = match checked {
        Ok(signer) => (
            Status::Ok,
            format!("HEAD is signed by {} ({})", signer.principal, signer.fingerprint),
            None,
            0.0,
        ),
        Err(err @ crate::trust::Error::Untrusted { .. }) => (
            Status::Drift,
            format!("HEAD is not trusted: {err}"),
            Some(format!(
                "{git} log -1 --show-signature   # who moved it; then move it back to a signed commit"
            )),
            1.0,
        ),
        Err(err) => (
            Status::Unknown,
            format!("cannot check HEAD's signature: {}", error_chain(&err)),
            None,
            1.0,
        ),
    };
    report.push(Part::Checkout, "signature", status, reason, fix);
    report.gauge("driftless_repo_head_unverified", &[], unverified);
}

fn submodules(checkout: &Checkout, git: &str, sync: Option<&str>, report: &mut RepoReport) {
    use crate::git::checkout::SubmoduleHead;
    let submodules = match checkout.submodules() {
        Ok(submodules) if submodules.is_empty() => return,
        Ok(submodules) => submodules,
        Err(err) => {
            report.push(Part::Checkout, "submodules", Status::Unknown, error_chain(&err), None);
            return;
        }
    };
    let mut stale = Vec::new();
    let mut unreadable = Vec::new();
    for submodule in &submodules {
        let path = Checkout::display(submodule.path.as_ref());
        match &submodule.checked_out {
            SubmoduleHead::At(id) if *id != submodule.recorded => stale.push(format!(
                "{path} at {}, recorded {}",
                crate::git::short(id),
                crate::git::short(&submodule.recorded)
            )),
            SubmoduleHead::Unreadable(why) => unreadable.push(format!("{path}: {why}")),
            SubmoduleHead::At(_) | SubmoduleHead::Unpopulated => {}
        }
    }
    if !stale.is_empty() {
        let paths: Vec<String> = submodules
            .iter()
            .filter(|s| matches!(&s.checked_out, SubmoduleHead::At(id) if *id != s.recorded))
            .map(|s| crate::git::shell_quote(&Checkout::display(s.path.as_ref())))
            .collect();
        report.push(
            Part::Checkout,
            "submodules",
            Status::Drift,
            format!("{} submodule(s) out of date: {}", stale.len(), stale.join("; ")),
            Some(match sync {
                Some(sync) => format!("{sync}   # submodules: recurse checks the recorded commits out"),
                None => format!("{git} submodule update --init {}", paths.join(" ")),
            }),
        );
    } else if !unreadable.is_empty() {
        report.push(
            Part::Checkout,
            "submodules",
            Status::Unknown,
            format!("cannot read submodule HEAD: {}", unreadable.join("; ")),
            None,
        );
    } else {
        report.push(
            Part::Checkout,
            "submodules",
            Status::Ok,
            format!(
                "{} submodule(s) at their recorded commits (or not populated)",
                submodules.len()
            ),
            None,
        );
    }
}
