//! Compose's own resolution of a stack directory: the files, env files, project name and
//! profiles that `docker compose up` typed in that directory would use, in compose's order of
//! precedence, so that driftless digests and passes exactly those.
//!
//! The rules, checked against Compose v2.40 (the tests run the real one as the oracle):
//! - env files: the config's `env_file:`, else `.env` in the stack directory. They set
//!   `COMPOSE_FILE`, `COMPOSE_PATH_SEPARATOR`, `COMPOSE_PROJECT_NAME` and `COMPOSE_PROFILES`
//!   (a later file wins). The process environment's `COMPOSE_*` are ignored, and removed from
//!   compose's environment: one tool run serves many stacks.
//! - files: the config's `files:`; else `COMPOSE_FILE` split on `COMPOSE_PATH_SEPARATOR` (`:` by
//!   default), relative to the stack directory; else the first of compose's default names
//!   plus the first override file found beside it.
//! - project directory: the stack directory for configured files, else the first file's directory.
//! - project name: the config's `project:` (normalised); else `COMPOSE_PROJECT_NAME` when not
//!   empty (taken as is, and invalid unless already normal); else the last non-empty top-level
//!   `name:` of the files, interpolated and normalised (empty afterwards is an error); else the
//!   project directory's name, normalised (empty is an error).
//! - profiles: the config's `profiles:`, else `COMPOSE_PROFILES` split on `,`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::model::{self, normalize_project_name};
use super::read;
use crate::config::StackConfig;

/// The file names compose looks for in a stack directory, in its order of preference.
pub const COMPOSE_FILE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// The override file names compose merges over the default file, in its order of preference.
pub const OVERRIDE_FILE_NAMES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// What compose would use for one stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Compose files, absolute, in merge order.
    pub files: Vec<PathBuf>,
    /// The project directory (relative paths in the files are resolved from it).
    pub project_dir: PathBuf,
    /// Env files, absolute; the default `.env` is listed even when it does not exist (creating
    /// it is a change).
    pub env_files: Vec<PathBuf>,
    /// The env files came from the config (compose must be given them, existing or not).
    pub env_explicit: bool,
    /// The normalised project name.
    pub project: String,
    /// Profiles to enable.
    pub profiles: Vec<String>,
}

/// Why compose's choice for a stack directory cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("stack directory {dir} has no compose file (looked for {names}, and COMPOSE_FILE in its env file)", names = COMPOSE_FILE_NAMES.join(", "))]
    NoComposeFile { dir: String },
    #[error(
        "stack directory {dir}: project name {name:?} (from {from}) is not one compose accepts \
         (lowercase letters, digits, `-` and `_`, starting with a letter or digit); \
         set `project:` for this stack in the config"
    )]
    InvalidProject { dir: String, name: String, from: String },
    #[error(
        "stack directory {dir}: the project name compose would derive {from} is empty; \
         set `project:` for this stack in the config"
    )]
    EmptyProject { dir: String, from: String },
    #[error("stack directory {dir}")]
    Read {
        dir: String,
        #[source]
        source: read::Error,
    },
}

/// The env variables that choose the files, name and profiles.
const COMPOSE_FILE: &str = "COMPOSE_FILE";
const COMPOSE_PATH_SEPARATOR: &str = "COMPOSE_PATH_SEPARATOR";
const COMPOSE_PROJECT_NAME: &str = "COMPOSE_PROJECT_NAME";
const COMPOSE_PROFILES: &str = "COMPOSE_PROFILES";

/// Every `COMPOSE_*` variable the process environment could set to change compose's choice;
/// removed from compose's environment so the flags driftless passes are the whole truth.
pub const COMPOSE_ENV_VARS: [&str; 5] = [
    COMPOSE_FILE,
    COMPOSE_PATH_SEPARATOR,
    COMPOSE_PROJECT_NAME,
    COMPOSE_PROFILES,
    "COMPOSE_ENV_FILES",
];

