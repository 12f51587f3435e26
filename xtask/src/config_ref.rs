//! The config reference, docs/config.md and `driftless.yaml(5)`, generated from the source of
//! the config types (`crates/driftless-core/src/config.rs`: each field's name, type, serde
//! default and `///` text) with each key's example taken from the sample config
//! (`units/driftless.yaml`), so neither can drift from what the tools accept.

use std::path::PathBuf;

use crate::error::{Result, bail};
use crate::workspace;

/// The structs of the file, each with where its keys live.
const SECTIONS: [(&str, &str, &str); 8] = [
    ("Config", "", "Top level"),
    ("NotifyConfig", "notify.", "notify"),
    ("RepoConfig", "repos.NAME.", "repos.NAME"),
    (
        "StackConfig",
        "repos.NAME.stacks[].",
        "repos.NAME.stacks (a stack with options)",
    ),
    ("MirrorConfig", "repos.NAME.mirror.", "repos.NAME.mirror"),
    ("InputsConfig", "repos.NAME.inputs.", "repos.NAME.inputs"),
    (
        "ValidateConfig",
        "validate.",
        "validate (top level, or repos.NAME.validate for one repo)",
    ),
    (
        "VerifyConfig",
        "verify.",
        "verify (top level, or repos.NAME.verify for one repo)",
    ),
];

/// One key of the config file.
#[derive(Debug)]
pub struct Key {
    pub path: String,
    pub kind: String,
    pub default: String,
    pub doc: String,
    pub example: Option<String>,
}

/// Every key, section by section: (section title, keys).
pub fn keys() -> Result<Vec<(&'static str, Vec<Key>)>> {
    let root = workspace::root();
    let source = read(&root.join("crates/driftless-core/src/config.rs"))?;
    let sample = read(&root.join("units/driftless.yaml"))?;
    let mut sections = Vec::new();
    for (name, prefix, title) in SECTIONS {
        let fields = fields(&source, name)?;
        let mut keys = Vec::new();
        for field in fields {
            let (kind, required) = kind(&source, &field.ty);
            let default = if required {
                "required".to_owned()
            } else if field.ty.starts_with("Option<") {
                "unset".to_owned()
            } else {
                serde_default(&source, &field.ty)
            };
            keys.push(Key {
                path: format!("{prefix}{}", field.name),
                kind,
                default,
                doc: field.doc,
                example: example(&sample, &field.name),
            });
        }
        sections.push((title, keys));
    }
    Ok(sections)
}

fn read(path: &std::path::Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) => bail!("reading {}: {e}", path.display()),
    }
}

struct Field {
    name: String,
    ty: String,
    doc: String,
}

/// The serialized fields of `pub struct NAME` with their `///` text (`#[serde(skip)]` left out).
fn fields(source: &str, name: &str) -> Result<Vec<Field>> {
    let start = format!("pub struct {name} {{");
    let Some(at) = source.find(&start) else {
        bail!("config.rs has no `{start}`");
    };
    let body = &source[at + start.len()..];
    let body = &body[..body.find("\n}").unwrap_or(body.len())];
    let mut fields = Vec::new();
    let mut doc = Vec::new();
    let mut skip = false;
    for line in body.lines().map(str::trim) {
        if let Some(text) = line.strip_prefix("///") {
            doc.push(text.trim().to_owned());
        } else if line.starts_with("#[serde(skip") {
            skip = true;
        } else if let Some(rest) = line.strip_prefix("pub ") {
            let (field, ty) = rest.split_once(':').unwrap_or((rest, ""));
            if !skip {
                fields.push(Field {
                    name: field.trim().to_owned(),
                    ty: ty.trim().trim_end_matches(',').to_owned(),
                    doc: doc.join(" "),
                });
            }
            doc.clear();
            skip = false;
        }
    }
    Ok(fields)
}

/// A Rust field type as a config value type, and whether the key is required.
fn kind(source: &str, ty: &str) -> (String, bool) {
    if let Some(inner) = ty.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')) {
        return (kind(source, inner).0, false);
    }
    let text = match ty {
        "PathBuf" => "absolute path".to_owned(),
        "String" => "string".to_owned(),
        "bool" => "boolean".to_owned(),
        "usize" | "u64" => "integer".to_owned(),
        "Vec<String>" => "list of strings".to_owned(),
        "BTreeMap<String, RepoConfig>" => "mapping of repo names to repo entries".to_owned(),
        "Vec<StackEntry>" => "list: globs of stack directories, or stacks with options".to_owned(),
        "NotifyConfig" | "MirrorConfig" | "InputsConfig" | "ValidateConfig" | "VerifyConfig" => {
            "mapping (below)".to_owned()
        }
        other => {
            let name = other.rsplit("::").next().unwrap_or(other);
            match variants(source, name) {
                Some(values) => format!("one of {}", values.join(", ")),
                None => other.to_owned(),
            }
        }
    };
    // Required: a plain field without `#[serde(default)]`, as `path` and `to`.
    let required = matches!(ty, "PathBuf" | "String");
    (text, required)
}

