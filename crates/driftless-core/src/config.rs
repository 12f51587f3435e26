//! The driftless config file (`/etc/driftless/driftless.yaml`): which repos exist and how to reach them.
//!
//! Unknown keys are rejected, and every parse error names the file, line and column, because a
//! typo in a key must not silently turn a feature off on a server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the config lives when neither `--config` nor `DRIFTLESS_CONFIG` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/driftless/driftless.yaml";

/// How long a failed apply is not retried with the same inputs, unless `retry_after` says.
pub const DEFAULT_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// The branch synced when a repo entry names none.
pub const DEFAULT_BRANCH: &str = "main";

/// The whole config file.
#[derive(Debug, Default, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where state lives; `$STATE_DIRECTORY` and `--state-dir` take precedence.
    pub state_dir: Option<PathBuf>,
    /// A node_exporter textfile-collector directory; each tool writes its `.prom` file there.
    pub metrics_dir: Option<PathBuf>,
    /// How to run compose: `[docker, compose]` (default), `[docker-compose]`, `[podman, compose]`.
    pub compose_command: Option<Vec<String>>,
    /// Where `driftless-notify` (run by `OnFailure=` of every unit) posts a failed run's report.
    pub notify: Option<NotifyConfig>,
    /// `apply-compose --validate`'s layout rules for every repo (a repo's own `validate:` wins).
    #[serde(default, skip_serializing_if = "ValidateConfig::is_empty")]
    pub validate: ValidateConfig,
    /// The trust gate for every repo (a repo's own `verify:` wins): sync-repo moves a checkout
    /// only to commits signed by a key listed here. Unset: commits are not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyConfig>,
    /// The repos, keyed by the name systemd passes as the unit instance (`sync-repo@NAME`).
    #[serde(default)]
    pub repos: BTreeMap<String, RepoConfig>,
    /// The file this config was read from, if any.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// One repo entry, `repos.NAME` in the file.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// The checkout on this host.
    pub path: PathBuf,
    /// The URL to fetch from; the checkout's `origin` when unset.
    pub remote: Option<String>,
    /// The branch to follow; `main` ([`DEFAULT_BRANCH`]) when unset.
    pub branch: Option<String>,
    /// What sync-repo does with populated submodules whose recorded commit moved: `none`
    /// records the new commit in the index only, as `git pull` does; `recurse` also checks
    /// that commit out in the submodule (detached), as `git pull --recurse-submodules` does.
    #[serde(default)]
    pub submodules: Submodules,
    /// How old the last successful sync may get before drift-check reports it (`1h`).
    pub max_sync_age: Option<String>,
    /// Where `mirror-copy` copies this repo to.
    pub mirror: Option<MirrorConfig>,
    /// Compose stacks `apply-compose` keeps in line with the checkout: globs of stack
    /// directories (`stacks/*`), or stacks listed one by one with options.
    #[serde(default)]
    pub stacks: Vec<StackEntry>,
    /// Take down (`compose down`) a stack that was removed from git. Off by default: the
    /// removal is reported and the stack left running.
    #[serde(default)]
    pub prune: bool,
    /// After a failed apply, how long that same digest is skipped before it is tried again
    /// (`30m`, `1h`; default 1h). A new commit touching the stack's
    /// inputs, or `--force`, tries at once.
    pub retry_after: Option<String>,
    /// When a stack's apply fails, re-apply its last good revision (the files of the last
    /// commit it applied from, exported from git into the state directory, same project) and
    /// report "rolled back to COMMIT"; the run still exits 65. Per stack: `rollback:` there.
    #[serde(default)]
    pub rollback: bool,
    /// How inputs git does not track are identified: by existence and type, plus content for
    /// those listed in `watch`.
    #[serde(default)]
    pub inputs: InputsConfig,
    /// `apply-compose --validate`'s layout rules for this repo (over the top-level `validate:`).
    #[serde(default, skip_serializing_if = "ValidateConfig::is_empty")]
    pub validate: ValidateConfig,
    /// The trust gate for this repo (over the top-level `verify:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyConfig>,
}

