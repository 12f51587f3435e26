//! Drift of compose stacks: the applied digest against the checkout's, and the live containers
//! against the stack's definition.
//!
//! Compose's own `com.docker.compose.config-hash` label only covers the compose model: the
//! content of bind-mounted files and an image pushed again under the same tag are not in it.
//! That is why the digest of the last apply (which covers bind-mount sources and build
//! contexts) is compared too.

use std::collections::BTreeSet;

use super::{Opened, Part, RepoReport, Status, Target, target_arg};
use crate::compose::{self, images, model, stacks};
use crate::redact::error_chain;
use crate::state::StateDir;

/// Check every configured stack of `target`.
pub fn check(target: &Target, opened: &Opened, state: &StateDir, options: &super::Options, report: &mut RepoReport) {
    if target.repo.stacks.is_empty() {
        return;
    }
    let apply = format!("apply-compose {}", target_arg(&target.id));
    let found = match stacks::discover(&opened.root, &target.repo.stacks) {
        Ok(found) => found,
        Err(err) => {
            report.push(Part::Stack, "stacks", Status::Drift, error_chain(&err), None);
            return;
        }
    };
    let record = compose::read_record(state, &target.id);
    let head = opened.checkout.repo.head_commit().ok();
    let tree = head.as_ref().and_then(|c| c.tree().ok());
    let engine = options.compose.check_engine();

    for stack in &found {
        let name = stack.project.as_str();
        if stack.hold {
            report.push(
                Part::Stack,
                name,
                Status::Held,
                "on hold: not checked, not drift".into(),
                None,
            );
            report.gauge("driftless_stack_drift", &[("stack", name)], 0.0);
            continue;
        }
        let mut problems: Vec<String> = Vec::new();
        let applied = record.stacks.get(name);
        if let Some(tree) = &tree {
            let inputs =
                model::inputs(&stack.project_dir, &stack.files, &stack.env_files).unwrap_or_else(|_| model::Inputs {
                    paths: stack.files.iter().map(|f| (f.clone(), "compose file")).collect(),
                    ..Default::default()
                });
            let (digest, ids, kinds) = compose::digest(
                &opened.checkout,
                tree,
                &opened.root,
                stack,
                &inputs,
                &Default::default(),
                &target.repo.inputs.watch,
            );
            match applied {
                None => problems.push("never applied".into()),
                Some(a) if a.applied_digest.is_none() => problems.push("never applied successfully".into()),
                Some(a) if a.applied_digest.as_deref() != Some(digest.as_str()) => {
                    if let Some(head) = &head {
                        problems.extend(compose::explain(&a.applied_inputs, &ids, &kinds, a, head.id));
                    }
                }
                Some(_) => {}
            }
            if let Some(error) = applied.and_then(|a| a.last_error.as_deref()) {
                problems.push(format!("last apply failed: {error}"));
            }
        }
        let mut unknown = None;
        let mut fix = format!("{apply} --stack {name} --force");
        match &engine {
            Err(err) => unknown = Some(error_chain(err)),
            Ok(()) => match live_problems(&options.compose, stack) {
                Ok(live) => {
                    let only_images = problems.is_empty() && live.problems.len() == live.pulled.len();
                    problems.extend(live.problems);
                    if live.elsewhere || live.pulled.iter().any(|s| !s.pulled) {
                        // Compose keeps a container whose configuration is the same, labels
                        // and all: only a re-create makes it the stack driftless applies. The
                        // same for a service `--pull` does not pull (`pull_policy: never`).
                        fix = format!("{apply} --stack {name} --recreate");
                    } else if only_images && !live.pulled.is_empty() {
                        fix = format!("{apply} --stack {name} --pull   # or --recreate");
                    }
                }
                Err(err) => unknown = Some(error_chain(&err)),
            },
        }
        report.gauge(
            "driftless_stack_drift",
            &[("stack", name)],
            if problems.is_empty() { 0.0 } else { 1.0 },
        );
        if !problems.is_empty() {
            report.push(Part::Stack, name, Status::Drift, problems.join("; "), Some(fix));
        } else if let Some(why) = unknown {
            report.push(
                Part::Stack,
                name,
                Status::Unknown,
                format!("live state unknown: {why}"),
                None,
            );
        } else {
            report.push(Part::Stack, name, Status::Ok, "running as committed".into(), None);
        }
    }

    let present: BTreeSet<&str> = found.iter().map(|s| s.project.as_str()).collect();
    for (project, rec) in &record.stacks {
        if !present.contains(project.as_str()) && !opened.root.join(&rec.dir).is_dir() {
            report.push(
                Part::Stack,
                project,
                Status::Drift,
                "removed from git but was applied; it may still be running".into(),
                Some(format!(
                    "docker compose -p {project} down   # or set `prune: true` and run {apply}"
                )),
            );
        }
    }
}

/// What differs between a stack and its containers.
struct Live {
    problems: Vec<String>,
    /// Some container was started from other files or another directory than the stack's.
    elsewhere: bool,
    /// The services pulled but not running (a problem each), and whether `--pull` pulls them.
    pulled: Vec<PulledService>,
}

struct PulledService {
    pulled: bool,
}

