//! The forges' proofs that a request comes from them: an HMAC-SHA256 of the raw body under the
//! shared secret (GitHub's `X-Hub-Signature-256: sha256=HEX`, Gitea's and Forgejo's
//! `X-Gitea-Signature: HEX`), or the secret itself as a token (GitLab's `X-Gitlab-Token`, a
//! generic `Authorization: Bearer`). Every comparison takes the same time whatever bytes differ.

use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Whether `signature_hex` (hex, either case, an optional `sha256=` prefix) is the
/// HMAC-SHA256 of `body` under `secret`.
pub fn hmac_sha256_matches(secret: &[u8], body: &[u8], signature_hex: &str) -> bool {
    let hex = signature_hex.strip_prefix("sha256=").unwrap_or(signature_hex);
    let Some(signature) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&signature).is_ok()
}

/// Whether `token` is `secret`, compared in constant time (only the length can show).
pub fn token_matches(secret: &[u8], token: &[u8]) -> bool {
    !secret.is_empty() && secret.ct_eq(token).into()
}

/// Bytes from hex; `None` for anything else than an even number of hex digits.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HMAC-SHA256 of `body` under `secret`, in hex, computed by `openssl dgst`: the oracle.
    fn openssl_hmac(secret: &str, body: &[u8]) -> Option<String> {
        use std::io::Write;
        let mut child = std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-hmac", secret, "-r"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        child.stdin.take()?.write_all(body).ok()?;
        let out = child.wait_with_output().ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        Some(text.split_whitespace().next()?.to_owned())
    }

    #[test]
    fn signatures_agree_with_openssl() {
        let body = br#"{"ref":"refs/heads/main","repository":{"clone_url":"https://forge.test/o/r.git"}}"#;
        // openssl is in the Makefile's APT_PACKAGES.
        let expected = openssl_hmac("It's a Secret to Everybody", body).expect("openssl dgst (package openssl)");
        let secret = b"It's a Secret to Everybody";
        assert!(hmac_sha256_matches(secret, body, &expected));
        assert!(hmac_sha256_matches(secret, body, &format!("sha256={expected}")));
        assert!(hmac_sha256_matches(secret, body, &expected.to_uppercase()));
        // One flipped digit, another secret, another body, a truncated or non-hex value.
        let mut flipped = expected.clone().into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        assert!(!hmac_sha256_matches(
            secret,
            body,
            &String::from_utf8(flipped).expect("hex")
        ));
        assert!(!hmac_sha256_matches(b"another secret", body, &expected));
        assert!(!hmac_sha256_matches(secret, b"{}", &expected));
        assert!(!hmac_sha256_matches(secret, body, &expected[..62]));
        assert!(!hmac_sha256_matches(
            secret,
            body,
            &expected.replace(|c: char| c.is_ascii_digit(), "g")
        ));
        assert!(!hmac_sha256_matches(secret, body, ""));
    }

    #[test]
    fn github_documented_vector() {
        // GitHub's docs ("Validating webhook deliveries") give this secret, payload and
        // signature; `openssl dgst -sha256 -hmac` computes the same.
        let expected = openssl_hmac("It's a Secret to Everybody", b"Hello, World!").expect("openssl dgst");
        assert_eq!(
            expected,
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        assert!(hmac_sha256_matches(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            &format!("sha256={expected}")
        ));
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(token_matches(b"s3cret", b"s3cret"));
        assert!(!token_matches(b"s3cret", b"s3cre"));
        assert!(!token_matches(b"s3cret", b"s3cret!"));
        assert!(!token_matches(b"s3cret", b"S3cret"));
        assert!(!token_matches(b"", b""), "an empty secret accepts nothing");
    }
}
