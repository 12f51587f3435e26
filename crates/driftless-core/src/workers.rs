//! Worker threads that never panic for want of a thread.
//!
//! `std::thread::scope`'s `spawn` panics when the kernel refuses a thread (a process limit under
//! `ulimit -u` or a unit's `TasksMax=`). Every pool in driftless pulls its work from a shared
//! queue, so fewer workers only make it slower: [`each_worker`] starts as many as it can and,
//! when it can start none, runs the one worker on the calling thread.

/// Run `worker(i)` for `i` in `0..jobs` (at least one), on threads where they can be had. Every
/// worker must take its work from a queue shared with the others, since some may never run.
pub fn each_worker(jobs: usize, worker: impl Fn(usize) + Sync) {
    let jobs = jobs.max(1);
    if jobs == 1 {
        worker(0);
        return;
    }
    std::thread::scope(|scope| {
        let worker = &worker;
        let mut started = 0;
        for i in 0..jobs {
            match std::thread::Builder::new().spawn_scoped(scope, move || worker(i)) {
                Ok(_) => started += 1,
                Err(err) => {
                    tracing::warn!("could not start worker thread {i} of {jobs} ({err}); going on with {started}");
                    break;
                }
            }
        }
        if started == 0 {
            worker(0);
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_item_is_taken_by_some_worker() {
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        super::each_worker(4, |_| {
            while next.fetch_add(1, Ordering::Relaxed) < 100 {
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
        assert_eq!(done.load(Ordering::Relaxed), 100);
    }

    #[test]
    fn zero_jobs_still_runs_one_worker() {
        let runs = AtomicUsize::new(0);
        super::each_worker(0, |i| {
            assert_eq!(i, 0);
            runs.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(runs.load(Ordering::Relaxed), 1);
    }
}
