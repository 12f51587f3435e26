//! ssh-keygen's allowed_signers file (`ssh-keygen(1)`, ALLOWED SIGNERS): which SSH keys may sign
//! for which principals, in which namespaces and during which time.
//!
//! Read as root from a path in the config, so it is opened without following a link, must be a
//! regular file, and is read line by line up to a cap. A line that cannot be understood is
//! skipped with a warning, as ssh-keygen skips it: a skipped line can only trust less.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use ssh_key::public::KeyData;

/// The most of an allowed_signers file that is read: far above any team's keys.
const MAX_FILE_BYTES: u64 = 1 << 20;
/// The longest line read: an RSA-16384 key with options is under 3 KiB.
const MAX_LINE_BYTES: usize = 16 << 10;

/// One usable line: a key, who it stands for, and where and when it may sign.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The principals field as written (`alice@ops`, `alice@ops,ops-bot`).
    pub principals: String,
    pub key: KeyData,
    /// `namespaces="..."`: patterns the signature's namespace must match; unset: any.
    pub namespaces: Option<String>,
    /// `valid-after`, Unix seconds.
    pub valid_after: Option<i64>,
    /// `valid-before`, Unix seconds.
    pub valid_before: Option<i64>,
    /// The line number, for messages.
    pub line: usize,
}

/// The parsed file.
#[derive(Debug, Clone)]
pub struct AllowedSigners {
    pub path: PathBuf,
    pub entries: Vec<Entry>,
}

/// Why the file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the allowed signers file {path}: {source}", path = path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "the allowed signers file {path} is larger than {max} bytes; is it the right file?",
        path = path.display(),
        max = MAX_FILE_BYTES
    )]
    TooLarge { path: PathBuf },
}

impl AllowedSigners {
    /// Read `path`: a regular file, not followed through a link, at most [`MAX_FILE_BYTES`].
    pub fn read(path: &Path) -> Result<AllowedSigners, Error> {
        let read_err = |source| Error::Read {
            path: path.to_owned(),
            source,
        };
        let file = crate::safe_fs::open_regular(path).map_err(read_err)?;
        let mut reader = BufReader::new(file.take(MAX_FILE_BYTES + 1));
        let mut entries = Vec::new();
        let mut buf = Vec::new();
        let mut total = 0u64;
        let mut number = 0;
        loop {
            buf.clear();
            let n = (&mut reader)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(read_err)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > MAX_FILE_BYTES {
                return Err(Error::TooLarge { path: path.to_owned() });
            }
            number += 1;
            if buf.len() > MAX_LINE_BYTES && !buf.ends_with(b"\n") {
                tracing::warn!(
                    "{}:{number}: line longer than {MAX_LINE_BYTES} bytes, skipped",
                    path.display()
                );
                // Drop the rest of the long line.
                let mut rest = Vec::new();
                reader.read_until(b'\n', &mut rest).map_err(read_err)?;
                total += rest.len() as u64;
                if total > MAX_FILE_BYTES {
                    return Err(Error::TooLarge { path: path.to_owned() });
                }
                continue;
            }
            let Ok(text) = std::str::from_utf8(&buf) else {
                tracing::warn!("{}:{number}: not UTF-8, skipped", path.display());
                continue;
            };
            match parse_line(text, number) {
                Ok(Some(entry)) => entries.push(entry),
                Ok(None) => {}
                Err(why) => tracing::warn!("{}:{number}: {why}; line skipped", path.display()),
            }
        }
        Ok(AllowedSigners {
            path: path.to_owned(),
            entries,
        })
    }
}

/// One line: `None` for a blank line or a comment, an error for a line that is skipped.
pub fn parse_line(line: &str, number: usize) -> Result<Option<Entry>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (principals, rest) = take_field(line)?;
    let rest = rest.trim_start();
    // Options come before the key type; a key type has no `=` or `"` and names an algorithm.
    let (options, key_text) = match rest.split_whitespace().next() {
        Some(first) if is_key_type(first) => (None, rest),
        Some(_) => {
            let (options, key_text) = take_field(rest)?;
            (Some(options), key_text.trim_start())
        }
        None => return Err("no key".to_owned()),
    };
    let mut entry = Entry {
        principals: principals.trim_matches('"').to_owned(),
        key: ssh_key::PublicKey::from_openssh(key_text)
            .map_err(|err| format!("not a public key: {err}"))?
            .key_data()
            .clone(),
        namespaces: None,
        valid_after: None,
        valid_before: None,
        line: number,
    };
    for option in options.map(split_options).unwrap_or_default() {
        let (name, value) = match option.split_once('=') {
            Some((name, value)) => (name.to_ascii_lowercase(), Some(value.trim_matches('"').to_owned())),
            None => (option.to_ascii_lowercase(), None),
        };
        match (name.as_str(), value) {
            ("cert-authority", None) => {
                return Err("cert-authority lines are not supported: list the signing keys themselves".to_owned());
            }
            ("namespaces", Some(value)) => entry.namespaces = Some(value),
            ("valid-after", Some(value)) => entry.valid_after = Some(parse_time(&value)?),
            ("valid-before", Some(value)) => entry.valid_before = Some(parse_time(&value)?),
            (name, _) => return Err(format!("unsupported option `{name}`")),
        }
    }
    Ok(Some(entry))
}

