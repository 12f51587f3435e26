//! Keeps credentials embedded in URLs (`https://user:token@host/...`) out of logs and messages,
//! and turns errors into the one-line, redacted form every tool prints and records.

/// Replace the password part of every `scheme://user:password@host` in `text` with `***`.
///
/// Works on any text (URLs, error messages from transports), so it can be applied to
/// whole error chains before they are printed.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // The authority ends at the first '/', whitespace or quote; userinfo ends at the last '@' in it.
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'' || c == '>')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    // A lone token used as user name (GitHub PATs are often passed like that).
                    None if looks_like_token(userinfo) => out.push_str("***"),
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Only the scheme and host (with its port) of `url`: all that may be shown of a webhook URL,
/// whose user, path and query are often the credential itself (a Slack `/services/T/B/SECRET`,
/// a Gotify `?token=`, an ntfy topic name). Text without `://` is shown as `<url>`.
pub fn url_origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<url>".to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}")
}

fn looks_like_token(user: &str) -> bool {
    user.len() >= 20 && user.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// An error and its causes on one line, credentials redacted.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    redact(&text)
}

#[cfg(test)]
mod tests {
    use super::{redact, url_origin};

    #[test]
    fn origin_keeps_scheme_host_and_port_only() {
        assert_eq!(
            url_origin("https://hooks.slack.com/services/T0/B0/XXXXSECRET"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            url_origin("https://gotify.example:8443/message?token=SECRET"),
            "https://gotify.example:8443"
        );
        assert_eq!(url_origin("http://bob:SECRET@ntfy.example?x#y"), "http://ntfy.example");
        assert_eq!(url_origin("https://ntfy.example"), "https://ntfy.example");
        assert_eq!(url_origin("not a url SECRET"), "<url>");
    }

    #[test]
    fn passwords_are_hidden_and_the_rest_kept() {
        assert_eq!(
            redact("fetch https://bob:s3cret@git.example.com/org/repo.git failed"),
            "fetch https://bob:***@git.example.com/org/repo.git failed"
        );
        assert_eq!(redact("ssh://git@host:22/x"), "ssh://git@host:22/x");
        assert_eq!(redact("git@github.com:org/repo.git"), "git@github.com:org/repo.git");
        assert_eq!(redact("no url here"), "no url here");
        assert_eq!(
            redact("https://ghp_abcdefghijklmnopqrstuvwxyz@github.com/o/r"),
            "https://***@github.com/o/r"
        );
        assert_eq!(
            redact("a http://u:p@h b http://u:q@h"),
            "a http://u:***@h b http://u:***@h"
        );
    }
}