/// The values of `pub enum NAME` in config.rs, as serde spells them (snake_case, or
/// kebab-case where the enum says `rename_all = "kebab-case"`).
fn variants(source: &str, name: &str) -> Option<Vec<String>> {
    let start = format!("pub enum {name} {{");
    let at = source.find(&start)?;
    let body = &source[at + start.len()..];
    let body = &body[..body.find("\n}")?];
    let values = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//") && !l.starts_with('#') && !l.is_empty())
        .map(|l| spelled(source, at, l.trim_end_matches(',')))
        .collect();
    Some(values)
}

/// `variant` as serde spells it, for the enum declared at `at`: its attribute line (just
/// above) says kebab-case or, by default here, snake_case.
fn spelled(source: &str, at: usize, variant: &str) -> String {
    let attributes = source[..at].rsplit("\n\n").next().unwrap_or_default();
    let snake = snake(variant);
    if attributes.contains("rename_all = \"kebab-case\"") {
        snake.replace('_', "-")
    } else {
        snake
    }
}

/// The `#[default]` value of an enum, `false` for a flag, `[]` for a list.
fn serde_default(source: &str, ty: &str) -> String {
    match ty {
        "bool" => "false".to_owned(),
        t if t.starts_with("Vec<") => "none".to_owned(),
        t if t.starts_with("BTreeMap<") => "none".to_owned(),
        // A block whose own keys all default to nothing.
        "InputsConfig" | "ValidateConfig" => "empty".to_owned(),
        other => {
            let name = other.rsplit("::").next().unwrap_or(other);
            enum_default(source, name).unwrap_or_else(|| "see the text".to_owned())
        }
    }
}

fn enum_default(source: &str, name: &str) -> Option<String> {
    let start = format!("pub enum {name} {{");
    let body = &source[source.find(&start)? + start.len()..];
    let after = &body[body.find("#[default]")? + "#[default]".len()..];
    let variant = after.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(spelled(source, source.find(&start)?, variant.trim_end_matches(',')))
}

fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The value the sample config gives `key` (its first `#  key: value` line), or `(below)` for a
/// key whose value is the block under it.
fn example(sample: &str, key: &str) -> Option<String> {
    sample.lines().find_map(|line| {
        let setting = line.strip_prefix('#')?;
        if setting.starts_with(' ') && !setting.starts_with("  ") {
            return None;
        }
        let rest = setting.trim_start().strip_prefix("- ").unwrap_or(setting.trim_start());
        let value = rest.strip_prefix(key)?.strip_prefix(':')?;
        let value = value.trim();
        Some(if value.is_empty() {
            "(the block below it)".to_owned()
        } else {
            value.to_owned()
        })
    })
}

/// docs/config.md and docs/man/driftless.yaml.5.
pub fn files() -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let sections = keys()?;
    for (_, keys) in &sections {
        if let Some(key) = keys.iter().find(|k| k.example.is_none()) {
            bail!("units/driftless.yaml has no example of `{}`: add one", key.path);
        }
    }
    Ok(vec![
        (PathBuf::from("docs/config.md"), markdown(&sections).into_bytes()),
        (PathBuf::from("docs/man/driftless.yaml.5"), roff(&sections).into_bytes()),
    ])
}

const INTRO: &str = "The one config file every driftless tool reads: /etc/driftless/driftless.yaml, or the file named by --config or DRIFTLESS_CONFIG. It may be absent: every tool works on a checkout path given on its command line without it. Unknown keys are rejected with the file, line and column, so a typo cannot silently turn a feature off. A run on a checkout path given on the command line needs no config: there a broken config is a warning and the run goes on. `TOOL --print-config` prints the effective config, with every default filled in. A commented sample with every key is installed as the config file (units/driftless.yaml in the source).";

