//! An OpenPGP signature of a commit, verified in-process with rpgp as `git verify-commit` has
//! gpg do: a detached signature over the commit without its `gpgsig` header, by a key (or a
//! bound subkey) of the configured keyring. A revoked key is not trusted.

use std::path::{Path, PathBuf};

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::types::KeyDetails;

use super::Signer;

/// The most of a keyring file that is read: thousands of keys.
const MAX_KEYRING_BYTES: u64 = 8 << 20;

/// The trusted OpenPGP keys of `openpgp_keyring`.
#[derive(Debug)]
pub struct Keyring {
    pub path: PathBuf,
    keys: Vec<SignedPublicKey>,
}

/// Why the keyring could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the OpenPGP keyring {path}: {source}", path = path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the OpenPGP keyring {path} is larger than {MAX_KEYRING_BYTES} bytes; is it the right file?", path = path.display())]
    TooLarge { path: PathBuf },
    #[error("the OpenPGP keyring {path} holds no public key that can be read: {message}", path = path.display())]
    NoKeys { path: PathBuf, message: String },
}

impl Keyring {
    /// Read `path` (armored or binary): a regular file, not followed through a link, capped.
    pub fn read(path: &Path) -> Result<Keyring, Error> {
        let read_err = |source| Error::Read {
            path: path.to_owned(),
            source,
        };
        let file = crate::safe_fs::open_regular(path).map_err(read_err)?;
        let bytes = crate::safe_fs::read_capped(file, MAX_KEYRING_BYTES)
            .map_err(read_err)?
            .ok_or_else(|| Error::TooLarge { path: path.to_owned() })?;
        let no_keys = |message: String| Error::NoKeys {
            path: path.to_owned(),
            message,
        };
        let (parsed, _) = SignedPublicKey::from_reader_many(&bytes[..]).map_err(|e| no_keys(e.to_string()))?;
        let mut keys = Vec::new();
        let mut problems = Vec::new();
        for key in parsed {
            match key.and_then(|key| key.verify_bindings().map(|()| key)) {
                Ok(key) => keys.push(key),
                Err(err) => problems.push(err.to_string()),
            }
        }
        for problem in &problems {
            tracing::warn!("{}: a key was skipped: {problem}", path.display());
        }
        if keys.is_empty() {
            return Err(no_keys(problems.join("; ")));
        }
        Ok(Keyring {
            path: path.to_owned(),
            keys,
        })
    }
}

/// Who signed `payload` with the armored OpenPGP `signature`, or why the commit is not trusted
/// (the text after "commit 3f2a9c1 ").
pub(super) fn verify(keyring: &Keyring, signature: &[u8], payload: &[u8]) -> Result<Signer, String> {
    let (sig, _) = DetachedSignature::from_armor_single(signature)
        .map_err(|err| format!("carries an OpenPGP signature that cannot be read: {err}"))?;
    let fingerprints = sig.signature.issuer_fingerprint();
    let key_ids = sig.signature.issuer_key_id();
    let issuer = fingerprints
        .first()
        .map(|fp| format!("{fp:X}"))
        .or_else(|| {
            key_ids
                .first()
                .map(|id| id.as_ref().iter().map(|b| format!("{b:02X}")).collect())
        })
        .unwrap_or_else(|| "an unnamed key".to_owned());
    let path = keyring.path.display();
    for key in &keyring.keys {
        let signer = || Signer {
            principal: key
                .details
                .users
                .first()
                .and_then(|u| u.id.as_str())
                .unwrap_or("")
                .to_owned(),
            fingerprint: format!("{:X}", key.fingerprint()),
        };
        let issued_by = |candidate: &dyn KeyDetails| {
            fingerprints.iter().any(|fp| **fp == candidate.fingerprint())
                || key_ids.iter().any(|id| **id == candidate.legacy_key_id())
        };
        let outcome = if issued_by(key) {
            Some(sig.verify(key, payload))
        } else {
            key.public_subkeys
                .iter()
                .find(|sub| issued_by(&sub.key))
                .map(|sub| sig.verify(&sub.key, payload))
        };
        match outcome {
            None => continue,
            Some(Err(err)) => {
                return Err(format!(
                    "has a signature by OpenPGP key {issuer} that does not match its content ({err}): \
                     the commit was changed after it was signed"
                ));
            }
            Some(Ok(())) if !key.details.revocation_signatures.is_empty() => {
                return Err(format!("is signed by OpenPGP key {issuer}, which {path} holds revoked"));
            }
            Some(Ok(())) => return Ok(signer()),
        }
    }
    Err(format!("is signed by OpenPGP key {issuer} which is not in {path}"))
}