/// `verify:` (top level, or `repos.NAME.verify`): which signatures a new commit must carry
/// before sync-repo moves the checkout to it (docs/trust.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    /// The trusted SSH keys, in ssh-keygen's allowed_signers format (`principals
    /// [namespaces="git"] [valid-after=...] [valid-before=...] keytype key`), checked as
    /// `ssh-keygen -Y verify -n git` does against the commit's committer time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_signers: Option<PathBuf>,
    /// Trusted OpenPGP public keys (armored or binary, as `gpg --export` writes them).
    /// OpenPGP-signed commits are refused while this is unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openpgp_keyring: Option<PathBuf>,
    /// What must be signed: the new tip (`tip`), every commit it brings (`every-commit`);
    /// `tag` (a signed tag at the tip) is refused at load until it is implemented.
    #[serde(default)]
    pub mode: VerifyMode,
    /// With `mode: tag`: the tags (glob, `v*`) whose signed tag must point at the new tip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_pattern: Option<String>,
}

/// `verify.mode`: which commits of an update are checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyMode {
    /// The new tip only: whoever signed it vouches for the history below it.
    #[default]
    Tip,
    /// Every commit the update brings (reachable from the new tip, not from the old one).
    EveryCommit,
    /// A signed tag matching `tag_pattern` points at the new tip (not implemented yet: a
    /// config asking for it is refused at load).
    Tag,
}

/// `validate:` (top level, or `repos.NAME.validate`): layout rules `apply-compose --validate`
/// checks besides what compose itself requires.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateConfig {
    /// How many directories deep below the repo a stack may be (`stacks/grafana` is 2).
    pub max_depth: Option<usize>,
}

impl ValidateConfig {
    fn is_empty(&self) -> bool {
        self.max_depth.is_none()
    }
}

/// `repos.NAME.inputs`: inputs of a stack that git does not track (a gitignored bind mount or
/// env file that lives only on the host) are identified by their existence and type, so a
/// file a service rewrites itself (Traefik's `acme.json`) never triggers an apply or a drift.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct InputsConfig {
    /// Globs of repo-relative paths (`stacks/*/secrets.env`) whose content is configuration:
    /// untracked ones are identified by their content too.
    #[serde(default)]
    pub watch: Vec<String>,
}

/// One item of `repos.NAME.stacks`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum StackEntry {
    /// A glob of directories relative to the repo (`stacks/*`); each holding a compose file is a stack.
    Glob(String),
    /// One stack with options.
    Stack(StackConfig),
}

/// A stack listed with options.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct StackConfig {
    /// The stack directory, relative to the repo.
    pub dir: String,
    /// Compose project name; else the directory name normalized to compose's rules.
    pub project: Option<String>,
    /// Compose files relative to `dir` (`-f`); else the one compose finds by itself.
    #[serde(default)]
    pub files: Vec<String>,
    /// Env files relative to `dir` (`--env-file`); else `dir/.env`.
    #[serde(default)]
    pub env_file: Vec<String>,
    /// Compose profiles to enable.
    #[serde(default)]
    pub profiles: Vec<String>,
    /// Health-gated deploy: `up --wait`.
    #[serde(default)]
    pub wait: bool,
    /// With `wait`: seconds before giving up.
    pub wait_timeout: Option<u64>,
    /// Never touch this stack (also: a `.driftless-hold` file in its directory).
    #[serde(default)]
    pub hold: bool,
    /// Roll this stack back to its last good revision when an apply fails; unset: the repo's
    /// `rollback`.
    pub rollback: Option<bool>,
}

/// `repos.NAME.mirror`: a one-way backup copy of the repo.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// A local directory (`/mnt/backup/lab`) or an rclone remote (`gdrive:Backups/lab`).
    pub to: String,
    /// Copy the working tree (default) or the committed tree.
    #[serde(default)]
    pub from: MirrorFrom,
    /// Exclude patterns added to the defaults (`.git/**`, `node_modules/**`, `.terraform/**`, `.tofu/**`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Make the mirror a true mirror: delete what the source no longer has.
    #[serde(default)]
    pub delete: bool,
    /// With `delete`: never delete more than this many files in one run.
    pub max_delete: Option<usize>,
    /// Compare content instead of size and modification time.
    #[serde(default)]
    pub checksum: bool,
    /// Copy symbolic links as links, or skip them.
    #[serde(default)]
    pub links: Links,
    /// How old the last successful mirror may get before drift-check reports it (`26h`).
    pub max_age: Option<String>,
}

