//! The report for one failed unit, and the HTTP request it becomes for each receiver format.

use driftless_core::config::NotifyFormat;

/// What happened: which unit failed (or recovered) where, and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The unit (`sync-repo@hub.service`).
    pub unit: String,
    /// Whether it failed or recovered.
    pub event: Event,
    /// The host it failed on.
    pub host: String,
    /// Its journal lines, oldest first (or why they could not be read); for a recovery, what
    /// the failure streak was.
    pub journal: String,
}

/// What a report announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Failed,
    /// The first success after an alerted failure.
    Recovered,
}

/// A request ready to send: content type, extra headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// Headers besides the content type (ntfy reads its title and priority from them).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: String,
}

impl Report {
    /// The one-line summary: `driftless: sync-repo@hub.service failed on host1`.
    pub fn title(&self) -> String {
        let what = match self.event {
            Event::Failed => "failed",
            Event::Recovered => "recovered",
        };
        format!("driftless: {} {what} on {}", self.unit, self.host)
    }

    /// The summary, then the journal lines.
    pub fn text(&self) -> String {
        format!("{}\n\n{}", self.title(), self.journal.trim_end())
    }

    /// The request for a receiver of `format`.
    pub fn request(&self, format: NotifyFormat) -> Request {
        match format {
            NotifyFormat::Plain => Request {
                content_type: "text/plain; charset=utf-8",
                headers: Vec::new(),
                body: self.text(),
            },
            NotifyFormat::Ntfy => Request {
                content_type: "text/plain; charset=utf-8",
                // Header values must be plain ASCII: unit names and host names are.
                headers: vec![
                    ("Title", ascii(&self.title())),
                    ("Priority", self.pick("high", "default").to_owned()),
                    ("Tags", self.pick("warning", "white_check_mark").to_owned()),
                ],
                body: self.journal.trim_end().to_owned(),
            },
            NotifyFormat::Gotify => Request {
                content_type: "application/json",
                headers: Vec::new(),
                body: serde_json::json!({
                    "title": self.title(),
                    "message": self.journal.trim_end(),
                    "priority": if self.event == Event::Failed { 8 } else { 4 },
                })
                .to_string(),
            },
            NotifyFormat::Slack => Request {
                content_type: "application/json",
                headers: Vec::new(),
                body: serde_json::json!({
                    "text": format!("*{}*\n```\n{}\n```", self.title(), self.journal.trim_end()),
                })
                .to_string(),
            },
        }
    }
}

impl Report {
    fn pick<'a>(&self, failed: &'a str, recovered: &'a str) -> &'a str {
        match self.event {
            Event::Failed => failed,
            Event::Recovered => recovered,
        }
    }
}

fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            unit: "sync-repo@hub.service".into(),
            event: Event::Failed,
            host: "host1".into(),
            journal: "sync-repo: refused: local changes\n  git -C /srv/hub stash\n".into(),
        }
    }

    #[test]
    fn plain_has_title_then_journal() {
        let req = report().request(NotifyFormat::Plain);
        assert!(req.content_type.starts_with("text/plain"));
        assert_eq!(
            req.body,
            "driftless: sync-repo@hub.service failed on host1\n\nsync-repo: refused: local changes\n  git -C /srv/hub stash"
        );
    }

    #[test]
    fn ntfy_puts_title_in_a_header() {
        let req = report().request(NotifyFormat::Ntfy);
        assert!(
            req.headers
                .contains(&("Title", "driftless: sync-repo@hub.service failed on host1".into()))
        );
        assert!(req.body.starts_with("sync-repo: refused"));
    }

    #[test]
    fn a_recovery_says_so_at_a_lower_priority() {
        let recovered = Report {
            event: Event::Recovered,
            ..report()
        };
        assert_eq!(recovered.title(), "driftless: sync-repo@hub.service recovered on host1");
        let req = recovered.request(NotifyFormat::Ntfy);
        assert!(
            req.headers.contains(&("Priority", "default".into())),
            "{:?}",
            req.headers
        );
    }

    #[test]
    fn gotify_and_slack_are_json() -> Result<(), serde_json::Error> {
        let gotify: serde_json::Value = serde_json::from_str(&report().request(NotifyFormat::Gotify).body)?;
        assert_eq!(gotify["title"], "driftless: sync-repo@hub.service failed on host1");
        assert_eq!(gotify["priority"], 8);
        let slack: serde_json::Value = serde_json::from_str(&report().request(NotifyFormat::Slack).body)?;
        let text = slack["text"].as_str().unwrap_or_default();
        assert!(
            text.contains("sync-repo@hub.service") && text.contains("git -C /srv/hub stash"),
            "{text}"
        );
        Ok(())
    }
}
