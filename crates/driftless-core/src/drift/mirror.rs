//! Drift of the mirror: how old the last successful copy is, and with `--deep` whether the
//! destination still holds every file of the source with the same size.

use super::{Part, RepoReport, Status, Target, duration_setting, target_arg};
use crate::config::MirrorFrom;
use crate::mirror::filter::Excludes;
use crate::mirror::source::{Kind, Source};
use crate::mirror::{self, rclone};
use crate::state::StateDir;

/// Check the mirror of `target`, if it has one.
pub fn check(target: &Target, state: &StateDir, options: &super::Options, report: &mut RepoReport) {
    let Some(config) = &target.repo.mirror else { return };
    let fix = format!("mirror-copy {}", target_arg(&target.id));
    let dest = crate::redact::redact(&config.to);
    let record: Option<mirror::Record> = state.read(&target.id, mirror::TOOL).ok().flatten();
    let now = crate::time::now_unix();
    match record.as_ref().and_then(|r| r.run.last_success_at) {
        None => report.push(
            Part::Mirror,
            &dest,
            Status::Drift,
            "never mirrored successfully".into(),
            Some(fix.clone()),
        ),
        Some(at) => {
            let age = now.saturating_sub(at);
            report.gauge("driftless_mirror_age_seconds", &[], age as f64);
            match duration_setting(config.max_age.as_deref()) {
                Some(max) if age > max.as_secs() => report.push(
                    Part::Mirror,
                    &dest,
                    Status::Drift,
                    format!(
                        "last successful mirror {age}s ago, more than max_age {}s",
                        max.as_secs()
                    ),
                    Some(fix.clone()),
                ),
                _ => report.push(
                    Part::Mirror,
                    &dest,
                    Status::Ok,
                    format!("last successful mirror {age}s ago"),
                    None,
                ),
            }
        }
    }
    if !options.deep {
        return;
    }
    let excludes = match Excludes::with_defaults(&config.exclude) {
        Ok(excludes) => excludes,
        Err(message) => return report.push(Part::Mirror, "content", Status::Unknown, message, None),
    };
    if rclone::is_remote(&config.to) {
        let mut args = vec![
            "check".to_owned(),
            target.repo.path.display().to_string(),
            config.to.clone(),
            "--one-way".into(),
        ];
        for pattern in excludes.rclone_patterns() {
            args.push("--exclude".into());
            args.push(pattern.into());
        }
        let result = duct::cmd(&options.rclone, &args)
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run();
        match result.map(|o| o.status.code()) {
            Ok(Some(0)) => report.push(
                Part::Mirror,
                "content",
                Status::Ok,
                "rclone check --one-way: no differences".into(),
                None,
            ),
            Ok(Some(1)) => report.push(
                Part::Mirror,
                "content",
                Status::Drift,
                "rclone check --one-way found files missing or different on the remote".into(),
                Some(fix),
            ),
            Ok(code) => report.push(
                Part::Mirror,
                "content",
                Status::Unknown,
                format!("rclone check failed ({code:?})"),
                None,
            ),
            Err(err) => report.push(
                Part::Mirror,
                "content",
                Status::Unknown,
                format!("cannot run rclone: {err}"),
                None,
            ),
        }
        return;
    }
    // Compare with what the mirror was made from: the last run's mode (a `--from commit` on the
    // command line is not in the config), and for a commit mirror the commit of the last
    // success, so a sync since then or a stray file in the worktree is not called drift.
    let from = record.as_ref().map_or(config.from, |r| r.from);
    let source = match from {
        MirrorFrom::Worktree => Source::Worktree(target.repo.path.clone()),
        MirrorFrom::Commit => match commit_source(&target.repo.path, record.as_ref()) {
            Ok(source) => source,
            Err(message) => return report.push(Part::Mirror, "content", Status::Unknown, message, None),
        },
    };
    let listing = match source.list(&excludes) {
        Ok(listing) => listing,
        Err(err) => return report.push(Part::Mirror, "content", Status::Unknown, err.to_string(), None),
    };
    let dest_root = std::path::Path::new(&config.to);
    let mut missing = Vec::new();
    for entry in &listing.entries {
        let path = dest_root.join(crate::git::checkout::path_from_bytes(&entry.path));
        let ok = match (&entry.kind, std::fs::symlink_metadata(&path)) {
            (Kind::File { size, .. }, Ok(meta)) => meta.is_file() && meta.len() == *size,
            (Kind::Dir, Ok(meta)) => meta.is_dir(),
            (Kind::Symlink { .. }, Ok(meta)) => {
                meta.file_type().is_symlink() || config.links == crate::config::Links::Skip
            }
            (Kind::Symlink { .. }, Err(_)) => config.links == crate::config::Links::Skip,
            (_, Err(_)) => false,
        };
        // Directories follow from their files; only files and links are counted.
        if !ok && !matches!(entry.kind, Kind::Dir) {
            missing.push(String::from_utf8_lossy(&entry.path).into_owned());
        }
    }
    report.gauge("driftless_mirror_missing_files", &[], missing.len() as f64);
    if missing.is_empty() {
        report.push(
            Part::Mirror,
            "content",
            Status::Ok,
            format!("all {} source entries present", listing.entries.len()),
            None,
        );
    } else {
        report.push(
            Part::Mirror,
            "content",
            Status::Drift,
            format!(
                "{} file(s) missing or of another size in the mirror: {}",
                missing.len(),
                missing.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            ),
            Some(fix),
        );
    }
}

/// The commit a `from: commit` mirror was last made from (the checkout's HEAD if none is recorded).
fn commit_source(path: &std::path::Path, record: Option<&mirror::Record>) -> Result<Source, String> {
    let checkout = crate::git::checkout::Checkout::open(path).map_err(|e| crate::redact::error_chain(&e))?;
    let recorded = record
        .and_then(|r| r.last_success_commit.as_deref())
        .and_then(|hex| gix::ObjectId::from_hex(hex.as_bytes()).ok());
    let commit = match recorded {
        Some(id) => id,
        None => checkout.repo.head_id().map_err(|e| e.to_string())?.detach(),
    };
    Ok(Source::Commit {
        repo: checkout.repo.git_dir().to_owned(),
        commit,
    })
}
