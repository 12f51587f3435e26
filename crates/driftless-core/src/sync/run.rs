//! One repo's run, stage by stage: open the checkout, refuse what no run may touch, recover
//! what an interrupted run left, observe HEAD, fetch, [decide](super::decide) and
//! [execute](super::execute). The lock and the state record are the caller's ([`super::sync`]).

use std::time::Duration;

use gix::ObjectId;

use super::decide::{self, Blocker, Commands, Decision, Observed};
use super::execute::execute;
use super::recover;
use super::report::{Outcome, Report};
use super::{Options, Target};
use crate::exit::Exit;
use crate::git::checkout::{Checkout, Head};
use crate::git::fast_forward::Journal;
use crate::git::fetch::{self, Remote};
use crate::git::history::{self, Relation};
use crate::git::{shell_quote, short};
use crate::state::RepoId;

/// What every stage of one repo's run works with.
pub(super) struct Run<'a> {
    pub target: &'a Target,
    pub options: &'a Options,
    pub checkout: Checkout,
    pub remote: Remote,
    /// What recommended commands are built from.
    pub cmd: Commands,
}

/// The decision and the work, without lock or record.
pub(super) fn run(target: &Target, options: &Options) -> Report {
    let mut report = Report::new(target);
    let checkout = match Checkout::open(&target.path) {
        Ok(checkout) => checkout,
        Err(err) => return report.fail(Exit::Usage, &err),
    };
    let remote = match Remote::resolve(&checkout, target.remote.as_deref(), &target.branch) {
        Ok(remote) => remote,
        Err(err) => return report.fail(Exit::Usage, &err),
    };
    report = report.with_remote(&remote);
    let cmd = Commands {
        git: format!("git -C {}", shell_quote(&checkout.workdir.display().to_string())),
        target: match &target.id {
            RepoId::Named(name) => name.clone(),
            RepoId::Path(path) => shell_quote(&path.display().to_string()),
        },
        branch: target.branch.clone(),
    };
    let run = Run {
        target,
        options,
        checkout,
        remote,
        cmd,
    };
    run.stages(report)
}

