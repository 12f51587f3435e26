//! Turning benchmark figures into the Markdown section of `docs/benchmarks.md` (and raw JSON).

use std::path::Path;

use serde_json::json;

use super::median;
use super::sync::series_json;
use crate::error::{Context, Result};
use crate::sandbox::{Sandbox, stdout_of};

/// Start of the part of `docs/benchmarks.md` that `cargo xtask bench sync` rewrites.
pub const BEGIN: &str = "<!-- BEGIN GENERATED: cargo xtask bench sync -->";
/// End of that part.
pub const END: &str = "<!-- END GENERATED -->";

/// One timed case: milliseconds per repo, one sample per round.
pub struct Series {
    /// Stable name used to find the series for targets and in the JSON.
    pub key: &'static str,
    /// Human label for the table.
    pub label: String,
    /// `http` or `git`.
    pub transport: &'static str,
    /// Milliseconds per repo, one per round.
    pub samples: Vec<f64>,
    /// The RFC 005 script's figure, which the other rows of its transport are compared with.
    pub is_baseline: bool,
}

/// Peak RSS samples (kB) of one kind of run.
pub struct RssRow {
    /// Human label for the table.
    pub label: String,
    /// Peak RSS per sampled run, in kB.
    pub kb: Vec<u64>,
}

/// What the numbers were measured on.
pub struct Machine {
    /// UTC time of the run.
    pub date: String,
    /// `git rev-parse --short HEAD` of the workspace, or "uncommitted".
    pub commit: String,
    /// CPU model name.
    pub cpu: String,
    /// Usable cores.
    pub cores: usize,
    /// Total memory in MiB.
    pub memory_mib: u64,
    /// Kernel release.
    pub kernel: String,
    /// `git --version`.
    pub git: String,
    /// `sync-repo --version`.
    pub sync_repo: String,
    /// 1-minute load average when the measurements started and when they ended.
    pub load: (String, String),
}

/// The 1-minute load average from /proc/loadavg, or "?".
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// Everything one `bench sync` run measured.
pub struct Results {
    /// Repos in the fixture.
    pub repos: usize,
    /// Timed rounds per case.
    pub rounds: usize,
    /// Files per repo.
    pub files: usize,
    /// Commits per repo.
    pub commits: usize,
    /// Where it ran.
    pub machine: Machine,
    /// No-change cases over smart HTTP.
    pub no_change: Vec<Series>,
    /// One-new-commit cases over smart HTTP.
    pub change: Vec<Series>,
    /// No-change cases over git:// (empty if git daemon did not start).
    pub git_daemon: Vec<Series>,
    /// Checkouts owned by another user, synced by root (empty unless run as root).
    pub foreign: Vec<Series>,
    /// One checkout far behind, sync-repo against `git pull --ff-only` (the baseline).
    pub behind: Vec<Series>,
    /// hyperfine (name, mean ms, median ms) on one repo, if hyperfine ran.
    pub hyperfine: Option<Vec<(String, f64, f64)>>,
    /// Peak RSS rows.
    pub rss: Vec<RssRow>,
    /// Anything skipped or odd.
    pub notes: Vec<String>,
}

impl Machine {
    /// Read the machine's facts from /proc and the tools' `--version`.
    pub fn probe(sb: &Sandbox, bin: &Path, load_before: String) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
            .map_or_else(|| "unknown CPU".to_owned(), |(_, name)| name.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_mib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned());
        let or_unknown = |r: Result<String>| r.unwrap_or_else(|_| "unknown".to_owned());
        Machine {
            date: or_unknown(stdout_of(sb.command("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))),
            commit: stdout_of(sb.git(&crate::workspace::root()).args(["rev-parse", "--short", "HEAD"]))
                .unwrap_or_else(|_| "uncommitted".to_owned()),
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_mib,
            kernel,
            git: or_unknown(stdout_of(sb.command("git").arg("--version"))),
            sync_repo: or_unknown(stdout_of(sb.command(bin).arg("--version"))),
            load: (load_before, load_average()),
        }
    }
}

fn find<'a>(results: &'a Results, key: &str) -> Option<&'a Series> {
    results
        .no_change
        .iter()
        .chain(&results.change)
        .chain(&results.git_daemon)
        .chain(&results.foreign)
        .chain(&results.behind)
        .find(|s| s.key == key)
}

fn ratio(results: &Results, slow: &str, fast: &str) -> Option<f64> {
    let slow = find(results, slow)?.median();
    let fast = find(results, fast)?.median();
    (fast > 0.0).then(|| slow / fast)
}

