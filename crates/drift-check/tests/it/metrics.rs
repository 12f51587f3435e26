//! The Prometheus textfiles: drift-check's `driftless-REPO.prom` and the per-run files of
//! sync-repo and mirror-copy pass `promtool check metrics` in every state, merge cleanly in
//! node_exporter's textfile collector (also with several `drift-check@` instances side by side),
//! are never seen half-written by a concurrent reader, and a file that cannot be written is
//! reported after the table with exit 74.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::{DRIFT, Host, NO_DRIFT, REPO, TEMP_FAIL, Table, exists, require_tool};

const MIRROR_YAML: &str = "    mirror: {to: \"{mirror}\", max_age: 1h}\n";

/// Every `*.prom` file in `dir`, sorted.
fn prom_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.expect("read dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "prom"))
        .collect();
    files.sort();
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `promtool check metrics < path` must succeed with no complaint.
#[track_caller]
fn promtool_check(promtool: &Path, path: &Path) {
    let out = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display())))
        .output()
        .expect("spawn promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics rejected {} ({}):\n{}{}\n--- file\n{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        read(path)
    );
}

/// promtool on every `.prom` file of `dir`; returns the file names checked.
#[track_caller]
fn promtool_check_dir(promtool: &Path, dir: &Path) -> Vec<String> {
    let files = prom_files(dir);
    for file in &files {
        promtool_check(promtool, file);
    }
    files
        .iter()
        .map(|f| f.file_name().expect("file name").to_string_lossy().into_owned())
        .collect()
}

/// One sample line: metric name, label pairs in file order, value.
type Sample = (String, Vec<(String, String)>, f64);

/// Parse a sample line `name{k="v",...} value` or `name value`.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let (series, value) = line.rsplit_once(' ').ok_or_else(|| format!("no value in {line:?}"))?;
    let value: f64 = value.parse().map_err(|e| format!("bad value in {line:?}: {e}"))?;
    let (name, labels) = match series.split_once('{') {
        None => (series, ""),
        Some((name, rest)) => (
            name,
            rest.strip_suffix('}')
                .ok_or_else(|| format!("unclosed labels in {line:?}"))?,
        ),
    };
    let valid_name = name
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()));
    if name.is_empty() || !valid_name {
        return Err(format!("bad metric name in {line:?}"));
    }
    let mut pairs = Vec::new();
    let mut rest = labels;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").ok_or_else(|| format!("bad label in {line:?}"))?;
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad label name {key:?} in {line:?}"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("dangling escape in {line:?}")),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err(format!("unterminated label value in {line:?}")),
            }
        };
        pairs.push((key.to_owned(), value));
        rest = &after[end + 1..];
        rest = match rest.strip_prefix(',') {
            Some(r) => r,
            None if rest.is_empty() => rest,
            None => return Err(format!("junk after a label in {line:?}")),
        };
    }
    Ok((name.to_owned(), pairs, value))
}

/// The promtool-free check a concurrent reader applies to a `driftless-REPO.prom`: newline-terminated,
/// every line a `# HELP`/`# TYPE` comment or a well-formed sample, and the last sample is
/// drift-check's `driftless_check_timestamp_seconds` (so the file is complete).
fn check_driftless_prom(text: &str) -> Result<(), String> {
    if !text.ends_with('\n') {
        return Err("does not end with a newline".into());
    }
    let mut last = None;
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        last = Some(parse_sample(line)?.0);
    }
    match last.as_deref() {
        Some("driftless_check_timestamp_seconds") => Ok(()),
        other => Err(format!(
            "last sample is {other:?}, not driftless_check_timestamp_seconds"
        )),
    }
}

/// The value of the one sample `series` (as written, labels included) in `text`.
#[track_caller]
fn value(text: &str, series: &str) -> f64 {
    let found: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .collect();
    assert_eq!(found.len(), 1, "want one `{series}` sample in:\n{text}");
    found[0]
}

