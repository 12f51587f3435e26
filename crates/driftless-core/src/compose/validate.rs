//! `apply-compose --validate`: what a config repo's CI and pre-commit hook check before a push,
//! with the stacks found and resolved exactly as an apply finds them ([`stacks`](super::stacks),
//! [`model`](super::model)): every model parses, every input exists and stays inside the repo,
//! project names are unique, `compose config` accepts each stack, and `validate.max_depth` holds.
//!
//! Reads only: no state directory, no lock, no engine, nothing written.

use std::path::{Path, PathBuf};

use super::model;
use super::runner::{self, Compose};
use super::stacks::{self, Stack};
use crate::config::StackEntry;
use crate::redact::error_chain;

/// One problem, at a place an editor can jump to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (or, for a stack that cannot be resolved, the stack directory), absolute.
    pub file: PathBuf,
    /// 1-based: the YAML parser's line for a file that does not parse, else 1.
    pub line: usize,
    pub message: String,
}

/// What `--validate` checks besides compose's own rules.
#[derive(Debug, Clone, Default)]
pub struct Options<'a> {
    /// How many directories deep below the repo a stack may be (`validate.max_depth`).
    pub max_depth: Option<usize>,
    /// Run `compose config --quiet` per stack with this compose (`None`: not installed).
    pub compose: Option<&'a Compose>,
}

/// The outcome for one repo.
#[derive(Debug, Clone, Default)]
pub struct Validation {
    /// Stacks that resolved (each checked).
    pub stacks: usize,
    pub problems: Vec<Problem>,
}

/// Check every stack `entries` finds in the checkout at `root`.
pub fn validate(root: &Path, entries: &[StackEntry], options: &Options) -> Validation {
    let root = match std::fs::canonicalize(root) {
        Ok(root) => root,
        Err(err) => {
            return Validation {
                stacks: 0,
                problems: vec![Problem {
                    file: root.to_owned(),
                    line: 1,
                    message: format!("cannot open the repo: {err}"),
                }],
            };
        }
    };
    let (found, errors) = stacks::discover_all(&root, entries);
    let mut problems: Vec<Problem> = errors
        .iter()
        .map(|(dir, err)| {
            // A duplicate points at a compose file of the later stack, when it has one.
            let file = match err {
                stacks::Error::DuplicateProject { .. } => found
                    .iter()
                    .find(|s| &s.path == dir)
                    .and_then(|s| s.files.first().cloned())
                    .unwrap_or_else(|| dir.clone()),
                stacks::Error::Resolve(_) => dir.clone(),
            };
            Problem {
                file,
                line: 1,
                message: error_chain(err),
            }
        })
        .collect();
    for stack in &found {
        problems.extend(check_stack(&root, stack, options));
    }
    problems.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Validation {
        stacks: found.len(),
        problems,
    }
}

