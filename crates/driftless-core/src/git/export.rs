//! Part of one commit's tree written into a fresh directory, as `git checkout` would write it
//! (filters, executable bit, links as links, submodules as empty directories): the last good
//! revision apply-compose re-applies when it rolls a stack back.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use gix::bstr::{BStr, ByteSlice};
use gix::index::entry::Mode;

use super::ObjectId;
use super::checkout::path_from_bytes;

/// Why the export failed; `dest` is left for the caller to remove.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read commit {commit} from the repository")]
    Commit { commit: ObjectId, source: gix::Error },
    #[error(transparent)]
    Filters(#[from] super::filters::Error),
    #[error("commit {commit} holds the path {path:?}, which cannot be written below a directory")]
    BadPath { commit: ObjectId, path: String },
    #[error("cannot write {path}", path = path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// Write the entries of `commit`'s tree that are at or below one of `paths` (repo-relative,
/// `/`-separated; an empty path is the whole tree) into `dest`, a directory this creates (its
/// parent must exist; `dest` itself must not). Every file, link and directory is created new,
/// never opened if it exists, so nothing is written through a link. Returns how many entries
/// were written.
pub fn export(repo: &gix::Repository, commit: ObjectId, paths: &[&BStr], dest: &Path) -> Result<usize, Error> {
    let object = |source| Error::Commit { commit, source };
    let tree = repo.find_commit(commit).map_err(object)?.tree_id().map_err(object)?;
    let index = repo.index_from_tree(&tree).map_err(object)?;
    let mut filters = super::filters::Filters::new(repo, index.clone())?;
    let write = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Write { path, source }
    };
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(dest)
        .map_err(write(dest))?;
    let wanted = |rela: &BStr| {
        paths
            .iter()
            .any(|p| p.is_empty() || rela == *p || (rela.starts_with(p.as_bytes()) && rela.get(p.len()) == Some(&b'/')))
    };
    let mut written = 0;
    for entry in index.entries() {
        let rela = entry.path(&index);
        if !wanted(rela) {
            continue;
        }
        // A tree from someone else's push: only plain components below `dest`.
        if rela
            .split(|&b| b == b'/')
            .any(|c| c.is_empty() || c == b"." || c == b".." || c.eq_ignore_ascii_case(b".git"))
        {
            return Err(Error::BadPath {
                commit,
                path: rela.to_str_lossy().into_owned(),
            });
        }
        let path = dest.join(path_from_bytes(rela));
        if let Some(parent) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(write(parent))?;
        }
        if entry.mode == Mode::COMMIT || entry.mode == Mode::DIR {
            std::fs::DirBuilder::new()
                .mode(0o755)
                .create(&path)
                .map_err(write(&path))?;
            written += 1;
            continue;
        }
        let blob = repo.find_object(entry.id).map_err(object)?;
        if entry.mode == Mode::SYMLINK {
            std::os::unix::fs::symlink(path_from_bytes(&blob.data), &path).map_err(write(&path))?;
        } else {
            let mode = if entry.mode == Mode::FILE_EXECUTABLE {
                0o755
            } else {
                0o644
            };
            // O_CREAT | O_EXCL: fails on anything already there, a link included.
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path)
                .map_err(write(&path))?;
            let mut out = std::io::BufWriter::new(file);
            filters.to_worktree(rela, entry.id, &blob.data, &mut out)?;
            out.into_inner().map_err(|err| write(&path)(err.into_error()))?;
        }
        written += 1;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    #[test]
    fn writes_the_selected_paths_of_an_older_commit_as_git_archive_does() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo_dir = tmp.path().join("repo");
        std::fs::create_dir_all(repo_dir.join("stacks/a/conf")).expect("mkdir");
        std::fs::create_dir_all(repo_dir.join("stacks/ab")).expect("mkdir");
        git(&repo_dir, &["init", "-q", "-b", "main"]);
        std::fs::write(repo_dir.join("stacks/a/compose.yaml"), "services: {}\n").expect("write");
        std::fs::write(repo_dir.join("stacks/a/conf/run.sh"), "#!/bin/sh\n").expect("write");
        std::fs::write(repo_dir.join("stacks/ab/compose.yaml"), "other\n").expect("write");
        std::fs::write(repo_dir.join("shared.env"), "A=1\n").expect("write");
        std::os::unix::fs::symlink("../../shared.env", repo_dir.join("stacks/a/link.env")).expect("symlink");
        std::fs::set_permissions(
            repo_dir.join("stacks/a/conf/run.sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        git(&repo_dir, &["add", "-A"]);
        git(&repo_dir, &["commit", "-q", "-m", "good"]);
        let good = git(&repo_dir, &["rev-parse", "HEAD"]);
        std::fs::write(repo_dir.join("stacks/a/compose.yaml"), "broken\n").expect("write");
        std::fs::write(repo_dir.join("stacks/a/new.yaml"), "new\n").expect("write");
        git(&repo_dir, &["add", "-A"]);
        git(&repo_dir, &["commit", "-q", "-m", "bad"]);

        // The oracle: `git archive` of the same paths at the good commit.
        let oracle = tmp.path().join("oracle");
        std::fs::create_dir_all(&oracle).expect("mkdir");
        let tar = tmp.path().join("good.tar");
        git(
            &repo_dir,
            &[
                "archive",
                "-o",
                &tar.display().to_string(),
                &good,
                "stacks/a",
                "shared.env",
            ],
        );
        let untar = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(&oracle)
            .status()
            .expect("tar");
        assert!(untar.success());

        let repo = gix::open(&repo_dir).expect("open");
        let dest = tmp.path().join("export");
        let id = ObjectId::from_hex(good.as_bytes()).expect("id");
        let paths: [&BStr; 2] = ["stacks/a".into(), "shared.env".into()];
        let written = export(&repo, id, &paths, &dest).expect("export");
        assert_eq!(written, 4);
        let diff = std::process::Command::new("diff")
            .arg("-r")
            .arg("--no-dereference")
            .arg(&oracle)
            .arg(&dest)
            .output()
            .expect("diff");
        assert!(diff.status.success(), "{}", String::from_utf8_lossy(&diff.stdout));
        let mode = |p: &str| {
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dest.join(p)).expect("meta").permissions())
        };
        assert_eq!(mode("stacks/a/conf/run.sh") & 0o111, 0o111);
        assert_eq!(mode("stacks/a/compose.yaml") & 0o111, 0);
        assert!(
            !dest.join("stacks/ab").exists(),
            "a sibling with the same prefix is not exported"
        );
        // `dest` must be new: an existing directory (or a link planted there) is refused.
        assert!(matches!(export(&repo, id, &paths, &dest), Err(Error::Write { .. })));
    }
}