#[test]
fn every_metrics_file_passes_promtool_in_every_state() {
    let Some(promtool) = require_tool("promtool", "prometheus") else {
        return;
    };
    let host = Host::new(MIRROR_YAML);
    let driftless = host.metrics.join("driftless-hub.prom");

    // Clean.
    host.check(&["--deep"]).expect_code(NO_DRIFT);
    let files = promtool_check_dir(&promtool, &host.metrics);
    assert_eq!(
        files,
        ["driftless-hub.prom", "mirror-copy-hub.prom", "sync-repo-hub.prom"],
        "drift-check, mirror-copy and sync-repo each wrote their file"
    );
    assert_eq!(value(&read(&driftless), "driftless_check_exit_code{repo=\"hub\"}"), 0.0);

    // Drift everywhere, and a sync-repo run refused on the dirty checkout.
    host.origin.write("a.txt", "upstream\n");
    host.origin.commit("upstream");
    driftless_tests::fixture::write_file(&host.checkout, "a.txt", "edited\n");
    driftless_tests::fixture::write_file(&host.checkout, "stray.txt", "x\n");
    std::fs::remove_file(host.mirror.join("docs/guide.md")).expect("remove a mirrored file");
    host.tool(&format!("sync-repo {REPO}")).expect_code(3);
    host.check(&["--deep"]).expect_code(DRIFT);
    promtool_check_dir(&promtool, &host.metrics);
    let text = read(&driftless);
    assert_eq!(value(&text, "driftless_check_exit_code{repo=\"hub\"}"), 1.0);
    assert_eq!(value(&text, "driftless_repo_dirty{repo=\"hub\"}"), 1.0);
    assert_eq!(value(&text, "driftless_repo_behind_commits{repo=\"hub\"}"), 1.0);
    assert_eq!(value(&text, "driftless_repo_untracked_files{repo=\"hub\"}"), 1.0);
    // Worktree mirror: guide.md removed, a.txt of another size, stray.txt never copied.
    assert_eq!(value(&text, "driftless_mirror_missing_files{repo=\"hub\"}"), 3.0);
    assert_eq!(value(&text, "driftless_drift_items{repo=\"hub\"}"), 4.0);

    // A mirror run that fails (destination gone), and a remote that cannot be reached.
    std::fs::remove_dir_all(&host.mirror).expect("remove the mirror destination");
    host.tool(&format!("mirror-copy {REPO}")).expect_code(TEMP_FAIL);
    std::fs::remove_file(host.checkout.join("stray.txt")).expect("remove the stray file");
    host.git(&["checkout", "-q", "--", "."]);
    host.write_config("    remote: http://127.0.0.1:1/x.git\n");
    host.check(&[]).expect_code(TEMP_FAIL);
    promtool_check_dir(&promtool, &host.metrics);
    assert_eq!(
        value(&read(&driftless), "driftless_check_exit_code{repo=\"hub\"}"),
        75.0
    );
}

