//! `mirror-copy`: a one-way mirror of a repo to a backup place, fast and never destructive.
//!
//! Thin by design: parse arguments, call `driftless_core::mirror`, print, map to an exit code.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use driftless_core::cli::{CommonArgs, looks_like_path};
use driftless_core::config::MirrorFrom;
use driftless_core::exit::Exit;
use driftless_core::mirror::local::Links;
use driftless_core::mirror::{self, Options, Request};

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
struct Args {
    /// A repo name from the config, or the path of a checkout
    #[arg(value_name = "REPO|PATH", required_unless_present = "all", conflicts_with = "all")]
    target: Option<String>,

    /// Mirror every repo that has a `mirror:` entry in the config
    #[arg(long)]
    all: bool,

    /// Destination: a local directory, or an rclone remote like `gdrive:Backups/lab`
    #[arg(long, value_name = "DEST", conflicts_with = "all")]
    to: Option<String>,

    /// What to copy: the working tree, or the tree of the committed HEAD
    #[arg(long, value_enum, value_name = "SOURCE")]
    from: Option<MirrorFrom>,

    /// Also exclude paths matching GLOB (repeatable; rclone filter syntax)
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,

    /// Delete from the mirror what the source no longer has
    #[arg(long)]
    delete: bool,

    /// With --delete: abort, deleting nothing, if more than N files would be deleted
    #[arg(long, value_name = "N")]
    max_delete: Option<usize>,

    /// Compare file content instead of size and modification time
    #[arg(long)]
    checksum: bool,

    /// Leave symbolic links out instead of copying them as links
    #[arg(long)]
    skip_links: bool,

    /// Do nothing if the last successful mirror is more recent than DURATION (e.g. 24h)
    #[arg(long, value_name = "DURATION", value_parser = driftless_core::time::parse_duration)]
    if_older_than: Option<Duration>,

    /// Wait up to SECONDS for another run on the same repo instead of exiting with 75
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    wait_lock: u64,

    /// Copy threads for a local destination [default: number of cores]
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,

    /// The rclone program to run for remote destinations
    #[arg(long, value_name = "PROGRAM", env = "DRIFTLESS_RCLONE", default_value = "rclone")]
    rclone: String,

    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    driftless_core::cli::main("mirror-copy", &args.common, || run(&args))
}

fn run(args: &Args) -> Result<Exit, Box<dyn std::error::Error>> {
    let (config, state) = args.common.load()?;
    let options = Options {
        dry_run: args.common.dry_run,
        if_older_than: args.if_older_than,
        wait_lock: Duration::from_secs(args.wait_lock),
        jobs: args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        rclone: args.rclone.clone(),
        metrics_dir: config.metrics_dir.clone(),
    };

    let mut requests = if args.all {
        let all: Vec<Request> = config
            .repos
            .iter()
            .filter_map(|(name, repo)| Request::configured(name, repo))
            .collect();
        if all.is_empty() {
            return Err("--all: no repo in the config has a `mirror:` entry".into());
        }
        all
    } else {
        let text = args.target.as_deref().unwrap_or_default();
        let request = if looks_like_path(text) {
            Request::for_path(&PathBuf::from(text), &config, args.to.clone())
        } else {
            let repo = config.repo(text)?;
            Request::configured(text, repo).map(|mut request| {
                if let Some(to) = &args.to {
                    request.to = to.clone();
                }
                request
            })
        };
        vec![request.ok_or_else(|| {
            format!("no destination for `{text}`: pass --to DEST or add `mirror: {{to: ...}}` to its config entry")
        })?]
    };
    for request in &mut requests {
        if let Some(from) = args.from {
            request.from = from;
        }
        request.exclude.extend(args.exclude.iter().cloned());
        request.delete |= args.delete;
        if args.max_delete.is_some() {
            request.max_delete = args.max_delete;
        }
        request.checksum |= args.checksum;
        if args.skip_links {
            request.links = Links::Skip;
        }
    }

    let mut worst = Exit::Ok;
    for request in &requests {
        let report = mirror::mirror(request, &state, &options);
        if args.common.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!("{}", report.summary());
        }
        for failure in report.failed.iter().skip(3) {
            eprintln!("  {failure}");
        }
        worst = worst.max(report.exit);
    }
    Ok(worst)
}
