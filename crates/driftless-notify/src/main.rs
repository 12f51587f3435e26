//! `driftless-notify`: run by `driftless-notify@.service` (the `OnFailure=` of every driftless
//! unit) to post the failed unit's name, the host and its journal lines to `notify.url`, and by
//! `driftless-resolved@.service` (`OnSuccess=`) to post its recovery. Whether a failure is worth
//! a post is decided in core ([`driftless_core::alert`]).
//!
//! Thin by design: parse arguments, read the journal and the streak, post, map to an exit code.

use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::Parser;
use driftless_cli::Kind;
use driftless_core::alert::{self, Alerted, Failure, Verdict};
use driftless_core::exit::Exit;
use driftless_core::redact::{error_chain, url_origin};
use driftless_notify::cli::Args;
use driftless_notify::message::{Event, Report};

fn main() -> ExitCode {
    driftless_cli::answer_completion::<Args>();
    let args = Args::parse();
    driftless_cli::main("driftless-notify", &args.common, || run(&args))
}

fn run(args: &Args) -> Result<Exit, Box<dyn std::error::Error>> {
    let (config, state) = args.common.load()?;
    let mut out = args.common.output();
    let Some(notify) = &config.notify else {
        out.note(&format!(
            "driftless-notify: no `notify:` in {}; not reporting {}",
            config.source.as_deref().map_or_else(
                || driftless_core::config::DEFAULT_CONFIG_PATH.into(),
                |p| p.display().to_string()
            ),
            args.unit
        ));
        return Ok(Exit::Ok);
    };
    // The URL's path, query and user are often the secret (Slack `/services/...`, Gotify
    // `?token=`): only its origin is ever printed.
    let shown = url_origin(&notify.url);
    let url = match reqwest::Url::parse(&notify.url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => url,
        Ok(_) => return Err(format!("notify.url ({shown}...) is not an http:// or https:// URL with a host").into()),
        Err(err) => {
            return Err(format!("notify.url ({shown}...) is not a valid URL: {err}; fix it in the config").into());
        }
    };
    let streak_path = alert::streak_path(state.root(), &args.unit);
    let streak = alert::read_streak(&streak_path)?;
    let now = driftless_core::time::now_unix();
    let mut report = Report {
        unit: args.unit.clone(),
        event: Event::Failed,
        host: hostname(),
        journal: String::new(),
    };
    // What to record once the post is through (or, when holding back, at once).
    let mut after_post: Option<alert::Streak> = None;
    if args.resolved {
        let Some(streak) = streak else {
            return Ok(Exit::Ok); // No failure since the last success: nothing to end.
        };
        if !alert::on_success(&streak) {
            if !args.common.dry_run {
                remove(&streak_path)?;
            }
            let line = format!(
                "{}: recovered after {} failed run(s), none of which alerted; nothing to post",
                args.unit, streak.failures
            );
            out.item(Kind::Unchanged, "report", "", &line);
            out.finish();
            return Ok(Exit::Ok);
        }
        report.event = Event::Recovered;
        report.journal = format!(
            "{} failed run(s) in a row since {}; the last: {}\nIt succeeded again at {}.",
            streak.failures,
            driftless_core::time::rfc3339(streak.since),
            streak.cause,
            driftless_core::time::rfc3339(now)
        );
    } else {
        report.journal = journal(&args.unit, args.user, args.lines, args.invocation.as_deref());
        if args.exit_status.is_some() || args.result.is_some() {
            let failure = Failure {
                exit_status: args.exit_status.as_deref().and_then(|s| s.parse().ok()),
                result: args.result.clone().unwrap_or_else(|| "exit-code".to_owned()),
                detail: messages(args.invocation.as_deref()),
            };
            let (streak, verdict) = alert::on_failure(streak, &failure, now, notify.policy());
            if let Verdict::Hold(why) = verdict {
                if !args.common.dry_run {
                    alert::write_streak(&streak_path, &streak)?;
                }
                out.item(
                    Kind::Unchanged,
                    "report",
                    "",
                    &format!("{}: not posted: {why}", args.unit),
                );
                out.finish();
                return Ok(Exit::Ok);
            }
            after_post = Some(streak);
        }
    }
    let request = report.request(notify.format);
    if args.common.dry_run {
        out.line(&format!("POST {shown}/...\nContent-Type: {}", request.content_type));
        for (name, value) in &request.headers {
            out.line(&format!("{name}: {value}"));
        }
        out.line(&format!("\n{}", request.body));
        return Ok(Exit::Ok);
    }
    // No redirect is followed: following one would re-send the journal lines (307/308) to
    // wherever the receiver points, possibly in clear text (https -> http), or turn the POST
    // into a GET that reports nothing. A redirect is reported instead.
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut post = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, request.content_type)
        .body(request.body);
    for (name, value) in &request.headers {
        post = post.header(*name, value.as_str());
    }
    let posted: Result<reqwest::StatusCode, String> = match post.send() {
        Ok(response) if response.status().is_redirection() => {
            let to = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map_or_else(|| "nowhere".to_owned(), url_origin);
            Err(format!(
                "the webhook answered {} (a redirect to {to}, not followed: the report would be \
                 sent again elsewhere); put the final URL in notify.url",
                response.status()
            ))
        }
        Ok(response) => response
            .error_for_status()
            .map(|response| response.status())
            .map_err(|err| message(err, &notify.url, &shown)),
        Err(err) => Err(message(err, &notify.url, &shown)),
    };
    match posted {
        Ok(status) => {
            if let Some(mut streak) = after_post {
                streak.alerted = Some(Alerted {
                    cause: streak.cause.clone(),
                    at: now,
                });
                alert::write_streak(&streak_path, &streak)?;
            } else if args.resolved {
                remove(&streak_path)?;
            }
            let line = format!("{}: reported to {shown} ({status})", args.unit);
            out.item(Kind::Changed, "report", "", &line);
            Ok(Exit::Ok)
        }
        Err(message) => {
            // Not alerted: the streak goes on without it, so the next failure posts again (a
            // recovery not posted is posted at the next success).
            if let Some(streak) = after_post {
                alert::write_streak(&streak_path, &streak)?;
            }
            out.note(&format!(
                "driftless-notify: error: cannot post the report of {} to {shown}: {message}",
                args.unit
            ));
            Ok(Exit::TempFail)
        }
    }
}