fn markdown(sections: &[(&str, Vec<Key>)]) -> String {
    let mut out = String::from(
        "<!-- Generated by `cargo xtask man` from crates/driftless-core/src/config.rs and units/driftless.yaml; do not edit. -->\n# driftless.yaml: the config reference\n\n",
    );
    out.push_str(INTRO);
    out.push_str("\n\nDurations (`max_sync_age`, `max_age`) are a number and a unit: `90s`, `30m`, `1h`, `2d`.\n");
    for (title, keys) in sections {
        out.push_str(&format!(
            "\n## {title}\n\n| key | type | default | example | meaning |\n|---|---|---|---|---|\n"
        ));
        for key in keys {
            let example = key.example.as_deref().unwrap_or_default().replace('|', "\\|");
            let example = if example.starts_with('(') {
                example
            } else {
                format!("`{example}`")
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | {example} | {} |\n",
                key.path,
                key.kind,
                key.default,
                unlink(&key.doc).replace('|', "\\|")
            ));
        }
    }
    out.push_str("\nSee also: sync-repo(1), apply-compose(1), mirror-copy(1), drift-check(1), driftless-notify(1).\n");
    out
}

/// Rustdoc links (`[`DEFAULT_BRANCH`]`) as plain code.
fn unlink(text: &str) -> String {
    text.replace("([`DEFAULT_BRANCH`])", "")
        .replace("[`", "`")
        .replace("`]", "`")
        .replace("  ", " ")
}

fn roff_escape(text: &str) -> String {
    unlink(text).replace('\\', "\\e").replace('-', "\\-").replace('`', "")
}

fn roff(sections: &[(&str, Vec<Key>)]) -> String {
    let sample = std::fs::read_to_string(workspace::root().join("units/driftless.yaml")).unwrap_or_default();
    let mut out = format!(
        ".TH driftless.yaml 5 \"driftless {}\"\n.SH NAME\ndriftless.yaml \\- the config file of the driftless tools\n.SH SYNOPSIS\n/etc/driftless/driftless.yaml\n.SH DESCRIPTION\n{}\n.PP\nDurations (max_sync_age, max_age) are a number and a unit: 90s, 30m, 1h, 2d.\n",
        env!("CARGO_PKG_VERSION"),
        roff_escape(INTRO)
    );
    for (title, keys) in sections {
        out.push_str(&format!(".SH {}\n", roff_escape(&title.to_uppercase())));
        for key in keys {
            out.push_str(&format!(
                ".TP\n\\fB{}\\fR (\\fI{}\\fR; default: {}; example: {})\n{}\n",
                roff_escape(&key.path),
                roff_escape(&key.kind),
                roff_escape(&key.default),
                roff_escape(key.example.as_deref().unwrap_or_default()),
                roff_escape(&key.doc)
            ));
        }
    }
    out.push_str(".SH EXAMPLES\nThe sample installed as the config file (each setting commented out):\n.PP\n.nf\n");
    for line in sample.lines() {
        out.push_str(&roff_escape(line));
        out.push('\n');
    }
    out.push_str(".fi\n.SH FILES\n/etc/driftless/driftless.yaml\n.SH SEE ALSO\n\\fBsync\\-repo\\fR(1), \\fBapply\\-compose\\fR(1), \\fBmirror\\-copy\\fR(1), \\fBdrift\\-check\\fR(1), \\fBdriftless\\-notify\\fR(1)\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of every config struct has a row, and the sample config shows each one.
    #[test]
    fn every_key_is_documented_with_an_example() -> Result<()> {
        let sections = keys()?;
        let all: Vec<&Key> = sections.iter().flat_map(|(_, k)| k).collect();
        for path in [
            "state_dir",
            "notify.format",
            "repos.NAME.path",
            "repos.NAME.stacks[].wait_timeout",
            "repos.NAME.mirror.links",
        ] {
            assert!(all.iter().any(|k| k.path == path), "no row for {path}");
        }
        for key in &all {
            assert!(
                key.example.is_some(),
                "no example of {} in units/driftless.yaml",
                key.path
            );
            assert!(!key.doc.is_empty(), "{} has no /// text in config.rs", key.path);
        }
        let links = all.iter().find(|k| k.path == "repos.NAME.mirror.links").expect("links");
        assert_eq!(
            (links.kind.as_str(), links.default.as_str()),
            ("one of copy, skip", "copy")
        );
        let path = all.iter().find(|k| k.path == "repos.NAME.path").expect("path");
        assert_eq!(path.default, "required");
        Ok(())
    }
}
