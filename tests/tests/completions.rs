//! Shell completion as an admin gets it: the bash scripts in docs/completions (what `make
//! install` and the package ship; xtask's freshness test keeps them equal to the generated
//! ones) sourced into a real bash and asked the way bash asks on TAB (COMP_WORDS, COMP_CWORD,
//! the function `complete -F` registered), with the tools under test first on PATH; the fish
//! scripts, asked through fish's own `complete -C`; and the zsh files, autoloaded from fpath as
//! the package installs them (or sourced), asked by a TAB typed into an interactive zsh in a
//! pseudo-terminal (tests/support/zsh-capture.zsh).

use std::path::{Path, PathBuf};
use std::process::Command;

use driftless_tests::env::temp_dir;
use driftless_tests::{bin_path, require_service};

const TOOLS: [&str; 4] = ["sync-repo", "apply-compose", "mirror-copy", "drift-check"];

/// Options whose value is a number, a duration, a branch or a URL, per tool: TAB there must
/// offer no file names.
const NO_FILES: [(&str, &[&str]); 6] = [
    ("sync-repo", &["--jobs", "--wait-lock", "--branch", "--remote"]),
    ("apply-compose", &["--wait-lock", "--stack"]),
    (
        "mirror-copy",
        &[
            "--jobs",
            "--wait-lock",
            "--if-older-than",
            "--max-delete",
            "--modify-window",
        ],
    ),
    ("drift-check", &[]),
    ("driftless-notify", &["--lines", "--exit-status"]),
    ("driftless-hook", &["--listen", "--max-body", "--read-timeout"]),
];

/// Names of what [`Fixture`]'s folder holds: a file-name completion would offer them.
const FILES: [&str; 6] = ["4", "main", "24h", "notes.txt", "checkouts", "checkouts/"];

/// A config naming two repos, and the folder TAB runs in, holding files whose names a
/// file-name completion would offer ([`FILES`]).
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    cwd: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = temp_dir("driftless-completions.");
        let root = dir.path().canonicalize().expect("canonical temp dir");
        let config = root.join("driftless.yaml");
        std::fs::write(
            &config,
            "repos:\n  observability-hub:\n    path: /srv/observability-hub\n  lab:\n    path: /srv/lab\n",
        )
        .expect("write config");
        let cwd = root.join("work");
        std::fs::create_dir_all(cwd.join("checkouts/hub")).expect("mkdir");
        for file in ["4", "main", "24h", "notes.txt"] {
            std::fs::write(cwd.join(file), "x").expect("write file");
        }
        Fixture {
            _dir: dir,
            root,
            config,
            cwd,
        }
    }
}

/// Ok when `shell` runs here; else why a test of its completion cannot.
fn have_shell(shell: &str) -> Result<(), String> {
    Command::new(shell)
        .arg("--version")
        .output()
        .map_or(Err(format!("{shell} is missing (apt-get install {shell})")), |_| Ok(()))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// What bash offers for the last of `words` (the word being completed, maybe empty), run in
/// `cwd` with `config` as DRIFTLESS_CONFIG; and how the tool is registered (`complete -p`).
fn complete(words: &[&str], config: &Path, cwd: &Path) -> (Vec<String>, String) {
    let tool = words[0];
    let script = workspace_root().join(format!("docs/completions/{tool}.bash"));
    let bins = bin_path("sync-repo").parent().expect("bin dir").to_path_buf();
    let driver = r#"
source "$SCRIPT" || exit 90
registered=$(complete -p "$1") || exit 91
func=$(printf '%s\n' "$registered" | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
COMP_WORDS=("$@")
COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
COMP_TYPE=9
"$func" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "$registered"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let out = Command::new("bash")
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bins.display()))
        .env("HOME", cwd)
        .env("DRIFTLESS_CONFIG", config)
        .env("SCRIPT", &script)
        .current_dir(cwd)
        .args(["--norc", "--noprofile", "-c", driver, "bash"])
        .args(words)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "bash completion of {words:?} failed: {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    let registered = lines.next().unwrap_or_default().to_owned();
    let offered = lines.filter(|l| !l.is_empty()).map(str::to_owned).collect();
    (offered, registered)
}

#[test]
fn bash_offers_configured_repo_names_and_no_file_names_for_values() {
    let fx = Fixture::new();
    let (root, config, cwd) = (&fx.root, &fx.config, &fx.cwd);

    for tool in TOOLS {
        let (offered, registered) = complete(&[tool, ""], config, cwd);
        for name in ["observability-hub", "lab"] {
            assert!(
                offered.iter().any(|o| o == name),
                "{tool} <TAB> offers no {name}: {offered:?}"
            );
        }
        assert!(
            !offered.iter().any(|o| FILES.contains(&o.as_str())),
            "{tool} <TAB> offers file names: {offered:?}"
        );
        assert!(
            !registered.contains("-o default"),
            "{tool}: readline's file names would fill in for an empty answer: {registered}"
        );
        let (offered, _) = complete(&[tool, "obs"], config, cwd);
        assert_eq!(offered, ["observability-hub"], "{tool} obs<TAB>");
        // A path gets folders, not repo names.
        let (offered, _) = complete(&[tool, "./che"], config, cwd);
        assert_eq!(offered, ["./checkouts/"], "{tool} ./che<TAB>");
    }
    // `--config FILE` on the command line wins over DRIFTLESS_CONFIG.
    let other = root.join("other.yaml");
    std::fs::write(&other, "repos:\n  elsewhere:\n    path: /opt/elsewhere\n").expect("write config");
    let other_arg = other.display().to_string();
    let (offered, _) = complete(&["sync-repo", "--config", &other_arg, ""], config, cwd);
    assert!(offered.iter().any(|o| o == "elsewhere"), "{offered:?}");
    assert!(!offered.iter().any(|o| o == "lab"), "{offered:?}");

    for (tool, options) in NO_FILES {
        for option in options {
            for typed in ["", "m", "2"] {
                let (offered, _) = complete(&[tool, option, typed], config, cwd);
                assert!(offered.is_empty(), "{tool} {option} {typed}<TAB> offers {offered:?}");
            }
        }
    }
}

