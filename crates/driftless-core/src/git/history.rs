//! How the local and remote tips relate: the decision between fast-forward and refusal.

use super::ObjectId;

/// The local tip compared with the remote's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// Same commit.
    Same,
    /// The remote has `commits` more; a fast-forward applies them.
    Behind { commits: usize },
    /// The local branch has `commits` the remote lacks.
    Ahead { commits: usize },
    /// Both have commits the other lacks (or no common history).
    Diverged { ahead: usize, behind: usize },
}

/// Compare `local` with `remote`.
pub fn relation(repo: &gix::Repository, local: ObjectId, remote: ObjectId) -> Result<Relation, gix::Error> {
    if local == remote {
        return Ok(Relation::Same);
    }
    let base = repo.merge_base(local, remote).ok().flatten().map(|id| id.detach());
    Ok(match base {
        Some(base) if base == local => Relation::Behind {
            commits: count_between(repo, remote, local)?,
        },
        Some(base) if base == remote => Relation::Ahead {
            commits: count_between(repo, local, remote)?,
        },
        _ => Relation::Diverged {
            ahead: count_between(repo, local, remote)?,
            behind: count_between(repo, remote, local)?,
        },
    })
}

/// Whether `ancestor` is reachable from `descendant` (or equal to it).
pub fn is_ancestor(repo: &gix::Repository, ancestor: ObjectId, descendant: ObjectId) -> bool {
    ancestor == descendant
        || repo
            .merge_base(ancestor, descendant)
            .ok()
            .flatten()
            .is_some_and(|base| base.detach() == ancestor)
}

/// Commits reachable from `tip` but not from `hidden`.
fn count_between(repo: &gix::Repository, tip: ObjectId, hidden: ObjectId) -> Result<usize, gix::Error> {
    let mut count = 0;
    for info in repo.rev_walk([tip]).with_hidden([hidden]).all()? {
        info?;
        count += 1;
    }
    Ok(count)
}