/// `notify:`: the webhook a failed unit is reported to.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// The `http://` or `https://` URL to POST to (an ntfy topic, a Gotify `/message?token=...`,
    /// a Slack-compatible incoming webhook, or anything that takes a plain POST).
    pub url: String,
    /// How the report is shaped for that receiver.
    #[serde(default)]
    pub format: NotifyFormat,
    /// A temporary failure (exit 75: forge or engine unreachable) alerts once it has lasted
    /// this long since the first failed run (`30m`); other failures alert at once.
    pub alert_after: Option<String>,
    /// ... or after this many failed runs in a row (`3`), whichever comes first.
    pub alert_after_failures: Option<u32>,
}

impl NotifyConfig {
    /// When temporary failures alert ([`crate::alert`]); validated at load.
    pub fn policy(&self) -> crate::alert::Policy {
        let default = crate::alert::Policy::default();
        crate::alert::Policy {
            after_failures: self.alert_after_failures.unwrap_or(default.after_failures).max(1),
            after: self
                .alert_after
                .as_deref()
                .and_then(|a| crate::time::parse_duration(a).ok())
                .unwrap_or(default.after),
        }
    }
}

/// The body a notification is sent as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyFormat {
    /// `text/plain`: a title line, then the journal lines.
    #[default]
    Plain,
    /// ntfy: the text as body, with `Title`, `Priority` and `Tags` headers.
    Ntfy,
    /// Gotify: JSON `{title, message, priority}`.
    Gotify,
    /// Slack-compatible incoming webhook (also Mattermost, Rocket.Chat): JSON `{text}`.
    Slack,
}

/// `repos.NAME.submodules`: whether an update recurses into populated submodules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Submodules {
    /// Record a moved gitlink in the index only; the submodule's worktree stays where it is
    /// (drift-check reports it behind).
    #[default]
    None,
    /// Fetch the new commit from the submodule's own `origin` and check it out there, detached,
    /// recursively; unpopulated submodules stay unpopulated.
    Recurse,
}

/// What to do with symbolic links.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Links {
    /// Copy them as links (never followed).
    #[default]
    Copy,
    /// Leave them out.
    Skip,
}

/// What a mirror copies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MirrorFrom {
    /// The checkout's working tree, local files included (like the seed's `rclone copy`).
    #[default]
    Worktree,
    /// The tree of the committed HEAD: exactly what is in git.
    Commit,
}

impl RepoConfig {
    /// The branch to follow.
    pub fn branch(&self) -> &str {
        self.branch.as_deref().unwrap_or(DEFAULT_BRANCH)
    }
}

impl Config {
    /// The trust gate of repo `repo`: its own `verify:`, else the top-level one.
    pub fn verify_for<'a>(&'a self, repo: &'a RepoConfig) -> Option<&'a VerifyConfig> {
        repo.verify.as_ref().or(self.verify.as_ref())
    }
}

impl VerifyConfig {
    /// What is wrong with this gate, if anything, for a message under `key` (`verify`,
    /// `repos.hub.verify`).
    fn problem(&self, key: &str) -> Option<String> {
        if self.allowed_signers.is_none() && self.openpgp_keyring.is_none() {
            return Some(format!(
                "{key}: name the trusted keys with allowed_signers (SSH) or openpgp_keyring (OpenPGP)"
            ));
        }
        for (name, path) in [
            ("allowed_signers", &self.allowed_signers),
            ("openpgp_keyring", &self.openpgp_keyring),
        ] {
            if let Some(path) = path
                && !path.is_absolute()
            {
                return Some(format!("{key}.{name}: `{}` must be an absolute path", path.display()));
            }
        }
        if self.mode == VerifyMode::Tag {
            // Refused rather than ignored: a gate that is configured but not applied would
            // let unsigned commits through.
            return Some(format!(
                "{key}.mode: `tag` is not supported yet; use `tip` or `every-commit`"
            ));
        }
        if let Some(pattern) = &self.tag_pattern
            && let Err(err) = globset::Glob::new(pattern)
        {
            return Some(format!("{key}.tag_pattern: {err}"));
        }
        None
    }
}