fn table(out: &mut String, series: &[Series]) {
    table_against(out, series, "script", "ms/repo");
}

/// A table whose last column divides the `baseline` row's median by each row's.
fn table_against(out: &mut String, series: &[Series], baseline: &str, unit: &str) {
    let compare = series.iter().any(|s| s.is_baseline);
    out.push_str(&format!("| what | transport | {unit} (median) | min – max |"));
    if compare {
        out.push_str(&format!(" {baseline} ÷ this |\n"));
    } else {
        out.push('\n');
    }
    out.push_str(if compare {
        "|---|---|---:|---:|---:|\n"
    } else {
        "|---|---|---:|---:|\n"
    });
    for s in series {
        let min = s.samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = s.samples.iter().copied().fold(0.0, f64::max);
        out.push_str(&format!(
            "| {} | {} | {:.2} | {:.2} – {:.2} |",
            s.label,
            s.transport,
            s.median(),
            min,
            max
        ));
        if compare {
            let baseline = series.iter().find(|b| b.is_baseline && b.transport == s.transport);
            match baseline {
                Some(b) if s.median() > 0.0 => out.push_str(&format!(" {:.1}× |\n", b.median() / s.median())),
                _ => out.push_str(" – |\n"),
            }
        } else {
            out.push('\n');
        }
    }
}

