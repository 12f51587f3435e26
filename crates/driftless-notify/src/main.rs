//! `driftless-notify`: run by `driftless-notify@.service` (the `OnFailure=` of every driftless
//! unit) to post the failed unit's name, the host and its last journal lines to `notify.url`.
//!
//! Thin by design: parse arguments, read the journal, post, map to an exit code.

use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::Parser;
use driftless_core::cli::Kind;
use driftless_core::exit::Exit;
use driftless_core::redact::{error_chain, url_origin};
use driftless_notify::cli::Args;
use driftless_notify::message::Report;

fn main() -> ExitCode {
    let args = Args::parse();
    driftless_core::cli::main("driftless-notify", &args.common, || run(&args))
}

fn run(args: &Args) -> Result<Exit, Box<dyn std::error::Error>> {
    let (config, _state) = args.common.load()?;
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
    let report = Report {
        unit: args.unit.clone(),
        host: hostname(),
        journal: journal(&args.unit, args.user, args.lines),
    };
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
            let line = format!("{}: reported to {shown} ({status})", args.unit);
            out.item(Kind::Changed, "report", "", &line);
            Ok(Exit::Ok)
        }
        Err(message) => {
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

/// The unit's last `lines` journal lines, or a line saying why there are none: a report without
/// them is still worth sending.
fn journal(unit: &str, user: bool, lines: u32) -> String {
    let mut cmd = Command::new("journalctl");
    cmd.arg(if user { "--user-unit" } else { "--unit" })
        .arg(unit)
        .args(["--no-pager", "--output=short-iso", "--lines"])
        .arg(lines.to_string());
    match cmd.output() {
        Ok(out) if out.status.success() && !out.stdout.is_empty() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => format!(
            "(no journal lines: journalctl exited {}: {})",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(err) => format!("(no journal lines: cannot run journalctl: {err})"),
    }
}
