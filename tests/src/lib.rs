//! Shared test support for driftless: an isolated [`TestEnv`], git fixture repos, the git CLI as
//! oracle for checkouts, a finished tool [`Run`], and loopback forges (git daemon, smart HTTP) started and stopped by PID.
//!
//! Used by each tool's `tests/it` binary, by the end-to-end tests in `tests/tests/`, and by xtask.

pub mod engine;
pub mod env;
pub mod fixture;
pub mod forge;
pub mod oracle;
pub mod run;

pub use env::{TestEnv, bin_path, git, git_output};
pub use fixture::Origin;
pub use forge::{GitDaemon, HttpOptions, SmartHttp, Sshd, Stall, Tinyproxy, Unreachable, require_service};
pub use oracle::{MtimeSnapshot, RepoSnapshot};
pub use run::Run;
