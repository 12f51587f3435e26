//! The decision: a plain function from what a run observed to what it does. No I/O here, so
//! every refusal and its recommended commands can be read (and tested) in one place.

use gix::ObjectId;
use gix::bstr::BString;

use super::report::list_paths;
use crate::git::history::Relation;
use crate::git::short;

/// What the commands a message recommends are built from.
#[derive(Debug, Clone)]
pub(super) struct Commands {
    /// `git -C <checkout>`.
    pub git: String,
    /// The argument that names this repo to `sync-repo`: its config name or its path, quoted.
    pub target: String,
    /// The branch the repo follows.
    pub branch: String,
}

impl Commands {
    /// `sync-repo --force <repo>   # <why>`.
    fn force(&self, why: &str) -> String {
        format!("sync-repo --force {}   # {why}", self.target)
    }
}

/// A reason to stop that needs no network: HEAD is not where a sync can move it.
#[derive(Debug, Clone)]
pub(super) struct Blocker {
    pub reason: String,
    pub resolve: Vec<String>,
}

/// What a run observed once the remote tip is known.
#[derive(Debug)]
pub(super) struct Observed<'a> {
    /// The commit HEAD is at.
    pub local: ObjectId,
    /// The remote branch's tip.
    pub tip: ObjectId,
    pub relation: Relation,
    /// Tracked files that differ from HEAD (only looked at when an update or `--force` needs it).
    pub modified: &'a [BString],
    /// Found before the fetch; with `--force` they are preserved and cleared.
    pub blockers: &'a [Blocker],
    /// The remote's previous tip, when the new tip no longer descends from it.
    pub force_pushed_from: Option<ObjectId>,
    /// `--force` was given.
    pub force: bool,
}

/// What the run does.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// Nothing to do.
    InSync,
    /// Move the branch, index and worktree forward by `commits`.
    FastForward { commits: usize },
    /// Preserve all local work, then take the remote state (`commits` behind it).
    Force { commits: usize },
    /// A person has to decide; nothing is written.
    Refuse { reason: String, resolve: Vec<String> },
}

