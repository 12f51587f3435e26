//! What a request is: which forge sent it (from its headers), how it proves that (a signature or
//! a token), and for a push, the repository URLs and the ref it names (from its JSON body).
//!
//! Nothing here is trusted yet: [`super::route`] checks the proof against the secret of the
//! repos the event names.

use serde_json::Value;

use super::Response;
use super::request::Request;

/// Who sent a request, by its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    /// `X-GitHub-Event`, signed with `X-Hub-Signature-256`.
    GitHub,
    /// `X-Gitea-Event` or `X-Forgejo-Event`, signed with `X-Gitea-Signature` (or
    /// `X-Forgejo-Signature`, `X-Hub-Signature-256`): Gitea also sends GitHub's headers, so it
    /// is recognised first.
    Gitea,
    /// `X-Gitlab-Event`, with the secret itself in `X-Gitlab-Token`.
    GitLab,
    /// `POST /hook/NAME` with `Authorization: Bearer TOKEN`: a CI job, a script.
    Generic,
}

impl Forge {
    /// Its name, for answers and logs.
    pub fn name(self) -> &'static str {
        match self {
            Forge::GitHub => "GitHub",
            Forge::Gitea => "Gitea",
            Forge::GitLab => "GitLab",
            Forge::Generic => "generic",
        }
    }
}

/// How a request proves it knows the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// An HMAC-SHA256 of the body, hex.
    Hmac(String),
    /// The secret itself.
    Token(String),
    /// Nothing.
    Missing,
}

/// A request, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A push event of a forge.
    Push {
        /// Who sent it.
        forge: Forge,
        /// Its proof.
        proof: Proof,
        /// The delivery id (`X-GitHub-Delivery`, `X-Gitea-Delivery`, `X-Gitlab-Event-UUID`),
        /// which a forge keeps when it redelivers.
        delivery: Option<String>,
        /// Every URL the event gives for the repository (clone, ssh, web).
        urls: Vec<String>,
        /// The ref pushed, `refs/heads/main`.
        git_ref: String,
    },
    /// `POST /hook/NAME`: sync the configured repo NAME.
    Named {
        /// The repo name from the path.
        name: String,
        /// Its proof.
        proof: Proof,
    },
    /// Another event of a forge (GitHub's `ping` when a hook is created, issues, ...):
    /// acknowledged, nothing is done.
    Other {
        /// Who sent it.
        forge: Forge,
        /// The event's name.
        event: String,
    },
}

