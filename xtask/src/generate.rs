//! `cargo xtask man` and `cargo xtask completions`: man pages and shell completions rendered from
//! each tool's clap definition (`crates/<tool>/src/cli.rs`) into docs/man and docs/completions,
//! committed so a host can install them without cargo; `--check` fails when they are stale.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::error::{Context, Result, bail};
use crate::workspace;

/// The installed programs, in the order their pages are listed.
pub const TOOLS: [&str; 6] = [
    "sync-repo",
    "apply-compose",
    "mirror-copy",
    "drift-check",
    "driftless-notify",
    "driftless-hook",
];

fn command(tool: &str) -> clap::Command {
    match tool {
        "sync-repo" => sync_repo::cli::Args::command(),
        "apply-compose" => apply_compose::cli::Args::command(),
        "mirror-copy" => mirror_copy::cli::Args::command(),
        "drift-check" => drift_check::cli::Args::command(),
        "driftless-hook" => driftless_hook::cli::Args::command(),
        _ => driftless_notify::cli::Args::command(),
    }
}

/// Every generated page: `docs/man/TOOL.1` for each tool and `driftless.yaml.5`, plus
/// docs/config.md (the same reference as the page), each with its path relative to the
/// workspace root.
pub fn man_pages() -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    for tool in TOOLS {
        files.push((PathBuf::from(format!("docs/man/{tool}.1")), man_page(tool)?));
    }
    files.extend(crate::config_ref::files()?);
    Ok(files)
}

/// Where the docs are installed (by the package; `make install` uses /usr/local/share/doc).
const DOC_DIR: &str = "/usr/share/doc/driftless";

/// Exit codes, the tools that use each, and what it means (docs/exit-codes.md has the table).
const EXIT_CODES: [(u8, &[&str], &str); 7] = [
    (
        0,
        &[],
        "Success: in sync, updated, applied, copied, no drift, report sent.",
    ),
    (1, &["drift-check"], "Drift found."),
    (
        2,
        &[],
        "The command line or the config is wrong (also: compose missing); fix it and run again.",
    ),
    (
        3,
        &["sync-repo", "apply-compose", "mirror-copy"],
        "Refused: a person has to decide; nothing was changed.",
    ),
    (
        65,
        &["apply-compose"],
        "A stack's compose failed; its state was not advanced and the next run retries.",
    ),
    (
        74,
        &["sync-repo", "apply-compose", "mirror-copy"],
        "A local I/O failure (disk full, permission denied); running again recovers.",
    ),
    (
        75,
        &[],
        "A temporary failure (remote or engine unreachable, lock busy); the next run may succeed.",
    ),
];

