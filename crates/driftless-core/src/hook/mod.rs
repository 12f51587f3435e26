//! What `driftless-hook` does with one webhook request: a forge's push event (GitHub, Gitea or
//! Forgejo, GitLab) or a generic `POST /hook/NAME`, turned into the `sync-repo@NAME.service`
//! starts it asks for, or into the refusal it deserves.
//!
//! The stages, each its own module: [`request`] reads one bounded HTTP/1.1 request under a
//! deadline; [`event`] says which forge sent it and what it names; [`route`] maps that to
//! configured repos and checks the signature with each repo's secret ([`signature`],
//! [`secrets`]); [`replay`] remembers deliveries already handled; [`start`] asks systemd (or
//! runs `sync-repo` itself) to sync. [`Response`] is what the client is answered.

pub mod event;
pub mod replay;
pub mod request;
pub mod route;
pub mod secrets;
pub mod signature;
pub mod start;
pub mod url;

use std::path::Path;

/// What to do about one request that was read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Answer this and do nothing more (a refusal, an ignored event, a replay).
    Done(Response),
    /// Start the sync of these repos, then answer 202.
    Start {
        /// Repo names.
        names: Vec<String>,
        /// What the request was, for the log: `GitHub push`, `POST /hook/hub`.
        what: String,
    },
}

/// Decide what to do with `request`: classify it, route it to `repos` with the proof checked
/// against `secrets`, and drop a delivery already handled (memory under `state_root`, at
/// `now`).
pub fn answer(
    request: &request::Request,
    repos: &[route::Repo],
    secrets: &secrets::Secrets,
    state_root: &Path,
    now: u64,
) -> Answer {
    let event = match event::classify(request) {
        Ok(event) => event,
        Err(response) => return Answer::Done(response),
    };
    let secret = |name: &str| match secrets.for_repo(name) {
        Ok(secret) => secret,
        Err(err) => {
            tracing::warn!("{}", crate::redact::error_chain(&err));
            None
        }
    };
    let (names, delivery) = match route::plan(&event, &request.body, repos, &secret) {
        Err(response) => return Answer::Done(response),
        Ok(route::Plan::Ignore(response)) => return Answer::Done(response),
        Ok(route::Plan::Sync { names, delivery }) => (names, delivery),
    };
    let what = match &event {
        event::Event::Push { forge, .. } => format!("{} push", forge.name()),
        _ => format!("POST {}", request.path),
    };
    if let Some(id) = &delivery {
        match replay::seen_before(state_root, id, now) {
            Ok(true) => {
                return Answer::Done(Response::new(
                    200,
                    format!("ignored: delivery {id} was already handled"),
                ));
            }
            Ok(false) => {}
            // Better a second sync than a missed one: the memory only saves work.
            Err(err) => tracing::warn!(
                "delivery memory: {}; handling {id} anyway",
                crate::redact::error_chain(&err)
            ),
        }
    }
    Answer::Start { names, what }
}

/// The answer to one request: an HTTP status and a one-line plain-text reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// What happened, for the forge's delivery log and for a person with curl.
    pub body: String,
}

impl Response {
    /// A response with `status` and `body`.
    pub fn new(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            body: body.into(),
        }
    }

    /// The response as HTTP/1.1 bytes; the connection is closed after it.
    pub fn to_http(&self) -> Vec<u8> {
        let body = format!("{}\n", self.body);
        format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.status,
            reason(self.status),
            body.len()
        )
        .into_bytes()
    }
}

/// The standard reason phrase of the statuses the hook answers with.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_is_http_with_its_length() {
        let text = String::from_utf8(Response::new(202, "started sync-repo@hub.service").to_http()).expect("utf-8");
        assert!(text.starts_with("HTTP/1.1 202 Accepted\r\n"), "{text}");
        assert!(text.contains("Content-Length: 30\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nstarted sync-repo@hub.service\n"), "{text}");
    }
}
