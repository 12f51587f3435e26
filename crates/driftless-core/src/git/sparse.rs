//! Sparse checkouts (`git sparse-checkout set ...`): which paths of a new tree stay out of the
//! worktree, so an update keeps the cone and the skip-worktree bits as `git merge --ff-only`
//! does.
//!
//! Cone mode (git's default) lists directories: files at the top level are always in, a
//! directory listed alone is in with everything below it, and a directory that only leads to
//! deeper ones (`/a/` followed by `!/a/*/`) brings its direct files only. Non-cone mode is
//! gitignore-like patterns where the last match wins.

use gix::bstr::{BStr, BString, ByteSlice};

/// The sparse-checkout rules of a checkout; `None` from [`Sparse::of`] when it is not sparse.
#[derive(Debug, Clone)]
pub enum Sparse {
    /// `core.sparseCheckoutCone`: directories whose whole subtree is in, and directories whose
    /// direct files only are in.
    Cone {
        recursive: Vec<BString>,
        parents: Vec<BString>,
    },
    /// Patterns in file order, the last match deciding.
    Patterns(Vec<gix::glob::Pattern>),
}

impl Sparse {
    /// The rules `core.sparseCheckout` and `.git/info/sparse-checkout` give, when both are set.
    pub fn of(repo: &gix::Repository) -> Option<Sparse> {
        let config = repo.config_snapshot();
        if !config.boolean("core.sparseCheckout").unwrap_or(false) {
            return None;
        }
        let file = repo.common_dir().join("info").join("sparse-checkout");
        // A regular file only, read with a bound: the file is the checkout owner's.
        let mut text = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(crate::safe_fs::open_regular(&file).ok()?, 4 << 20),
            &mut text,
        )
        .ok()?;
        let lines = text
            .lines()
            .map(|l| l.trim_end_with(|c| c == '\r'))
            .filter(|l| !l.is_empty() && !l.starts_with(b"#"));
        if config.boolean("core.sparseCheckoutCone").unwrap_or(true) {
            Some(Sparse::cone(lines))
        } else {
            Some(Sparse::Patterns(
                lines.filter_map(gix::glob::Pattern::from_bytes).collect(),
            ))
        }
    }

    fn cone<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Sparse {
        let (mut included, mut negated) = (Vec::<BString>::new(), Vec::<BString>::new());
        for line in lines {
            // `/a/b/` includes a/b; `!/a/*/` keeps a's subdirectories out; `/*` and `!/*/` are
            // the top level, always in.
            if let Some(rest) = line.strip_prefix(b"!/") {
                if let Some(dir) = rest.strip_suffix(b"/*/") {
                    negated.push(unescape(dir));
                }
            } else if let Some(dir) = line.strip_prefix(b"/").and_then(|l| l.strip_suffix(b"/")) {
                included.push(unescape(dir));
            }
        }
        let (parents, recursive) = included.into_iter().partition(|dir| negated.contains(dir));
        Sparse::Cone { recursive, parents }
    }

    /// Whether the file at repo-relative `path` belongs in the worktree.
    pub fn includes(&self, path: &BStr) -> bool {
        match self {
            Sparse::Cone { recursive, parents } => {
                let Some(slash) = path.rfind_byte(b'/') else {
                    return true; // top-level files are always in
                };
                let dir = &path[..slash];
                parents.iter().any(|p| p.as_bstr() == dir)
                    || recursive
                        .iter()
                        .any(|r| dir == r.as_bstr() || (dir.starts_with(r) && dir.get(r.len()) == Some(&b'/')))
            }
            Sparse::Patterns(patterns) => {
                // The path itself or any directory above it may match; the last pattern wins.
                let mut candidates: Vec<(&BStr, bool)> =
                    path.find_iter("/").map(|i| (path[..i].as_bstr(), true)).collect();
                candidates.push((path, false));
                let mut included = false;
                for pattern in patterns {
                    let hit = candidates.iter().any(|(candidate, is_dir)| {
                        let basename = candidate.rfind_byte(b'/').map_or(0, |i| i + 1);
                        pattern.matches_repo_relative_path(
                            candidate,
                            Some(basename),
                            Some(*is_dir),
                            gix::glob::pattern::Case::Sensitive,
                            gix::glob::wildmatch::Mode::NO_MATCH_SLASH_LITERAL,
                        )
                    });
                    if hit {
                        included = !pattern.is_negative();
                    }
                }
                included
            }
        }
    }
}

/// Cone files escape glob characters with `\`.
fn unescape(text: &[u8]) -> BString {
    let mut out = BString::default();
    let mut bytes = text.iter();
    while let Some(&b) = bytes.next() {
        if b == b'\\' {
            if let Some(&next) = bytes.next() {
                out.push(next);
            }
        } else {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Sparse;
    use gix::bstr::ByteSlice;

    #[test]
    fn cone_as_git_sparse_checkout_set_writes_it() {
        // `git sparse-checkout set a/b c`
        let file = "/*\n!/*/\n/a/\n!/a/*/\n/a/b/\n/c/\n";
        let sparse = Sparse::cone(file.as_bytes().lines());
        for (path, want) in [
            ("top.txt", true),
            ("a/direct.txt", true),
            ("a/other/x.txt", false),
            ("a/b/x.txt", true),
            ("a/b/deep/y.txt", true),
            ("c/z.txt", true),
            ("cc/z.txt", false),
            ("d/z.txt", false),
        ] {
            assert_eq!(sparse.includes(path.into()), want, "{path}");
        }
    }
}
