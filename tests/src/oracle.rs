//! The git CLI as oracle: is a checkout exactly what a fresh `git clone` of a commit gives
//! (paths, bytes, exec bits, symlinks, index, HEAD, fsck), and did a run leave files it had no
//! reason to touch alone (mtimes, index bytes, refs)?

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::env::{git, git_output};

/// One path in a worktree, as the oracle compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A regular file: its bytes and whether the owner exec bit is set.
    File { bytes: Vec<u8>, exec: bool },
    /// A symlink and its target.
    Symlink(PathBuf),
    /// A directory.
    Dir,
    /// A FIFO, socket or device: recorded by type, never opened (a FIFO would block the test).
    Special(&'static str),
}

impl Entry {
    fn describe(&self) -> String {
        match self {
            Entry::File { bytes, exec } => {
                format!(
                    "file ({} bytes{})",
                    bytes.len(),
                    if *exec { ", executable" } else { "" }
                )
            }
            Entry::Symlink(target) => format!("symlink -> {}", target.display()),
            Entry::Dir => "directory".to_owned(),
            Entry::Special(kind) => (*kind).to_owned(),
        }
    }
}

/// Every path below `dir` except the top-level `.git`, keyed by `/`-separated relative path.
pub fn worktree(dir: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut |rel, path, meta| {
        let entry = if meta.file_type().is_symlink() {
            Entry::Symlink(std::fs::read_link(path).expect("read symlink"))
        } else if meta.is_dir() {
            Entry::Dir
        } else if !meta.is_file() {
            use std::os::unix::fs::FileTypeExt;
            let t = meta.file_type();
            Entry::Special(if t.is_fifo() {
                "FIFO"
            } else if t.is_socket() {
                "socket"
            } else {
                "device"
            })
        } else {
            Entry::File {
                bytes: std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
                exec: meta.permissions().mode() & 0o100 != 0,
            }
        };
        out.insert(rel.to_owned(), entry);
    });
    out
}

/// Call `f(rel, path, symlink_metadata)` for every path below `root` except the top-level `.git`.
fn walk(root: &Path, dir: &Path, f: &mut dyn FnMut(&str, &Path, &std::fs::Metadata)) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read dir {}: {e}", dir.display()))
        .map(|e| e.expect("read dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let rel = path
            .strip_prefix(root)
            .expect("below root")
            .to_string_lossy()
            .into_owned();
        if rel == ".git" {
            continue;
        }
        let meta = path
            .symlink_metadata()
            .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
        f(&rel, &path, &meta);
        if meta.is_dir() {
            walk(root, &path, f);
        }
    }
}

/// Panic with a readable list of differences when two worktrees differ.
pub fn assert_same_worktree(actual: &BTreeMap<String, Entry>, expected: &BTreeMap<String, Entry>, what: &str) {
    let mut problems = Vec::new();
    for (path, want) in expected {
        match actual.get(path) {
            None => problems.push(format!("missing: {path} (want {})", want.describe())),
            Some(have) if have != want => {
                problems.push(format!(
                    "differs: {path}: have {}, want {}",
                    have.describe(),
                    want.describe()
                ));
            }
            Some(_) => {}
        }
    }
    for (path, have) in actual {
        if !expected.contains_key(path) {
            problems.push(format!("extra: {path} ({})", have.describe()));
        }
    }
    if !problems.is_empty() {
        let shown: Vec<_> = problems.iter().take(40).cloned().collect();
        panic!("{what}: {} difference(s):\n  {}", problems.len(), shown.join("\n  "));
    }
}

/// The full check after a sync: `checkout` is on `main` at `sha`, `git status` (including
/// ignored files) is empty, `git fsck` is clean, and worktree and index equal a fresh clone of
/// `sha` from `source` (a path or URL git can clone).
pub fn assert_synced(checkout: &Path, source: &str, sha: &str) {
    let head = git(checkout, &["rev-parse", "HEAD"]);
    assert_eq!(head.trim(), sha, "HEAD of {} is not the remote tip", checkout.display());
    let branch = git(checkout, &["symbolic-ref", "-q", "HEAD"]);
    assert_eq!(branch.trim(), "refs/heads/main", "HEAD is not on main");
    assert_status_clean(checkout);
    assert_fsck_clean(checkout);

    let fresh = crate::env::temp_dir("driftless-oracle.");
    let fresh_path = fresh.path().join("clone");
    git(
        fresh.path(),
        &[
            "clone",
            "-q",
            "--no-checkout",
            source,
            &fresh_path.display().to_string(),
        ],
    );
    git(&fresh_path, &["checkout", "-q", "--detach", sha]);
    assert_same_worktree(&worktree(checkout), &worktree(&fresh_path), "worktree vs fresh clone");
    let index = git(checkout, &["ls-files", "-s"]);
    let want_index = git(&fresh_path, &["ls-files", "-s"]);
    assert!(
        index == want_index,
        "index differs from a fresh clone's:\n--- have\n{index}\n--- want\n{want_index}"
    );
}

