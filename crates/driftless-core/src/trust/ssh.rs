//! An SSH signature of a commit, verified as `ssh-keygen -Y verify -n git` does for
//! `git verify-commit`: the signature over the commit without its `gpgsig` header, by a key
//! an allowed_signers line trusts for namespace `git` at the commit's committer time.

use ssh_key::{HashAlg, SshSig};

use super::NAMESPACE;
use super::Signer;
use super::allowed_signers::{AllowedSigners, namespace_allowed};

/// Who signed `payload` with the armored `signature`, or why the commit is not trusted
/// (the text after "commit 3f2a9c1 ").
pub(super) fn verify(
    signers: &AllowedSigners,
    signature: &[u8],
    payload: &[u8],
    committed_at: i64,
) -> Result<Signer, String> {
    let sig =
        SshSig::from_pem(signature).map_err(|err| format!("carries an SSH signature that cannot be read: {err}"))?;
    let key = ssh_key::PublicKey::from(sig.public_key().clone());
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    if sig.namespace() != NAMESPACE {
        return Err(format!(
            "is signed by {fingerprint} for namespace `{}`, not `{NAMESPACE}`",
            sig.namespace()
        ));
    }
    if let Err(err) = key.verify(NAMESPACE, payload, &sig) {
        return Err(format!(
            "has a signature by {fingerprint} that does not match its content ({err}): \
             the commit was changed after it was signed"
        ));
    }
    let path = signers.path.display();
    let mut lines = signers.entries.iter().filter(|e| &e.key == sig.public_key()).peekable();
    if lines.peek().is_none() {
        return Err(format!("is signed by {fingerprint} which is not in {path}"));
    }
    let mut why_not = Vec::new();
    for entry in lines {
        let line = entry.line;
        if let Some(list) = &entry.namespaces
            && !namespace_allowed(list, NAMESPACE)
        {
            why_not.push(format!("{path}:{line} allows it only for namespaces \"{list}\""));
        } else if let Some(after) = entry.valid_after.filter(|after| committed_at < *after) {
            why_not.push(format!(
                "{path}:{line} trusts it only from {} on (committed {})",
                crate::time::rfc3339(after.max(0) as u64),
                crate::time::rfc3339(committed_at.max(0) as u64)
            ));
        } else if let Some(before) = entry.valid_before.filter(|before| committed_at > *before) {
            why_not.push(format!(
                "{path}:{line} trusts it only until {} (committed {})",
                crate::time::rfc3339(before.max(0) as u64),
                crate::time::rfc3339(committed_at.max(0) as u64)
            ));
        } else {
            return Ok(Signer {
                principal: entry.principals.clone(),
                fingerprint,
            });
        }
    }
    Err(format!("is signed by {fingerprint} but {}", why_not.join("; ")))
}
