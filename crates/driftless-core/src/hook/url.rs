//! A repository URL reduced to what names the repository: the host and the path, lowercased,
//! without scheme, user, port, trailing `/` or `.git`. So the `clone_url`, `ssh_url` and
//! `html_url` of one event and the `remote:` of the config (`git@forge:o/r.git`,
//! `https://forge/o/r`, `ssh://git@forge:2222/o/r.git`) all compare equal.
//!
//! The port is dropped because a forge's ssh and https ports differ for the same repository;
//! two forges on one host told apart only by port would be confused (none known does that).
//! Lowercase because GitHub, Gitea and GitLab treat owner and repository names so.

/// The normalised form of `url`; `None` when it names no host and path (a local path).
pub fn normalise(url: &str) -> Option<String> {
    let url = url.trim();
    let (host_part, path) = if let Some((_, rest)) = url.split_once("://") {
        // scheme://[user@]host[:port]/path
        rest.split_once('/')?
    } else {
        // scp-like: [user@]host:path (and not a local path with a colon after a slash)
        let (host, path) = url.split_once(':')?;
        if host.contains('/') {
            return None;
        }
        (host, path)
    };
    let host = host_part.rsplit_once('@').map_or(host_part, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        // [v6]:port
        Some(v6) => v6.split_once(']').map(|(h, _)| h)?,
        None => host.split_once(':').map_or(host, |(h, _)| h),
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path).trim_end_matches('/');
    if host.is_empty() || path.is_empty() {
        return None;
    }
    Some(format!("{}/{}", host.to_ascii_lowercase(), path.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn one_repository_in_every_spelling() {
        let want = Some("forge.example/ops/homelab".to_owned());
        for url in [
            "https://forge.example/ops/homelab.git",
            "https://forge.example/ops/homelab",
            "https://forge.example/ops/homelab/",
            "http://forge.example:3000/ops/homelab.git",
            "https://deploy:token@forge.example/ops/homelab.git",
            "git@forge.example:ops/homelab.git",
            "git@forge.example:/ops/homelab",
            "ssh://git@forge.example:2222/ops/homelab.git",
            "ssh://forge.example/ops/homelab.git",
            "git://forge.example/ops/homelab.git",
            "https://Forge.Example/Ops/HomeLab.git",
        ] {
            assert_eq!(normalise(url), want, "{url}");
        }
    }

    #[test]
    fn other_repositories_and_paths_differ() {
        let homelab = normalise("https://forge.example/ops/homelab.git");
        assert_ne!(normalise("https://forge.example/ops/homelab2.git"), homelab);
        assert_ne!(normalise("https://forge.example/dev/homelab.git"), homelab);
        assert_ne!(normalise("https://other.example/ops/homelab.git"), homelab);
        assert_eq!(
            normalise("https://gitlab.example/group/sub/project.git").as_deref(),
            Some("gitlab.example/group/sub/project")
        );
        assert_eq!(normalise("http://[::1]:8080/o/r.git").as_deref(), Some("::1/o/r"));
        assert_eq!(normalise("/srv/git/homelab.git"), None);
        assert_eq!(normalise("./relative/repo"), None);
        assert_eq!(normalise("https://forge.example/"), None);
        assert_eq!(normalise(""), None);
    }
}
