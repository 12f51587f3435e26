//! How a run ended: the [`Report`] printed and returned by a privilege-separated worker, and
//! the [`Record`] the state directory keeps for the other tools.

use std::path::PathBuf;

use gix::ObjectId;
use gix::bstr::BString;
use serde::{Deserialize, Serialize};

use super::{TOOL, Target};
use crate::exit::Exit;
use crate::git::checkout::Checkout;
use crate::git::fast_forward::{self, ChangeKind, Plan, Side};
use crate::git::fetch::Remote;
use crate::redact::redact;
use crate::run::{RunHead, RunRecord};

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
    /// For a populated submodule under `submodules: recurse`: its worktree was moved to `to`
    /// too (detached HEAD), not only the gitlink.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub checked_out: bool,
}

impl PathChange {
    /// "submodule lib/x moved 1a2b3c4..5d6e7f8" (or added, removed), for a submodule's change.
    fn submodule_note(&self) -> Option<String> {
        let short = |id: &str| id[..id.len().min(7)].to_owned();
        match (self.from.as_deref(), self.to.as_deref()) {
            (Some(from), Some(to)) if self.checked_out => Some(format!(
                "submodule {} updated {}..{} (checked out)",
                self.path,
                short(from),
                short(to)
            )),
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
    #[serde(flatten)]
    pub run: RunHead,
    pub branch: String,
    pub remote: Option<String>,
    pub outcome: Outcome,
    pub before: Option<String>,
    pub after: Option<String>,
    pub remote_tip: Option<String>,
    pub commits: usize,
    pub files: usize,
    pub changes: Vec<PathChange>,
    pub resolve: Vec<String>,
    pub preserved_ref: Option<String>,
    /// Who signed the new tip, when the trust gate (`verify:`) checked it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<crate::trust::Signer>,
    /// The remote tip the trust gate refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unverified_tip: Option<String>,
}

/// What the state directory keeps of the last run, for the other tools.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// `last_success_at` is the last run that ended in sync or updated.
    #[serde(flatten)]
    pub run: RunRecord,
    pub path: PathBuf,
    pub branch: String,
    pub outcome: Outcome,
    pub before: Option<String>,
    pub after: Option<String>,
    pub remote_tip: Option<String>,
    /// The last run that moved the checkout.
    pub last_update_at: Option<u64>,
    /// Who signed the checked-out commit, as the trust gate verified it when the checkout
    /// moved there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<crate::trust::Signer>,
    /// The remote tip the trust gate refused last (the checkout stayed where it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unverified_tip: Option<String>,
}

impl Report {
    pub(super) fn new(target: &Target) -> Report {
        Report {
            run: RunHead::new(TOOL, target.id.label(), target.path.clone()),
            branch: target.branch.clone(),
            remote: target.remote.as_deref().map(redact),
            outcome: Outcome::Failed,
            before: None,
            after: None,
            remote_tip: None,
            commits: 0,
            files: 0,
            changes: Vec::new(),
            resolve: Vec::new(),
            preserved_ref: None,
            signer: None,
            unverified_tip: None,
        }
    }

    pub(super) fn end(mut self, outcome: Outcome, exit: Exit) -> Report {
        self.outcome = outcome;
        self.run.set_exit(exit);
        self
    }

    pub(super) fn refuse(self, reason: String, resolve: Vec<String>) -> Report {
        let mut report = self.end(Outcome::Refused, Exit::Refused);
        report.run.reason = Some(reason);
        report.resolve = resolve;
        report
    }

    pub(super) fn fail(mut self, exit: Exit, error: &(dyn std::error::Error + 'static)) -> Report {
        self.run.fail(exit, error);
        self.outcome = Outcome::Failed;
        self
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
            Outcome::Refused => format!("refused: {}", self.run.reason.as_deref().unwrap_or("")),
            Outcome::Failed => format!("failed: {}", self.run.reason.as_deref().unwrap_or("")),
        };
        let preserved = self
            .preserved_ref
            .as_deref()
            .map(|r| format!("; local work preserved at {r}"))
            .unwrap_or_default();
        let signed = match (&self.signer, self.outcome) {
            (Some(signer), Outcome::Updated | Outcome::WouldUpdate) => {
                format!(", signed by {} ({})", signer.principal, signer.fingerprint)
            }
            _ => String::new(),
        };
        let submodules: String = match self.outcome {
            Outcome::Updated | Outcome::WouldUpdate => self
                .changes
                .iter()
                .filter_map(PathChange::submodule_note)
                .map(|note| format!("; {note}"))
                .collect(),
            _ => String::new(),
        };
        format!("{}: {detail}{signed}{submodules}{preserved}", self.run.repo)
    }

    pub(super) fn with_remote(mut self, remote: &Remote) -> Report {
        self.remote = Some(remote.display());
        self
    }

    /// The end of an update that applied a plan moving the checkout to `tip`: updated, or
    /// failed with 74 (local I/O) or 75 (the next run finishes it from the journal).
    pub(super) fn applied<T>(self, result: Result<T, fast_forward::Error>, tip: ObjectId) -> Report {
        match result {
            Ok(_) => {
                let mut report = self.end(Outcome::Updated, Exit::Ok);
                report.after = Some(tip.to_string());
                report
            }
            Err(err) => self.fail(if err.is_io() { Exit::Io } else { Exit::TempFail }, &err),
        }
    }

    /// The files and paths an update's plan changes.
    pub(super) fn describe(&mut self, plan: &Plan) {
        self.files = plan.files();
        self.changes = plan
            .changes
            .iter()
            .map(|c| {
                let gitlink = |side: Option<Side>| {
                    side.filter(|s| s.mode == gix::index::entry::Mode::COMMIT)
                        .map(|s| s.id.to_string())
                };
                PathChange {
                    path: Checkout::display(c.path.as_ref()),
                    change: c.kind,
                    from: gitlink(c.old),
                    to: gitlink(c.new),
                    checked_out: false,
                }
            })
            .collect();
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
