//! `apply-compose`'s command line: the clap definition that `main.rs` parses and that `cargo xtask man`
//! and `cargo xtask completions` render into the man page and the shell completions.

use clap::Parser;
use driftless_cli::CommonArgs;

const EXAMPLES: &str = "\
Examples:
  apply-compose observability-hub            apply the stacks of repos.observability-hub
  apply-compose /srv/lab                     every directory with a compose file, no config needed
  apply-compose hub --dry-run                what would be applied, and why
  apply-compose hub --stack grafana --force  re-apply one stack even if unchanged
  touch /srv/hub/stacks/loki/.driftless-hold  put a stack on hold: never touched
  apply-compose --validate .                 check the checkout's stacks before a push (CI, pre-commit)
  apply-compose hub --pull                   pull images; re-create the services whose image changed

Phase 3 under systemd (sync-repo triggers it after an update):
  systemctl enable apply-compose@observability-hub.service
  systemctl enable --now apply-compose-pull@observability-hub.timer   # daily --pull

When nothing changed, docker is not even started. Exit codes: 0 ok, 1 --validate found
problems, 2 usage or config error, 3 refused (tracked inputs modified in the checkout), 65 a
stack's compose failed (its state is kept; the same inputs are skipped until a new commit,
--force or retry_after), 74 local I/O failure, 75 engine unreachable or lock busy.";

/// Bring docker compose stacks in line with what the checkout says.
///
/// A stack is applied when the digest of everything it reads from the repo (compose files,
/// includes, env files, configs, secrets, bind mounts, build contexts) differs from the last
/// successful apply, when it was never applied, or when its last apply failed.
///
/// With `rollback: true` (per repo or per stack), a stack whose apply fails is brought back to
/// its last good commit: its files at that commit are exported from git into the state
/// directory and applied under the same project name. The line says "rolled back to COMMIT" and
/// the run still exits 65; the next good commit moves forward again.
#[derive(Debug, Parser)]
#[command(name = "apply-compose", version, after_help = EXAMPLES)]
pub struct Args {
    /// A repo name from the config, or the path of a checkout
    #[arg(value_name = "REPO|PATH", add = clap_complete::ArgValueCompleter::new(driftless_cli::complete_target), required_unless_present_any = ["all", "print_config", "validate"], conflicts_with = "all")]
    pub target: Option<String>,

    /// Check the stacks and change nothing, for the config repo's CI and pre-commit hook: each
    /// model parses, every input exists inside the repo, project names are unique, `compose
    /// config` passes (when compose is installed), `validate.max_depth` holds. Prints
    /// `FILE:LINE: message` per problem and a count; exits 1 on any problem. Without REPO|PATH:
    /// the configured repos, or the current directory when none has stacks. Needs no state
    /// directory, root or engine
    #[arg(long, conflicts_with_all = ["force", "recreate", "allow_dirty", "pull"])]
    pub validate: bool,

    /// Apply the stacks of every configured repo
    #[arg(long)]
    pub all: bool,

    /// Only this stack (project name or directory; repeatable)
    #[arg(long, value_name = "STACK", value_hint = clap::ValueHint::Other)]
    pub stack: Vec<String>,

    /// Apply even stacks whose inputs did not change
    #[arg(long)]
    pub force: bool,

    /// Re-create the containers of the stacks applied (`up --force-recreate`), as drift-check
    /// suggests for containers started by hand from other files or another directory; implies
    /// --force
    #[arg(long)]
    pub recreate: bool,

    /// Pull each stack's images (`compose pull`, with the files, project and env a normal apply
    /// uses) and re-create only the services whose image changed, logging `SERVICE: old -> new`
    /// image ids; stacks whose inputs changed are applied as usual, after the pull. Services
    /// with `pull_policy: never`/`build` or a `build:` are not pulled. A normal run never pulls;
    /// under systemd this is `apply-compose-pull@REPO.timer` (daily)
    #[arg(long)]
    pub pull: bool,

    /// Apply stacks whose tracked inputs are modified in the checkout (one-off manual runs)
    #[arg(long)]
    pub allow_dirty: bool,

    /// The compose command [default: from the config, else `docker compose`]
    #[arg(long, value_name = "COMMAND")]
    pub compose_command: Option<String>,

    /// Wait up to SECONDS for another run on the same repo instead of exiting with 75
    #[arg(long, value_name = "SECONDS", value_hint = clap::ValueHint::Other, default_value_t = 0)]
    pub wait_lock: u64,

    #[command(flatten)]
    pub common: CommonArgs,
}
