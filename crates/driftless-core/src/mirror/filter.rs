//! Exclude patterns for mirrors, in rclone's filter syntax (which is close to gitignore's).
//!
//! - `*` matches within one path component, `**` across components, `?` one character,
//!   `[abc]` / `[a-z]` / `[!a]` a character class.
//! - A pattern starting with `/` is anchored at the top of the tree; any other pattern also
//!   matches below any directory (`node_modules/**` excludes `web/node_modules/x`).
//! - `dir/**` (or `dir/`) excludes a whole directory, which is then not even walked.
//!
//! The same strings are passed to `rclone --exclude`, so both engines agree.

/// The excludes every mirror starts with, as in the seed's `rclone copy` cron line.
pub const DEFAULT_EXCLUDES: [&str; 4] = [".git/**", "node_modules/**", ".terraform/**", ".tofu/**"];

/// A set of exclude patterns.
#[derive(Debug, Clone, Default)]
pub struct Excludes {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    /// As given, for rclone.
    text: String,
    /// The glob, without a leading `/`.
    glob: Vec<u8>,
    anchored: bool,
}

impl Excludes {
    /// [`DEFAULT_EXCLUDES`] plus the repo's own `extra` patterns: what every mirror leaves out.
    pub fn with_defaults(extra: &[String]) -> Result<Excludes, String> {
        Excludes::new(DEFAULT_EXCLUDES.iter().copied().chain(extra.iter().map(String::as_str)))
    }

    /// Build from patterns; `dir/` is taken as `dir/**`.
    pub fn new<S: AsRef<str>>(patterns: impl IntoIterator<Item = S>) -> Result<Excludes, String> {
        let mut out = Vec::new();
        for text in patterns {
            let text = text.as_ref().trim();
            if text.is_empty() {
                return Err("an exclude pattern is empty".into());
            }
            let mut glob = text.trim_start_matches('/').as_bytes().to_vec();
            if glob.ends_with(b"/") {
                glob.extend_from_slice(b"**");
            }
            if glob.iter().filter(|&&b| b == b'[').count() != glob.iter().filter(|&&b| b == b']').count() {
                return Err(format!("exclude pattern `{text}` has an unclosed `[`"));
            }
            out.push(Pattern {
                text: text.to_owned(),
                glob,
                anchored: text.starts_with('/'),
            });
        }
        Ok(Excludes { patterns: out })
    }

    /// The patterns as given, for `rclone --exclude`.
    pub fn rclone_patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(|p| p.text.as_str())
    }

    /// Whether the file (or link) at repo-relative `path` is excluded.
    pub fn excludes_file(&self, path: &[u8]) -> bool {
        self.patterns.iter().any(|p| p.matches(path))
    }

    /// Whether everything below the directory at `path` is excluded, so it need not be walked.
    pub fn excludes_dir(&self, path: &[u8]) -> bool {
        let mut probe = path.to_vec();
        probe.extend_from_slice(b"/\x00");
        // A name no real file has: if it matches, every name below the directory does.
        self.patterns
            .iter()
            .any(|p| p.glob.ends_with(b"/**") && p.matches(&probe))
    }
}

impl Pattern {
    fn matches(&self, path: &[u8]) -> bool {
        if self.anchored {
            return glob(&self.glob, path);
        }
        // Unanchored: try the path and every tail that starts after a `/`.
        if glob(&self.glob, path) {
            return true;
        }
        path.iter()
            .enumerate()
            .any(|(i, &b)| b == b'/' && glob(&self.glob, &path[i + 1..]))
    }
}

/// Match `text` against glob `pat` (see the module docs for the syntax). Also used to find
/// compose stack directories.
pub(crate) fn glob(pat: &[u8], text: &[u8]) -> bool {
    match pat.first() {
        None => text.is_empty(),
        Some(b'*') if pat.get(1) == Some(&b'*') => {
            let rest = &pat[2..];
            // `**/` may also match nothing: `a/**/b` matches `a/b`.
            if rest.first() == Some(&b'/') && glob(&rest[1..], text) {
                return true;
            }
            (0..=text.len()).any(|i| glob(rest, &text[i..]))
        }
        Some(b'*') => {
            let rest = &pat[1..];
            for i in 0..=text.len() {
                if glob(rest, &text[i..]) {
                    return true;
                }
                if text.get(i) == Some(&b'/') {
                    break;
                }
            }
            false
        }
        Some(b'?') => text.first().is_some_and(|&c| c != b'/') && glob(&pat[1..], &text[1..]),
        Some(b'[') => {
            let Some(&c) = text.first() else { return false };
            let Some(end) = pat.iter().skip(1).position(|&b| b == b']').map(|p| p + 1) else {
                return false;
            };
            let class = &pat[1..end];
            let (negate, class) = match class.first() {
                Some(b'!') | Some(b'^') => (true, &class[1..]),
                _ => (false, class),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negate && c != b'/' && glob(&pat[end + 1..], &text[1..])
        }
        Some(b'\\') if pat.len() > 1 => text.first() == Some(&pat[1]) && glob(&pat[2..], &text[1..]),
        Some(&p) => text.first() == Some(&p) && glob(&pat[1..], &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(patterns: &[&str]) -> Excludes {
        Excludes::new(patterns).expect("valid patterns")
    }

    #[test]
    fn defaults_exclude_at_any_depth_and_prune_directories() {
        let e = ex(&DEFAULT_EXCLUDES);
        assert!(e.excludes_file(b".git/config"));
        assert!(e.excludes_file(b"web/node_modules/x/y.js"));
        assert!(e.excludes_dir(b"web/node_modules"));
        assert!(e.excludes_dir(b"infra/.terraform"));
        assert!(!e.excludes_file(b"web/node_modules.txt"));
        assert!(!e.excludes_file(b"my.git/x"));
        assert!(!e.excludes_dir(b"web"));
    }

    #[test]
    fn anchored_stars_and_classes() {
        let e = ex(&["/build/**", "*.log", "tmp?/", "[ab]c.txt"]);
        assert!(e.excludes_file(b"build/out"));
        assert!(!e.excludes_file(b"src/build/out"));
        assert!(e.excludes_file(b"a/b/c.log"));
        assert!(!e.excludes_file(b"a.log/keep"));
        assert!(e.excludes_dir(b"x/tmp1"));
        assert!(e.excludes_file(b"bc.txt"));
        assert!(!e.excludes_file(b"cc.txt"));
    }

    #[test]
    fn double_star_in_the_middle_matches_zero_or_more_dirs() {
        let e = ex(&["/a/**/z"]);
        assert!(e.excludes_file(b"a/z"));
        assert!(e.excludes_file(b"a/b/c/z"));
        assert!(!e.excludes_file(b"b/a/z"));
    }

    #[test]
    fn bad_patterns_are_rejected() {
        assert!(Excludes::new(["[abc"]).is_err());
        assert!(Excludes::new([""]).is_err());
    }
}
