//! `driftless-hook` as a library: only its command-line definition, shared by the binary and by
//! xtask (man page, shell completions).

pub mod cli;