/// The generated Markdown: setup, tables, targets.
pub fn render(r: &Results) -> String {
    let m = &r.machine;
    let mut out = String::new();
    out.push_str(&format!(
        "Generated by `cargo xtask bench sync --repos {} --rounds {}` on {} (workspace {}).\n\n",
        r.repos, r.rounds, m.date, m.commit
    ));
    out.push_str(&format!(
        "Machine: {}, {} cores, {} MiB RAM, Linux {}; {}; {} (release build).\n",
        m.cpu, m.cores, m.memory_mib, m.kernel, m.git, m.sync_repo
    ));
    out.push_str(&format!(
        "Load average (1 min) at start and end: {} and {}{}.\n",
        m.load.0,
        m.load.1,
        if m.load
            .0
            .parse::<f64>()
            .unwrap_or(0.0)
            .max(m.load.1.parse().unwrap_or(0.0))
            > m.cores as f64 * 0.75
        {
            ": other work shared the machine, so absolute figures are inflated; compare within rows of this run"
        } else {
            ""
        }
    ));
    out.push_str(&format!(
        "Fixture: {} repos of {} files and {} commits, served by lighttpd + `git http-backend` \
         (and `git daemon`) on 127.0.0.1; each contender has its own checkout of every repo.\n\n",
        r.repos, r.files, r.commits
    ));

    out.push_str(&format!(
        "### No change (median of {} rounds after one warm-up)\n\n",
        r.rounds
    ));
    table(&mut out, &r.no_change);

    out.push_str(&format!(
        "\n### One new commit on every origin (median of {} rounds)\n\n",
        r.rounds
    ));
    table(&mut out, &r.change);

    if !r.git_daemon.is_empty() {
        let rounds = r.git_daemon.first().map_or(0, |s| s.samples.len());
        out.push_str(&format!(
            "\n### git:// (git daemon), no change (median of {rounds} rounds)\n\n\
             The git CLI's protocol v2 over git:// stalls on loopback (the request leaves in small \
             writes without TCP_NODELAY: Nagle + delayed ACK), so its `ls-remote` is no floor \
             there; protocol v0 shows the transport's real cost.\n\n"
        ));
        table(&mut out, &r.git_daemon);
    }

    if !r.foreign.is_empty() {
        let rounds = r.foreign.first().map_or(0, |s| s.samples.len());
        out.push_str(&format!(
            "\n### Checkouts owned by another user, synced by root (median of {rounds} rounds)\n\n\
             Every checkout belongs to `nobody` and the state dir to root: sync-repo does the git \
             work in a worker running as the owner (privilege separation). The script runs as root \
             with `safe.directory=*`, without which git refuses the repo. Change rows get one new \
             commit per round.\n\n"
        ));
        // Each change row is compared with the script's change row, no change with no change.
        let (same, change): (Vec<&Series>, Vec<&Series>) = r.foreign.iter().partition(|s| !s.key.ends_with("-change"));
        for part in [same, change] {
            let owned: Vec<Series> = part
                .into_iter()
                .map(|s| Series {
                    key: s.key,
                    label: s.label.clone(),
                    transport: s.transport,
                    samples: s.samples.clone(),
                    is_baseline: s.is_baseline,
                })
                .collect();
            table(&mut out, &owned);
            out.push('\n');
        }
    }

    if !r.behind.is_empty() {
        let rounds = r.behind.first().map_or(0, |s| s.samples.len());
        out.push_str(&format!(
            "\n### One checkout {} commits behind (median of {rounds} rounds after one warm-up)\n\n\
             Each run starts from a fresh copy of the same behind checkout (copy not timed). \
             Over file the remote is the origin's path.\n\n",
            super::sync::BEHIND
        ));
        table_against(&mut out, &r.behind, "git", "ms");
    }

    if let Some(rows) = &r.hyperfine {
        out.push_str("\n### Cross-check: hyperfine on one repo, no change (30 runs)\n\n");
        out.push_str("| command | mean ms | median ms |\n|---|---:|---:|\n");
        for (name, mean, med) in rows {
            out.push_str(&format!("| {name} | {mean:.2} | {med:.2} |\n"));
        }
    }

    if !r.rss.is_empty() {
        out.push_str("\n### Peak RSS (`/usr/bin/time -v`, largest single process)\n\n");
        out.push_str("| run | runs sampled | median MB | max MB |\n|---|---:|---:|---:|\n");
        for row in &r.rss {
            let mb: Vec<f64> = row.kb.iter().map(|kb| *kb as f64 / 1024.0).collect();
            let max = mb.iter().copied().fold(0.0, f64::max);
            out.push_str(&format!(
                "| {} | {} | {:.1} | {:.1} |\n",
                row.label,
                mb.len(),
                median(&mb),
                max
            ));
        }
    }

    out.push_str("\n### Targets\n\n| target | transport | measured | met |\n|---|---|---:|:---:|\n");
    let mut target = |name: &str, transport: &str, measured: Option<f64>, unit: &str, goal: f64, at_least: bool| {
        let (text, met) = match measured {
            Some(v) => {
                let met = if at_least { v >= goal } else { v <= goal };
                (format!("{v:.1}{unit}"), if met { "yes" } else { "**no**" })
            }
            None => ("not measured".to_owned(), "–"),
        };
        out.push_str(&format!("| {name} | {transport} | {text} | {met} |\n"));
    };
    for (transport, prefix) in [("http", ""), ("file", "file-")] {
        let key = |k: &str| format!("{prefix}{k}");
        target(
            "no change, one process per repo: ≥ 3× faster than the script",
            transport,
            ratio(r, &key("script"), &key("single")),
            "×",
            3.0,
            true,
        );
        target(
            "no change, `--all`: ≥ 5× faster than the script",
            transport,
            ratio(r, &key("script"), &key("all")),
            "×",
            5.0,
            true,
        );
        target(
            "one new commit, one process per repo: ≥ 3× faster than the script",
            transport,
            ratio(r, &key("script-change"), &key("single-change")),
            "×",
            3.0,
            true,
        );
        let sync_rss = r
            .rss
            .iter()
            .filter(|row| row.label.starts_with("`sync-repo PATH`") && row.label.ends_with(&format!("({transport})")))
            .flat_map(|row| row.kb.iter().copied())
            .max()
            .map(|kb| kb as f64 / 1024.0);
        target(
            "peak RSS of `sync-repo PATH` ≤ 12 MB",
            transport,
            sync_rss,
            " MB",
            12.0,
            false,
        );
    }
    if !r.foreign.is_empty() {
        target(
            "foreign owner, no change, one process per repo: ≥ 3× faster than the script",
            "http",
            ratio(r, "foreign-script", "foreign-single"),
            "×",
            3.0,
            true,
        );
        target(
            "foreign owner, one new commit, one process per repo: ≥ 3× faster than the script",
            "http",
            ratio(r, "foreign-script-change", "foreign-single-change"),
            "×",
            3.0,
            true,
        );
    }
    for (transport, prefix) in [("http", ""), ("file", "file-")] {
        if r.behind.is_empty() {
            break;
        }
        target(
            &format!(
                "{} commits behind: no slower than `git pull --ff-only`",
                super::sync::BEHIND
            ),
            transport,
            ratio(r, &format!("{prefix}behind-git"), &format!("{prefix}behind-single")),
            "×",
            1.0,
            true,
        );
    }
    let reference: Vec<String> = [("http", ""), ("file", "file-")]
        .iter()
        .filter_map(|(t, p)| {
            ratio(r, &format!("{p}script"), &format!("{p}ls-remote")).map(|x| format!("{x:.1}× ({t})"))
        })
        .collect();
    out.push_str(&format!(
        "\nFor reference, script ÷ `git ls-remote` with no change: {}. That is as far as the git CLI \
         itself could get with one process per repo; it is not a bound for other clients (over HTTP \
         the CLI also starts `git-remote-http`).\n",
        reference.join(", ")
    ));

    if !r.notes.is_empty() {
        out.push_str("\nNotes:\n");
        for note in &r.notes {
            out.push_str(&format!("- {note}\n"));
        }
    }
    out
}

