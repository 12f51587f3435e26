//! Images on purpose: which services run an image other than the one their tag names locally
//! now. `apply-compose --pull` re-creates exactly those after a pull; drift-check reports them
//! ("pulled but not running").
//!
//! The decision is a plain function of what compose and the engine report, so it is tested
//! without either.

use std::collections::BTreeMap;

use serde::Serialize;

use super::runner::Container;

/// A service's image as the stack's model names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceImage {
    /// The reference (`registry/app:1`).
    pub image: String,
    /// Whether `compose pull --ignore-buildable` pulls it: not with `pull_policy: never` or
    /// `build`, nor for a service compose can build itself.
    pub pulled: bool,
}

/// A service whose running container's image is not the one its tag names now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageChange {
    pub service: String,
    pub image: String,
    /// The image id the running container was created from.
    pub old: String,
    /// The image id the tag names locally now.
    pub new: String,
}

impl ImageChange {
    /// `SERVICE: old -> new`, ids shortened as docker prints them.
    pub fn line(&self) -> String {
        format!("{}: {} -> {}", self.service, short_id(&self.old), short_id(&self.new))
    }
}

/// An image id as docker prints it: the first 12 hex digits, without `sha256:`.
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    hex.get(..12).unwrap_or(hex)
}

/// Each service's image and whether it is pulled, from compose's JSON model (`config --format
/// json`). A service without `image:` (build only) has no tag to follow and is left out.
pub fn service_images(model: &serde_json::Value) -> BTreeMap<String, ServiceImage> {
    let Some(services) = model.get("services").and_then(|s| s.as_object()) else {
        return BTreeMap::new();
    };
    services
        .iter()
        .filter_map(|(name, service)| {
            let image = service.get("image")?.as_str()?.to_owned();
            let policy = service.get("pull_policy").and_then(|p| p.as_str()).unwrap_or("");
            let pulled = !matches!(policy, "never" | "build") && service.get("build").is_none();
            Some((name.clone(), ServiceImage { image, pulled }))
        })
        .collect()
}

/// The running services whose container's image id differs from the id `local_id` gives for
/// their tag now. Only pulled services (`pulled_only`) or all services with an image, only
/// running containers that compose labelled with their image id; a tag with no local image is
/// nothing to re-create to. One change per service, named after its first stale container.
pub fn stale(
    containers: &[Container],
    wanted: &BTreeMap<String, ServiceImage>,
    pulled_only: bool,
    mut local_id: impl FnMut(&str) -> Option<String>,
) -> Vec<ImageChange> {
    let mut changes: Vec<ImageChange> = Vec::new();
    let mut ids: BTreeMap<&str, Option<String>> = BTreeMap::new();
    for c in containers {
        let Some(want) = wanted.get(&c.service) else { continue };
        if (pulled_only && !want.pulled) || c.state != "running" || c.image_id.is_empty() {
            continue;
        }
        if changes.iter().any(|ch| ch.service == c.service) {
            continue;
        }
        let now = ids.entry(want.image.as_str()).or_insert_with(|| local_id(&want.image));
        if let Some(now) = now
            && *now != c.image_id
        {
            changes.push(ImageChange {
                service: c.service.clone(),
                image: want.image.clone(),
                old: c.image_id.clone(),
                new: now.clone(),
            });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(service: &str, state: &str, image_id: &str) -> Container {
        Container {
            service: service.into(),
            state: state.into(),
            health: String::new(),
            config_hash: String::new(),
            config_files: String::new(),
            working_dir: String::new(),
            image_id: image_id.into(),
        }
    }

    #[test]
    fn only_running_services_whose_tag_moved_are_stale() {
        let model = serde_json::json!({"services": {
            "app": {"image": "r/app:1"},
            "other": {"image": "r/other:1"},
            "local": {"image": "l/x:1", "pull_policy": "never"},
            "built": {"build": {"context": "."}},
            "stopped": {"image": "r/app:1"},
        }});
        let wanted = service_images(&model);
        assert!(!wanted.contains_key("built"));
        assert!(!wanted["local"].pulled);
        let containers = [
            container("app", "running", "sha256:old"),
            container("app", "running", "sha256:old"),
            container("other", "running", "sha256:same"),
            container("local", "running", "sha256:old-local"),
            container("stopped", "exited", "sha256:old"),
        ];
        let mut asked = Vec::new();
        let ids = |image: &str| -> Option<String> {
            asked.push(image.to_owned());
            match image {
                "r/app:1" => Some("sha256:new".into()),
                "r/other:1" => Some("sha256:same".into()),
                "l/x:1" => Some("sha256:new-local".into()),
                _ => None,
            }
        };
        let changes = stale(&containers, &wanted, true, ids);
        assert_eq!(
            changes,
            vec![ImageChange {
                service: "app".into(),
                image: "r/app:1".into(),
                old: "sha256:old".into(),
                new: "sha256:new".into(),
            }]
        );
        assert_eq!(asked, ["r/app:1", "r/other:1"], "each tag is looked up once");

        // drift-check looks at every service with an image, pulled or not.
        let all = stale(&containers, &wanted, false, |image| {
            (image == "l/x:1").then(|| "sha256:new-local".to_owned())
        });
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].service, "local");
    }

    #[test]
    fn a_tag_without_a_local_image_is_not_stale() {
        let wanted = service_images(&serde_json::json!({"services": {"app": {"image": "r/app:1"}}}));
        let containers = [container("app", "running", "sha256:old")];
        assert!(stale(&containers, &wanted, true, |_| None).is_empty());
    }

    #[test]
    fn ids_are_shortened_as_docker_prints_them() {
        let change = ImageChange {
            service: "app".into(),
            image: "r/app:1".into(),
            old: "sha256:e9b2461471167c496f4e07a64c96ac0480cca467b56a9f1d02dbd29dbb65a6b8".into(),
            new: "sha256:4b99".into(),
        };
        assert_eq!(change.line(), "app: e9b246147116 -> 4b99");
    }
}