/// Before the fetch: blockers refuse the run unless `--force` will clear them.
pub(super) fn before_fetch(cmd: &Commands, blockers: &[Blocker], force: bool) -> Option<Decision> {
    if blockers.is_empty() || force {
        return None;
    }
    let reason = blockers
        .iter()
        .map(|b| b.reason.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let mut resolve: Vec<String> = blockers.iter().flat_map(|b| b.resolve.clone()).collect();
    resolve.push(format!(
        "or: sync-repo --force {}  (preserves local work first)",
        cmd.target
    ));
    Some(Decision::Refuse { reason, resolve })
}

/// In sync, fast-forward, force, or refuse.
pub(super) fn decide(cmd: &Commands, seen: &Observed) -> Decision {
    let git = &cmd.git;
    let modified = seen.modified;
    let local_changes = !seen.blockers.is_empty() || !modified.is_empty();
    match seen.relation {
        Relation::Same | Relation::Behind { .. } if seen.force && local_changes => Decision::Force {
            commits: behind(seen.relation),
        },
        Relation::Ahead { .. } | Relation::Diverged { .. } if seen.force => Decision::Force {
            commits: behind(seen.relation),
        },
        Relation::Same if !modified.is_empty() => Decision::Refuse {
            // Only looked at after an interrupted update whose journal no longer applied.
            reason: format!(
                "the checkout is at the remote tip but tracked files differ from it: {}",
                list_paths(modified)
            ),
            resolve: vec![
                format!("{git} status   # see what differs, then either"),
                format!("{git} checkout -- .   # take the committed state, or"),
                cmd.force("preserve the files, then take it"),
            ],
        },
        Relation::Same => Decision::InSync,
        Relation::Behind { .. } if !modified.is_empty() => Decision::Refuse {
            reason: format!("tracked files are modified: {}", list_paths(modified)),
            resolve: vec![
                format!("{git} stash push   # keep the changes aside, or"),
                format!("{git} checkout -- .   # throw them away, or"),
                cmd.force("preserve them under refs/driftless/preserved/ and update"),
            ],
        },
        Relation::Behind { commits } => Decision::FastForward { commits },
        Relation::Ahead { commits } => Decision::Refuse {
            reason: format!("the local branch has {commits} commit(s) that are not on the remote"),
            resolve: vec![
                format!("{git} push origin {}   # publish them, or", cmd.branch),
                cmd.force("preserve them under refs/driftless/preserved/ and take the remote"),
            ],
        },
        Relation::Diverged { ahead, .. } if seen.force_pushed_from.is_some() => Decision::Refuse {
            reason: format!(
                "the remote branch was force-pushed: {} is no longer in the history of {} \
                 ({ahead} commit(s) here are not in the new history)",
                short(&seen.force_pushed_from.unwrap_or(seen.local)),
                short(&seen.tip)
            ),
            resolve: vec![
                format!("{git} branch before-force-push   # keep the old history, then either"),
                format!(
                    "{git} fetch origin {} && {git} reset --keep FETCH_HEAD   # take the new history, or",
                    cmd.branch
                ),
                cmd.force("preserve the old history under refs/driftless/preserved/ and take the new"),
            ],
        },
        Relation::Diverged { ahead, behind } => Decision::Refuse {
            reason: format!("the local branch and the remote have diverged ({ahead} local, {behind} remote commit(s))"),
            resolve: vec![
                format!("{git} branch saved-local   # keep the local history, then either"),
                format!(
                    "{git} pull --rebase origin {}   # replay local commits on the remote, or",
                    cmd.branch
                ),
                cmd.force("preserve local commits under refs/driftless/preserved/ and take the remote"),
            ],
        },
    }
}

/// How many remote commits the checkout lacks.
fn behind(relation: Relation) -> usize {
    match relation {
        Relation::Behind { commits } | Relation::Diverged { behind: commits, .. } => commits,
        Relation::Same | Relation::Ahead { .. } => 0,
    }
}

/// The command that ends a stopped `op` (`git merge --abort`, `git am --abort`...).
pub(super) fn abort_command(git: &str, op: &str) -> String {
    match op {
        "bisect" => format!("{git} bisect reset"),
        "am" => format!("{git} am --abort"),
        op => format!("{git} {op} --abort"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> Commands {
        Commands {
            git: "git -C /srv/hub".to_owned(),
            target: "hub".to_owned(),
            branch: "main".to_owned(),
        }
    }

    fn id(byte: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[byte; 20])
    }

    fn seen<'a>(relation: Relation, modified: &'a [BString], blockers: &'a [Blocker], force: bool) -> Observed<'a> {
        Observed {
            local: id(1),
            tip: id(2),
            relation,
            modified,
            blockers,
            force_pushed_from: None,
            force,
        }
    }

    fn blocker() -> Blocker {
        Blocker {
            reason: "HEAD is detached at 0101010, not on branch `main`".to_owned(),
            resolve: vec!["git -C /srv/hub checkout main".to_owned()],
        }
    }

    #[test]
    fn a_clean_checkout_behind_fast_forwards_and_one_at_the_tip_is_in_sync() {
        let behind = Relation::Behind { commits: 3 };
        assert_eq!(
            decide(&cmd(), &seen(behind, &[], &[], false)),
            Decision::FastForward { commits: 3 }
        );
        assert_eq!(
            decide(&cmd(), &seen(behind, &[], &[], true)),
            Decision::FastForward { commits: 3 }
        );
        assert_eq!(decide(&cmd(), &seen(Relation::Same, &[], &[], false)), Decision::InSync);
        assert_eq!(decide(&cmd(), &seen(Relation::Same, &[], &[], true)), Decision::InSync);
    }

    #[test]
    fn local_work_refuses_with_commands_and_force_preserves_it() {
        let modified = [BString::from("app.env")];
        let behind = Relation::Behind { commits: 2 };
        let Decision::Refuse { reason, resolve } = decide(&cmd(), &seen(behind, &modified, &[], false)) else {
            panic!("modified files refuse");
        };
        assert_eq!(reason, "tracked files are modified: app.env");
        assert_eq!(resolve.len(), 3);
        assert!(resolve[2].starts_with("sync-repo --force hub "), "{resolve:?}");
        assert_eq!(
            decide(&cmd(), &seen(behind, &modified, &[], true)),
            Decision::Force { commits: 2 }
        );
        let diverged = Relation::Diverged { ahead: 1, behind: 4 };
        assert!(matches!(
            decide(&cmd(), &seen(diverged, &[], &[], false)),
            Decision::Refuse { reason, .. } if reason.contains("diverged (1 local, 4 remote")
        ));
        assert_eq!(
            decide(&cmd(), &seen(diverged, &[], &[], true)),
            Decision::Force { commits: 4 }
        );
        let ahead = Relation::Ahead { commits: 1 };
        assert_eq!(
            decide(&cmd(), &seen(ahead, &[], &[], true)),
            Decision::Force { commits: 0 }
        );
    }

    #[test]
    fn blockers_refuse_before_the_fetch_unless_forced_and_force_clears_them() {
        let blockers = [blocker()];
        let Some(Decision::Refuse { reason, resolve }) = before_fetch(&cmd(), &blockers, false) else {
            panic!("a blocker refuses");
        };
        assert!(reason.starts_with("HEAD is detached"), "{reason}");
        assert_eq!(resolve[0], "git -C /srv/hub checkout main");
        assert!(resolve[1].starts_with("or: sync-repo --force hub"), "{resolve:?}");
        assert_eq!(before_fetch(&cmd(), &blockers, true), None);
        assert_eq!(
            decide(&cmd(), &seen(Relation::Same, &[], &blockers, true)),
            Decision::Force { commits: 0 }
        );
    }

    #[test]
    fn a_force_push_is_named_with_the_old_tip() {
        let mut observed = seen(Relation::Diverged { ahead: 2, behind: 1 }, &[], &[], false);
        observed.force_pushed_from = Some(id(3));
        let Decision::Refuse { reason, resolve } = decide(&cmd(), &observed) else {
            panic!("a force push refuses");
        };
        assert!(
            reason.starts_with("the remote branch was force-pushed: 0303030"),
            "{reason}"
        );
        assert!(resolve[1].contains("reset --keep FETCH_HEAD"), "{resolve:?}");
    }
}
