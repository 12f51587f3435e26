//! A throwaway directory with its own HOME and git config, and the commands that run inside it.
//!
//! Every process xtask starts (git, bash, sync-repo) gets a cleared environment, so neither the
//! user's `~/.gitconfig` nor `DRIFTLESS_*` variables leak into a demo or a measurement.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::error::{Context, Result, bail};

/// Git identity and settings every sandboxed process sees (`GIT_CONFIG_GLOBAL`).
const GITCONFIG: &str = "\
[user]
\tname = Driftless Bench
\temail = bench@example.invalid
[init]
\tdefaultBranch = main
[pull]
\tff = only
[advice]
\tdetachedHead = false
";

/// A temp dir with `home/` and `gitconfig`; removed on drop unless kept.
pub struct Sandbox {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    home: PathBuf,
    gitconfig: PathBuf,
    path_var: String,
}

impl Sandbox {
    /// Make a sandbox under the system temp dir; `prefix` names it (`driftless-bench-XXXX`).
    pub fn new(prefix: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .context("creating a temp dir")?;
        // Canonical, so paths printed and compared match what git and sync-repo report.
        let root = dir.path().canonicalize().context("resolving the temp dir")?;
        let home = root.join("home");
        std::fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
        let gitconfig = root.join("gitconfig");
        std::fs::write(&gitconfig, GITCONFIG).with_context(|| format!("writing {}", gitconfig.display()))?;
        let path_var = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        Ok(Sandbox {
            dir: Some(dir),
            root,
            home,
            gitconfig,
            path_var,
        })
    }

    /// Keep the directory after the sandbox is dropped (for `--keep`); returns its path.
    pub fn keep(&mut self) -> PathBuf {
        if let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
        self.root.clone()
    }

    /// The sandbox's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `program` with a cleared environment: PATH, the sandbox HOME and git config, a git identity.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", &self.path_var)
            .env("HOME", &self.home)
            .env("LC_ALL", "C")
            .env("GIT_CONFIG_GLOBAL", &self.gitconfig)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "Driftless Bench")
            .env("GIT_AUTHOR_EMAIL", "bench@example.invalid")
            .env("GIT_COMMITTER_NAME", "Driftless Bench")
            .env("GIT_COMMITTER_EMAIL", "bench@example.invalid");
        cmd
    }

    /// `git -C dir` in the sandbox.
    pub fn git(&self, dir: &Path) -> Command {
        let mut cmd = self.command("git");
        cmd.arg("-C").arg(dir);
        cmd
    }
}

/// The command line as one string, for messages, quoted so a shell would read it back.
pub fn describe(cmd: &Command) -> String {
    let mut text = shell_word(&cmd.get_program().to_string_lossy());
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&shell_word(&arg.to_string_lossy()));
    }
    text
}

/// `word` as the shell would need it: bare if plain, else in double or single quotes.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else if !word.contains(['"', '$', '`', '!']) && !word.contains("\\\\") && !word.ends_with('\\') {
        // Inside double quotes a backslash is literal unless it precedes one of `$"\`.
        format!("\"{word}\"")
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Run to completion, capturing output; an error if it could not start or exited non-zero.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let output = cmd.output().with_context(|| format!("starting `{}`", describe(cmd)))?;
    if !output.status.success() {
        bail!(
            "`{}` failed ({}):\n{}{}",
            describe(cmd),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

/// Run and return trimmed stdout.
pub fn stdout_of(cmd: &mut Command) -> Result<String> {
    let output = run(cmd)?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Whether `program` can be started (`program --version` runs).
pub fn has_program(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("--state-dir"), "--state-dir");
        assert_eq!(shell_word("/tmp/a b"), "\"/tmp/a b\"");
        assert_eq!(shell_word(r"/state/paths/tmp-x\x2dy"), r#""/state/paths/tmp-x\x2dy""#);
        assert_eq!(shell_word("--format=%(refname)"), "\"--format=%(refname)\"");
        assert_eq!(shell_word("it's $HOME"), r"'it'\''s $HOME'");
        assert_eq!(shell_word(""), "\"\"");
    }
}
