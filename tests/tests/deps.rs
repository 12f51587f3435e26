//! Every program a test starts comes from a package `make deps` installs (or from the base
//! system every Debian machine has), so the README's test command passes on a fresh machine
//! with `CI=true`, not only on one where a session installed things by hand.
//!
//! The programs are found in the tests' own sources (`Command::new("x")`, `find_program("x")`,
//! `require_tool("x", ...)`, `have("x", ...)`, `which("x")`), and dpkg says which package each
//! comes from.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Calls whose first string argument names a program a test runs.
const CALLS: [&str; 6] = [
    "Command::new(\"",
    "find_program(\"",
    "require_tool(\"",
    "have(\"",
    "which(\"",
    "cmd!(\"",
];

/// Programs that are not Debian's: the toolchain itself, and Compose from PyPI (`make deps`
/// installs it with pip).
const NOT_FROM_APT: [&str; 3] = ["cargo", "docker-compose", "python3"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(read) = std::fs::read_dir(dir) else { return };
    for entry in read.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if !path.ends_with("target") {
                sources(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs" || e == "sh") {
            out.push(path);
        }
    }
}

/// Program names the test sources start.
fn programs() -> BTreeSet<String> {
    let root = workspace();
    let mut files = Vec::new();
    sources(&root.join("tests"), &mut files);
    for krate in std::fs::read_dir(root.join("crates")).expect("crates").flatten() {
        sources(&krate.path().join("tests"), &mut files);
    }
    let mut found = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        // Comments name calls as examples (this file's own header does); only code runs them.
        let text: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .flat_map(|l| [l, "\n"])
            .collect();
        for call in CALLS {
            for (at, _) in text.match_indices(call) {
                let rest = &text[at + call.len()..];
                let name: String = rest.chars().take_while(|c| *c != '"').collect();
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                    found.insert(name);
                }
            }
        }
    }
    found
}

/// The Debian packages `make deps` installs, read from the Makefile.
fn make_deps_packages() -> BTreeSet<String> {
    let makefile = std::fs::read_to_string(workspace().join("Makefile")).expect("read Makefile");
    let joined = makefile.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|l| l.starts_with("APT_PACKAGES"))
        .expect("Makefile sets APT_PACKAGES");
    line.split_once('=')
        .expect("APT_PACKAGES = ...")
        .1
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn dpkg_query(args: &[&str]) -> Option<String> {
    let out = Command::new("dpkg-query").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The package that owns `program` in some PATH directory (a copy under /usr/local, like this
/// machine's second git, is not a package's and is passed over).
fn package_of(program: &str) -> Option<String> {
    let paths = std::env::var_os("PATH")?;
    let mut candidates = Vec::new();
    for dir in std::env::split_paths(&paths) {
        let path = dir.join(program);
        if !path.is_file() {
            continue;
        }
        if let Ok(real) = std::fs::canonicalize(&path) {
            candidates.push(real);
        }
        candidates.push(path);
    }
    // /usr/bin and /bin are one directory on a merged-/usr system; dpkg knows one name.
    for c in candidates.clone() {
        match c.strip_prefix("/usr") {
            Ok(rest) => candidates.push(Path::new("/").join(rest)),
            Err(_) => candidates.push(Path::new("/usr").join(c.strip_prefix("/").unwrap_or(&c))),
        }
    }
    candidates.into_iter().find_map(|c| {
        let out = Command::new("dpkg").arg("-S").arg(&c).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        out.status
            .success()
            .then(|| text.split(':').next().unwrap_or_default().trim().to_owned())
    })
}

/// Whether every Debian system has `package` (Essential, or Priority required/important).
fn in_base_system(package: &str) -> bool {
    dpkg_query(&["-W", "-f=${Essential} ${Priority}", package])
        .is_some_and(|s| s.starts_with("yes") || s.ends_with("required") || s.ends_with("important"))
}

#[test]
fn every_program_a_test_starts_is_installed_by_make_deps() {
    if dpkg_query(&["-W", "dpkg"]).is_none() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI runs on Debian");
        eprintln!("SKIPPED: not a Debian system");
        return;
    }
    let listed = make_deps_packages();
    let programs = programs();
    assert!(
        programs.contains("git") && programs.contains("lighttpd"),
        "the scan finds programs: {programs:?}"
    );
    let mut problems = Vec::new();
    for program in &programs {
        if NOT_FROM_APT.contains(&program.as_str()) {
            continue;
        }
        match package_of(program) {
            Some(package) if listed.contains(&package) || in_base_system(&package) => {}
            Some(package) => problems.push(format!(
                "`{program}` comes from `{package}`, which make deps does not install"
            )),
            // Not installed here: on CI that means make deps missed it; elsewhere it may be
            // a tool the developer has not installed yet.
            None if std::env::var("CI").as_deref() == Ok("true") => {
                problems.push(format!("`{program}` is not installed by any package here"))
            }
            None => eprintln!("note: `{program}` is not installed here"),
        }
    }
    assert!(
        problems.is_empty(),
        "add these to APT_PACKAGES in the Makefile:\n  {}",
        problems.join("\n  ")
    );
}