/// What fish offers for `line` (`complete -C`), with every tool's script sourced: the values,
/// without their descriptions.
fn fish_complete(line: &str, config: &Path, cwd: &Path) -> Vec<String> {
    let bins = bin_path("sync-repo").parent().expect("bin dir").to_path_buf();
    let scripts = workspace_root().join("docs/completions");
    let out = Command::new("fish")
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bins.display()))
        .env("HOME", cwd)
        .env("DRIFTLESS_CONFIG", config)
        .env("SCRIPTS", &scripts)
        .env("LINE", line)
        .current_dir(cwd)
        .args([
            "--no-config",
            "-c",
            "for f in $SCRIPTS/*.fish; source $f; or exit 90; end; complete -C $LINE",
        ])
        .output()
        .expect("run fish");
    assert!(
        out.status.success(),
        "fish completion of {line:?} failed: {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn fish_offers_configured_repo_names_and_no_file_names_for_values() {
    let Some(()) = require_service(have_shell("fish")) else {
        return;
    };
    let fx = Fixture::new();
    let (config, cwd) = (&fx.config, &fx.cwd);
    for tool in TOOLS {
        let offered = fish_complete(&format!("{tool} "), config, cwd);
        for name in ["observability-hub", "lab"] {
            assert!(
                offered.iter().any(|o| o == name),
                "{tool} <TAB> offers no {name}: {offered:?}"
            );
        }
        assert_eq!(
            fish_complete(&format!("{tool} obs"), config, cwd),
            ["observability-hub"]
        );
    }
    for (tool, options) in NO_FILES {
        for option in options {
            let offered = fish_complete(&format!("{tool} {option} "), config, cwd);
            assert!(offered.is_empty(), "fish: {tool} {option} <TAB> offers {offered:?}");
        }
    }
}

/// What an interactive zsh offers on TAB at the end of `line`: the values, without their
/// descriptions. The completion files are autoloaded from docs/completions in fpath, as the
/// package installs them, or, with `sourced`, the tool's file is sourced the .zshrc way.
fn zsh_complete(line: &str, config: &Path, cwd: &Path, sourced: Option<&str>) -> Vec<String> {
    let bins = bin_path("sync-repo").parent().expect("bin dir").to_path_buf();
    let scripts = workspace_root().join("docs/completions");
    let mut zsh = Command::new("zsh");
    zsh.env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bins.display()))
        .env("HOME", cwd)
        .env("DRIFTLESS_CONFIG", config)
        .env("CAPTURE_DUMP", cwd.join(".zcompdump"))
        .current_dir(cwd)
        .arg("-f")
        .arg(workspace_root().join("tests/support/zsh-capture.zsh"))
        .arg(line);
    match sourced {
        Some(tool) => zsh
            .env("CAPTURE_FPATH", cwd.join("no-completions"))
            .env("CAPTURE_SOURCE", scripts.join(format!("_{tool}"))),
        None => zsh.env("CAPTURE_FPATH", &scripts),
    };
    let out = zsh.output().expect("run zsh");
    assert!(
        out.status.success(),
        "zsh completion of {line:?} failed: {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split(" -- ").next().unwrap_or_default().trim_end().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn zsh_offers_configured_repo_names_on_the_first_tab_and_no_file_names_for_values() {
    let Some(()) = require_service(have_shell("zsh")) else {
        return;
    };
    let fx = Fixture::new();
    let (config, cwd) = (&fx.config, &fx.cwd);

    // Each line is the first TAB of a fresh shell: autoloaded from fpath, the file must complete
    // then, not only register its completer for the next TAB.
    for tool in TOOLS {
        let offered = zsh_complete(&format!("{tool} "), config, cwd, None);
        for name in ["observability-hub", "lab"] {
            assert!(
                offered.iter().any(|o| o == name),
                "zsh: {tool} <TAB> offers no {name}: {offered:?}"
            );
        }
        assert!(
            !offered.iter().any(|o| FILES.contains(&o.as_str())),
            "zsh: {tool} <TAB> offers file names: {offered:?}"
        );
        assert_eq!(
            zsh_complete(&format!("{tool} obs"), config, cwd, None),
            ["observability-hub"],
            "zsh: {tool} obs<TAB>"
        );
        assert_eq!(
            zsh_complete(&format!("{tool} ./che"), config, cwd, None),
            ["./checkouts/"],
            "zsh: {tool} ./che<TAB>"
        );
    }
    // Sourced from a .zshrc, the same file registers and completes.
    assert_eq!(
        zsh_complete("sync-repo obs", config, cwd, Some("sync-repo")),
        ["observability-hub"]
    );
    for (tool, options) in NO_FILES {
        for option in options {
            let offered = zsh_complete(&format!("{tool} {option} "), config, cwd, None);
            assert!(offered.is_empty(), "zsh: {tool} {option} <TAB> offers {offered:?}");
        }
    }
}
