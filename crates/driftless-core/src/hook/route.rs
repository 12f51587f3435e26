//! From a classified event to the repos to sync: the configured repos whose remote is the
//! event's repository (or the one `/hook/NAME` names), of those the ones whose secret the
//! request proves, and of those the ones following the branch pushed.
//!
//! The order of the checks decides what an unauthenticated client learns: that no repo has this
//! URL (404, which the issue asks for, so a forge's misconfigured hook says so), and nothing about
//! branches or names before its proof holds.

use super::Response;
use super::event::{Event, Forge, Proof};
use super::signature;

/// A configured repo as the hook sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    /// Its name under `repos:`, the unit instance.
    pub name: String,
    /// Its remote, normalised ([`super::url::normalise`]); `None` when it has none the hook
    /// could read (such a repo is reachable only by `/hook/NAME`).
    pub remote: Option<String>,
    /// The branch it follows.
    pub branch: String,
}

impl Repo {
    /// The configured repos, each with its `remote:`, or else its checkout's `origin`.
    pub fn all_of(config: &crate::config::Config) -> Vec<Repo> {
        config
            .repos
            .iter()
            .map(|(name, repo)| {
                let url = repo.remote.clone().or_else(|| {
                    let checkout = crate::git::checkout::Checkout::open(&repo.path).ok()?;
                    let origin = checkout.repo.find_remote("origin").ok()?;
                    let url = origin.url(gix::remote::Direction::Fetch)?;
                    Some(url.to_bstring().to_string())
                });
                Repo {
                    name: name.clone(),
                    remote: url.as_deref().and_then(super::url::normalise),
                    branch: repo.branch().to_owned(),
                }
            })
            .collect()
    }
}

/// What to do with a request whose proof holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Start the sync of these repos.
    Sync {
        /// Repo names, in config order.
        names: Vec<String>,
        /// The delivery id, for replay protection.
        delivery: Option<String>,
    },
    /// Acknowledge and do nothing (a push to another branch, a ping).
    Ignore(Response),
}

