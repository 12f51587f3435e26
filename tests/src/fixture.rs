//! Git fixtures built with the git CLI: an origin (a bare repo plus a work clone to author
//! commits in), checkouts cloned from it, and helpers that shape files in any worktree.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::env::{TestEnv, git};

/// An upstream repo: `bare` is what sync-repo fetches from, `work` is where commits are made.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Short name, used for paths.
    pub name: String,
    /// The bare repo (`<root>/remotes/<name>.git`).
    pub bare: PathBuf,
    /// The authoring clone (`<root>/authoring/<name>`).
    pub work: PathBuf,
}

impl Origin {
    /// A new origin with one commit (`README.md`) on `main`.
    pub fn new(env: &TestEnv, name: &str) -> Origin {
        let origin = Origin::empty(env, name);
        origin.write("README.md", format!("# {name}\n"));
        origin.commit("initial commit");
        origin
    }

    /// A new origin with no commits yet; the first [`Origin::commit`] creates `main`.
    pub fn empty(env: &TestEnv, name: &str) -> Origin {
        let bare = env.path(format!("remotes/{name}.git"));
        let work = env.path(format!("authoring/{name}"));
        std::fs::create_dir_all(&bare).expect("create bare repo dir");
        std::fs::create_dir_all(&work).expect("create authoring dir");
        git(&bare, &["init", "-q", "--bare", "-b", "main"]);
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["remote", "add", "origin", &bare.display().to_string()]);
        Origin {
            name: name.to_owned(),
            bare,
            work,
        }
    }

    /// The bare repo's path as a string (what `git clone` and `--remote` accept).
    pub fn path_url(&self) -> String {
        self.bare.display().to_string()
    }

    /// `file://` URL of the bare repo.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// Write a file in the authoring clone (parents created).
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> &Origin {
        write_file(&self.work, rel, content);
        self
    }

    /// Write an executable file in the authoring clone.
    pub fn write_exec(&self, rel: &str, content: impl AsRef<[u8]>) -> &Origin {
        write_exec(&self.work, rel, content);
        self
    }

    /// Create (or replace) a symlink `rel -> target` in the authoring clone.
    pub fn symlink(&self, rel: &str, target: &str) -> &Origin {
        symlink(&self.work, rel, target);
        self
    }

    /// Delete a file, symlink or directory tree in the authoring clone.
    pub fn remove(&self, rel: &str) -> &Origin {
        remove(&self.work, rel);
        self
    }

    /// Rename a path in the authoring clone.
    pub fn rename(&self, from: &str, to: &str) -> &Origin {
        rename(&self.work, from, to);
        self
    }

    /// Set or clear the exec bits of a file in the authoring clone.
    pub fn set_exec(&self, rel: &str, exec: bool) -> &Origin {
        set_exec(&self.work, rel, exec);
        self
    }

    /// Commit everything in the authoring clone (`git add -A`) and push it to `main` of the bare repo.
    /// Returns the new commit's sha.
    pub fn commit(&self, message: &str) -> String {
        let sha = self.commit_unpushed(message);
        self.push();
        sha
    }

    /// Commit everything in the authoring clone without pushing. Returns the sha.
    pub fn commit_unpushed(&self, message: &str) -> String {
        git(&self.work, &["add", "-A"]);
        git(
            &self.work,
            &["commit", "-q", "--allow-empty", "--no-verify", "-m", message],
        );
        self.work_head()
    }

    /// Make `count` commits, each changing `commits/<i>.txt`. Returns the last sha.
    pub fn commit_many(&self, count: usize) -> String {
        for i in 0..count {
            self.write(&format!("commits/{}.txt", i % 7), format!("commit {i}\n"));
            self.commit_unpushed(&format!("commit {i}"));
        }
        self.push();
        self.work_head()
    }

    /// Push the authoring clone's HEAD to `main`.
    pub fn push(&self) {
        git(&self.work, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    }

    /// Force-push the authoring clone's HEAD to `main`.
    pub fn force_push(&self) {
        git(&self.work, &["push", "-q", "--force", "origin", "HEAD:refs/heads/main"]);
    }

    /// Rewrite history: drop the last `n` commits, commit what is in the worktree then, and force-push.
    /// Returns the new tip.
    pub fn rewrite_last(&self, n: usize, message: &str) -> String {
        git(&self.work, &["reset", "-q", "--soft", &format!("HEAD~{n}")]);
        let sha = self.commit_unpushed(message);
        self.force_push();
        sha
    }

    /// The authoring clone's HEAD.
    pub fn work_head(&self) -> String {
        git(&self.work, &["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// `main` in the bare repo: the tip sync-repo must reach.
    pub fn tip(&self) -> String {
        git(&self.bare, &["rev-parse", "refs/heads/main"]).trim().to_owned()
    }

    /// Clone the bare repo to `<root>/checkouts/<name>` (with `origin` pointing at it).
    pub fn clone_to(&self, env: &TestEnv, name: &str) -> PathBuf {
        let dest = env.path(format!("checkouts/{name}"));
        std::fs::create_dir_all(dest.parent().expect("checkouts dir")).expect("create checkouts dir");
        env.git(
            &env.root(),
            &["clone", "-q", &self.path_url(), &dest.display().to_string()],
        );
        dest
    }

    /// [`Origin::clone_to`] with the origin's name.
    pub fn checkout(&self, env: &TestEnv) -> PathBuf {
        self.clone_to(env, &self.name)
    }
}

/// Write `content` to `dir/rel`, creating parent dirs and replacing a symlink if one is there.
pub fn write_file(dir: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("file has a parent")).expect("create parent dirs");
    if path.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(&path).expect("remove symlink before writing");
    }
    std::fs::write(&path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Write an executable (0755) file.
pub fn write_exec(dir: &Path, rel: &str, content: impl AsRef<[u8]>) {
    write_file(dir, rel, content);
    set_exec(dir, rel, true);
}

/// Set (0755) or clear (0644) the exec bits of `dir/rel`.
pub fn set_exec(dir: &Path, rel: &str, exec: bool) {
    let mode = if exec { 0o755 } else { 0o644 };
    std::fs::set_permissions(dir.join(rel), std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {rel}: {e}"));
}

/// Create `dir/rel -> target`, replacing whatever is at `rel`.
pub fn symlink(dir: &Path, rel: &str, target: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("symlink has a parent")).expect("create parent dirs");
    if path.symlink_metadata().is_ok() {
        remove(dir, rel);
    }
    std::os::unix::fs::symlink(target, &path).unwrap_or_else(|e| panic!("symlink {rel}: {e}"));
}

/// Delete `dir/rel`: a file, a symlink or a whole directory.
pub fn remove(dir: &Path, rel: &str) {
    let path = dir.join(rel);
    let meta = path.symlink_metadata().unwrap_or_else(|e| panic!("remove {rel}: {e}"));
    if meta.is_dir() {
        std::fs::remove_dir_all(&path).unwrap_or_else(|e| panic!("remove dir {rel}: {e}"));
    } else {
        std::fs::remove_file(&path).unwrap_or_else(|e| panic!("remove file {rel}: {e}"));
    }
}

/// Rename `dir/from` to `dir/to` (parents of `to` created).
pub fn rename(dir: &Path, from: &str, to: &str) {
    let dest = dir.join(to);
    std::fs::create_dir_all(dest.parent().expect("rename target has a parent")).expect("create parent dirs");
    std::fs::rename(dir.join(from), dest).unwrap_or_else(|e| panic!("rename {from} -> {to}: {e}"));
}

/// Write `count` small files `dir/<sub>/<i/100>/f<i>.txt`, each with distinct content tagged `tag`.
pub fn many_files(dir: &Path, sub: &str, count: usize, tag: &str) {
    for i in 0..count {
        let rel = format!("{sub}/{:03}/f{i:05}.txt", i / 100);
        let path = dir.join(&rel);
        if i % 100 == 0 {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("create many_files dir");
        }
        std::fs::write(&path, format!("file {i} {tag}\n")).unwrap_or_else(|e| panic!("write {rel}: {e}"));
    }
}

/// The path [`many_files`] uses for file `i`.
pub fn many_files_path(sub: &str, i: usize) -> String {
    format!("{sub}/{:03}/f{i:05}.txt", i / 100)
}

/// Write a file of exactly `size` bytes: numbered lines tagged `tag`, so two tags give different
/// content while still compressing well (keeps packing fast).
pub fn big_file(dir: &Path, rel: &str, size: usize, tag: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("create parent dirs");
    let file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("create {rel}: {e}"));
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut written = 0usize;
    let mut line = 0u64;
    while written < size {
        let text = format!("{tag} line {line:012}\n");
        let take = text.len().min(size - written);
        out.write_all(&text.as_bytes()[..take]).expect("write big file");
        written += take;
        line += 1;
    }
    out.flush().expect("flush big file");
}