/// `git status --porcelain --untracked-files=all --ignored` prints nothing.
pub fn assert_status_clean(checkout: &Path) {
    let status = git(
        checkout,
        &["status", "--porcelain", "--untracked-files=all", "--ignored"],
    );
    assert!(
        status.is_empty(),
        "git status in {} is not clean:\n{status}",
        checkout.display()
    );
}

/// `git fsck --full --strict` exits 0 and reports no errors (dangling objects are fine).
pub fn assert_fsck_clean(checkout: &Path) {
    let out = git_output(
        checkout,
        &["fsck", "--full", "--strict", "--no-dangling", "--no-progress"],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.trim().is_empty(),
        "git fsck in {}: {}\n{text}",
        checkout.display(),
        out.status
    );
}

/// Paths changed between two commits (`git diff --name-only --no-renames`), as seen in `repo`.
pub fn changed_paths(repo: &Path, from: &str, to: &str) -> Vec<String> {
    git(
        repo,
        &[
            "-c",
            "core.quotepath=false",
            "diff",
            "--name-only",
            "--no-renames",
            "-z",
            from,
            to,
        ],
    )
    .split('\0')
    .filter(|p| !p.is_empty())
    .map(str::to_owned)
    .collect()
}

/// The mtimes of every file and symlink in a worktree (not `.git`), to show a run left them alone.
#[derive(Debug, Clone)]
pub struct MtimeSnapshot {
    dir: PathBuf,
    mtimes: BTreeMap<String, SystemTime>,
}

impl MtimeSnapshot {
    /// Record the mtimes below `dir` now.
    pub fn take(dir: &Path) -> MtimeSnapshot {
        MtimeSnapshot {
            dir: dir.to_owned(),
            mtimes: mtimes(dir),
        }
    }

    /// How many paths were recorded.
    pub fn len(&self) -> usize {
        self.mtimes.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.mtimes.is_empty()
    }

    /// Every recorded path not in `changed` (and not below or above one of them) still exists
    /// with the same mtime. Returns how many paths were checked.
    pub fn assert_kept_except(&self, changed: &[String]) -> usize {
        let now = mtimes(&self.dir);
        let touched = |path: &str| {
            changed.iter().any(|c| {
                c == path
                    || path.strip_prefix(c.as_str()).is_some_and(|r| r.starts_with('/'))
                    || c.strip_prefix(path).is_some_and(|r| r.starts_with('/'))
            })
        };
        let mut problems = Vec::new();
        let mut checked = 0;
        for (path, before) in &self.mtimes {
            if touched(path) {
                continue;
            }
            checked += 1;
            match now.get(path) {
                None => problems.push(format!("{path}: removed")),
                Some(after) if after != before => problems.push(format!("{path}: mtime {before:?} -> {after:?}")),
                Some(_) => {}
            }
        }
        if !problems.is_empty() {
            let shown: Vec<_> = problems.iter().take(40).cloned().collect();
            panic!(
                "{} untouched path(s) in {} were rewritten:\n  {}",
                problems.len(),
                self.dir.display(),
                shown.join("\n  ")
            );
        }
        checked
    }

    /// Nothing was touched at all.
    pub fn assert_all_kept(&self) -> usize {
        self.assert_kept_except(&[])
    }
}

fn mtimes(dir: &Path) -> BTreeMap<String, SystemTime> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut |rel, _, meta| {
        if !meta.is_dir() {
            out.insert(rel.to_owned(), meta.modified().expect("mtime"));
        }
    });
    out
}

/// Everything a refused run must leave as it was: worktree (bytes, modes, symlinks, mtimes),
/// the index file's bytes, every ref, `HEAD`, and git's in-progress-operation files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSnapshot {
    worktree: BTreeMap<String, (Entry, Option<SystemTime>)>,
    index: Option<Vec<u8>>,
    head_file: String,
    refs: String,
    git_state: BTreeMap<String, Vec<u8>>,
}

/// Files in `.git` that record an operation in progress or a lock (ref locks are found apart).
const GIT_STATE_FILES: &[&str] = &[
    "MERGE_HEAD",
    "CHERRY_PICK_HEAD",
    "REVERT_HEAD",
    "ORIG_HEAD",
    "FETCH_HEAD",
    "index.lock",
    "HEAD.lock",
    "packed-refs.lock",
    "rebase-merge",
    "rebase-apply",
    // driftless's own: an interrupted update's journal, and the note of a run's locks.
    "driftless-sync.json",
    "driftless-locks",
];