fn roff(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

/// One tool's page: clap's NAME, SYNOPSIS, DESCRIPTION and OPTIONS, then EXIT STATUS, FILES,
/// ENVIRONMENT, EXAMPLES (the `--help` examples, preformatted as written) and SEE ALSO.
fn man_page(tool: &str) -> Result<Vec<u8>> {
    let cmd = command(tool);
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render_title(&mut page)
        .with_context(|| format!("rendering the man page of {tool}"))?;
    man.render_name_section(&mut page)
        .with_context(|| format!("rendering the man page of {tool}"))?;
    man.render_synopsis_section(&mut page)
        .with_context(|| format!("rendering the man page of {tool}"))?;
    man.render_description_section(&mut page)
        .with_context(|| format!("rendering the man page of {tool}"))?;
    man.render_options_section(&mut page)
        .with_context(|| format!("rendering the man page of {tool}"))?;
    let mut text = String::from(".SH \"EXIT STATUS\"\n");
    for (code, tools, meaning) in EXIT_CODES {
        if tools.is_empty() || tools.contains(&tool) {
            text.push_str(&format!(".TP\n\\fB{code}\\fR\n{}\n", roff(meaning)));
        }
    }
    text.push_str(&format!(
        ".PP\nWith several repos, the worst outcome. The full table: {}/exit\\-codes.md.\n",
        roff(DOC_DIR)
    ));
    text.push_str(&format!(
        ".SH FILES\n.TP\n/etc/driftless/driftless.yaml\nThe config, see \\fBdriftless.yaml\\fR(5); may be absent for a run on a checkout path.\n.TP\n/var/lib/driftless\nState: locks and each tool's last run per repo (\\fB$STATE_DIRECTORY\\fR under systemd).\n.TP\n/lib/systemd/system/{0}@.service\nThe unit (/usr/local/lib/systemd/system after \\fBmake install\\fR); /etc/cron.d/driftless where there is no systemd.\n.TP\n{1}\nREADME.md, rollout.md, runbook.md, exit\\-codes.md, config.md.\n",
        roff(tool),
        roff(DOC_DIR)
    ));
    text.push_str(".SH ENVIRONMENT\n.TP\nDRIFTLESS_CONFIG\nThe config file, as \\fB\\-\\-config\\fR.\n.TP\nDRIFTLESS_LOG\nLog filter for stderr (error, warn, info, debug, trace, or tracing directives); overrides \\fB\\-v\\fR and \\fB\\-q\\fR.\n.TP\nSTATE_DIRECTORY\nThe state directory systemd gives the unit (\\fBStateDirectory=\\fR); \\fB\\-\\-state\\-dir\\fR wins.\n.TP\nJOURNAL_STREAM\nSet by systemd: logs without colours and timestamps, at info level.\n");
    if cmd.get_arguments().any(|a| a.get_id() == "rclone") {
        text.push_str(".TP\nDRIFTLESS_RCLONE\nThe rclone program, as \\fB\\-\\-rclone\\fR.\n");
    }
    let help = cmd.get_after_help().map(ToString::to_string).unwrap_or_default();
    let examples = help.split("\n\nExit codes:").next().unwrap_or_default();
    let examples = examples.split("Exit codes:").next().unwrap_or_default();
    text.push_str(".SH EXAMPLES\n.nf\n");
    for line in examples.trim_end().lines().filter(|l| !l.starts_with("Examples:")) {
        text.push_str(&roff(line));
        text.push('\n');
    }
    text.push_str(".fi\n.SH \"SEE ALSO\"\n");
    let others: Vec<String> = TOOLS
        .iter()
        .filter(|t| **t != tool)
        .map(|t| format!("\\fB{}\\fR(1)", roff(t)))
        .chain([
            "\\fBdriftless.yaml\\fR(5)".to_owned(),
            "\\fBsystemd.timer\\fR(5)".to_owned(),
        ])
        .collect();
    text.push_str(&others.join(", "));
    text.push_str(&format!(
        "\n.PP\nThe rollout, runbook and exit codes: {}.\n",
        roff(DOC_DIR)
    ));
    page.extend_from_slice(text.as_bytes());
    Ok(page)
}

/// Every completion file: `docs/completions/<tool>.bash`, `_<tool>` (zsh), `<tool>.fish`.
///
/// Each is the small script clap's dynamic completion registers: on TAB the shell runs the
/// installed tool itself (with `DRIFTLESS_COMPLETE=<shell>`), which answers from its own clap
/// definition and the config, so repo names come from /etc/driftless/driftless.yaml and an
/// option that takes a number, a duration or a branch offers nothing rather than file names.
pub fn completions() -> Vec<(PathBuf, Vec<u8>)> {
    use clap_complete::env::EnvCompleter;
    let shells: [(Shell, &dyn EnvCompleter); 3] = [
        (Shell::Bash, &clap_complete::env::Bash),
        (Shell::Zsh, &clap_complete::env::Zsh),
        (Shell::Fish, &clap_complete::env::Fish),
    ];
    let mut files = Vec::new();
    for tool in TOOLS {
        for (shell, completer) in shells {
            let mut text = Vec::new();
            completer
                .write_registration(driftless_cli::COMPLETE_VAR, tool, tool, tool, &mut text)
                .unwrap_or_else(|e| unreachable!("writing to a Vec cannot fail: {e}"));
            if shell == Shell::Zsh {
                text.extend_from_slice(zsh_autoload_bridge(tool).as_bytes());
            }
            files.push((
                PathBuf::from("docs/completions").join(completion_name(tool, shell)),
                text,
            ));
        }
    }
    files
}

/// What clap_complete's zsh script lacks when installed where zsh autoloads it (the package's
/// vendor-completions, `make install`'s site-functions): there the file's body runs as `_TOOL`
/// on the first TAB, and the script only registers its completer then, so that TAB offered
/// nothing. Run as `_TOOL`, it completes too; sourced, it only registers, as before.
fn zsh_autoload_bridge(tool: &str) -> String {
    let completer = format!("_clap_dynamic_completer_{}", tool.replace('-', "_"));
    format!(
        "\n# Autoloaded from fpath as _{tool} on the first TAB: complete now, not only register.\n\
         if [[ ${{funcstack[1]}} == _{tool} ]]; then\n    {completer} \"$@\"\nfi\n"
    )
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
    fn every_page_names_its_tool_and_has_every_section() -> Result<()> {
        let pages = man_pages()?;
        for tool in TOOLS {
            let path = PathBuf::from(format!("docs/man/{tool}.1"));
            let (_, page) = pages.iter().find(|(p, _)| *p == path).expect("a page per tool");
            let text = String::from_utf8_lossy(page);
            assert!(text.contains(&format!(".TH {tool} 1")), "{tool}: {text:.200}");
            for section in [
                ".SH NAME",
                ".SH SYNOPSIS",
                ".SH DESCRIPTION",
                ".SH OPTIONS",
                ".SH \"EXIT STATUS\"",
                ".SH FILES",
                ".SH ENVIRONMENT",
                ".SH EXAMPLES\n.nf\n",
                ".SH \"SEE ALSO\"",
            ] {
                assert!(text.contains(section), "{tool}: no {section:?}");
            }
            assert!(text.contains(DOC_DIR), "{tool}: no pointer to the installed docs");
            assert!(
                !text.contains(".SH EXTRA"),
                "{tool}: the examples are not re-wrapped clap text"
            );
        }
        let (_, page) = pages
            .iter()
            .find(|(p, _)| p.ends_with("driftless.yaml.5"))
            .expect("driftless.yaml(5)");
        assert!(String::from_utf8_lossy(page).contains(".TH driftless.yaml 5"));
        Ok(())
    }
}