/// Decide what `event` (with `body`, its raw bytes) asks of `repos`; `secret` gives a repo's
/// secret by name. A refusal is the [`Response`] to send.
pub fn plan(
    event: &Event,
    body: &[u8],
    repos: &[Repo],
    secret: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<Plan, Response> {
    match event {
        Event::Other { forge, event } => Ok(Plan::Ignore(Response::new(
            200,
            format!("ignored: {} `{event}` event; only pushes start a sync", forge.name()),
        ))),
        Event::Named { name, proof } => {
            let Some(repo) = repos.iter().find(|r| &r.name == name) else {
                return Err(Response::new(404, format!("no repo `{name}` is configured")));
            };
            if !proves(proof, body, secret(&repo.name)) {
                return Err(unauthorized(Forge::Generic, proof));
            }
            Ok(Plan::Sync {
                names: vec![repo.name.clone()],
                delivery: None,
            })
        }
        Event::Push {
            forge,
            proof,
            delivery,
            urls,
            git_ref,
        } => {
            let wanted: Vec<String> = urls.iter().filter_map(|u| super::url::normalise(u)).collect();
            let candidates: Vec<&Repo> = repos
                .iter()
                .filter(|r| r.remote.as_ref().is_some_and(|remote| wanted.contains(remote)))
                .collect();
            if candidates.is_empty() {
                return Err(Response::new(
                    404,
                    format!(
                        "no configured repo has the remote {}",
                        urls.first().map_or("", String::as_str)
                    ),
                ));
            }
            let proven: Vec<&Repo> = candidates
                .into_iter()
                .filter(|r| proves(proof, body, secret(&r.name)))
                .collect();
            if proven.is_empty() {
                return Err(unauthorized(*forge, proof));
            }
            let names: Vec<String> = proven
                .iter()
                .filter(|r| git_ref.strip_prefix("refs/heads/") == Some(r.branch.as_str()))
                .map(|r| r.name.clone())
                .collect();
            if names.is_empty() {
                let branches: Vec<&str> = proven.iter().map(|r| r.branch.as_str()).collect();
                return Ok(Plan::Ignore(Response::new(
                    200,
                    format!("ignored: push to {git_ref}; the repo follows {}", branches.join(", ")),
                )));
            }
            Ok(Plan::Sync {
                names,
                delivery: delivery.clone(),
            })
        }
    }
}

/// Whether `proof` holds under `secret` (`None`: the repo has no secret and accepts nothing).
fn proves(proof: &Proof, body: &[u8], secret: Option<Vec<u8>>) -> bool {
    let Some(secret) = secret else { return false };
    match proof {
        Proof::Hmac(hex) => signature::hmac_sha256_matches(&secret, body, hex),
        Proof::Token(token) => signature::token_matches(&secret, token.as_bytes()),
        Proof::Missing => false,
    }
}

fn unauthorized(forge: Forge, proof: &Proof) -> Response {
    let header = match forge {
        Forge::GitHub => "X-Hub-Signature-256",
        Forge::Gitea => "X-Gitea-Signature",
        Forge::GitLab => "X-Gitlab-Token",
        Forge::Generic => "Authorization: Bearer",
    };
    match proof {
        Proof::Missing => Response::new(401, format!("missing {header}; set the hook's secret at the forge")),
        _ => Response::new(
            401,
            format!(
                "{header} does not match the secret; set the same secret at the forge and in the hook's credential"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repos() -> Vec<Repo> {
        let repo = |name: &str, remote: &str, branch: &str| Repo {
            name: name.into(),
            remote: super::super::url::normalise(remote),
            branch: branch.into(),
        };
        vec![
            repo("hub", "git@forge.example:ops/hub.git", "main"),
            repo("hub-staging", "https://forge.example/ops/hub", "staging"),
            repo("lab", "https://forge.example/ops/lab.git", "main"),
        ]
    }

    fn secret(name: &str) -> Option<Vec<u8>> {
        match name {
            "lab" => Some(b"lab's".to_vec()),
            _ => Some(b"shared".to_vec()),
        }
    }

    fn push(proof: Proof, url: &str, git_ref: &str) -> Event {
        Event::Push {
            forge: Forge::GitLab,
            proof,
            delivery: Some("d".into()),
            urls: vec![url.into()],
            git_ref: git_ref.into(),
        }
    }

    #[test]
    fn a_push_syncs_the_repos_of_its_url_and_branch() {
        let event = push(
            Proof::Token("shared".into()),
            "https://FORGE.example:8443/ops/hub.git",
            "refs/heads/main",
        );
        assert_eq!(
            plan(&event, b"", &repos(), &secret),
            Ok(Plan::Sync {
                names: vec!["hub".into()],
                delivery: Some("d".into())
            })
        );
        let event = push(
            Proof::Token("shared".into()),
            "https://forge.example/ops/hub",
            "refs/heads/staging",
        );
        assert!(
            matches!(plan(&event, b"", &repos(), &secret), Ok(Plan::Sync { names, .. }) if names == ["hub-staging"])
        );
    }

    #[test]
    fn another_branch_is_acknowledged_and_ignored() {
        let event = push(
            Proof::Token("shared".into()),
            "https://forge.example/ops/hub",
            "refs/heads/feature",
        );
        let Ok(Plan::Ignore(response)) = plan(&event, b"", &repos(), &secret) else {
            panic!("not ignored");
        };
        assert_eq!(response.status, 200);
        // A tag named like the branch is not the branch.
        let event = push(
            Proof::Token("shared".into()),
            "https://forge.example/ops/hub",
            "refs/tags/main",
        );
        assert!(matches!(plan(&event, b"", &repos(), &secret), Ok(Plan::Ignore(_))));
    }

    #[test]
    fn refusals() {
        let status = |event: &Event| plan(event, b"", &repos(), &secret).expect_err("refused").status;
        assert_eq!(
            status(&push(
                Proof::Token("shared".into()),
                "https://forge.example/ops/other",
                "refs/heads/main"
            )),
            404
        );
        assert_eq!(
            status(&push(
                Proof::Missing,
                "https://forge.example/ops/hub",
                "refs/heads/main"
            )),
            401
        );
        assert_eq!(
            status(&push(
                Proof::Token("wrong".into()),
                "https://forge.example/ops/hub",
                "refs/heads/main"
            )),
            401
        );
        // lab has its own secret: the shared one does not open it.
        assert_eq!(
            status(&push(
                Proof::Token("shared".into()),
                "https://forge.example/ops/lab",
                "refs/heads/main"
            )),
            401
        );
        let lab = push(
            Proof::Token("lab's".into()),
            "https://forge.example/ops/lab",
            "refs/heads/main",
        );
        assert!(matches!(plan(&lab, b"", &repos(), &secret), Ok(Plan::Sync { .. })));
        // No secret at all: nothing is accepted.
        let event = push(
            Proof::Token(String::new()),
            "https://forge.example/ops/hub",
            "refs/heads/main",
        );
        assert_eq!(
            plan(&event, b"", &repos(), &|_| None).expect_err("no secret").status,
            401
        );
    }

    #[test]
    fn named_hooks() {
        let named = |name: &str, proof: Proof| Event::Named {
            name: name.into(),
            proof,
        };
        assert!(
            matches!(plan(&named("hub", Proof::Token("shared".into())), b"", &repos(), &secret), Ok(Plan::Sync { names, delivery: None }) if names == ["hub"])
        );
        assert_eq!(
            plan(&named("nope", Proof::Token("shared".into())), b"", &repos(), &secret)
                .expect_err("404")
                .status,
            404
        );
        assert_eq!(
            plan(&named("hub", Proof::Missing), b"", &repos(), &secret)
                .expect_err("401")
                .status,
            401
        );
        assert_eq!(
            plan(&named("lab", Proof::Token("shared".into())), b"", &repos(), &secret)
                .expect_err("401")
                .status,
            401
        );
    }

    #[test]
    fn a_github_signature_is_checked_over_the_body() {
        use hmac::{KeyInit, Mac};
        let body = br#"{"ref":"refs/heads/main"}"#;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"shared").expect("key");
        mac.update(body);
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let event = |hex: String| Event::Push {
            forge: Forge::GitHub,
            proof: Proof::Hmac(format!("sha256={hex}")),
            delivery: None,
            urls: vec!["https://forge.example/ops/hub.git".into()],
            git_ref: "refs/heads/main".into(),
        };
        assert!(matches!(
            plan(&event(hex.clone()), body, &repos(), &secret),
            Ok(Plan::Sync { .. })
        ));
        assert_eq!(
            plan(&event(hex), b"{}", &repos(), &secret)
                .expect_err("other body")
                .status,
            401
        );
    }
}
