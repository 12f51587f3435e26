//! `sync-repo`'s command line: the clap definition that `main.rs` parses and that `cargo xtask man`
//! and `cargo xtask completions` render into the man page and the shell completions.

use clap::Parser;
use driftless_cli::CommonArgs;

const EXAMPLES: &str = "\
Examples:
  sync-repo /srv/observability-hub        sync a checkout, no config needed
  sync-repo observability-hub             sync the repo named in /etc/driftless/driftless.yaml
  sync-repo --all --jobs 4                sync every configured repo (phase 2)
  sync-repo --dry-run --json hub          what would change, as JSON
  sync-repo --force hub                   take the remote state; local work is preserved
                                          under refs/driftless/preserved/<time>

Under systemd (one oneshot run per timer tick):
  systemctl enable --now sync-repo@observability-hub.timer
  systemctl start sync-repo@observability-hub.service     # run now, by hand
  journalctl -u sync-repo@observability-hub.service

From cron, on hosts without systemd:
  */5 * * * * root sync-repo --all --quiet

Exit codes: 0 in sync or updated, 2 usage or config error, 3 refused (a person must decide;
nothing was changed), 74 local I/O failure, 75 temporary failure (remote unreachable, lock
busy). With --all, the worst. See /usr/share/doc/driftless/exit-codes.md.";

/// Fetch a git repo and fast-forward its checkout, never losing local work.
///
/// Only the paths that changed are written. A checkout with modified tracked files, local
/// commits, a detached HEAD or an unfinished merge is refused with exit code 3 and the
/// commands that resolve it; --force takes the remote state after preserving all local work.
#[derive(Debug, Parser)]
#[command(name = "sync-repo", version, after_help = EXAMPLES)]
pub struct Args {
    /// A repo name from the config, or the path of a checkout
    #[arg(value_name = "REPO|PATH", add = clap_complete::ArgValueCompleter::new(driftless_cli::complete_target), required_unless_present_any = ["all", "print_config"], conflicts_with = "all")]
    pub target: Option<String>,

    /// Sync every repo in the config
    #[arg(long)]
    pub all: bool,

    /// With --all, how many repos to sync at once [default: number of cores]
    #[arg(short, long, value_name = "N", value_hint = clap::ValueHint::Other)]
    pub jobs: Option<usize>,

    /// Take the remote state even when refused, after preserving local commits and changes
    /// under refs/driftless/preserved/<time>
    #[arg(long)]
    pub force: bool,

    /// Wait up to SECONDS for another run on the same repo instead of exiting with 75
    #[arg(long, value_name = "SECONDS", value_hint = clap::ValueHint::Other, default_value_t = 0)]
    pub wait_lock: u64,

    /// Fetch from URL instead of the config's remote or the checkout's origin
    #[arg(long, value_name = "URL", value_hint = clap::ValueHint::Url, conflicts_with = "all")]
    pub remote: Option<String>,

    /// Follow BRANCH instead of the config's branch (default: main)
    #[arg(long, value_name = "BRANCH", value_hint = clap::ValueHint::Other, conflicts_with = "all", value_parser = branch_name)]
    pub branch: Option<String>,

    /// Also check out the new commit in populated submodules whose recorded commit moved
    /// (detached, recursively), as `git pull --recurse-submodules` does; the config's
    /// `submodules: recurse` does the same for a repo on every run
    #[arg(long)]
    pub recurse_submodules: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// `--branch` is checked with git's ref-name rules before anything runs (exit 2).
fn branch_name(text: &str) -> Result<String, String> {
    match driftless_core::git::branch_name_error(text) {
        Some(rule) => Err(format!("`{text}` is not a branch name: {rule}")),
        None => Ok(text.to_owned()),
    }
}
