//! What `drift-check` does: compare desired state (git) with live state (the checkout, the
//! running stacks, the mirror) and report every difference with the command that fixes it.
//!
//! - [`checkout`]: behind, ahead, diverged, dirty, untracked, wrong branch, submodules left
//!   behind their recorded commit, sync age.
//! - [`stacks`]: applied vs desired digest, services missing, orphaned, exited or unhealthy,
//!   compose's config hash vs the containers' label.
//! - [`mirror`]: age of the last successful mirror, and with `--deep` its content.
//! - [`output`]: the human table and the Prometheus textfile.
//!
//! A part that cannot be checked (remote unreachable, engine down) is reported as `unknown`
//! while the other parts still report; drift found anywhere wins the exit code.

pub mod checkout;
pub mod mirror;
pub mod output;
pub mod stacks;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::compose::runner::Compose;
use crate::config::{Config, RepoConfig};
use crate::exit::Exit;
use crate::state::{RepoId, StateDir};

/// The tool name used in metrics and JSON.
pub const TOOL: &str = "drift-check";

/// What to check for one repo.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: RepoId,
    /// The configured entry (a default one for a bare path).
    pub repo: RepoConfig,
}

impl Target {
    /// The configured repo `name`.
    pub fn configured(name: &str, repo: &RepoConfig) -> Target {
        Target {
            id: RepoId::Named(name.to_owned()),
            repo: repo.clone(),
        }
    }

    /// The configured repo `name`, with the config's top-level `verify:` when it has none.
    pub fn in_config(name: &str, repo: &RepoConfig, config: &Config) -> Target {
        let mut target = Target::configured(name, repo);
        target.repo.verify = config.verify_for(repo).cloned();
        target
    }

    /// A checkout by path: its config entry if it has one, else only the checkout is checked.
    ///
    /// A path named on the command line that does not exist, or is neither a configured repo nor
    /// a git checkout, is a usage error: there is nothing to compare, and no drift to report.
    pub fn from_path(path: &std::path::Path, config: &Config) -> Result<Target, Error> {
        let canonical = std::fs::canonicalize(path).map_err(|source| Error::NoSuchPath {
            path: path.to_owned(),
            source,
        })?;
        if let Some(name) = config.repo_name_for_path(&canonical) {
            return Ok(Target::in_config(name, &config.repos[name], config));
        }
        if let Err(source) = crate::git::checkout::Checkout::open(&canonical) {
            return Err(Error::NotACheckout {
                path: canonical,
                source: Box::new(source),
            });
        }
        Ok(Target {
            id: RepoId::Path(canonical.clone()),
            repo: RepoConfig {
                path: canonical,
                remote: None,
                branch: None,
                submodules: Default::default(),
                max_sync_age: None,
                mirror: None,
                stacks: Vec::new(),
                prune: false,
                retry_after: None,
                rollback: false,
                inputs: Default::default(),
                validate: Default::default(),
                verify: None,
            },
        })
    }
}

/// Why a command-line target cannot be checked (a usage error, exit 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: no such checkout; name a configured repo or the path of a git checkout", path.display())]
    NoSuchPath { path: PathBuf, source: std::io::Error },
    #[error(
        "{} is not a git checkout and not a repo of the config; name a configured repo, \
         the path of a git checkout, or add it to the config's repos",
        path.display()
    )]
    NotACheckout {
        path: PathBuf,
        source: Box<crate::git::checkout::Error>,
    },
}

/// How to check.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Use the last fetched refs instead of asking the remote.
    pub no_fetch: bool,
    /// Also compare the mirror's content, not only its age.
    pub deep: bool,
    /// The compose command.
    pub compose: Compose,
    /// The rclone program (for `--deep` on a remote mirror).
    pub rclone: String,
}

/// The part of the host an item is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Checkout,
    Stack,
    Mirror,
}

/// The verdict on one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// As desired.
    Ok,
    /// On hold on purpose: not drift.
    Held,
    /// Could not be checked (remote unreachable, engine down).
    Unknown,
    /// Differs from what git says.
    Drift,
}

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub repo: String,
    pub part: Part,
    /// What was checked: `behind`, `dirty`, a stack name, a mirror destination ...
    pub name: String,
    pub status: Status,
    pub reason: String,
    /// The command that would fix it.
    pub fix: Option<String>,
}

/// Label pairs of a gauge.
pub type Labels = Vec<(&'static str, String)>;

/// A gauge for the Prometheus file: name, labels, value.
pub type Gauge = (&'static str, Labels, f64);

/// Everything found for one repo.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RepoReport {
    pub repo: String,
    pub items: Vec<Item>,
    #[serde(skip)]
    pub gauges: Vec<Gauge>,
}

impl RepoReport {
    fn push(&mut self, part: Part, name: &str, status: Status, reason: String, fix: Option<String>) {
        self.items.push(Item {
            repo: self.repo.clone(),
            part,
            name: name.to_owned(),
            status,
            reason,
            fix,
        });
    }

    fn gauge(&mut self, name: &'static str, labels: &[(&'static str, &str)], value: f64) {
        let mut all = vec![("repo", self.repo.clone())];
        all.extend(labels.iter().map(|(k, v)| (*k, (*v).to_owned())));
        self.gauges.push((name, all, value));
    }

    /// The exit code: drift wins over a part that could not be checked.
    pub fn exit(&self) -> Exit {
        let worst = self.items.iter().map(|i| i.status).max().unwrap_or(Status::Ok);
        match worst {
            Status::Drift => Exit::Drift,
            Status::Unknown => Exit::TempFail,
            Status::Ok | Status::Held => Exit::Ok,
        }
    }
}

/// Check one repo.
pub fn check(target: &Target, state: &StateDir, options: &Options) -> RepoReport {
    let mut report = RepoReport {
        repo: target.id.label(),
        ..RepoReport::default()
    };
    let _span = tracing::info_span!("drift", repo = %report.repo).entered();
    let opened = checkout::check(target, state, options, &mut report);
    if let Some(opened) = &opened {
        stacks::check(target, opened, state, options, &mut report);
    }
    mirror::check(target, state, options, &mut report);
    // driftless_last_success_timestamp_seconds{tool,repo} is each tool's own .prom file's: the
    // textfile collector rejects a series published by two files.
    report
}

/// `1h` style settings, ignored when unset or malformed (config validation rejects those).
pub(crate) fn duration_setting(text: Option<&str>) -> Option<Duration> {
    text.and_then(|t| crate::time::parse_duration(t).ok())
}

/// `sync-repo NAME` or `sync-repo /path`, for fix commands.
pub(crate) fn target_arg(id: &RepoId) -> String {
    match id {
        RepoId::Named(name) => name.clone(),
        RepoId::Path(path) => path.display().to_string(),
    }
}

/// Where an opened checkout's pieces are, for the other checks.
pub struct Opened {
    pub checkout: crate::git::checkout::Checkout,
    pub root: PathBuf,
}