impl RepoSnapshot {
    /// Record `checkout` now.
    pub fn take(checkout: &Path) -> RepoSnapshot {
        let git_dir = checkout.join(".git");
        let mut wt = BTreeMap::new();
        let files = worktree(checkout);
        let times = mtimes(checkout);
        for (path, entry) in files {
            let mtime = times.get(&path).copied();
            wt.insert(path, (entry, mtime));
        }
        let mut git_state = BTreeMap::new();
        for name in GIT_STATE_FILES {
            let path = git_dir.join(name);
            if path.is_file() {
                git_state.insert((*name).to_owned(), std::fs::read(&path).expect("read git state file"));
            } else if path.is_dir() {
                git_state.insert((*name).to_owned(), b"<dir>".to_vec());
            }
        }
        // Ref locks, which for-each-ref does not show.
        let mut dirs = vec![git_dir.join("refs")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "lock") {
                    let name = path.strip_prefix(&git_dir).unwrap_or(&path).display().to_string();
                    git_state.insert(name, std::fs::read(&path).expect("read ref lock"));
                }
            }
        }
        RepoSnapshot {
            worktree: wt,
            index: std::fs::read(git_dir.join("index")).ok(),
            head_file: std::fs::read_to_string(git_dir.join("HEAD")).expect("read .git/HEAD"),
            refs: git(checkout, &["for-each-ref", "--format=%(refname) %(objectname)"]),
            git_state,
        }
    }

    /// Panic, listing what changed, unless `checkout` still matches this snapshot, every ref
    /// included. `FETCH_HEAD` is ignored: a run that fetched may record that, as git does.
    pub fn assert_unchanged(&self, checkout: &Path) {
        self.compare(checkout);
    }

    fn compare(&self, checkout: &Path) {
        let now = RepoSnapshot::take(checkout);
        let mut problems = Vec::new();
        for (path, (entry, mtime)) in &self.worktree {
            match now.worktree.get(path) {
                None => problems.push(format!("worktree: {path} was removed")),
                Some((e, _)) if e != entry => {
                    problems.push(format!(
                        "worktree: {path}: was {}, now {}",
                        entry.describe(),
                        e.describe()
                    ));
                }
                Some((_, m)) if m != mtime => problems.push(format!("worktree: {path}: mtime changed")),
                Some(_) => {}
            }
        }
        for path in now.worktree.keys() {
            if !self.worktree.contains_key(path) {
                problems.push(format!("worktree: {path} appeared"));
            }
        }
        if self.index != now.index {
            problems.push("the index file's bytes changed".to_owned());
        }
        if self.head_file != now.head_file {
            problems.push(format!("HEAD changed: {:?} -> {:?}", self.head_file, now.head_file));
        }
        let (refs_before, refs_after) = (&self.refs, &now.refs);
        if refs_before != refs_after {
            problems.push(format!(
                "refs changed:\n--- before\n{refs_before}--- after\n{refs_after}"
            ));
        }
        let strip = |m: &BTreeMap<String, Vec<u8>>| {
            m.iter()
                .filter(|(k, _)| k.as_str() != "FETCH_HEAD")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        if strip(&self.git_state) != strip(&now.git_state) {
            problems.push(format!(
                "git operation/lock files changed: {:?} -> {:?}",
                self.git_state.keys().collect::<Vec<_>>(),
                now.git_state.keys().collect::<Vec<_>>()
            ));
        }
        assert!(
            problems.is_empty(),
            "{} changed:\n  {}",
            checkout.display(),
            problems.join("\n  ")
        );
    }
}

/// A copy of a checkout as it is now (its config, index and index flags included) for git itself
/// to move: the oracle for what `git pull --ff-only` writes on this host with this config, where
/// a fresh clone would not have the checkout's settings.
pub struct Twin {
    /// The copy's worktree.
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Twin {
    /// Copy `checkout` with `cp -a`.
    pub fn of(checkout: &Path) -> Twin {
        let dir = crate::env::temp_dir("driftless-twin.");
        let path = dir.path().join("twin");
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(checkout)
            .arg(&path)
            .status()
            .expect("run cp -a");
        assert!(status.success(), "cp -a {}", checkout.display());
        Twin { path, _dir: dir }
    }

    /// `git pull --ff-only` in the copy.
    pub fn pull(&self) {
        git(&self.path, &["pull", "-q", "--ff-only"]);
    }

    /// `checkout` holds what git wrote in the twin: the same HEAD, worktree bytes and modes,
    /// index entries with their flags (`git ls-files -s -v`), and the same `git status`.
    pub fn assert_same(&self, checkout: &Path) {
        let head = |dir: &Path| git(dir, &["rev-parse", "HEAD"]);
        assert_eq!(head(checkout), head(&self.path), "HEAD differs from git's");
        assert_same_worktree(&worktree(checkout), &worktree(&self.path), "worktree vs git pull's");
        let index = |dir: &Path| git(dir, &["ls-files", "-s", "-v"]);
        let (have, want) = (index(checkout), index(&self.path));
        assert!(
            have == want,
            "index differs from git pull's:\n--- have\n{have}\n--- want\n{want}"
        );
        let status = |dir: &Path| git(dir, &["status", "--porcelain", "--untracked-files=all"]);
        assert_eq!(
            status(checkout),
            status(&self.path),
            "git status differs from git pull's"
        );
    }
}
