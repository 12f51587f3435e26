//! The trust gate: whether a commit is signed by a key this host trusts, checked in-process
//! (no `git`, `ssh-keygen` or `gpg` is run) before sync-repo moves a checkout to it.
//!
//! [`Gate::load`] reads the trusted keys a `verify:` names ([`allowed_signers`]); [`Gate::check`]
//! verifies one commit ([`ssh`]: the `gpgsig` header's `SSH SIGNATURE` over the rest of the
//! commit, as `git verify-commit` has `ssh-keygen -Y verify` do; [`openpgp`]: a `PGP
//! SIGNATURE` against the keys of the [`openpgp::Keyring`], as gpg would) and [`Gate::check_update`] the
//! commits an update brings, as the configured mode asks. Every "no" is an
//! [`Error::Untrusted`] naming the commit and the reason.

pub mod allowed_signers;
pub mod openpgp;
mod ssh;

use gix::ObjectId;
use serde::{Deserialize, Serialize};

use crate::config::{VerifyConfig, VerifyMode};
use crate::git::short;
use allowed_signers::AllowedSigners;

/// The namespace git signs commits in (`ssh-keygen -Y sign -n git`).
pub const NAMESPACE: &str = "git";

/// Who signed a verified commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signer {
    /// The principals of the allowed_signers line that trusts the key (`alice@ops`).
    pub principal: String,
    /// The key's fingerprint as ssh-keygen shows it (`SHA256:...`).
    pub fingerprint: String,
}

/// Why a commit is not trusted, or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The trusted keys could not be read: a configuration problem.
    #[error(transparent)]
    Keys(#[from] allowed_signers::Error),
    /// The OpenPGP keyring could not be read: a configuration problem.
    #[error(transparent)]
    Keyring(#[from] openpgp::Error),
    /// The commit is not signed by a trusted key: `commit 3f2a9c1 is not signed`.
    #[error("commit {} {why}", short(commit))]
    Untrusted { commit: ObjectId, why: String },
    /// The commit or the history could not be read from the repository.
    #[error("cannot read commit {} to verify its signature: {message}", short(commit))]
    Object { commit: ObjectId, message: String },
}

/// The trusted keys of one `verify:`, loaded once per run.
#[derive(Debug)]
pub struct Gate {
    mode: VerifyMode,
    ssh: Option<AllowedSigners>,
    openpgp: Option<openpgp::Keyring>,
}

impl Gate {
    /// Read the keys `config` names.
    pub fn load(config: &VerifyConfig) -> Result<Gate, Error> {
        let ssh = config
            .allowed_signers
            .as_deref()
            .map(AllowedSigners::read)
            .transpose()?;
        let openpgp = config
            .openpgp_keyring
            .as_deref()
            .map(openpgp::Keyring::read)
            .transpose()?;
        Ok(Gate {
            mode: config.mode,
            ssh,
            openpgp,
        })
    }

    /// Verify commit `id`: who signed it, or why it is not trusted.
    pub fn check(&self, repo: &gix::Repository, id: ObjectId) -> Result<Signer, Error> {
        let object_err = |message: String| Error::Object { commit: id, message };
        let commit = repo.find_commit(id).map_err(|e| object_err(e.to_string()))?;
        let data = &commit.data;
        let untrusted = |why: String| Error::Untrusted { commit: id, why };
        let signature =
            gix::objs::CommitRefIter::signature(data, repo.object_hash()).map_err(|e| object_err(e.to_string()))?;
        let Some((armor, signed)) = signature else {
            return Err(untrusted("is not signed".to_owned()));
        };
        let committed_at = gix::objs::CommitRef::from_bytes(data, repo.object_hash())
            .and_then(|c| c.committer())
            .map(|c| c.seconds())
            .map_err(|e| object_err(e.to_string()))?;
        let armor: &[u8] = armor.as_ref();
        if armor.starts_with(b"-----BEGIN SSH SIGNATURE-----") {
            let Some(signers) = &self.ssh else {
                return Err(untrusted(
                    "is signed with an SSH key, but verify: names no allowed_signers file".to_owned(),
                ));
            };
            ssh::verify(signers, armor, &signed.to_bstring(), committed_at).map_err(untrusted)
        } else if armor.starts_with(b"-----BEGIN PGP SIGNATURE-----") {
            let Some(keyring) = &self.openpgp else {
                return Err(untrusted(
                    "is signed with OpenPGP, but verify: names no openpgp_keyring".to_owned(),
                ));
            };
            openpgp::verify(keyring, armor, &signed.to_bstring()).map_err(untrusted)
        } else {
            Err(untrusted(
                "carries a signature of a kind that is not verified (X.509?)".to_owned(),
            ))
        }
    }

    /// Verify an update from `old` to `new` as the mode asks: the signer of `new`, or the
    /// first commit that is not trusted (oldest first under `every-commit`).
    pub fn check_update(&self, repo: &gix::Repository, old: ObjectId, new: ObjectId) -> Result<Signer, Error> {
        if self.mode == VerifyMode::EveryCommit {
            let object_err = |message: String| Error::Object { commit: new, message };
            let walk = repo
                .rev_walk([new])
                .with_hidden([old])
                .all()
                .map_err(|e| object_err(e.to_string()))?;
            let mut commits = Vec::new();
            for info in walk {
                commits.push(info.map_err(|e| object_err(e.to_string()))?.id);
            }
            // Oldest first, so the message names the first bad commit of the range.
            for id in commits.iter().rev().filter(|id| **id != new) {
                self.check(repo, *id)?;
            }
        }
        self.check(repo, new)
    }
}
