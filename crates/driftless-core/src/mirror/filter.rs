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

/// A set of exclude patterns, compiled once into linear-time matchers (globset's regex
/// engine, no backtracking: `*a*a*a*a*a*a*a*b` on a long name costs what `*b` does).
#[derive(Debug, Clone, Default)]
pub struct Excludes {
    /// As given, for rclone.
    texts: Vec<String>,
    /// Every pattern, for files and links.
    files: globset::GlobSet,
    /// The patterns ending in `/**`, which exclude a whole directory.
    dirs: globset::GlobSet,
}

impl Excludes {
    /// [`DEFAULT_EXCLUDES`] plus the repo's own `extra` patterns: what every mirror leaves out.
    pub fn with_defaults(extra: &[String]) -> Result<Excludes, String> {
        Excludes::new(DEFAULT_EXCLUDES.iter().copied().chain(extra.iter().map(String::as_str)))
    }

    /// Build from patterns; `dir/` is taken as `dir/**`.
    pub fn new<S: AsRef<str>>(patterns: impl IntoIterator<Item = S>) -> Result<Excludes, String> {
        let mut texts = Vec::new();
        let mut files = globset::GlobSetBuilder::new();
        let mut dirs = globset::GlobSetBuilder::new();
        for text in patterns {
            let text = text.as_ref().trim();
            if text.is_empty() {
                return Err("an exclude pattern is empty".into());
            }
            let mut glob = text.trim_start_matches('/').to_owned();
            if glob.ends_with('/') {
                glob.push_str("**");
            }
            if glob.matches('[').count() != glob.matches(']').count() {
                return Err(format!("exclude pattern `{text}` has an unclosed `[`"));
            }
            // Unanchored patterns also match below any directory; `**/` matches zero or more.
            if !text.starts_with('/') {
                glob.insert_str(0, "**/");
            }
            let compiled = globset::GlobBuilder::new(&glob)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|err| format!("exclude pattern `{text}`: {err}"))?;
            if glob.ends_with("/**") {
                dirs.add(compiled.clone());
            }
            files.add(compiled);
            texts.push(text.to_owned());
        }
        let build = |set: globset::GlobSetBuilder| set.build().map_err(|err| format!("exclude patterns: {err}"));
        Ok(Excludes {
            texts,
            files: build(files)?,
            dirs: build(dirs)?,
        })
    }

    /// The patterns as given, for `rclone --exclude`.
    pub fn rclone_patterns(&self) -> impl Iterator<Item = &str> {
        self.texts.iter().map(String::as_str)
    }

    /// Whether the file (or link) at repo-relative `path` is excluded.
    pub fn excludes_file(&self, path: &[u8]) -> bool {
        self.files.is_match(crate::git::checkout::path_from_bytes(path))
    }

    /// Whether everything below the directory at `path` is excluded, so it need not be walked.
    pub fn excludes_dir(&self, path: &[u8]) -> bool {
        let mut probe = path.to_vec();
        probe.extend_from_slice(b"/\x00");
        // A name no real file has: if it matches, every name below the directory does.
        self.dirs.is_match(crate::git::checkout::path_from_bytes(&probe))
    }
}

/// Match `text` against glob `pat` (see the module docs for the syntax): a backtracking
/// matcher for the short, trusted patterns that find compose stack directories.
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
    fn many_stars_match_in_linear_time() {
        let e = ex(&["*a*a*a*a*a*a*a*b"]);
        let name = "a".repeat(4000);
        let started = std::time::Instant::now();
        assert!(!e.excludes_file(name.as_bytes()));
        assert!(e.excludes_file(format!("{name}b").as_bytes()));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn bad_patterns_are_rejected() {
        assert!(Excludes::new(["[abc"]).is_err());
        assert!(Excludes::new([""]).is_err());
    }
}
