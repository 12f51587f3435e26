//! `mirror-copy`'s command line: the clap definition that `main.rs` parses and that `cargo xtask man`
//! and `cargo xtask completions` render into the man page and the shell completions.

use clap::Parser;
use driftless_cli::CommonArgs;
use driftless_core::config::MirrorFrom;
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  mirror-copy /srv/lab --to /mnt/backup/lab       copy the working tree to a backup disk
  mirror-copy lab                                  use repos.lab.mirror from the config
  mirror-copy lab --to gdrive:Backups/lab          any rclone remote (runs the real rclone)
  mirror-copy lab --from commit                    exactly what is committed, no stray files
  mirror-copy lab --delete --max-delete 50         a true mirror, deleting at most 50 files
  mirror-copy --all --if-older-than 24h            hourly cron line that acts once a day

Default excludes: .git/** node_modules/** .terraform/** .tofu/** (rclone filter syntax;
--exclude and the config's `exclude:` add more).

Under systemd: systemctl enable --now mirror-copy@lab.timer
From cron:     0 * * * * root mirror-copy --all --quiet --if-older-than 24h

Exit codes: 0 copied or unchanged, 2 usage or config error, 3 refused (--max-delete would be
exceeded; nothing deleted), 74 local I/O failure (unreadable file, destination full),
75 temporary failure (destination missing, rclone remote unreachable, lock busy).";

/// Mirror a repo one way to a backup place: a local directory or an rclone remote.
///
/// By default the mirror gains and updates files and never loses any. Local copies are
/// written to a temp name and renamed, so a reader or a crash never sees a half file.
#[derive(Debug, Parser)]
#[command(name = "mirror-copy", version, after_help = EXAMPLES)]
pub struct Args {
    /// A repo name from the config, or the path of a checkout
    #[arg(value_name = "REPO|PATH", add = clap_complete::ArgValueCompleter::new(driftless_cli::complete_target), required_unless_present_any = ["all", "print_config"], conflicts_with = "all")]
    pub target: Option<String>,

    /// Mirror every repo that has a `mirror:` entry in the config
    #[arg(long)]
    pub all: bool,

    /// Destination: a local directory, or an rclone remote like `gdrive:Backups/lab`
    #[arg(long, value_name = "DEST", conflicts_with = "all")]
    pub to: Option<String>,

    /// What to copy: the working tree, or the tree of the committed HEAD
    #[arg(long, value_enum, value_name = "SOURCE")]
    pub from: Option<Source>,

    /// Also exclude paths matching GLOB (repeatable; rclone filter syntax)
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Delete from the mirror what the source no longer has
    #[arg(long)]
    pub delete: bool,

    /// With --delete: abort, deleting nothing, if more than N files would be deleted
    #[arg(long, value_name = "N", value_hint = clap::ValueHint::Other)]
    pub max_delete: Option<usize>,

    /// Compare file content instead of size and modification time
    #[arg(long)]
    pub checksum: bool,

    /// Leave symbolic links out instead of copying them as links
    #[arg(long)]
    pub skip_links: bool,

    /// Take modification times within SECONDS of each other as equal [default: 2 on FAT, exFAT
    /// and SMB destinations, which keep coarse times, else 0]
    #[arg(long, value_name = "SECONDS")]
    pub modify_window: Option<u64>,

    /// Leave permission bits out of the up-to-date check and go on when setting them fails (the
    /// default on FAT, exFAT and SMB destinations, which have none)
    #[arg(long)]
    pub no_perms: bool,

    /// Do nothing if the last successful mirror started less than DURATION ago (e.g. 24h),
    /// give or take a tenth of it (at most 5 min): hourly with 24h acts daily, at the same hour
    #[arg(long, value_name = "DURATION", value_hint = clap::ValueHint::Other, value_parser = driftless_core::time::parse_duration)]
    pub if_older_than: Option<Duration>,

    /// Wait up to SECONDS for another run on the same repo instead of exiting with 75
    #[arg(long, value_name = "SECONDS", value_hint = clap::ValueHint::Other, default_value_t = 0)]
    pub wait_lock: u64,

    /// Copy threads for a local destination [default: number of cores]
    #[arg(short, long, value_name = "N", value_hint = clap::ValueHint::Other)]
    pub jobs: Option<usize>,

    /// The rclone program to run for remote destinations
    #[arg(long, value_name = "PROGRAM", env = "DRIFTLESS_RCLONE", default_value = "rclone")]
    pub rclone: String,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// `--from`: the command line's names for [`MirrorFrom`], which the config owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// The checkout's working tree, local files included
    Worktree,
    /// The tree of the committed HEAD: exactly what is in git
    Commit,
}

impl From<Source> for MirrorFrom {
    fn from(source: Source) -> MirrorFrom {
        match source {
            Source::Worktree => MirrorFrom::Worktree,
            Source::Commit => MirrorFrom::Commit,
        }
    }
}
