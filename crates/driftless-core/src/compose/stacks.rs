//! Which directories of the checkout are compose stacks, and with which options.

use std::path::{Path, PathBuf};

use super::model::{COMPOSE_FILE_NAMES, normalize_project_name};
use crate::config::{StackConfig, StackEntry};

/// The marker file that puts a stack on hold: people stop stacks on purpose.
pub const HOLD_FILE: &str = ".driftless-hold";

/// One stack to keep in line with the checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// Compose project name (also the stack's key in state).
    pub project: String,
    /// Directory, relative to the repo (`stacks/grafana`).
    pub dir: String,
    /// Compose files, absolute.
    pub files: Vec<PathBuf>,
    /// `--env-file`s, absolute; empty means compose's default `.env`.
    pub env_files: Vec<PathBuf>,
    /// Profiles to enable.
    pub profiles: Vec<String>,
    /// `up --wait`, with this timeout in seconds if set.
    pub wait: Option<Option<u64>>,
    /// Held in the config or by a `.driftless-hold` file.
    pub hold: bool,
}

/// Why stacks could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("stack directory {dir} has no compose file (looked for {names})", names = COMPOSE_FILE_NAMES.join(", "))]
    NoComposeFile { dir: String },
    #[error("two stacks are both called `{project}` ({first} and {second}); set `project:` on one of them")]
    DuplicateProject {
        project: String,
        first: String,
        second: String,
    },
}

/// Expand the config's `stacks:` entries against the checkout at `root`.
pub fn discover(root: &Path, entries: &[StackEntry]) -> Result<Vec<Stack>, Error> {
    let mut stacks: Vec<Stack> = Vec::new();
    for entry in entries {
        match entry {
            StackEntry::Glob(pattern) => {
                let mut dirs = Vec::new();
                glob_dirs(root, "", pattern.trim_matches('/'), &mut dirs);
                dirs.sort();
                for dir in dirs {
                    if let Some(file) = compose_file(&root.join(&dir)) {
                        stacks.push(stack(root, &dir, vec![file], &StackConfig::default_for(&dir)));
                    }
                }
            }
            StackEntry::Stack(config) => {
                let dir = config.dir.trim_matches('/').to_owned();
                let files: Vec<PathBuf> = if config.files.is_empty() {
                    vec![compose_file(&root.join(&dir)).ok_or_else(|| Error::NoComposeFile { dir: dir.clone() })?]
                } else {
                    config.files.iter().map(|f| root.join(&dir).join(f)).collect()
                };
                // An explicit entry overrides a glob match of the same directory.
                stacks.retain(|s| s.dir != dir);
                stacks.push(stack(root, &dir, files, config));
            }
        }
    }
    for (i, a) in stacks.iter().enumerate() {
        if let Some(b) = stacks[i + 1..].iter().find(|b| b.project == a.project) {
            return Err(Error::DuplicateProject {
                project: a.project.clone(),
                first: a.dir.clone(),
                second: b.dir.clone(),
            });
        }
    }
    Ok(stacks)
}

impl StackConfig {
    fn default_for(dir: &str) -> StackConfig {
        StackConfig {
            dir: dir.to_owned(),
            project: None,
            files: Vec::new(),
            env_file: Vec::new(),
            profiles: Vec::new(),
            wait: false,
            wait_timeout: None,
            hold: false,
        }
    }
}

fn stack(root: &Path, dir: &str, files: Vec<PathBuf>, config: &StackConfig) -> Stack {
    let abs = root.join(dir);
    let name = Path::new(dir)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Stack {
        project: normalize_project_name(config.project.as_deref().unwrap_or(&name)),
        dir: dir.to_owned(),
        files,
        env_files: config.env_file.iter().map(|f| abs.join(f)).collect(),
        profiles: config.profiles.clone(),
        wait: config.wait.then_some(config.wait_timeout),
        hold: config.hold || abs.join(HOLD_FILE).exists(),
    }
}

/// The compose file compose itself would pick in `dir`.
pub fn compose_file(dir: &Path) -> Option<PathBuf> {
    COMPOSE_FILE_NAMES
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// Directories under `root` matching `pattern` one component at a time (`stacks/*`, `*/compose`).
fn glob_dirs(root: &Path, prefix: &str, pattern: &str, out: &mut Vec<String>) {
    let (head, tail) = pattern.split_once('/').unwrap_or((pattern, ""));
    let Ok(read) = std::fs::read_dir(root.join(prefix)) else {
        return;
    };
    for entry in read.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && !head.starts_with('.') || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if crate::mirror::filter::glob(head.as_bytes(), name.as_bytes()) {
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
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
