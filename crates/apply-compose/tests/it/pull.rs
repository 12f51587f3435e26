//! `--pull`: images on purpose. Against a real registry on loopback (Debian's `docker-registry`
//! in the private engine's network namespace): a new image pushed under the same tag is pulled
//! and re-creates only its service, with both image ids logged; a normal tick never pulls.

use crate::{Hub, engine};

/// A stack `a` with services `app` and `other` from the registry, applied; returns the hub and
/// the two image references.
fn applied_stack(name: &str) -> Option<(Hub, String, String)> {
    let engine = engine::shared()?;
    let registry = engine.registry()?;
    let hub = Hub::new(name, Some(engine));
    let app = format!("{registry}/{name}-app:1");
    let other = format!("{registry}/{name}-other:1");
    for (image, marker) in [(&app, "app v1"), (&other, "other v1")] {
        hub.engine().make_image(image, marker);
        hub.engine().docker(&["push", "-q", image]);
    }
    let service = |name: &str, image: &str| {
        format!("  {name}:\n    image: {image}\n    command: [\"sleep\", \"3600\"]\n    stop_signal: SIGKILL\n")
    };
    hub.write(
        &format!("{}/compose.yaml", hub.stack_dir("a")),
        &format!("services:\n{}{}", service("app", &app), service("other", &other)),
    );
    hub.commit("stack a from the registry");
    hub.apply(&[]).expect_code(0);
    Some((hub, app, other))
}

/// Push a new image under `tag` to the registry while the engine keeps the old one under that
/// tag locally (what a host sees when the registry moved a tag): returns (old, new) ids.
fn push_new_image_under_same_tag(hub: &Hub, tag: &str) -> (String, String) {
    let engine = hub.engine();
    let old = engine.image_id(tag);
    let new = engine.make_image(tag, "app v2");
    assert_ne!(old, new);
    engine.docker(&["push", "-q", tag]);
    engine.docker(&["tag", &old, tag]);
    assert_eq!(engine.image_id(tag), old);
    (old, new)
}

#[test]
fn pull_recreates_only_the_service_whose_image_changed_and_logs_both_ids() {
    let Some((hub, app, _other)) = applied_stack("pull") else {
        return;
    };
    let project = hub.project("a");
    let (app_name, other_name) = (format!("{project}-app-1"), format!("{project}-other-1"));
    let before = hub.containers("a");
    let (old, new) = push_new_image_under_same_tag(&hub, &app);

    // A normal tick never pulls: nothing changes, the local tag still names the old image.
    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&project, "unchanged", &["unchanged since"]);
    assert_eq!(hub.engine().image_id(&app), old, "a normal tick pulled");
    assert_eq!(hub.containers("a"), before);

    // --dry-run says what it would pull, and pulls nothing.
    hub.apply(&["--pull", "--dry-run"])
        .expect_code(0)
        .expect_stack(&project, "would_pull", &[&format!("app ({app})")]);
    assert_eq!(hub.engine().image_id(&app), old, "--dry-run pulled");
    assert_eq!(hub.containers("a"), before);

    // -v: the info lines a unit writes to the journal.
    let out = hub.apply(&["--pull", "-v"]);
    let line = format!("app: {} -> {}", &old[7..19], &new[7..19]);
    out.expect_code(0).expect_stack(&project, "pulled", &[&line]);
    let stack = &out.json["stacks"][0];
    assert_eq!(stack["images"].as_array().map(Vec::len), Some(1), "{stack}");
    assert_eq!(stack["images"][0]["service"], "app");
    assert_eq!(stack["images"][0]["old"], old.as_str());
    assert_eq!(stack["images"][0]["new"], new.as_str());
    assert!(out.stderr.contains(&line), "the log names both ids:\n{}", out.stderr);
    let after = hub.containers("a");
    assert_ne!(after[&app_name], before[&app_name], "app was not re-created");
    assert_eq!(after[&other_name], before[&other_name], "other was re-created");
    assert_eq!(hub.engine().container_image(&app_name), new);

    // A second pull finds nothing new.
    let again = hub.apply_text(&["--pull"]);
    again.expect_code(0);
    assert!(
        again.stdout.contains(&format!("{}/{project}: unchanged", hub.name)),
        "{}",
        again.stdout
    );
    assert_eq!(hub.containers("a"), after);
}