#[test]
fn metrics_dir_flag_writes_the_repo_file_there() {
    let host = Host::new("");
    let elsewhere = host.env.path("textfiles");
    std::fs::create_dir_all(&elsewhere).expect("create the flag's metrics dir");
    driftless_tests::fixture::write_file(&host.checkout, "a.txt", "edited\n");

    let flag = elsewhere.display().to_string();
    host.check(&["--metrics-dir", &flag]).expect_code(DRIFT);
    let path = elsewhere.join("driftless-hub.prom");
    let text = read(&path);
    check_driftless_prom(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    assert_eq!(value(&text, "driftless_repo_dirty{repo=\"hub\"}"), 1.0);
    assert_eq!(value(&text, "driftless_check_exit_code{repo=\"hub\"}"), 1.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as f64;
    assert!(
        (now - value(&text, "driftless_check_timestamp_seconds{repo=\"hub\"}")).abs() < 60.0,
        "timestamp is now"
    );
    assert!(
        !exists(&host.metrics.join("driftless-hub.prom")),
        "the flag replaces the config's metrics_dir"
    );
    if let Some(promtool) = require_tool("promtool", "prometheus") {
        promtool_check(&promtool, &path);
    }
}

#[test]
fn the_repo_file_is_never_seen_half_written() {
    let host = Host::new(MIRROR_YAML);
    let dir = host.env.path("textfiles");
    std::fs::create_dir_all(&dir).expect("create metrics dir");
    let path = dir.join("driftless-hub.prom");
    let stop = Arc::new(AtomicBool::new(false));

    let reader = {
        let (stop, path) = (Arc::clone(&stop), path.clone());
        std::thread::spawn(move || {
            let (mut reads, mut bad) = (0usize, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        reads += 1;
                        if let Err(e) = check_driftless_prom(&text) {
                            bad.push(format!("{e}\n--- read\n{text}"));
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => bad.push(format!("read failed: {e}")),
                }
            }
            (reads, bad)
        })
    };

    let flag = dir.display().to_string();
    for i in 0..30 {
        // Alternate content and length: --deep adds a family, a stray file flips the untracked gauge.
        let stray = host.checkout.join("stray.txt");
        if i % 3 == 0 {
            std::fs::write(&stray, "x\n").expect("write stray file");
        } else if exists(&stray) {
            std::fs::remove_file(&stray).expect("remove stray file");
        }
        let mut args = vec!["--no-fetch", "--metrics-dir", &flag];
        if i % 2 == 0 {
            args.push("--deep");
        }
        let run = host.check(&args);
        assert!(run.code == NO_DRIFT || run.code == DRIFT, "run {i}: {run:?}");
        assert!(exists(&path), "driftless-hub.prom exists after run {i}");
    }
    stop.store(true, Ordering::Relaxed);
    let (reads, bad) = reader.join().expect("reader thread panicked");

    assert!(reads >= 30, "the reader saw the file often enough: {reads} reads");
    assert!(
        bad.is_empty(),
        "{} of {reads} reads were broken; first:\n{}",
        bad.len(),
        bad[0]
    );
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("list metrics dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["driftless-hub.prom"], "no temp file left behind");
}

#[test]
fn the_reader_check_rejects_every_truncation_of_a_real_file() {
    let host = Host::new(MIRROR_YAML);
    driftless_tests::fixture::write_file(&host.checkout, "a.txt", "edited\n");
    host.check(&["--deep"]).expect_code(DRIFT);
    let text = read(&host.metrics.join("driftless-hub.prom"));
    check_driftless_prom(&text).unwrap_or_else(|e| panic!("a whole file passes: {e}\n{text}"));
    for cut in 0..text.len() {
        assert!(
            check_driftless_prom(&text[..cut]).is_err(),
            "a file cut after {cut} bytes passes the check:\n{}",
            &text[..cut]
        );
    }
}

/// HELP text and series of every `.prom` file in `dir`: `(family -> [(file, help)], series -> [file])`.
type Merged = (BTreeMap<String, Vec<(String, String)>>, BTreeMap<String, Vec<String>>);

fn merge_textfiles(dir: &Path) -> Merged {
    let (mut helps, mut series): Merged = Default::default();
    for file in prom_files(dir) {
        let file_name = file.file_name().expect("file name").to_string_lossy().into_owned();
        for line in read(&file).lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (family, help) = rest.split_once(' ').unwrap_or((rest, ""));
                helps
                    .entry(family.to_owned())
                    .or_default()
                    .push((file_name.clone(), help.to_owned()));
            } else if !line.starts_with('#') {
                let (name, mut labels, _) = parse_sample(line).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                labels.sort();
                let key = format!("{name}{labels:?}");
                series.entry(key).or_default().push(file_name.clone());
            }
        }
    }
    (helps, series)
}

#[test]
fn textfiles_of_all_tools_merge_without_conflicts() {
    // node_exporter's textfile collector merges every .prom file of the directory: a family
    // must have one HELP text across files, and a series may appear in one file only, or the
    // collector reports a gathering error and drops samples.
    let host = Host::new(MIRROR_YAML);
    host.check(&["--deep"]).expect_code(NO_DRIFT);

    let (helps, series) = merge_textfiles(&host.metrics);
    let mut conflicts = Vec::new();
    for (family, by_file) in &helps {
        if by_file.iter().any(|(_, help)| *help != by_file[0].1) {
            conflicts.push(format!("family {family} has different HELP texts: {by_file:?}"));
        }
    }
    for (key, files) in &series {
        if files.len() > 1 {
            conflicts.push(format!("series {key} is in several files: {files:?}"));
        }
    }
    assert!(
        conflicts.is_empty(),
        "{} conflict(s) between the .prom files of {}:\n{}",
        conflicts.len(),
        host.metrics.display(),
        conflicts.join("\n")
    );
}

/// A node_exporter on loopback serving only the textfile collector; killed by PID on drop.
struct NodeExporter {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl NodeExporter {
    fn start(program: &Path, textfiles: &Path, log: PathBuf) -> NodeExporter {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("find a free loopback port")
            .port();
        let child = Command::new(program)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(["--collector.disable-defaults", "--collector.textfile"])
            .arg(format!("--collector.textfile.directory={}", textfiles.display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create node_exporter log"))
            .spawn()
            .expect("spawn node_exporter");
        NodeExporter { child, port, log }
    }

    /// `GET /metrics`, retried until the exporter listens (5 s at most).
    fn scrape(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                stream
                    .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                    .expect("send the scrape request");
                let mut response = String::new();
                stream.read_to_string(&mut response).expect("read the scrape");
                return response;
            }
            assert!(
                Instant::now() < deadline,
                "node_exporter did not listen on 127.0.0.1:{}; log:\n{}",
                self.port,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn node_exporter_reads_every_sample_without_errors() {
    let Some(program) = require_tool("prometheus-node-exporter", "prometheus-node-exporter") else {
        return;
    };
    let host = Host::new(MIRROR_YAML);
    host.check(&["--deep"]).expect_code(NO_DRIFT);

    let exporter = NodeExporter::start(&program, &host.metrics, host.env.path("node_exporter.log"));
    let scrape = exporter.scrape();
    // The gathering error is logged while the request is served; give the log a moment.
    std::thread::sleep(Duration::from_millis(200));
    let log = std::fs::read_to_string(&exporter.log).unwrap_or_default();
    drop(exporter);

    assert!(
        scrape.starts_with("HTTP/1.0 200") || scrape.starts_with("HTTP/1.1 200"),
        "{scrape}"
    );
    assert!(scrape.contains("\nnode_textfile_scrape_error 0\n"), "{scrape}");
    assert!(
        !log.contains("level=error"),
        "node_exporter could not gather the textfiles:\n{log}"
    );
    for series in [
        "driftless_check_exit_code{repo=\"hub\"} 0",
        "driftless_repo_dirty{repo=\"hub\"} 0",
        "driftless_run_exit_code{repo=\"hub\",tool=\"sync-repo\"} 0",
        "driftless_run_exit_code{repo=\"hub\",tool=\"mirror-copy\"} 0",
    ] {
        assert!(scrape.contains(series), "missing `{series}` in the scrape:\n{scrape}");
    }
}

/// Two `drift-check@` instances (one repo each, as the units run them) leave their files side by
/// side, node_exporter serves both repos' series, the file of the one-file version is gone, and
/// a repo dropped from the config loses its file on the next run.
#[test]
fn two_instances_side_by_side_in_node_exporter() {
    let Some(program) = require_tool("prometheus-node-exporter", "prometheus-node-exporter") else {
        return;
    };
    let host = Host::new("");
    let second = host.origin.clone_to(&host.env, "second");
    host.write_config(&format!("  second:\n    path: {}\n", second.display()));
    driftless_tests::fixture::write_file(&second, "stray.txt", "x\n");
    // What drift-check wrote before each repo had its own file: the same series again.
    let legacy = host.metrics.join("driftless.prom");
    std::fs::write(
        &legacy,
        "# HELP driftless_repo_dirty 1 if tracked files are modified in the checkout.\n\
         # TYPE driftless_repo_dirty gauge\ndriftless_repo_dirty{repo=\"hub\"} 0\n",
    )
    .expect("write the one-file version's driftless.prom");

    host.check(&[REPO]).expect_code(NO_DRIFT);
    host.check(&["second"]).expect_code(DRIFT);
    let files = prom_files(&host.metrics);
    for name in ["driftless-hub.prom", "driftless-second.prom"] {
        assert!(files.contains(&host.metrics.join(name)), "{name} in {files:?}");
    }
    assert!(!exists(&legacy), "the one-file version's driftless.prom is removed");

    let exporter = NodeExporter::start(&program, &host.metrics, host.env.path("node_exporter.log"));
    let scrape = exporter.scrape();
    std::thread::sleep(Duration::from_millis(200));
    let log = std::fs::read_to_string(&exporter.log).unwrap_or_default();
    drop(exporter);
    assert!(scrape.contains("\nnode_textfile_scrape_error 0\n"), "{scrape}");
    assert!(!log.contains("level=error"), "node_exporter could not gather:\n{log}");
    for series in [
        "driftless_check_exit_code{repo=\"hub\"} 0",
        "driftless_check_exit_code{repo=\"second\"} 1",
        "driftless_repo_untracked_files{repo=\"hub\"} 0",
        "driftless_repo_untracked_files{repo=\"second\"} 1",
        "driftless_drift_items{repo=\"second\"} 1",
    ] {
        assert!(
            scrape.contains(&format!("\n{series}\n")),
            "missing `{series}` in the scrape:\n{scrape}"
        );
    }
    assert!(
        scrape
            .lines()
            .all(|l| !l.starts_with("driftless_check_") || l.contains("repo=\"")),
        "every drift-check series carries its repo:\n{scrape}"
    );

    // `second` leaves the config: the next run of any instance removes its file.
    host.write_config("");
    host.check(&[REPO]).expect_code(NO_DRIFT);
    assert!(
        !exists(&host.metrics.join("driftless-second.prom")),
        "{:?}",
        prom_files(&host.metrics)
    );
    assert!(exists(&host.metrics.join("driftless-hub.prom")));
    assert!(
        exists(&host.metrics.join("sync-repo-hub.prom")),
        "other tools' files are kept"
    );
}

/// A metrics directory that cannot be written does not hide the report: the table (or the
/// JSON) is printed whole, the failure named after it, and the exit is 74.
#[test]
fn a_metrics_write_failure_is_reported_after_the_table_with_exit_74() {
    let host = Host::new("");
    driftless_tests::fixture::write_file(&host.checkout, "stray.txt", "x\n");
    let blocked = host.env.path("not-a-dir");
    std::fs::write(&blocked, "a file where the metrics dir should be\n").expect("write the blocker");
    let flag = blocked.display().to_string();

    let run = host.check(&["--metrics-dir", &flag]);
    run.expect_code(crate::IO);
    assert_eq!(run.row("checkout", "untracked").status, "DRIFT", "{}", run.stdout);
    assert!(
        run.stderr.contains("drift-check: error:") && run.stderr.contains(&format!("{flag}/driftless-hub.prom")),
        "stderr names the file:\n{}",
        run.stderr
    );

    let (run, items) = host.check_json(&["--metrics-dir", &flag]);
    run.expect_code(crate::IO);
    assert_eq!(crate::item(&items, "checkout", "untracked")["status"], "drift");

    // Written again once the directory is there.
    std::fs::remove_file(&blocked).expect("remove the blocker");
    std::fs::create_dir(&blocked).expect("create the metrics dir");
    host.check(&["--metrics-dir", &flag]).expect_code(DRIFT);
    assert_eq!(
        value(
            &read(&blocked.join("driftless-hub.prom")),
            "driftless_check_exit_code{repo=\"hub\"}"
        ),
        1.0
    );
}
