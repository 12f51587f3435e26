//! Which files a compose stack reads from the repo: the one place that parses compose YAML
//! (through serde_yaml), so it can be swapped for another parser.
//!
//! Followed: the compose files, `include` (short and long form), `extends.file`, the project
//! `.env` and `env_file`s, `configs`/`secrets` `file:` sources, bind-mount sources (short and
//! long syntax) and `build` contexts with their Dockerfiles. Paths are interpolated
//! (`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `$VAR`) from the project `.env` and the
//! process environment, as compose does. Anchors and `<<` merge keys are resolved.

use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use serde_yaml::Value;

/// Why a stack's model could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Read(#[from] super::read::Error),
    #[error("{path} does not exist", path = path.display())]
    Missing {
        path: PathBuf,
        /// The compose file that includes or extends it (`None` for the stack's own files).
        named_in: Option<PathBuf>,
    },
    #[error("{path}: {message}", path = path.display())]
    Parse {
        path: PathBuf,
        message: String,
        /// The line the YAML parser points at, 1-based, when it gives one.
        line: Option<usize>,
    },
}

/// Everything a stack reads, as absolute paths (files and directories), sorted.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    /// Each input with what kind of input it is (for reasons: "env_file x changed").
    pub paths: Vec<(PathBuf, &'static str)>,
    /// The service names defined, for orphan checks.
    pub services: BTreeSet<String>,
    /// The compose file that names each input (the stack's own compose files and env files
    /// have none), so `--validate` can point at it.
    pub named_in: HashMap<PathBuf, PathBuf>,
    /// Inputs compose lets be missing: `env_file` entries with `required: false`.
    pub optional: BTreeSet<PathBuf>,
}