/// Resolve the stack in `dir` (absolute; `label` names it in messages) as compose would, with
/// the config's overrides.
pub fn resolve(dir: &Path, label: &str, config: &StackConfig) -> Result<Resolved, Error> {
    let read_err = |source| Error::Read {
        dir: label.to_owned(),
        source,
    };
    let env_explicit = !config.env_file.is_empty();
    let env_files: Vec<PathBuf> = if env_explicit {
        config.env_file.iter().map(|f| dir.join(f)).collect()
    } else {
        vec![dir.join(".env")]
    };
    let file_vars = env_file_vars(&env_files).map_err(read_err)?;
    let var = |name: &str| file_vars.get(name).map(String::as_str);

    let (files, project_dir) = if !config.files.is_empty() {
        (config.files.iter().map(|f| dir.join(f)).collect(), dir.to_owned())
    } else if let Some(list) = var(COMPOSE_FILE) {
        let sep = var(COMPOSE_PATH_SEPARATOR).filter(|s| !s.is_empty()).unwrap_or(":");
        let files: Vec<PathBuf> = list.split(sep).map(|f| model::normalize(&dir.join(f))).collect();
        let project_dir = files
            .first()
            .and_then(|f| f.parent())
            .map_or_else(|| dir.to_owned(), Path::to_owned);
        (files, project_dir)
    } else {
        let first = |names: &[&str]| names.iter().map(|n| dir.join(n)).find(|p| p.exists());
        let main = first(&COMPOSE_FILE_NAMES).ok_or_else(|| Error::NoComposeFile { dir: label.to_owned() })?;
        (
            std::iter::once(main).chain(first(&OVERRIDE_FILE_NAMES)).collect(),
            dir.to_owned(),
        )
    };

    let project = match (&config.project, var(COMPOSE_PROJECT_NAME).filter(|n| !n.is_empty())) {
        (Some(name), _) => {
            let normal = normalize_project_name(name);
            if normal.is_empty() {
                return Err(Error::EmptyProject {
                    dir: label.to_owned(),
                    from: format!("from `project: {name}`"),
                });
            }
            normal
        }
        (None, Some(name)) => {
            if normalize_project_name(name) != name {
                return Err(Error::InvalidProject {
                    dir: label.to_owned(),
                    name: name.to_owned(),
                    from: format!("COMPOSE_PROJECT_NAME in {}", env_files_label(&env_files)),
                });
            }
            name.to_owned()
        }
        (None, None) => match last_name(&files).map_err(read_err)? {
            Some(raw) => {
                let mut vars: HashMap<String, String> = std::env::vars().collect();
                for (k, v) in &file_vars {
                    vars.entry(k.clone()).or_insert_with(|| v.clone());
                }
                let normal = normalize_project_name(&model::interpolate(&raw, &vars));
                if normal.is_empty() {
                    return Err(Error::EmptyProject {
                        dir: label.to_owned(),
                        from: format!("from `name: {raw}` in its compose file"),
                    });
                }
                normal
            }
            None => {
                let base = project_dir.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
                let normal = normalize_project_name(&base);
                if normal.is_empty() {
                    return Err(Error::EmptyProject {
                        dir: label.to_owned(),
                        from: format!("from the directory name {base:?}"),
                    });
                }
                normal
            }
        },
    };

    let profiles = if !config.profiles.is_empty() {
        config.profiles.clone()
    } else {
        var(COMPOSE_PROFILES)
            .map(|p| {
                p.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Resolved {
        files,
        project_dir,
        env_files,
        env_explicit,
        project,
        profiles,
    })
}

/// Whether compose finds a stack in `dir` by itself: a default-named compose file, or
/// `COMPOSE_FILE` in its `.env`.
pub fn is_stack_dir(dir: &Path) -> bool {
    COMPOSE_FILE_NAMES.iter().any(|n| dir.join(n).exists())
        || env_file_vars(&[dir.join(".env")]).is_ok_and(|vars| vars.contains_key(COMPOSE_FILE))
}

/// The variables the env files set; a later file wins, missing files set nothing.
fn env_file_vars(files: &[PathBuf]) -> Result<HashMap<String, String>, read::Error> {
    let mut vars = HashMap::new();
    for file in files {
        if let Some(text) = read::text_if_exists(file)? {
            vars.extend(model::parse_env(&text));
        }
    }
    Ok(vars)
}

fn env_files_label(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The last non-empty top-level `name:` of the files, as written. A file that is missing or
/// does not parse gives none: compose reports that itself when it runs.
fn last_name(files: &[PathBuf]) -> Result<Option<String>, read::Error> {
    let mut name = None;
    for file in files {
        let Ok(Some(text)) = read::text_if_exists(file) else {
            continue;
        };
        // Most files have no `name:`: a no-change run then parses them once, not twice.
        if !text.contains("name") {
            continue;
        }
        let Ok(doc) = serde_yaml::from_str::<serde_yaml::Value>(&text) else {
            continue;
        };
        if let Some(n) = doc
            .get("name")
            .and_then(serde_yaml::Value::as_str)
            .filter(|n| !n.is_empty())
        {
            name = Some(n.to_owned());
        }
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> StackConfig {
        StackConfig::default_for("")
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn precedence_of_names_files_and_profiles() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("My.Stack");
        write(&dir, "docker-compose.yaml", "services: {}\n");
        write(&dir, "docker-compose.yml", "services: {}\n");
        write(&dir, "docker-compose.override.yaml", "services: {}\n");
        write(&dir, "compose.override.yml", "services: {}\n");
        let r = resolve(&dir, "My.Stack", &config()).expect("resolve");
        assert_eq!(
            r.files,
            vec![dir.join("docker-compose.yml"), dir.join("compose.override.yml")]
        );
        assert_eq!(r.project, "mystack");

        write(&dir, "compose.override.yml", "name: \"${N:-Over}\"\n");
        assert_eq!(resolve(&dir, "x", &config()).expect("resolve").project, "over");
        write(&dir, ".env", "N=\"-x\"\nCOMPOSE_PROFILES= a ,b\n");
        let r = resolve(&dir, "x", &config()).expect("resolve");
        assert_eq!(
            (r.project.as_str(), r.profiles.clone()),
            ("x", vec!["a".into(), "b".into()])
        );

        write(&dir, ".env", "COMPOSE_PROJECT_NAME=Bad\n");
        assert!(matches!(
            resolve(&dir, "x", &config()),
            Err(Error::InvalidProject { .. })
        ));
        let mut explicit = config();
        explicit.project = Some("Good".into());
        assert_eq!(resolve(&dir, "x", &explicit).expect("resolve").project, "good");

        write(
            &dir,
            ".env",
            "COMPOSE_FILE=sub/a.yaml;b.yaml # two\nCOMPOSE_PATH_SEPARATOR=;\n",
        );
        let r = resolve(&dir, "x", &config()).expect("resolve");
        assert_eq!(r.files, vec![dir.join("sub/a.yaml"), dir.join("b.yaml")]);
        assert_eq!((r.project_dir.clone(), r.project.as_str()), (dir.join("sub"), "sub"));
    }

    #[test]
    fn a_name_that_normalises_to_nothing_is_an_error_naming_the_directory() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("日本");
        write(&dir, "compose.yaml", "services: {}\n");
        let err = resolve(&dir, "stacks/日本", &config()).expect_err("empty name");
        let text = err.to_string();
        assert!(text.contains("stacks/日本") && text.contains("project:"), "{text}");
    }
}
