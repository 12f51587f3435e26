//! `driftless-hook`'s command line: the clap definition that `main.rs` parses and that
//! `cargo xtask man` and `cargo xtask completions` render into the man page and the completions.

use clap::Parser;
use driftless_cli::CommonArgs;
use std::path::PathBuf;

const EXAMPLES: &str = "\
Under systemd (the way to run it): systemd listens, and starts one driftless-hook per request,
which reads it from the socket on stdin, answers and exits; nothing runs between requests.
  install -m 0600 /dev/stdin /etc/driftless/hook.secret <<< \"$(openssl rand -hex 32)\"
  systemctl enable --now driftless-hook.socket       # 127.0.0.1:9479, behind your proxy
Then at the forge: a push webhook to https://PROXY/ (GitHub, Gitea, Forgejo: JSON, the secret;
GitLab: the secret as token), or from a script:
  curl -X POST -H \"Authorization: Bearer $(cat /etc/driftless/hook.secret)\" https://PROXY/hook/NAME

Without systemd (cron-fallback hosts; the lesser mode: one request at a time, and a running
sync makes the next request wait):
  DRIFTLESS_HOOK_CREDENTIALS=/etc/driftless/hook.d driftless-hook --listen 127.0.0.1:9479

Secrets: the file `hook` in the credentials directory ($CREDENTIALS_DIRECTORY, from the unit's
LoadCredential=hook:/etc/driftless/hook.secret), or `hook.NAME` for repo NAME alone. Never on
the command line.

Answers: 202 sync started (the units named), 200 acknowledged and ignored (another branch, not a
push, a redelivery within 10 minutes), 400 malformed, 401 bad or missing signature or token,
404 no such repo, 408 request too slow, 411 no Content-Length, 413 body too large, 503 systemd
did not take the start.";

/// Start the sync of a repo when its forge reports a push: one webhook request, read from the
/// socket systemd accepted (stdin), answered on stdout.
#[derive(Debug, Parser)]
#[command(name = "driftless-hook", version, after_help = EXAMPLES)]
pub struct Args {
    /// Serve on this address (`127.0.0.1:9479`) one request at a time, running `sync-repo NAME`
    /// itself after answering, for hosts without systemd
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,

    /// The directory of the secrets (`hook`, `hook.NAME`) [default: $CREDENTIALS_DIRECTORY]
    #[arg(long, value_name = "DIR", env = "DRIFTLESS_HOOK_CREDENTIALS")]
    pub credentials: Option<PathBuf>,

    /// Refuse bodies larger than this many bytes (413)
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    pub max_body: usize,

    /// Cut off a request that has not fully arrived after this many milliseconds (408)
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub read_timeout: u64,

    /// Start units in the calling user's manager (`systemctl --user`)
    #[arg(long)]
    pub user: bool,

    /// The systemctl program
    #[arg(
        long,
        value_name = "PROGRAM",
        env = "DRIFTLESS_SYSTEMCTL",
        default_value = "systemctl"
    )]
    pub systemctl: PathBuf,

    /// The sync-repo program, for --listen [default: sync-repo beside this program, else on PATH]
    #[arg(long, value_name = "PROGRAM")]
    pub sync_repo: Option<PathBuf>,

    #[command(flatten)]
    pub common: CommonArgs,
}