/// Why the config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config {path}: {source}", path = path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}:{column}: {message}", path = path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}", path = path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("no repo named `{name}` in {path}; configured: {known}", path = path.display())]
    UnknownRepo { name: String, path: PathBuf, known: String },
}

/// What makes two checkout paths the same checkout: the directory's device and inode when it
/// exists, else its normalized text.
#[derive(Debug, PartialEq, Eq, Hash)]
enum CheckoutKey {
    Inode(u64, u64),
    Text(PathBuf),
}

impl CheckoutKey {
    fn of(path: &Path) -> CheckoutKey {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(path) {
            Ok(meta) => CheckoutKey::Inode(meta.dev(), meta.ino()),
            Err(_) => CheckoutKey::Text(path.components().collect()),
        }
    }
}

impl Config {
    /// Load the config named on the command line or in `DRIFTLESS_CONFIG` (`explicit`), which must
    /// exist, or else the default file, which may be absent: then the config is empty and tools
    /// still work on a checkout path given as argument.
    pub fn load(explicit: Option<&Path>) -> Result<Config, Error> {
        match explicit {
            Some(path) => Self::from_file(path),
            None => {
                let path = Path::new(DEFAULT_CONFIG_PATH);
                match std::fs::metadata(path) {
                    Ok(_) => Self::from_file(path),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
                    Err(source) => Err(Error::Read {
                        path: path.to_owned(),
                        source,
                    }),
                }
            }
        }
    }

    /// Read and validate one config file.
    pub fn from_file(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parse and validate config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, Error> {
        // An empty file (or one holding only comments) is an empty config, not an error.
        let mut config: Config = if text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            Config::default()
        } else {
            serde_yaml::from_str(text).map_err(|err| {
                let (line, column) = err.location().map_or((1, 1), |l| (l.line(), l.column()));
                Error::Parse {
                    path: path.to_owned(),
                    line,
                    column,
                    message: strip_location(&err.to_string()),
                }
            })?
        };
        config.source = Some(path.to_owned());
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), Error> {
        let invalid = |message: String| Error::Invalid {
            path: path.to_owned(),
            message,
        };
        if let Some(notify) = &self.notify
            && !(notify.url.starts_with("http://") || notify.url.starts_with("https://"))
        {
            return Err(invalid(format!(
                "notify.url: `{}...` must be an http:// or https:// URL",
                // Never more: the rest of a webhook URL is often its secret.
                crate::redact::url_origin(&notify.url)
            )));
        }
        if let Some(after) = self.notify.as_ref().and_then(|n| n.alert_after.as_deref())
            && let Err(message) = crate::time::parse_duration(after)
        {
            return Err(invalid(format!("notify.alert_after: {message}")));
        }
        if self.notify.as_ref().and_then(|n| n.alert_after_failures) == Some(0) {
            return Err(invalid("notify.alert_after_failures: must be 1 or more".to_owned()));
        }
        if let Some(problem) = self.verify.as_ref().and_then(|v| v.problem("verify")) {
            return Err(invalid(problem));
        }
        let mut checkouts: std::collections::HashMap<CheckoutKey, &str> = std::collections::HashMap::new();
        for (name, repo) in &self.repos {
            // Each entry has its own run lock, so two entries for one checkout would write in
            // it at once: compared as the same directory (device and inode), not as text, so a
            // symlink or `x/../` cannot hide a duplicate.
            if let Some(other) = checkouts.insert(CheckoutKey::of(&repo.path), name) {
                return Err(invalid(format!(
                    "repos.{name}.path: `{}` is also the checkout of repos.{other}; give each checkout one entry",
                    repo.path.display()
                )));
            }
            if !is_valid_name(name) {
                return Err(invalid(format!(
                    "repos.{name}: a repo name may only use letters, digits, `-`, `_` and `.` \
                     (it becomes a systemd instance name and a directory name)"
                )));
            }
            if !repo.path.is_absolute() {
                return Err(invalid(format!(
                    "repos.{name}.path: `{}` must be an absolute path",
                    repo.path.display()
                )));
            }
            if let Some(branch) = &repo.branch
                && let Some(rule) = crate::git::branch_name_error(branch)
            {
                return Err(invalid(format!(
                    "repos.{name}.branch: `{branch}` is not a branch name: {rule}"
                )));
            }
            if let Some(age) = &repo.max_sync_age
                && let Err(message) = crate::time::parse_duration(age)
            {
                return Err(invalid(format!("repos.{name}.max_sync_age: {message}")));
            }
            if let Some(after) = &repo.retry_after
                && let Err(message) = crate::time::parse_duration(after)
            {
                return Err(invalid(format!("repos.{name}.retry_after: {message}")));
            }
            if let Some(mirror) = &repo.mirror {
                if let Err(message) = crate::mirror::filter::Excludes::new(&mirror.exclude) {
                    return Err(invalid(format!("repos.{name}.mirror.exclude: {message}")));
                }
                if let Some(age) = &mirror.max_age
                    && let Err(message) = crate::time::parse_duration(age)
                {
                    return Err(invalid(format!("repos.{name}.mirror.max_age: {message}")));
                }
                if mirror.to.trim().is_empty() {
                    return Err(invalid(format!(
                        "repos.{name}.mirror.to: must name a directory or an rclone remote"
                    )));
                }
            }
            if let Some(problem) = repo
                .verify
                .as_ref()
                .and_then(|v| v.problem(&format!("repos.{name}.verify")))
            {
                return Err(invalid(problem));
            }
            if repo.remote.as_deref().is_some_and(str::is_empty) {
                return Err(invalid(format!(
                    "repos.{name}.remote: must not be empty (leave it out to use `origin`)"
                )));
            }
        }
        Ok(())
    }