/// Raw figures for `target/xtask/bench-sync.json`.
pub fn to_json(r: &Results) -> serde_json::Value {
    json!({
        "repos": r.repos,
        "rounds": r.rounds,
        "files": r.files,
        "commits": r.commits,
        "date": r.machine.date,
        "commit": r.machine.commit,
        "cpu": r.machine.cpu,
        "cores": r.machine.cores,
        "load_average": [r.machine.load.0, r.machine.load.1],
        "no_change": series_json(&r.no_change),
        "change": series_json(&r.change),
        "git_daemon": series_json(&r.git_daemon),
        "foreign": series_json(&r.foreign),
        "behind": series_json(&r.behind),
        "hyperfine": r.hyperfine.as_ref().map(|rows| rows.iter().map(|(n, mean, med)| json!({"command": n, "mean_ms": mean, "median_ms": med})).collect::<Vec<_>>()),
        "peak_rss_kb": r.rss.iter().map(|row| json!({"run": row.label, "kb": row.kb})).collect::<Vec<_>>(),
        "notes": r.notes,
    })
}

/// Replace the text between [`BEGIN`] and [`END`] in `doc` with `section`; append the markers
/// and section if the file lacks them, create the file if it is missing.
pub fn write_generated_section(doc: &Path, section: &str) -> Result<()> {
    let current = match std::fs::read_to_string(doc) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n".to_owned(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", doc.display())),
    };
    let block = format!("{BEGIN}\n{}\n{END}", section.trim_end());
    let updated = match (current.find(BEGIN), current.find(END)) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{block}{}", &current[..start], &current[end + END.len()..])
        }
        _ => format!("{}\n\n{block}\n", current.trim_end()),
    };
    std::fs::write(doc, updated).with_context(|| format!("writing {}", doc.display()))
}

/// Now, as `2026-11-24 04:48 UTC`, for the "Generated on" line of a section.
pub fn now_utc() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "an unknown date".into())
}

/// Like [`write_generated_section`] for another benchmark: its own markers, named after it,
/// so each `cargo xtask bench NAME` rewrites only its part of the file.
pub fn write_named_section(doc: &Path, name: &str, section: &str) -> Result<()> {
    let begin = format!("<!-- BEGIN GENERATED: cargo xtask bench {name} -->");
    let end = format!("<!-- END GENERATED: {name} -->");
    let current = match std::fs::read_to_string(doc) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n".to_owned(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", doc.display())),
    };
    let block = format!("{begin}\n{}\n{end}", section.trim_end());
    let updated = match (current.find(&begin), current.find(&end)) {
        (Some(start), Some(stop)) if start < stop => {
            format!("{}{block}{}", &current[..start], &current[stop + end.len()..])
        }
        _ => format!("{}\n\n{block}\n", current.trim_end()),
    };
    std::fs::write(doc, updated).with_context(|| format!("writing {}", doc.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_section_is_replaced_and_the_rest_kept() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let doc = dir.path().join("b.md");
        std::fs::write(&doc, format!("intro\n\n{BEGIN}\nold\n{END}\n\nafter\n"))?;
        write_generated_section(&doc, "new\n")?;
        let text = std::fs::read_to_string(&doc)?;
        assert_eq!(text, format!("intro\n\n{BEGIN}\nnew\n{END}\n\nafter\n"));
        Ok(())
    }

    #[test]
    fn markers_are_appended_when_missing() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let doc = dir.path().join("b.md");
        std::fs::write(&doc, "intro\n")?;
        write_generated_section(&doc, "new")?;
        assert_eq!(
            std::fs::read_to_string(&doc)?,
            format!("intro\n\n{BEGIN}\nnew\n{END}\n")
        );
        Ok(())
    }
}
