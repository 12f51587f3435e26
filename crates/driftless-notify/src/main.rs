//! `driftless-notify`: run by `driftless-notify@.service` (the `OnFailure=` of every driftless
//! unit) to post the failed unit's name, the host and its last journal lines to `notify.url`.
//!
//! Thin by design: parse arguments, read the journal, post, map to an exit code.

use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::Parser;
use driftless_core::cli::Kind;
use driftless_core::exit::Exit;
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
    let report = Report {
        unit: args.unit.clone(),
        host: hostname(),
        journal: journal(&args.unit, args.user, args.lines),
    };
    let request = report.request(notify.format);
    let url = driftless_core::redact::redact(&notify.url);
    if args.common.dry_run {
        out.line(&format!("POST {url}\nContent-Type: {}", request.content_type));
        for (name, value) in &request.headers {
            out.line(&format!("{name}: {value}"));
        }
        out.line(&format!("\n{}", request.body));
        return Ok(Exit::Ok);
    }
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let mut post = client
        .post(&notify.url)
        .header(reqwest::header::CONTENT_TYPE, request.content_type)
        .body(request.body);
    for (name, value) in &request.headers {
        post = post.header(*name, value.as_str());
    }
    match post.send().and_then(reqwest::blocking::Response::error_for_status) {
        Ok(response) => {
            let line = format!("{}: reported to {url} ({})", args.unit, response.status());
            out.item(Kind::Changed, "report", "", &line);
            Ok(Exit::Ok)
        }
        Err(err) => {
            let message = driftless_core::redact::redact(&err.to_string());
            out.note(&format!(
                "driftless-notify: error: cannot post the report of {} to {url}: {message}",
                args.unit
            ));
            Ok(Exit::TempFail)
        }
    }
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