/// Collect the inputs of a stack whose project directory is `project_dir`, made of
/// `files` (absolute) and reading `env_files` (absolute; missing ones set nothing).
pub fn inputs(project_dir: &Path, files: &[PathBuf], env_files: &[PathBuf]) -> Result<Inputs, Error> {
    let mut seen = BTreeSet::new();
    let mut out: Vec<(PathBuf, &'static str)> = Vec::new();
    let mut services = BTreeSet::new();

    // The process environment wins over env files; among env files, a later one wins.
    let mut from_files: HashMap<String, String> = HashMap::new();
    for env_file in env_files {
        out.push((env_file.clone(), "env file"));
        if let Ok(Some(text)) = super::read::text_if_exists(env_file) {
            from_files.extend(parse_env(&text));
        }
    }
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    for (key, value) in from_files {
        vars.entry(key).or_insert(value);
    }

    let mut named_in: HashMap<PathBuf, PathBuf> = HashMap::new();
    let mut optional = BTreeSet::new();
    let mut queue: Vec<(PathBuf, PathBuf, &'static str, Option<PathBuf>)> = files
        .iter()
        .map(|f| (f.clone(), project_dir.to_owned(), "compose file", None))
        .collect();
    while let Some((file, base, kind, parent)) = queue.pop() {
        if !seen.insert(file.clone()) {
            continue;
        }
        out.push((file.clone(), kind));
        if let Some(parent) = &parent {
            named_in.entry(file.clone()).or_insert_with(|| parent.clone());
        }
        let text = super::read::text_if_exists(&file)?.ok_or_else(|| Error::Missing {
            path: file.clone(),
            named_in: parent.clone(),
        })?;
        let parse_error = |e: serde_yaml::Error| Error::Parse {
            path: file.clone(),
            line: e.location().map(|l| l.line()),
            message: e.to_string(),
        };
        let mut doc: Value = serde_yaml::from_str(&text).map_err(parse_error)?;
        doc.apply_merge().map_err(parse_error)?;
        // Every input found from here on is named in this file.
        let first_new = out.len();
        let path_of = |raw: &str, base: &Path| normalize(&base.join(interpolate(raw, &vars)));
        let file_dir = file.parent().unwrap_or(&base).to_owned();

        // include: [path] or [{path: path|[paths], project_directory, env_file: path|[paths]}]
        for item in seq(doc.get("include")) {
            match item {
                Value::String(path) => {
                    let included = path_of(path, &file_dir);
                    let dir = included
                        .parent()
                        .map(Path::to_owned)
                        .unwrap_or_else(|| file_dir.clone());
                    queue.push((included, dir, "included file", Some(file.clone())));
                }
                Value::Mapping(_) => {
                    let dir = item
                        .get("project_directory")
                        .and_then(Value::as_str)
                        .map(|d| path_of(d, &file_dir));
                    for path in strings(item.get("path")) {
                        let included = path_of(path, &file_dir);
                        let base = dir.clone().or_else(|| included.parent().map(Path::to_owned));
                        queue.push((
                            included,
                            base.unwrap_or_else(|| file_dir.clone()),
                            "included file",
                            Some(file.clone()),
                        ));
                    }
                    for env in strings(item.get("env_file")) {
                        out.push((path_of(env, &file_dir), "env file"));
                    }
                }
                _ => {}
            }
        }

        if let Some(Value::Mapping(map)) = doc.get("services") {
            for (name, service) in map {
                if let Some(name) = name.as_str() {
                    services.insert(name.to_owned());
                }
                if let Some(extends) = service.get("extends")
                    && let Some(other) = extends.get("file").and_then(Value::as_str)
                {
                    // Compose resolves the extended file's relative paths from its own directory.
                    let extended = path_of(other, &base);
                    let dir = extended.parent().map(Path::to_owned).unwrap_or_else(|| base.clone());
                    queue.push((extended, dir, "extended file", Some(file.clone())));
                }
                for (env, required) in env_file_paths(service.get("env_file")) {
                    let path = path_of(env, &base);
                    if !required {
                        optional.insert(path.clone());
                    }
                    out.push((path, "env_file"));
                }
                for volume in seq(service.get("volumes")) {
                    if let Some(source) = bind_source(volume, &vars) {
                        out.push((normalize(&base.join(source)), "bind mount"));
                    }
                }
                match service.get("build") {
                    Some(Value::String(context)) => {
                        let context = path_of(context, &base);
                        out.push((context.join("Dockerfile"), "Dockerfile"));
                        out.push((context, "build context"));
                    }
                    Some(build @ Value::Mapping(_)) => {
                        let context = path_of(build.get("context").and_then(Value::as_str).unwrap_or("."), &base);
                        let dockerfile = build.get("dockerfile").and_then(Value::as_str).unwrap_or("Dockerfile");
                        out.push((path_of(dockerfile, &context), "Dockerfile"));
                        out.push((context, "build context"));
                    }
                    _ => {}
                }
            }
        }
        for section in ["configs", "secrets"] {
            if let Some(Value::Mapping(map)) = doc.get(section) {
                for (_, item) in map {
                    if let Some(file) = item.get("file").and_then(Value::as_str) {
                        out.push((
                            path_of(file, &base),
                            if section == "configs" {
                                "config file"
                            } else {
                                "secret file"
                            },
                        ));
                    }
                }
            }
        }
        for (path, _) in &out[first_new..] {
            named_in.entry(path.clone()).or_insert_with(|| file.clone());
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    Ok(Inputs {
        paths: out,
        services,
        named_in,
        optional,
    })
}

fn seq(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value.and_then(Value::as_sequence).into_iter().flatten()
}

/// A string, or a list of strings.
fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Sequence(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// `env_file`: a string, a list of strings, or a list of `{path, required}`; each path with
/// whether it is required (compose's default: yes).
fn env_file_paths(value: Option<&Value>) -> Vec<(&str, bool)> {
    match value {
        Some(Value::String(s)) => vec![(s.as_str(), true)],
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(|item| {
                item.as_str().map(|s| (s, true)).or_else(|| {
                    let required = item.get("required").and_then(Value::as_bool).unwrap_or(true);
                    item.get("path").and_then(Value::as_str).map(|s| (s, required))
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The host side of a bind mount, interpolated: `./data:/data:ro` or `{type: bind, source: ./data}`.
/// Named volumes (`data:/data`) are not files of the repo. The short form is interpolated
/// before it is split, as `${DIR:-./x}:/data` holds a `:` of its own.
fn bind_source(volume: &Value, vars: &HashMap<String, String>) -> Option<String> {
    match volume {
        Value::String(spec) => {
            let spec = interpolate(spec, vars);
            let source = spec.split(':').next()?;
            (source.starts_with('.') || source.starts_with('/') || source.starts_with('~')).then(|| source.to_owned())
        }
        Value::Mapping(_) => (volume.get("type").and_then(Value::as_str) == Some("bind"))
            .then(|| volume.get("source")?.as_str().map(|s| interpolate(s, vars)))?,
        _ => None,
    }
}

/// Replace `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `$VAR` and `$$` as compose does.
pub fn interpolate(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(body) = rest.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                out.push_str("${");
                rest = body;
                continue;
            };
            let expr = &body[..end];
            rest = &body[end + 1..];
            let (name, default, unset_only) = if let Some((n, d)) = expr.split_once(":-") {
                (n, Some(d), false)
            } else if let Some((n, d)) = expr.split_once('-') {
                (n, Some(d), true)
            } else if let Some((n, _)) = expr.split_once(":?").or_else(|| expr.split_once('?')) {
                (n, None, false)
            } else {
                (expr, None, false)
            };
            match (vars.get(name), default) {
                (Some(v), Some(d)) if v.is_empty() && !unset_only => out.push_str(&interpolate(d, vars)),
                (Some(v), _) => out.push_str(v),
                (None, Some(d)) => out.push_str(&interpolate(d, vars)),
                (None, None) => {}
            }
        } else {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if len == 0 {
                out.push('$');
            } else {
                out.push_str(vars.get(&rest[..len]).map_or("", String::as_str));
            }
            rest = &rest[len..];
        }
    }
    out.push_str(rest);
    out
}

/// `KEY=value` lines of a `.env` file (comments, inline ` #` comments after unquoted values,
/// `export ` and quotes handled), as compose reads them.
pub fn parse_env(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (key, value) = line.split_once('=')?;
            let value = value.trim();
            let quoted = |q: char| value.strip_prefix(q).and_then(|v| v.find(q).map(|end| &v[..end]));
            let value = quoted('"').or_else(|| quoted('\'')).unwrap_or_else(|| {
                let comment = value
                    .char_indices()
                    .find(|&(i, c)| c == '#' && i > 0 && value[..i].ends_with([' ', '\t']))
                    .map_or(value.len(), |(i, _)| i);
                value[..comment].trim_end()
            });
            Some((key.trim().to_owned(), value.to_owned()))
        })
        .collect()
}

/// Resolve `.` and `..` without touching the filesystem (inputs may not exist yet).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Compose's project-name rule: lowercase, only `a-z0-9_-`, starting with a letter or digit.
pub fn normalize_project_name(name: &str) -> String {
    let lowered: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lowered.trim_start_matches(['_', '-']).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_follows_compose() {
        let vars: HashMap<String, String> = [("A".to_owned(), "x".to_owned()), ("E".to_owned(), String::new())]
            .into_iter()
            .collect();
        assert_eq!(interpolate("./${A}/f", &vars), "./x/f");
        assert_eq!(interpolate("$A-${B:-dflt}", &vars), "x-dflt");
        assert_eq!(interpolate("${E:-d}|${E-d}", &vars), "d|");
        assert_eq!(interpolate("$$A", &vars), "$A");
    }

    #[test]
    fn project_names_are_normalized() {
        assert_eq!(normalize_project_name("My Stack.v2"), "mystackv2");
        assert_eq!(normalize_project_name("_grafana"), "grafana");
    }

    #[test]
    fn env_files_parse_quotes_and_exports() {
        let vars = parse_env("# c\nexport A=1\nB=\"two words\"\nC='x' # c\n\nbad\nD=a#b # c\n");
        assert_eq!(
            vars,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "x".into()),
                ("D".into(), "a#b".into())
            ]
        );
    }

    #[test]
    fn follows_every_kind_of_input() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir_all(d.join("shared")).expect("mkdir");
        std::fs::write(d.join(".env"), "CONF=conf\n").expect("write");
        std::fs::write(
            d.join("compose.yaml"),
            r#"
include:
  - shared/common.yaml
  - path: [shared/long.yaml]
    env_file: shared/long.env
x-env: &env
  env_file: [app.env, {path: opt.env, required: false}]
services:
  app:
    <<: *env
    build: {context: ./img, dockerfile: Containerfile}
    volumes: ["./${CONF}:/etc/app:ro", "named:/data", {type: bind, source: ./more, target: /m}]
  base:
    extends: {file: base.yaml, service: b}
    build: ./img2
configs:
  c: {file: ./c.conf}
secrets:
  s: {file: ./s.txt}
"#,
        )
        .expect("write");
        std::fs::write(d.join("shared/common.yaml"), "services:\n  w:\n    env_file: w.env\n").expect("write");
        std::fs::write(d.join("shared/long.yaml"), "services: {}\n").expect("write");
        std::fs::write(d.join("base.yaml"), "services:\n  b:\n    image: x\n").expect("write");
        let found = inputs(d, &[d.join("compose.yaml")], &[d.join(".env")]).expect("inputs");
        let rel: Vec<String> = found
            .paths
            .iter()
            .map(|(p, _)| p.strip_prefix(d).expect("inside").display().to_string())
            .collect();
        for want in [
            ".env",
            "app.env",
            "opt.env",
            "img/Containerfile",
            "img",
            "img2/Dockerfile",
            "conf",
            "more",
            "base.yaml",
            "c.conf",
            "s.txt",
            "shared/common.yaml",
            "shared/w.env",
            "shared/long.yaml",
            "shared/long.env",
        ] {
            assert!(rel.contains(&want.to_owned()), "{want} missing from {rel:?}");
        }
        assert!(!rel.iter().any(|p| p.contains("named")), "{rel:?}");
        assert!(found.services.contains("app") && found.services.contains("w"));
    }
}
