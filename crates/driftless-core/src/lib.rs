//! driftless-core: every decision the driftless tools make.
//!
//! The binaries (`sync-repo`, `apply-compose`, `mirror-copy`, `drift-check`, `driftless-notify`)
//! parse arguments (with the shared `driftless-cli`), call into this crate, and map the outcome to
//! an [`exit::Exit`] code. This crate imports no CLI crate and prints nothing. The tools
//! never call each other; they hand over through the checkout and the [`state`] directory.
//!
//! - [`config`]: the YAML config and its repo entries.
//! - [`state`], [`lock`], [`atomic_file`]: the state directory, per-repo locks, crash-safe writes.
//! - [`safe_fs`]: opening and creating files someone else controls, without following or blocking.
//! - [`git`]: fetch, inspect, fast-forward and preserve, through gix.
//! - [`sync`]: what `sync-repo` does to one repo, and to all of them.
//! - [`trust`]: the trust gate: is a commit signed by a key this host trusts.
//! - [`compose`]: what `apply-compose` does: stacks follow git, only the changed ones.
//! - [`drift`]: what `drift-check` does: desired vs live state.
//! - [`mirror`]: what `mirror-copy` does: a one-way copy to a backup place.
//! - [`metrics`]: Prometheus textfile output.
//! - [`hook`]: what `driftless-hook` does with one webhook request.
//! - [`alert`]: when a failed unit is worth a notification, and its recovery.
//! - [`privsep`]: git work in a checkout someone else owns runs as that owner.
//! - [`run`]: the head of every tool's report and state record.
//! - [`exit`], [`redact`], [`time`], [`workers`]: the pieces every tool shares.

#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod alert;
pub mod atomic_file;
pub mod compose;
pub mod config;
pub mod drift;
pub mod exit;
pub mod git;
pub mod hook;
pub mod lock;
pub mod metrics;
pub mod mirror;
pub mod privsep;
pub mod redact;
pub mod run;
pub mod safe_fs;
pub mod state;
pub mod sync;
pub mod time;
pub mod trust;
pub mod workers;