/// reqwest's error and its causes on one line, without the URL (which holds the secret).
fn message(err: reqwest::Error, url: &str, shown: &str) -> String {
    error_chain(&err.without_url()).replace(url, shown)
}

/// The kernel's host name (what `hostname` prints).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".to_owned())
}

/// Remove a streak that ended; one already gone is fine.
fn remove(path: &std::path::Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(format!("{}: {err}", path.display())),
        _ => Ok(()),
    }
}

/// The failed run's messages alone (no time stamps), which tell one cause from another.
fn messages(invocation: Option<&str>) -> String {
    let Some(id) = invocation.filter(|id| is_invocation_id(id)) else {
        return String::new();
    };
    let out = Command::new("journalctl")
        .arg(format!("_SYSTEMD_INVOCATION_ID={id}"))
        .args(["--no-pager", "--output=cat", "--lines=50"])
        .output();
    match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => String::new(),
    }
}

/// A systemd invocation ID: 32 hex digits (anything else is not passed to journalctl).
fn is_invocation_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The journal lines of the failed run (`invocation`), else the unit's last `lines` lines, or a
/// line saying why there are none: a report without them is still worth sending.
fn journal(unit: &str, user: bool, lines: u32, invocation: Option<&str>) -> String {
    let query = |selector: &[String]| {
        let out = Command::new("journalctl")
            .args(selector)
            .args(["--no-pager", "--quiet", "--output=short-iso", "--lines"])
            .arg(lines.to_string())
            .output();
        match out {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                let empty = text.trim().is_empty() || text.trim() == "-- No entries --";
                Ok((!empty).then_some(text))
            }
            Ok(out) => Err(format!(
                "(no journal lines: journalctl exited {}: {})",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(err) => Err(format!("(no journal lines: cannot run journalctl: {err})")),
        }
    };
    // The run's own lines only: an alert must not open with the previous run's.
    if let Some(id) = invocation.filter(|id| is_invocation_id(id))
        && let Ok(Some(lines)) = query(&[format!("_SYSTEMD_INVOCATION_ID={id}")])
    {
        return lines;
    }
    let by_unit = [
        (if user { "--user-unit" } else { "--unit" }).to_owned(),
        unit.to_owned(),
    ];
    match query(&by_unit) {
        Ok(Some(lines)) => lines,
        Ok(None) => "(no journal lines for this unit)".to_owned(),
        Err(why) => why,
    }
}
