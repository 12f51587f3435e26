//! Which directories of the checkout are compose stacks, and with which options.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::resolve::{self, resolve};
use crate::config::{StackConfig, StackEntry};

/// The marker file that puts a stack on hold: people stop stacks on purpose.
pub const HOLD_FILE: &str = ".driftless-hold";

/// One stack to keep in line with the checkout: what compose would use in its directory
/// ([`resolve`]), with the config's overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// Compose project name (also the stack's key in state).
    pub project: String,
    /// Directory, relative to the repo (`stacks/grafana`), for messages and state (lossy
    /// when the name is not UTF-8).
    pub dir: String,
    /// The directory, absolute (exact, whatever bytes its name holds).
    pub path: PathBuf,
    /// Compose files, absolute, in merge order.
    pub files: Vec<PathBuf>,
    /// The project directory compose resolves relative paths from, absolute.
    pub project_dir: PathBuf,
    /// Env files, absolute (the default `.env` listed even when missing).
    pub env_files: Vec<PathBuf>,
    /// `env_files` came from the config: compose is given them all.
    pub env_explicit: bool,
    /// Profiles to enable.
    pub profiles: Vec<String>,
    /// `up --wait`, with this timeout in seconds if set.
    pub wait: Option<Option<u64>>,
    /// Held in the config or by a `.driftless-hold` file.
    pub hold: bool,
    /// The stack's own `rollback:`; unset: the repo's.
    pub rollback: Option<bool>,
}

/// Why stacks could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Resolve(#[from] resolve::Error),
    #[error("two stacks are both called `{project}` ({first} and {second}); set `project:` on one of them")]
    DuplicateProject {
        project: String,
        first: String,
        second: String,
    },
}

/// Expand the config's `stacks:` entries against the checkout at `root`; the first stack that
/// cannot be resolved, or two stacks with one project name, is an error.
pub fn discover(root: &Path, entries: &[StackEntry]) -> Result<Vec<Stack>, Error> {
    let (stacks, errors) = discover_all(root, entries);
    match errors.into_iter().next() {
        Some((_, err)) => Err(err),
        None => Ok(stacks),
    }
}

/// Like [`discover`], going on past errors (for `--validate`): the stacks that resolve, and
/// every error with the absolute directory of the stack it is about (for a duplicate project
/// name, the later of the two), resolution errors first, in the config's order.
pub fn discover_all(root: &Path, entries: &[StackEntry]) -> (Vec<Stack>, Vec<(PathBuf, Error)>) {
    let mut stacks: Vec<Stack> = Vec::new();
    let mut errors: Vec<(PathBuf, Error)> = Vec::new();
    let mut add = |stacks: &mut Vec<Stack>, dir: &Path, config: &StackConfig| match stack(root, dir, config) {
        Ok(stack) => stacks.push(stack),
        Err(err) => errors.push((root.join(dir), err.into())),
    };
    for entry in entries {
        match entry {
            StackEntry::Glob(pattern) => {
                let mut dirs = Vec::new();
                glob_dirs(root, Path::new(""), pattern.trim_matches('/'), &mut dirs);
                dirs.sort();
                for dir in dirs {
                    if resolve::is_stack_dir(&root.join(&dir)) {
                        let label = dir.to_string_lossy().into_owned();
                        add(&mut stacks, &dir, &StackConfig::default_for(&label));
                    }
                }
            }
            StackEntry::Stack(config) => {
                let dir = PathBuf::from(config.dir.trim_matches('/'));
                // An explicit entry overrides a glob match of the same directory.
                stacks.retain(|s| s.path != root.join(&dir));
                add(&mut stacks, &dir, config);
            }
        }
    }
    for (i, b) in stacks.iter().enumerate() {
        if let Some(a) = stacks[..i].iter().find(|a| a.project == b.project) {
            errors.push((
                b.path.clone(),
                Error::DuplicateProject {
                    project: a.project.clone(),
                    first: a.dir.clone(),
                    second: b.dir.clone(),
                },
            ));
        }
    }
    (stacks, errors)
}

impl StackConfig {
    /// A stack entry for `dir` with every setting at its default.
    pub(crate) fn default_for(dir: &str) -> StackConfig {
        StackConfig {
            dir: dir.to_owned(),
            project: None,
            files: Vec::new(),
            env_file: Vec::new(),
            profiles: Vec::new(),
            wait: false,
            wait_timeout: None,
            hold: false,
            rollback: None,
        }
    }
}

fn stack(root: &Path, dir: &Path, config: &StackConfig) -> Result<Stack, resolve::Error> {
    let abs = root.join(dir);
    let label = dir.to_string_lossy().into_owned();
    let label_for_messages = if label.is_empty() {
        root.display().to_string()
    } else {
        label.clone()
    };
    let resolved = resolve(&abs, &label_for_messages, config)?;
    Ok(Stack {
        project: resolved.project,
        dir: label,
        files: resolved.files,
        project_dir: resolved.project_dir,
        env_files: resolved.env_files,
        env_explicit: resolved.env_explicit,
        profiles: resolved.profiles,
        wait: config.wait.then_some(config.wait_timeout),
        hold: config.hold || abs.join(HOLD_FILE).exists(),
        rollback: config.rollback,
        path: abs,
    })
}

/// Whether `dir` holds a stack compose would find by itself.
pub fn is_stack_dir(dir: &Path) -> bool {
    resolve::is_stack_dir(dir)
}

/// Directories under `root` matching `pattern` one component at a time (`stacks/*`,
/// `*/compose`), as paths relative to `root` (names that are not UTF-8 included).
fn glob_dirs(root: &Path, prefix: &Path, pattern: &str, out: &mut Vec<PathBuf>) {
    let (head, tail) = pattern.split_once('/').unwrap_or((pattern, ""));
    let Ok(read) = std::fs::read_dir(root.join(prefix)) else {
        return;
    };
    for entry in read.flatten() {
        let name: OsString = entry.file_name();
        let bytes = name.as_encoded_bytes();
        if bytes.starts_with(b".") && !head.starts_with('.') || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if crate::mirror::filter::glob(head.as_bytes(), bytes) {
            let path = prefix.join(&name);
            if tail.is_empty() {
                out.push(path);
            } else {
                glob_dirs(root, &path, tail, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_find_stack_directories_and_explicit_entries_win() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for (d, f) in [
            ("stacks/grafana", "compose.yaml"),
            ("stacks/loki", "docker-compose.yml"),
            ("stacks/docs", "README"),
        ] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
            std::fs::write(root.join(d).join(f), "services: {}\n").expect("write");
        }
        std::fs::write(root.join("stacks/loki").join(HOLD_FILE), "").expect("hold");
        let mut explicit = StackConfig::default_for("stacks/grafana");
        explicit.project = Some("Graf".into());
        let stacks = discover(
            root,
            &[StackEntry::Glob("stacks/*".into()), StackEntry::Stack(explicit)],
        )
        .expect("discover");
        let names: Vec<(&str, bool)> = stacks.iter().map(|s| (s.project.as_str(), s.hold)).collect();
        assert_eq!(names, vec![("loki", true), ("graf", false)]);
    }
}