    /// The repo entry called `name`.
    pub fn repo(&self, name: &str) -> Result<&RepoConfig, Error> {
        self.repos.get(name).ok_or_else(|| Error::UnknownRepo {
            name: name.to_owned(),
            path: self
                .source
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH)),
            known: if self.repos.is_empty() {
                "none".to_owned()
            } else {
                self.repos.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
            },
        })
    }

    /// The name of the configured repo whose checkout is `path`, compared after resolving links.
    pub fn repo_name_for_path(&self, path: &Path) -> Option<&str> {
        let wanted = std::fs::canonicalize(path).ok()?;
        self.repos
            .iter()
            .find(|(_, repo)| std::fs::canonicalize(&repo.path).is_ok_and(|p| p == wanted))
            .map(|(name, _)| name.as_str())
    }
}

/// Whether `name` can be a repo name (and so a systemd instance and a directory name).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// serde_yaml appends " at line L column C" to its messages; we print the location up front instead.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(pos) => message[..pos].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Error> {
        Config::parse(text, Path::new("/etc/driftless/driftless.yaml"))
    }

    #[test]
    fn reads_a_full_entry_and_fills_defaults() {
        let config = parse(
            "metrics_dir: /var/lib/node_exporter\nrepos:\n  hub:\n    path: /srv/hub\n  lab:\n    path: /srv/lab\n    remote: https://git.example/lab.git\n    branch: prod\n",
        )
        .expect("valid config");
        assert_eq!(config.repos["hub"].branch(), "main");
        assert_eq!(config.repos["hub"].remote, None);
        assert_eq!(config.repos["lab"].branch(), "prod");
        assert_eq!(config.metrics_dir.as_deref(), Some(Path::new("/var/lib/node_exporter")));
    }

    #[test]
    fn unknown_keys_are_rejected_with_line_and_column() {
        let err = parse("repos:\n  hub:\n    path: /srv/hub\n    brnach: main\n").expect_err("typo in key");
        let Error::Parse {
            line, column, message, ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!((*line, *column), (4, 5), "{message}");
        assert!(message.contains("brnach"), "{message}");
        assert!(
            err.to_string().starts_with("/etc/driftless/driftless.yaml:4:5: "),
            "{err}"
        );
    }

    #[test]
    fn malformed_yaml_names_its_position() {
        let err = parse("repos:\n  hub:\n    path: [unclosed\n").expect_err("bad yaml");
        assert!(matches!(err, Error::Parse { .. }), "{err:?}");
    }

    #[test]
    fn two_entries_for_one_checkout_are_invalid() {
        let err = parse("repos:\n  a:\n    path: /srv/hub\n  b:\n    path: /srv/hub/\n").expect_err("duplicate");
        let Error::Invalid { message, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(message.contains("repos.a") && message.contains("repos.b"), "{message}");
    }

    #[test]
    fn one_checkout_reached_through_a_symlink_or_dotdot_is_a_duplicate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hub = dir.path().join("hub");
        std::fs::create_dir_all(hub.join("sub")).expect("mkdir");
        std::os::unix::fs::symlink(&hub, dir.path().join("link")).expect("symlink");
        for other in [dir.path().join("link"), hub.join("sub/..")] {
            let yaml = format!(
                "repos:\n  a:\n    path: {}\n  b:\n    path: {}\n",
                hub.display(),
                other.display()
            );
            let err = parse(&yaml).expect_err("duplicate");
            assert!(
                err.to_string().contains("is also the checkout of"),
                "{}: {err}",
                other.display()
            );
        }
    }

    #[test]
    fn relative_paths_and_odd_names_are_invalid() {
        assert!(matches!(
            parse("repos:\n  hub:\n    path: srv/hub\n"),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            parse("repos:\n  a/b:\n    path: /srv/hub\n"),
            Err(Error::Invalid { .. })
        ));
    }

    #[test]
    fn mirror_entries_are_read_and_checked() {
        let config = parse(
            "repos:\n  hub:\n    path: /srv/hub\n    mirror:\n      to: gdrive:Backups/hub\n      from: commit\n      exclude: ['*.log']\n      max_age: 26h\n",
        )
        .expect("valid mirror");
        let mirror = config.repos["hub"].mirror.as_ref().expect("mirror");
        assert_eq!(
            (mirror.from, mirror.exclude.len(), mirror.delete),
            (MirrorFrom::Commit, 1, false)
        );
        let err = parse("repos:\n  hub:\n    path: /srv/hub\n    mirror:\n      to: /mnt/x\n      max_age: soon\n")
            .expect_err("bad duration");
        assert!(err.to_string().contains("max_age"), "{err}");
    }

    #[test]
    fn notify_is_read_checked_and_strict() {
        let config =
            parse("notify:\n  url: https://ntfy.example/driftless\n  format: ntfy\nrepos: {}\n").expect("valid notify");
        let notify = config.notify.expect("notify");
        assert_eq!(
            (notify.url.as_str(), notify.format),
            ("https://ntfy.example/driftless", NotifyFormat::Ntfy)
        );
        let plain = parse("notify: {url: 'http://127.0.0.1:9/hook'}\n").expect("format defaults");
        let plain = plain.notify.expect("notify");
        assert_eq!(plain.format, NotifyFormat::Plain);
        assert!(parse("notify: {url: 'ftp://x/y'}\n").is_err());
        let policy = plain.policy();
        assert_eq!(policy, crate::alert::Policy::default());
        let tuned =
            parse("notify: {url: 'http://h/x', alert_after: 2h, alert_after_failures: 6}\n").expect("policy keys");
        let policy = tuned.notify.expect("notify").policy();
        assert_eq!((policy.after_failures, policy.after.as_secs()), (6, 7200));
        assert!(parse("notify: {url: 'http://h/x', alert_after: soon}\n").is_err());
        assert!(parse("notify: {url: 'http://h/x', alert_after_failures: 0}\n").is_err());
        assert!(matches!(
            parse("notify: {url: 'http://x/', format: email}\n"),
            Err(Error::Parse { .. })
        ));
        assert!(matches!(
            parse("notify: {url: 'http://x/', urgency: high}\n"),
            Err(Error::Parse { .. })
        ));
        assert!(parse("repos: {}\n").expect("no notify").notify.is_none());
    }

    /// The sample switched on: each setting line (`#key`, `#  key`) loses its one `#`; prose
    /// (`# text`) stays a comment.
    fn switched_on(sample: &str) -> String {
        sample
            .lines()
            .map(|line| match line.strip_prefix('#') {
                Some(rest) if !rest.is_empty() && (!rest.starts_with(' ') || rest.starts_with("  ")) => rest,
                _ => line,
            })
            .map(|line| format!("{line}\n"))
            .collect()
    }

    /// units/driftless.yaml, installed as the commented conffile: as shipped it sets nothing;
    /// switched on, it parses and sets every key of every section.
    #[test]
    fn the_sample_config_parses_as_shipped_and_switched_on() {
        let sample = include_str!("../../../units/driftless.yaml");
        let shipped = parse(sample).expect("the sample as shipped");
        assert!(shipped.repos.is_empty() && shipped.notify.is_none() && shipped.state_dir.is_none());

        let config = parse(&switched_on(sample)).expect("the sample switched on");
        assert!(config.state_dir.is_some() && config.metrics_dir.is_some() && config.compose_command.is_some());
        assert_eq!(config.notify.expect("notify").format, NotifyFormat::Ntfy);
        let hub = &config.repos["hub"];
        assert!(hub.remote.is_some() && hub.branch.is_some() && hub.max_sync_age.is_some());
        let [StackEntry::Glob(_), StackEntry::Stack(stack)] = hub.stacks.as_slice() else {
            panic!("a glob and a stack with options: {:?}", hub.stacks);
        };
        assert!(stack.project.is_some() && stack.wait && stack.wait_timeout.is_some());
        assert!(!stack.files.is_empty() && !stack.env_file.is_empty() && !stack.profiles.is_empty());
        let mirror = hub.mirror.as_ref().expect("mirror");
        assert!(mirror.delete && mirror.max_delete.is_some() && mirror.max_age.is_some() && !mirror.exclude.is_empty());
        let verify = config.verify.as_ref().expect("verify");
        assert!(verify.allowed_signers.is_some() && verify.openpgp_keyring.is_some() && verify.tag_pattern.is_some());
        assert_eq!(hub.verify.as_ref().map(|v| v.mode), Some(VerifyMode::EveryCommit));
    }

    #[test]
    fn verify_is_read_per_repo_over_the_default_and_checked() {
        let config = parse(
            "verify:\n  allowed_signers: /etc/driftless/allowed_signers\nrepos:\n  hub:\n    path: /srv/hub\n  lab:\n    path: /srv/lab\n    verify:\n      allowed_signers: /etc/driftless/lab_signers\n      mode: every-commit\n",
        )
        .expect("valid verify");
        let hub = config.verify_for(&config.repos["hub"]).expect("the default");
        assert_eq!(
            (hub.allowed_signers.as_deref(), hub.mode),
            (Some(Path::new("/etc/driftless/allowed_signers")), VerifyMode::Tip)
        );
        let lab = config.verify_for(&config.repos["lab"]).expect("its own");
        assert_eq!(
            (lab.allowed_signers.as_deref(), lab.mode),
            (Some(Path::new("/etc/driftless/lab_signers")), VerifyMode::EveryCommit)
        );
        for (yaml, key) in [
            ("verify: {mode: tip}\n", "verify: name the trusted keys"),
            (
                "verify: {allowed_signers: signers}\n",
                "verify.allowed_signers: `signers` must be",
            ),
            ("verify: {allowed_signers: /s, mode: tag}\n", "verify.mode: `tag`"),
            (
                "repos:\n  hub:\n    path: /srv/hub\n    verify: {openpgp_keyring: k.pgp}\n",
                "repos.hub.verify.openpgp_keyring",
            ),
        ] {
            let err = parse(yaml).expect_err(yaml);
            assert!(err.to_string().contains(key), "{yaml}: {err}");
        }
        assert!(matches!(
            parse("verify: {allowed_signers: /s, mode: newest}\n"),
            Err(Error::Parse { .. })
        ));
        assert!(parse("repos: {}\n").expect("no verify").verify.is_none());
    }

    #[test]
    fn empty_file_is_an_empty_config() {
        assert!(parse("# nothing yet\n").expect("empty is fine").repos.is_empty());
    }
}
