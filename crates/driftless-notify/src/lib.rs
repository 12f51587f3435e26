//! `driftless-notify` as a library: its command line (shared with xtask for the man page and
//! completions) and how a failure report is shaped for each kind of receiver.

pub mod cli;
pub mod message;
