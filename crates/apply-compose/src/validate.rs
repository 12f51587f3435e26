//! `apply-compose --validate`: which repos to check, and the `FILE:LINE: message` lines (or
//! `--json` objects) and count it prints. The checks are `driftless_core::compose::validate`.

use std::path::{Path, PathBuf};

use apply_compose::cli::Args;
use driftless_cli::{Detail, looks_like_path};
use driftless_core::compose::runner::Compose;
use driftless_core::compose::{Target, validate};
use driftless_core::config::Config;
use driftless_core::exit::Exit;

/// Check the target's stacks (or every configured repo's, or the current directory's); exit 1
/// when any problem is found.
pub fn run(args: &Args) -> Result<Exit, Box<dyn std::error::Error>> {
    let text = args.target.as_deref();
    let path_run = !args.all && text.is_none_or(looks_like_path);
    let (config, _state) = args.common.load_for("apply-compose", path_run)?;
    let configured = || -> Vec<(Target, Option<usize>)> {
        config
            .repos
            .iter()
            .filter(|(_, r)| !r.stacks.is_empty())
            .map(|(n, r)| {
                (
                    Target::configured(n, r),
                    r.validate.max_depth.or(config.validate.max_depth),
                )
            })
            .collect()
    };
    let targets = match text {
        None if args.all || config.repos.values().any(|r| !r.stacks.is_empty()) => configured(),
        None => vec![by_path(Path::new("."), &config)?],
        Some(text) if looks_like_path(text) => vec![by_path(Path::new(text), &config)?],
        Some(name) => {
            let repo = config.repo(name)?;
            if repo.stacks.is_empty() {
                return Err(format!("repos.{name} has no `stacks:` to validate").into());
            }
            vec![(
                Target::configured(name, repo),
                repo.validate.max_depth.or(config.validate.max_depth),
            )]
        }
    };
    if targets.is_empty() {
        return Err("--all: no repo in the config has `stacks:`".into());
    }

    let mut out = args.common.output();
    let compose = Compose::from_flag_or_config(args.compose_command.as_deref(), &config)?;
    let compose = match compose.check_installed() {
        Ok(()) => Some(compose),
        Err(err) => {
            out.note(&format!(
                "apply-compose: warning: {err}\n  the `compose config` check is skipped; the others ran"
            ));
            None
        }
    };
    let cwd = std::env::current_dir().ok().and_then(|d| std::fs::canonicalize(d).ok());
    let (mut stacks, mut problems) = (0, 0);
    for (target, max_depth) in &targets {
        let options = validate::Options {
            max_depth: *max_depth,
            compose: compose.as_ref(),
        };
        let found = validate::validate(&target.path, &target.stacks, &options);
        stacks += found.stacks;
        problems += found.problems.len();
        for problem in &found.problems {
            let file = shown(cwd.as_deref(), &problem.file);
            if args.common.json {
                let record = serde_json::json!({"file": file, "line": problem.line, "message": problem.message});
                out.line(&record.to_string());
            } else {
                out.line(&format!("{file}:{}: {}", problem.line, problem.message));
            }
        }
    }
    if args.common.json {
        out.line(&serde_json::json!({"stacks": stacks, "problems": problems}).to_string());
    } else if problems > 0 || out.detail() != Detail::Quiet {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        out.line(&format!(
            "{} checked, {}",
            plural(stacks, "stack"),
            plural(problems, "problem")
        ));
    }
    Ok(if problems > 0 { Exit::Drift } else { Exit::Ok })
}

/// A checkout by path, with the `max_depth` of its config entry (or the top-level one).
fn by_path(path: &Path, config: &Config) -> Result<(Target, Option<usize>), Box<dyn std::error::Error>> {
    if !path.is_dir() {
        return Err(format!("{} is not a directory", path.display()).into());
    }
    let depth = config
        .repo_name_for_path(path)
        .and_then(|name| config.repos[name].validate.max_depth)
        .or(config.validate.max_depth);
    Ok((Target::from_path(path, config), depth))
}

/// `file` relative to the current directory when it is below it (what an editor or CI log
/// links), else absolute.
fn shown(cwd: Option<&Path>, file: &Path) -> String {
    cwd.and_then(|cwd| file.strip_prefix(cwd).ok())
        .filter(|rel| !rel.as_os_str().is_empty())
        .map_or_else(|| file.to_owned(), PathBuf::from)
        .display()
        .to_string()
}
