//! Integration tests for the `sync-repo` binary, run through the real executable against git
//! fixtures, with the git CLI as oracle. One test binary; each module covers one concern.

mod all;
mod concurrency;
mod config;
mod contract;
mod dry_run;
mod fidelity;
mod force;
mod forges;
mod in_the_way;
mod output;
mod owner;
mod planted;
mod refuse;
mod submodules;
mod transport;
mod trust;
mod update;

use std::path::{Path, PathBuf};

pub use driftless_tests::Run;
use driftless_tests::oracle::{self, MtimeSnapshot};
use driftless_tests::{Origin, TestEnv};
use serde_json::Value;

/// A `TestEnv` that knows where cargo built `sync-repo`.
pub fn env() -> TestEnv {
    TestEnv::new().with_bin("sync-repo", env!("CARGO_BIN_EXE_sync-repo"))
}

/// A test world: an origin with a few files of each kind, and a checkout cloned from it.
pub struct World {
    pub env: TestEnv,
    pub origin: Origin,
    pub checkout: PathBuf,
}

impl World {
    /// Origin `name` with a base tree (text files, a nested dir, an executable, a symlink,
    /// a `.gitignore`), cloned to `<root>/checkouts/<name>`.
    pub fn new(name: &str) -> World {
        World::with(name, |_| {})
    }

    /// Like [`World::new`], with `extra` shaping the origin's authoring clone before the base
    /// commit (so big trees reach the checkout through `git clone`, not through sync-repo).
    pub fn with(name: &str, extra: impl FnOnce(&Origin)) -> World {
        let env = env();
        let origin = Origin::new(&env, name);
        origin
            .write("a.txt", "alpha\n")
            .write("b.txt", "bravo\n")
            .write("src/lib.rs", "pub fn f() {}\n")
            .write("src/deep/nested/file.txt", "deep\n")
            .write("docs/guide.md", "# guide\n")
            .write(".gitignore", "*.log\n/build/\n")
            .write_exec("bin/run.sh", "#!/bin/sh\necho run\n")
            .symlink("link-to-a", "a.txt");
        extra(&origin);
        origin.commit("base tree");
        let checkout = origin.checkout(&env);
        World { env, origin, checkout }
    }

    /// The checkout's canonical path: how sync-repo labels a repo given by path.
    pub fn label(&self) -> String {
        std::fs::canonicalize(&self.checkout)
            .expect("canonicalize checkout")
            .display()
            .to_string()
    }

    /// `sync-repo --state-dir ... <checkout>` plus `args`.
    pub fn sync(&self, args: &[&str]) -> Run {
        let mut cmd = self.env.sync_repo();
        cmd.args(args).arg(&self.checkout);
        Run::of(&mut cmd)
    }

    /// Like [`World::sync`], killed after `limit` (a hang fails the test instead of stalling it).
    pub fn sync_within(&self, limit: std::time::Duration, args: &[&str]) -> Run {
        let mut cmd = self.env.sync_repo();
        cmd.timeout(limit).args(args).arg(&self.checkout);
        Run::of(&mut cmd)
    }

    /// The checkout's HEAD.
    pub fn head(&self) -> String {
        self.env.git(&self.checkout, &["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// Run git in the checkout.
    pub fn git(&self, args: &[&str]) -> String {
        self.env.git(&self.checkout, args)
    }

    /// After an update from `before`: the full oracle check against the origin's tip, plus
    /// every file the update had no reason to touch kept its mtime.
    pub fn assert_updated_from(&self, before: &str, mtimes: &MtimeSnapshot) {
        let tip = self.origin.tip();
        oracle::assert_synced(&self.checkout, &self.origin.path_url(), &tip);
        let changed = oracle::changed_paths(&self.checkout, before, &tip);
        mtimes.assert_kept_except(&changed);
    }
}

/// The `path` values of a JSON record's `changes`, sorted.
pub fn change_paths(record: &Value) -> Vec<String> {
    let mut paths: Vec<String> = record["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("`changes` is not an array: {record}"))
        .iter()
        .map(|c| {
            c["path"]
                .as_str()
                .unwrap_or_else(|| panic!("change without path: {c}"))
                .to_owned()
        })
        .collect();
    paths.sort();
    paths
}

/// The change kind JSON reports for `path`.
pub fn change_kind(record: &Value, path: &str) -> Option<String> {
    record["changes"]
        .as_array()?
        .iter()
        .find(|c| c["path"] == path)
        .and_then(|c| c["change"].as_str().map(str::to_owned))
}

/// Every file named `file_name` below `dir`.
pub fn find_files(dir: &Path, file_name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries {
        let path = entry.expect("read dir entry").path();
        if path.is_dir() {
            found.extend(find_files(&path, file_name));
        } else if path.file_name().is_some_and(|n| n == file_name) {
            found.push(path);
        }
    }
    found
}

/// Whether `text` contains any of `needles`, ignoring ASCII case.
pub fn mentions_any(text: &str, needles: &[&str]) -> bool {
    let lower = text.to_ascii_lowercase();
    needles.iter().any(|n| lower.contains(&n.to_ascii_lowercase()))
}