fn is_key_type(word: &str) -> bool {
    word.starts_with("ssh-") || word.starts_with("ecdsa-sha2-") || word.starts_with("sk-")
}

/// The first whitespace-separated field, where double quotes keep spaces inside it.
fn take_field(text: &str) -> Result<(&str, &str), String> {
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return Ok((&text[..i], &text[i..])),
            _ => {}
        }
    }
    if quoted {
        Err("unterminated quote".to_owned())
    } else {
        Ok((text, ""))
    }
}

/// Options separated by commas outside double quotes.
fn split_options(text: &str) -> Vec<String> {
    let mut options = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => options.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    options.push(current);
    options.retain(|o| !o.is_empty());
    options
}

/// `YYYYMMDD[HHMM[SS]]Z` as Unix seconds. ssh-keygen reads a time without `Z` in the host's
/// time zone; such a line is skipped rather than read in a zone that may not be the one meant.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let bad = || format!("`{text}` is not a time as YYYYMMDD[HHMM[SS]]Z");
    let Some(digits) = text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) else {
        return Err(format!(
            "`{text}` has no `Z`: write valid-after/valid-before in UTC with a Z suffix (`{text}Z`)"
        ));
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| digits.get(range).and_then(|d| d.parse::<i64>().ok()).unwrap_or(0);
    let (year, month, day) = (num(0..4), num(4..6), num(6..8));
    let (hour, minute, second) = (num(8..10), num(10..12), num(12..14));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whether `namespace` matches a `namespaces="..."` list as OpenSSH's `match_pattern_list`
/// does: comma-separated globs (`*`, `?`), a `!` pattern that matches refuses.
pub fn namespace_allowed(list: &str, namespace: &str) -> bool {
    let mut allowed = false;
    for pattern in list.split(',').map(str::trim) {
        match pattern.strip_prefix('!') {
            Some(negated) if glob(negated.as_bytes(), namespace.as_bytes()) => return false,
            Some(_) => {}
            None if glob(pattern.as_bytes(), namespace.as_bytes()) => allowed = true,
            None => {}
        }
    }
    allowed
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..])),
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB5tptekpjtLD8UwluRzGw9gCjKMEJ8cHog5vzfpt0Iv alice";

    #[test]
    fn reads_principals_options_and_key() {
        let entry = parse_line(
            &format!("alice@ops,bot namespaces=\"git,file\",valid-after=\"20240101Z\",valid-before=\"20250102030405Z\" {KEY}\n"),
            3,
        )
        .expect("valid")
        .expect("an entry");
        assert_eq!(entry.principals, "alice@ops,bot");
        assert_eq!(entry.namespaces.as_deref(), Some("git,file"));
        assert_eq!(entry.valid_after, Some(1_704_067_200));
        assert_eq!(entry.valid_before, Some(1_735_787_045));
        let plain = parse_line(&format!("alice@ops {KEY}"), 1)
            .expect("valid")
            .expect("entry");
        assert!(plain.namespaces.is_none() && plain.valid_before.is_none());
        assert!(parse_line("  # a comment", 2).expect("comment").is_none());
    }

    #[test]
    fn odd_lines_are_errors_that_name_the_fix() {
        let err = parse_line(&format!("a valid-before=\"20240101\" {KEY}"), 1).expect_err("no Z");
        assert!(err.contains("Z suffix"), "{err}");
        let err = parse_line(&format!("a cert-authority {KEY}"), 1).expect_err("CA");
        assert!(err.contains("cert-authority"), "{err}");
        assert!(parse_line("a ssh-ed25519 AAAAnotakey", 1).is_err());
        assert!(parse_line(&format!("a frobnicate {KEY}"), 1).is_err());
    }

    #[test]
    fn namespaces_match_as_openssh_patterns() {
        assert!(namespace_allowed("git", "git"));
        assert!(namespace_allowed("file,g*", "git"));
        assert!(!namespace_allowed("file", "git"));
        assert!(!namespace_allowed("*,!git", "git"));
    }

    #[test]
    fn a_huge_or_special_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("big");
        std::fs::write(&big, "#".repeat((MAX_FILE_BYTES + 10) as usize)).expect("write");
        assert!(matches!(AllowedSigners::read(&big), Err(Error::TooLarge { .. })));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&big, &link).expect("symlink");
        let err = AllowedSigners::read(&link).expect_err("a link is not followed");
        assert!(err.to_string().contains("symlink"), "{err}");
    }
}
