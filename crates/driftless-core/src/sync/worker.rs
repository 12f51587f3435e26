//! Privilege separation for sync: when root meets a checkout someone else owns, the git work
//! runs in a worker with the owner's uid and gid ([`crate::privsep`]); this process keeps the
//! lock, the state record and the metrics.

use serde::{Deserialize, Serialize};

use super::report::Report;
use super::{Options, Target};
use crate::exit::Exit;

/// [`super::run::run`], as the checkout's owner when root meets a checkout someone else owns
/// ([`crate::privsep`]): this process keeps the lock and the record, the worker does the git work.
pub(super) fn run_as_owner(target: &Target, options: &Options) -> Report {
    let Some(owner) = crate::privsep::foreign_owner(&target.path) else {
        return super::run::run(target, options);
    };
    tracing::debug!(
        "{} is owned by {}: syncing it as that user",
        target.path.display(),
        owner.name
    );
    let request = WorkerRequest {
        target: target.clone(),
        options: options.clone(),
    };
    match crate::privsep::run_as::<_, Report>(&owner, &target.path, &request) {
        Ok(mut report) => {
            report.run.tool = super::TOOL;
            report.run.exit = Exit::from_code(report.run.exit_code);
            report
        }
        Err(err) => Report::new(target).fail(Exit::Io, &err),
    }
}

/// What the parent asks a privilege-separated worker to do.
#[derive(Debug, Serialize, Deserialize)]
struct WorkerRequest {
    target: Target,
    options: Options,
}

/// In `sync-repo`'s `main`: serve one [`super::run::run`] as a privilege-separated worker, when this process
/// is one ([`crate::privsep::serve`]). `init_logging` sets up the worker's logging at the
/// parent's [`Options::verbosity`].
pub fn serve_worker(init_logging: impl FnOnce(i8)) -> Option<std::process::ExitCode> {
    crate::privsep::serve(|request: WorkerRequest| {
        init_logging(request.options.verbosity);
        super::run::run(&request.target, &request.options)
    })
}