/// Classify `request`; a request that is none of the above is the [`Response`] to send.
pub fn classify(request: &Request) -> Result<Event, Response> {
    if request.method != "POST" {
        return Err(Response::new(
            405,
            format!("{} is not accepted; forges POST their events", request.method),
        ));
    }
    let (forge, event) = if let Some(event) = request
        .header("x-gitea-event")
        .or_else(|| request.header("x-forgejo-event"))
    {
        (Forge::Gitea, event)
    } else if let Some(event) = request.header("x-github-event") {
        (Forge::GitHub, event)
    } else if let Some(event) = request.header("x-gitlab-event") {
        (Forge::GitLab, event)
    } else if let Some(name) = request.path.strip_prefix("/hook/") {
        let name = name.split(['?', '#']).next().unwrap_or_default();
        let proof = match request.header("authorization") {
            Some(auth) => match auth.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Proof::Token(token.trim().to_owned()),
                _ => Proof::Missing,
            },
            None => Proof::Missing,
        };
        return Ok(Event::Named {
            name: name.to_owned(),
            proof,
        });
    } else {
        return Err(Response::new(
            400,
            "not a push event of GitHub, Gitea, Forgejo or GitLab, nor a POST /hook/NAME",
        ));
    };
    let is_push = match forge {
        Forge::GitLab => event.eq_ignore_ascii_case("push hook"),
        _ => event.eq_ignore_ascii_case("push"),
    };
    if !is_push {
        return Ok(Event::Other {
            forge,
            event: event.to_owned(),
        });
    }
    let proof = match forge {
        Forge::GitHub => request.header("x-hub-signature-256").map(|s| Proof::Hmac(s.to_owned())),
        Forge::Gitea => request
            .header("x-gitea-signature")
            .or_else(|| request.header("x-forgejo-signature"))
            .or_else(|| request.header("x-hub-signature-256"))
            .map(|s| Proof::Hmac(s.to_owned())),
        Forge::GitLab | Forge::Generic => request.header("x-gitlab-token").map(|t| Proof::Token(t.to_owned())),
    }
    .unwrap_or(Proof::Missing);
    let delivery = [
        "x-gitea-delivery",
        "x-forgejo-delivery",
        "x-github-delivery",
        "x-gitlab-event-uuid",
    ]
    .iter()
    .find_map(|h| request.header(h))
    .filter(|d| !d.is_empty())
    .map(|d| d.chars().take(128).collect());
    let body: Value = serde_json::from_slice(&request.body)
        .map_err(|err| Response::new(400, format!("the {} push event is not JSON: {err}", forge.name())))?;
    let (repo_key, url_keys): (&str, &[&str]) = match forge {
        Forge::GitLab => (
            "project",
            &["git_http_url", "git_ssh_url", "web_url", "http_url", "ssh_url"],
        ),
        _ => ("repository", &["clone_url", "ssh_url", "html_url", "git_url"]),
    };
    let urls: Vec<String> = url_keys
        .iter()
        .filter_map(|key| body.get(repo_key)?.get(key)?.as_str())
        .map(str::to_owned)
        .collect();
    if urls.is_empty() {
        return Err(Response::new(
            400,
            format!(
                "the {} push event names no repository URL ({repo_key}.{})",
                forge.name(),
                url_keys[0]
            ),
        ));
    }
    let git_ref = body
        .get("ref")
        .and_then(Value::as_str)
        .ok_or_else(|| Response::new(400, format!("the {} push event has no `ref`", forge.name())))?
        .to_owned();
    Ok(Event::Push {
        forge,
        proof,
        delivery,
        urls,
        git_ref,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(path: &str, headers: &[(&str, &str)], body: &str) -> Request {
        Request {
            method: "POST".into(),
            path: path.into(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    const GITHUB_BODY: &str = r#"{"ref":"refs/heads/main","repository":{"clone_url":"https://github.com/o/r.git","ssh_url":"git@github.com:o/r.git","html_url":"https://github.com/o/r"}}"#;

    #[test]
    fn github_push() {
        let request = post(
            "/",
            &[
                ("X-GitHub-Event", "push"),
                ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
                ("X-Hub-Signature-256", "sha256=ab"),
            ],
            GITHUB_BODY,
        );
        assert_eq!(
            classify(&request).expect("push"),
            Event::Push {
                forge: Forge::GitHub,
                proof: Proof::Hmac("sha256=ab".into()),
                delivery: Some("72d3162e-cc78-11e3-81ab-4c9367dc0958".into()),
                urls: vec![
                    "https://github.com/o/r.git".into(),
                    "git@github.com:o/r.git".into(),
                    "https://github.com/o/r".into()
                ],
                git_ref: "refs/heads/main".into(),
            }
        );
    }

    #[test]
    fn gitea_is_recognised_before_the_github_headers_it_also_sends() {
        let request = post(
            "/",
            &[
                ("X-GitHub-Event", "push"),
                ("X-Gitea-Event", "push"),
                ("X-Gitea-Delivery", "d1"),
                ("X-Gitea-Signature", "cd"),
            ],
            GITHUB_BODY,
        );
        let Event::Push {
            forge, proof, delivery, ..
        } = classify(&request).expect("push")
        else {
            panic!("not a push");
        };
        assert_eq!(
            (forge, proof, delivery.as_deref()),
            (Forge::Gitea, Proof::Hmac("cd".into()), Some("d1"))
        );
    }

    #[test]
    fn gitlab_push() {
        let body = r#"{"object_kind":"push","ref":"refs/heads/main","project":{"git_http_url":"https://gitlab.example/g/p.git","git_ssh_url":"git@gitlab.example:g/p.git"}}"#;
        let request = post("/", &[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", "tok")], body);
        let Event::Push {
            forge,
            proof,
            urls,
            git_ref,
            ..
        } = classify(&request).expect("push")
        else {
            panic!("not a push");
        };
        assert_eq!(forge, Forge::GitLab);
        assert_eq!(proof, Proof::Token("tok".into()));
        assert_eq!(urls.len(), 2);
        assert_eq!(git_ref, "refs/heads/main");
    }

    #[test]
    fn generic_named_hook() {
        let request = post("/hook/hub", &[("Authorization", "Bearer s3cret")], "");
        assert_eq!(
            classify(&request).expect("named"),
            Event::Named {
                name: "hub".into(),
                proof: Proof::Token("s3cret".into())
            }
        );
        let request = post("/hook/hub", &[("Authorization", "Basic czNjcmV0")], "");
        assert!(matches!(
            classify(&request),
            Ok(Event::Named {
                proof: Proof::Missing,
                ..
            })
        ));
    }

    #[test]
    fn other_events_and_refusals() {
        let ping = post("/", &[("X-GitHub-Event", "ping")], "{}");
        assert!(matches!(classify(&ping), Ok(Event::Other { .. })));
        let not_json = post("/", &[("X-GitHub-Event", "push")], "ref=main");
        assert_eq!(classify(&not_json).expect_err("400").status, 400);
        let no_repo = post("/", &[("X-GitHub-Event", "push")], r#"{"ref":"refs/heads/main"}"#);
        assert_eq!(classify(&no_repo).expect_err("400").status, 400);
        let no_ref = post(
            "/",
            &[("X-GitHub-Event", "push")],
            r#"{"repository":{"clone_url":"https://x/o/r"}}"#,
        );
        assert_eq!(classify(&no_ref).expect_err("400").status, 400);
        let nothing = post("/", &[], "{}");
        assert_eq!(classify(&nothing).expect_err("400").status, 400);
        let mut get = post("/hook/hub", &[], "");
        get.method = "GET".into();
        assert_eq!(classify(&get).expect_err("405").status, 405);
    }
}
