//! `driftless-notify`'s command line: the clap definition that `main.rs` parses and that
//! `cargo xtask man` and `cargo xtask completions` render.

use clap::Parser;
use driftless_core::cli::CommonArgs;

const EXAMPLES: &str = "\
Examples:
  driftless-notify sync-repo@hub.service            post the report to the config's notify.url
  driftless-notify --dry-run sync-repo@hub.service  print what would be posted

Config (/etc/driftless/driftless.yaml):
  notify:
    url: https://ntfy.example/driftless     # or a Gotify /message?token=..., a Slack webhook
    format: ntfy                            # ntfy | gotify | slack | plain (default)

Under systemd every driftless service has OnFailure=driftless-notify@%n.service, so
driftless-notify@sync-repo@hub.service.service runs this when sync-repo@hub.service fails.
Without a notify: entry it logs that and exits 0.

Only the URL's scheme and host are ever printed (its path or query is often the secret).
Redirects are not followed: the report is posted once, to notify.url only.

Exit codes: 0 sent (or nothing configured), 2 usage or config error (also a malformed
notify.url), 75 the webhook could not be reached, or answered with an error or a redirect.";

/// Report a failed unit to a webhook: its name, the host and its last journal lines.
#[derive(Debug, Parser)]
#[command(name = "driftless-notify", version, after_help = EXAMPLES)]
pub struct Args {
    /// The unit that failed, e.g. sync-repo@hub.service (systemd passes it as %i)
    #[arg(value_name = "UNIT")]
    pub unit: String,

    /// The unit belongs to the calling user's manager (`systemctl --user`): read its journal
    /// with `journalctl --user-unit`
    #[arg(long)]
    pub user: bool,

    /// How many journal lines to include
    #[arg(long, value_name = "N", value_hint = clap::ValueHint::Other, default_value_t = 20)]
    pub lines: u32,

    #[command(flatten)]
    pub common: CommonArgs,
}