impl Run<'_> {
    fn stages(&self, mut report: Report) -> Report {
        if let Some(refused) = self.refuse_planted_links(&report) {
            return refused;
        }
        let stale = self.checkout.remove_stale_temp_packs(Duration::from_secs(6 * 3600));
        if stale > 0 {
            tracing::info!("removed {stale} partial pack file(s) left by interrupted fetches");
        }
        if let Some(done) = recover::clear_locks(self, &report) {
            return done;
        }

        // A run that dropped a stale journal may have left files of its own: the worktree is
        // checked even when the tips agree, so nothing half-written is ever called "in sync".
        let mut after_interruption = false;
        if let Some((old, new)) = Journal::read(&self.checkout) {
            match recover::resume(self, old, new, report.clone()) {
                Some(done) => {
                    let done = self.catch_up_submodules(done);
                    return self.record_resumed_tip(new, done);
                }
                None => {
                    after_interruption = true;
                    report = Report::new(self.target).with_remote(&self.remote);
                }
            }
        }

        let head = match self.checkout.head() {
            Ok(head) => head,
            Err(err) => return report.fail(Exit::Io, &err),
        };
        let local = match &head {
            Head::Branch { id: Some(id), .. } | Head::Detached(id) => *id,
            Head::Branch { id: None, name } => {
                let git = &self.cmd.git;
                return report.refuse(
                    format!("branch `{name}` has no commits yet"),
                    vec![format!(
                        "{git} fetch origin && {git} checkout -f {}",
                        self.target.branch
                    )],
                );
            }
        };
        report.before = Some(local.to_string());

        let blockers = self.blockers(&head);
        if let Some(Decision::Refuse { reason, resolve }) =
            decide::before_fetch(&self.cmd, &blockers, self.options.force)
        {
            return report.refuse(reason, resolve);
        }

        let fetched = match self.remote.fetch(&self.checkout) {
            Ok(fetched) => fetched,
            Err(err) => return report.fail(fetch_exit(&err), &err),
        };
        let tip = fetched.tip;
        report.remote_tip = Some(tip.to_string());

        let relation = match history::relation(&self.checkout.repo, local, tip) {
            Ok(relation) => relation,
            Err(err) => return report.fail(Exit::Io, &err),
        };
        // Scanning the worktree is the costly part of a no-change tick; only an update needs it.
        let fetched_new = !matches!(relation, Relation::Same);
        let needs_status = self.options.force || after_interruption || fetched_new;
        let modified = match needs_status.then(|| self.checkout.modified_paths()).transpose() {
            Ok(paths) => paths.unwrap_or_default(),
            Err(err) => return report.fail(Exit::Io, &err),
        };
        let force_pushed_from = match relation {
            Relation::Diverged { .. } => fetched
                .previous_tip
                .filter(|prev| *prev != tip && !history::is_ancestor(&self.checkout.repo, *prev, tip)),
            _ => None,
        };
        let observed = Observed {
            local,
            tip,
            relation,
            modified: &modified,
            blockers: &blockers,
            force_pushed_from,
            force: self.options.force,
        };
        let decision = decide::decide(&self.cmd, &observed);
        let moves_to_tip = matches!(decision, Decision::FastForward { .. } | Decision::Force { .. }) && tip != local;
        if moves_to_tip && let Some(refused) = self.gate(&mut report, local, tip) {
            return refused;
        }
        let report = execute(self, report, decision, local, tip, &modified);
        if fetched_new && !self.options.dry_run {
            self.consolidate_packs();
        }
        self.record_tip(tip, report)
    }

    /// The trust gate, before anything moves to `tip`: `None` lets the update go on (with the
    /// signer in the report), `Some` is the run's end, a refusal with the worktree, index and
    /// refs as they were.
    fn gate(&self, report: &mut Report, local: ObjectId, tip: ObjectId) -> Option<Report> {
        let config = self.target.verify.as_ref()?;
        let checked =
            crate::trust::Gate::load(config).and_then(|gate| gate.check_update(&self.checkout.repo, local, tip));
        let err = match checked {
            Ok(signer) => {
                report.signer = Some(signer);
                return None;
            }
            Err(err) => err,
        };
        let done = match &err {
            crate::trust::Error::Untrusted { commit, .. } => {
                let git = &self.cmd.git;
                let signers = config
                    .allowed_signers
                    .as_deref()
                    .map_or_else(|| "FILE".to_owned(), |p| shell_quote(&p.display().to_string()));
                let mut refused = report.clone().refuse(
                    err.to_string(),
                    vec![
                        format!(
                            "{git} -c gpg.ssh.allowedSignersFile={signers} verify-commit {commit}   # see its signature"
                        ),
                        format!(
                            "if the signer is trusted: add its key to {signers}; if not: revert the commit on the remote"
                        ),
                    ],
                );
                refused.unverified_tip = Some(tip.to_string());
                refused
            }
            crate::trust::Error::Keys(_) | crate::trust::Error::Keyring(_) => report.clone().fail(Exit::Usage, &err),
            crate::trust::Error::Object { .. } => report.clone().fail(Exit::Io, &err),
        };
        Some(done)
    }

    /// Merge the packs fetches left behind once there are too many ([`crate::git::pack::consolidate`]).
    /// Housekeeping: a failure is logged and changes nothing about the run's outcome.
    fn consolidate_packs(&self) {
        match crate::git::pack::consolidate(&self.checkout.repo) {
            Ok(Some(done)) => tracing::info!(
                "merged {} packs into one ({} objects), as git gc --auto would",
                done.packs,
                done.objects
            ),
            Ok(None) => {}
            Err(err) => tracing::warn!(
                "could not merge the packs of {}: {err}",
                self.checkout.workdir.display()
            ),
        }
    }

    /// Symlinks where git writes files under `.git`: not even `--force` goes on, nothing is
    /// written through a link, and removing one is the owner's call.
    fn refuse_planted_links(&self, report: &Report) -> Option<Report> {
        let branch_ref = format!("refs/heads/{}", self.target.branch);
        let planted = self
            .checkout
            .planted_links(&[branch_ref.as_str(), self.remote.tracking_ref.as_str()]);
        if planted.is_empty() {
            return None;
        }
        let shown: Vec<String> = planted.iter().map(|p| shell_quote(&p.display().to_string())).collect();
        Some(report.clone().refuse(
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
        ))
    }

    /// Why HEAD cannot be moved as it is: detached, on another branch, or inside a stopped
    /// merge, rebase, am...
    fn blockers(&self, head: &Head) -> Vec<Blocker> {
        let git = &self.cmd.git;
        let branch = &self.target.branch;
        let mut blockers = Vec::new();
        match head {
            Head::Detached(id) => blockers.push(Blocker {
                reason: format!("HEAD is detached at {}, not on branch `{branch}`", short(id)),
                resolve: vec![format!("{git} checkout {branch}")],
            }),
            Head::Branch { name, .. } if name != branch => blockers.push(Blocker {
                reason: format!("the checkout is on branch `{name}`, not `{branch}`"),
                resolve: vec![format!("{git} checkout {branch}")],
            }),
            Head::Branch { .. } => {}
        }
        if let Some(op) = self.checkout.operation_in_progress() {
            blockers.push(Blocker {
                reason: format!("a {op} is in progress"),
                resolve: vec![decide::abort_command(git, op)],
            });
        }
        blockers
    }

    /// After a resumed update, the submodules it moved (with recursion asked for): the
    /// interrupted run never got to them.
    fn catch_up_submodules(&self, report: Report) -> Report {
        if report.outcome != Outcome::Updated {
            return report;
        }
        match super::submodules::prepare(self, &report, None) {
            Ok(moves) if moves.is_empty() => report,
            Ok(moves) => super::submodules::apply(self, report, moves),
            Err(done) => *done,
        }
    }

    /// After a successful sync, move the tracking ref to the fetched tip; refusals and dry runs
    /// leave every ref as it was.
    fn record_tip(&self, tip: ObjectId, report: Report) -> Report {
        if self.options.dry_run || !matches!(report.outcome, Outcome::InSync | Outcome::Updated) {
            return report;
        }
        match self.remote.record_tip(&self.checkout, tip) {
            Ok(()) => report,
            Err(err) if err.is_temporary() => report.fail(Exit::TempFail, &err),
            Err(err) => report.fail(Exit::Io, &err),
        }
    }

    /// The interrupted run would have recorded its tip last; so does its resumption, unless the
    /// tracking ref has moved past it since (a `git fetch` of the user's).
    fn record_resumed_tip(&self, new: ObjectId, report: Report) -> Report {
        let tracked = self.remote.tracked_tip(&self.checkout);
        let passed = tracked.is_some_and(|tracked| {
            !matches!(
                history::relation(&self.checkout.repo, tracked, new),
                Ok(Relation::Same | Relation::Behind { .. })
            )
        });
        if passed { report } else { self.record_tip(new, report) }
    }
}

/// A fetch error's exit code: what a person must fix is a usage error (2), a full disk an I/O
/// one (74), the rest is worth retrying (75).
pub(super) fn fetch_exit(err: &fetch::Error) -> Exit {
    match err {
        fetch::Error::NoSuchBranch { .. }
        | fetch::Error::NoSuchCommit { .. }
        | fetch::Error::NoRemote { .. }
        | fetch::Error::CleartextCredentials { .. }
        | fetch::Error::AuthenticationFailed { .. }
        | fetch::Error::NotFound { .. }
        | fetch::Error::Redirected { .. }
        | fetch::Error::SshRefused { .. } => Exit::Usage,
        err if err.is_local_storage() => Exit::Io,
        _ => Exit::TempFail,
    }
}