/// One stack's problems. `compose config` runs only when the other checks passed: one mistake
/// gives one line, not compose's copy of it too.
fn check_stack(root: &Path, stack: &Stack, options: &Options) -> Vec<Problem> {
    let mut problems = Vec::new();
    let first_file = stack.files.first().cloned().unwrap_or_else(|| stack.path.clone());
    if let Some(max) = options.max_depth {
        let depth = Path::new(&stack.dir).components().count();
        if depth > max {
            problems.push(Problem {
                file: first_file.clone(),
                line: 1,
                message: format!(
                    "stack directory {} is {depth} levels deep; `validate.max_depth` allows {max}",
                    stack.dir
                ),
            });
        }
    }
    match model::inputs(&stack.project_dir, &stack.files, &stack.env_files) {
        Err(model::Error::Parse { path, message, line }) => problems.push(Problem {
            file: path,
            line: line.unwrap_or(1),
            message: format!("not valid YAML: {message}"),
        }),
        Err(model::Error::Missing { path, named_in }) => problems.push(Problem {
            // The file that includes or extends it; for the stack's own files, its directory.
            file: named_in.unwrap_or_else(|| stack.path.clone()),
            line: 1,
            message: format!("compose file {} does not exist", shown(root, &path)),
        }),
        Err(err @ model::Error::Read(_)) => problems.push(Problem {
            file: stack.path.clone(),
            line: 1,
            message: error_chain(&err),
        }),
        Ok(inputs) => {
            // Compose reads the default `.env` only when it is there.
            let default_env = (!stack.env_explicit).then(|| stack.path.join(".env"));
            for (path, kind) in &inputs.paths {
                let at = inputs.named_in.get(path).unwrap_or(path).clone();
                if let Some(real) = outside(root, path) {
                    let via = if &real == path {
                        String::new()
                    } else {
                        format!(" (through a symlink, to {})", real.display())
                    };
                    problems.push(Problem {
                        file: at,
                        line: 1,
                        message: format!("{kind} {} is outside the repo{via}", shown(root, path)),
                    });
                    continue;
                }
                // Docker creates a missing bind-mount source (data directories are rarely in
                // git); everything else must be there.
                let may_be_missing =
                    *kind == "bind mount" || inputs.optional.contains(path) || default_env.as_ref() == Some(path);
                if !may_be_missing && std::fs::symlink_metadata(path).is_err() {
                    problems.push(Problem {
                        file: at,
                        line: 1,
                        message: format!("{kind} {} does not exist", shown(root, path)),
                    });
                }
            }
        }
    }
    if problems.is_empty()
        && let Some(compose) = options.compose
        && let Err(err) = compose.check_config(stack)
    {
        let message = match err {
            runner::Error::Failed { message, .. } => message,
            other => other.to_string(),
        };
        problems.push(Problem {
            file: first_file,
            line: 1,
            message: format!("`compose config` fails: {message}"),
        });
    }
    problems
}

/// `path` relative to the repo when inside it, else as it is.
fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

/// Where `path` (absolute, `..` already resolved) really leads when that is outside `root`
/// (canonical): itself when it is outside as written, else the target of a symlink on its
/// way that leaves the repo. Links are read, never the files behind them.
fn outside(root: &Path, path: &Path) -> Option<PathBuf> {
    if !path.starts_with(root) {
        return Some(path.to_owned());
    }
    let mut existing = path;
    loop {
        match std::fs::canonicalize(existing) {
            Ok(real) => return (!real.starts_with(root)).then_some(real),
            Err(_) => {
                // A dangling link still says where it would lead.
                if let Ok(target) = std::fs::read_link(existing) {
                    let parent = existing.parent().unwrap_or(root);
                    let target = model::normalize(&parent.join(target));
                    return outside(root, &target).or_else(|| (!target.starts_with(root)).then_some(target));
                }
                existing = existing.parent()?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_leading_out_of_the_repo_are_outside_dangling_or_not() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = std::fs::canonicalize(tmp.path()).expect("canonical").join("repo");
        std::fs::create_dir_all(root.join("a")).expect("mkdir");
        std::os::unix::fs::symlink("/etc", root.join("a/etc")).expect("symlink");
        std::os::unix::fs::symlink("../../gone", root.join("a/gone")).expect("symlink");
        std::os::unix::fs::symlink("../a", root.join("a/self")).expect("symlink");
        assert_eq!(
            outside(&root, &root.join("a/etc/hostname")),
            Some(PathBuf::from("/etc/hostname"))
        );
        assert_eq!(
            outside(&root, &root.join("a/gone")),
            Some(tmp.path().canonicalize().expect("c").join("gone"))
        );
        assert_eq!(outside(&root, &root.join("a/self/new")), None);
        assert_eq!(outside(&root, &root.join("missing/deeper")), None);
        assert_eq!(outside(&root, Path::new("/srv/x")), Some(PathBuf::from("/srv/x")));
    }
}
