//! `drift-check`'s command line: the clap definition that `main.rs` parses and that `cargo xtask man`
//! and `cargo xtask completions` render into the man page and the shell completions.

use clap::Parser;
use driftless_cli::CommonArgs;
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  drift-check                                  every configured repo
  drift-check observability-hub --all-items    one repo, listing what is fine too
  drift-check /srv/lab --no-fetch              a checkout, against the last fetched refs
  drift-check -n                               no remote asked, no metrics written
  drift-check --deep --json                    compare mirror content too, as JSON
  drift-check --metrics-dir /var/lib/prometheus/node-exporter

Under systemd: systemctl enable --now drift-check@observability-hub.timer
Drift makes the unit fail (exit 1) and so fires the OnFailure notifier; to make drift a
warning only, add `SuccessExitStatus=1` in a drop-in (runbook.md in /usr/share/doc/driftless).

Exit codes: 0 no drift, 1 drift found, 2 usage or config error (also a path that is not a
git checkout), 74 the metrics could not be written (the report is still printed), 75 a part
could not be checked (remote unreachable, docker down) and no drift was found elsewhere.";

/// Compare what git says with what runs, and report every difference with its fix.
#[derive(Debug, Parser)]
#[command(name = "drift-check", version, after_help = EXAMPLES)]
pub struct Args {
    /// A repo name from the config, or the path of a checkout [default: every configured repo]
    #[arg(value_name = "REPO|PATH", add = clap_complete::ArgValueCompleter::new(driftless_cli::complete_target))]
    pub target: Option<String>,

    /// Use the last fetched refs instead of asking the remote
    #[arg(long)]
    pub no_fetch: bool,

    /// Also compare the mirror's content (file list and sizes, or `rclone check --one-way`)
    #[arg(long)]
    pub deep: bool,

    /// Write one Prometheus textfile per checked repo, driftless-REPO.prom, into DIR, and remove
    /// those of repos no longer configured [default: the config's metrics_dir]
    #[arg(long, value_name = "DIR")]
    pub metrics_dir: Option<PathBuf>,

    /// List every check in the table, not only what drifted
    #[arg(long)]
    pub all_items: bool,

    /// The compose command [default: from the config, else `docker compose`]
    #[arg(long, value_name = "COMMAND")]
    pub compose_command: Option<String>,

    /// The rclone program, for --deep on a remote mirror
    #[arg(long, value_name = "PROGRAM", env = "DRIFTLESS_RCLONE", default_value = "rclone")]
    pub rclone: String,

    #[command(flatten)]
    pub common: CommonArgs,
}
