//! `cargo xtask man` and `cargo xtask completions`: man pages and shell completions rendered from
//! each tool's clap definition (`crates/<tool>/src/cli.rs`) into docs/man and docs/completions,
//! committed so a host can install them without cargo; `--check` fails when they are stale.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::error::{Context, Result, bail};
use crate::workspace;

/// The installed programs, in the order their pages are listed.
pub const TOOLS: [&str; 5] = [
    "sync-repo",
    "apply-compose",
    "mirror-copy",
    "drift-check",
    "driftless-notify",
];

/// The shells completions are generated for.
const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

fn command(tool: &str) -> clap::Command {
    match tool {
        "sync-repo" => sync_repo::cli::Args::command(),
        "apply-compose" => apply_compose::cli::Args::command(),
        "mirror-copy" => mirror_copy::cli::Args::command(),
        "drift-check" => drift_check::cli::Args::command(),
        _ => driftless_notify::cli::Args::command(),
    }
}

/// Every generated file: its path relative to the workspace root and its content.
pub fn man_pages() -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    for tool in TOOLS {
        let mut page = Vec::new();
        clap_mangen::Man::new(command(tool))
            .render(&mut page)
            .with_context(|| format!("rendering the man page of {tool}"))?;
        files.push((PathBuf::from(format!("docs/man/{tool}.1")), page));
    }
    Ok(files)
}

/// Every completion file: `docs/completions/<tool>.bash`, `_<tool>` (zsh), `<tool>.fish`.
pub fn completions() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for tool in TOOLS {
        for shell in SHELLS {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut command(tool), tool, &mut text);
            files.push((
                PathBuf::from("docs/completions").join(completion_name(tool, shell)),
                text,
            ));
        }
    }
    files
}

/// The file name a completion is committed and installed under.
pub fn completion_name(tool: &str, shell: Shell) -> String {
    match shell {
        Shell::Zsh => format!("_{tool}"),
        Shell::Fish => format!("{tool}.fish"),
        _ => format!("{tool}.bash"),
    }
}

/// Write `files` below the workspace root, or with `check` only compare and fail on a difference.
pub fn write_or_check(what: &str, files: &[(PathBuf, Vec<u8>)], check: bool) -> Result<()> {
    let root = workspace::root();
    let stale = stale_files(&root, files);
    if check {
        if !stale.is_empty() {
            bail!(
                "{what}: generated files are stale: {}; run `cargo xtask {what}` and commit the result",
                stale.join(", ")
            );
        }
        println!("{what}: {} files up to date", files.len());
        return Ok(());
    }
    for (rel, content) in files {
        let path = root.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{what}: wrote {} files ({} changed)", files.len(), stale.len());
    Ok(())
}

/// The files under `root` that differ from what `files` says they should hold.
fn stale_files(root: &Path, files: &[(PathBuf, Vec<u8>)]) -> Vec<String> {
    files
        .iter()
        .filter(|(rel, content)| std::fs::read(root.join(rel)).ok().as_ref() != Some(content))
        .map(|(rel, _)| rel.display().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails when a tool's `--help` changed but docs/man or docs/completions were not regenerated.
    #[test]
    fn committed_man_pages_and_completions_are_fresh() -> Result<()> {
        let mut files = man_pages()?;
        files.extend(completions());
        let stale = stale_files(&workspace::root(), &files);
        assert!(
            stale.is_empty(),
            "stale generated files: {stale:?}; run `cargo xtask man && cargo xtask completions`"
        );
        Ok(())
    }

    #[test]
    fn every_page_names_its_tool() -> Result<()> {
        for (path, page) in man_pages()? {
            let text = String::from_utf8_lossy(&page);
            let tool = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            assert!(
                text.contains(&format!(".TH {tool} 1")),
                "{}: {text:.200}",
                path.display()
            );
        }
        Ok(())
    }
}