/// What differs between the stack and its containers.
fn live_problems(compose: &compose::runner::Compose, stack: &stacks::Stack) -> Result<Live, compose::runner::Error> {
    let desired = compose.config_hashes(stack)?;
    let containers = compose.containers(&stack.project)?;
    let mut problems = Vec::new();
    let elsewhere = loaded_elsewhere(stack, &containers);
    let found_elsewhere = !elsewhere.is_empty();
    problems.extend(elsewhere);
    let (stale, pulled) = pulled_not_running(compose, stack, &containers)?;
    problems.extend(stale);
    let mut recreate: Option<Vec<String>> = None;
    for (service, hash) in &desired {
        let mine: Vec<_> = containers.iter().filter(|c| c.service == *service).collect();
        if mine.is_empty() {
            problems.push(format!("service {service} is defined but has no container"));
            continue;
        }
        for c in mine {
            if c.state != "running" {
                problems.push(format!("service {service} is {}", c.state));
            } else if c.health == "unhealthy" {
                problems.push(format!("service {service} is unhealthy"));
            }
            if !c.config_hash.is_empty() && c.config_hash != *hash {
                let confirmed = match &recreate {
                    Some(list) => list,
                    None => recreate.insert(compose.would_recreate(stack)?),
                };
                if confirmed.contains(service) {
                    problems.push(format!(
                        "service {service} runs an outdated configuration (compose would recreate it)"
                    ));
                }
            }
        }
    }
    for c in &containers {
        if !desired.iter().any(|(s, _)| *s == c.service) {
            problems.push(format!(
                "container of service {} runs but is not defined (orphan)",
                c.service
            ));
        }
    }
    Ok(Live {
        problems,
        elsewhere: found_elsewhere,
        pulled,
    })
}

/// One problem per running service whose container's image is not the one its tag names
/// locally now: a `docker pull` or `docker compose pull` by hand that nobody re-created.
fn pulled_not_running(
    compose: &compose::runner::Compose,
    stack: &stacks::Stack,
    containers: &[compose::runner::Container],
) -> Result<(Vec<String>, Vec<PulledService>), compose::runner::Error> {
    // Without labelled running containers there is nothing to compare, and no call to make.
    if !containers
        .iter()
        .any(|c| c.state == "running" && !c.image_id.is_empty())
    {
        return Ok((Vec::new(), Vec::new()));
    }
    let wanted = compose.service_images(stack)?;
    let mut ids = std::collections::BTreeMap::new();
    for want in wanted.values() {
        if !ids.contains_key(&want.image) {
            ids.insert(want.image.clone(), compose.image_id(&want.image)?);
        }
    }
    let stale = images::stale(containers, &wanted, false, |image| ids.get(image).cloned().flatten());
    let problems = stale
        .iter()
        .map(|c| {
            format!(
                "service {} pulled but not running: its container runs image {}, while {} names {} locally",
                c.service,
                images::short_id(&c.old),
                c.image,
                images::short_id(&c.new)
            )
        })
        .collect();
    let pulled = stale
        .iter()
        .map(|c| PulledService {
            pulled: wanted.get(&c.service).is_some_and(|w| w.pulled),
        })
        .collect();
    Ok((problems, pulled))
}

/// One problem per set of files and directory the stack's containers were started from (their
/// `config_files` and `working_dir` labels) that is not the stack's own: a stack started by
/// hand with an extra `-f`, or from a copy of its directory, runs something driftless does not
/// digest.
fn loaded_elsewhere(stack: &stacks::Stack, containers: &[compose::runner::Container]) -> Vec<String> {
    let files = stack
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let dir = stack.project_dir.display().to_string();
    let mut seen: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for c in containers {
        // Containers not made by compose v2 carry no such labels: nothing to compare.
        if c.config_files.is_empty() && c.working_dir.is_empty() {
            continue;
        }
        if same_files(&c.config_files, &stack.files) && same_path(&c.working_dir, &stack.project_dir) {
            continue;
        }
        match seen
            .iter_mut()
            .find(|(f, d, _)| *f == c.config_files && *d == c.working_dir)
        {
            Some((_, _, services)) => services.push(&c.service),
            None => seen.push((&c.config_files, &c.working_dir, vec![&c.service])),
        }
    }
    seen.into_iter()
        .map(|(other_files, other_dir, services)| {
            format!(
                "service {} was started from {other_files} in {other_dir}, not from the stack's {files} in {dir}",
                services.join(", ")
            )
        })
        .collect()
}

/// Whether compose's comma-separated `label` names `files`, in order.
fn same_files(label: &str, files: &[std::path::PathBuf]) -> bool {
    let listed: Vec<&str> = label.split(',').collect();
    listed.len() == files.len() && listed.iter().zip(files).all(|(l, f)| same_path(l, f))
}

/// Whether `label` names `path`, as written or once links are resolved (the checkout may be
/// configured through a symlinked path, and compose records the one it was started from).
fn same_path(label: &str, path: &std::path::Path) -> bool {
    let label = std::path::Path::new(label);
    label == path
        || matches!(
            (std::fs::canonicalize(label), std::fs::canonicalize(path)),
            (Ok(a), Ok(b)) if a == b
        )
}
