//! `driftless-notify`'s command line: the clap definition that `main.rs` parses and that
//! `cargo xtask man` and `cargo xtask completions` render.

use clap::Parser;
use driftless_cli::CommonArgs;

const EXAMPLES: &str = "\
Examples:
  driftless-notify sync-repo@hub.service            post the report to the config's notify.url
  driftless-notify --dry-run sync-repo@hub.service  print what would be posted
  driftless-notify --exit-status 75 sync-repo@hub.service
                                                    apply the alert policy to a failure
  driftless-notify --resolved sync-repo@hub.service
                                                    end the streak; post \"recovered\" if alerted

Config (/etc/driftless/driftless.yaml):
  notify:
    url: https://ntfy.example/driftless     # or a Gotify /message?token=..., a Slack webhook
    format: ntfy                            # ntfy | gotify | slack | plain (default)

Under systemd every driftless service has OnFailure=driftless-notify@%n.service, so
driftless-notify@sync-repo@hub.service.service runs this when sync-repo@hub.service fails.
Without a notify: entry it logs that and exits 0.

Alerts: under systemd (which passes the exit status and the invocation) not every failure
posts. Exit 75 (forge or engine unreachable, or a timeout) posts once it persists:
notify.alert_after_failures runs in a row (3) or notify.alert_after since the first (30m).
Any other failure posts at once, and once per cause: the same refusal on every tick is one
post. The first success after a post sends \"recovered\" (driftless-resolved@.service runs
driftless-notify --resolved UNIT from OnSuccess=). The streak is kept in
STATE_DIR/notify/UNIT.json. Run by hand without --exit-status, it always posts.

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

    /// UNIT succeeded (`OnSuccess=`): end its failure streak, and post "recovered" if a failure
    /// was alerted
    #[arg(long)]
    pub resolved: bool,

    /// UNIT's exit status (a number, or the signal that killed it); systemd passes it to the
    /// handler. With it (or --result) the alert policy applies; without, a report is always sent
    #[arg(long, env = "MONITOR_EXIT_STATUS", value_name = "STATUS", value_hint = clap::ValueHint::Other)]
    pub exit_status: Option<String>,

    /// UNIT's result as systemd names it: exit-code, timeout, signal, core-dump...
    #[arg(long, env = "MONITOR_SERVICE_RESULT", value_name = "RESULT", value_hint = clap::ValueHint::Other)]
    pub result: Option<String>,

    /// The failed run's invocation ID: only its journal lines are sent
    #[arg(long, env = "MONITOR_INVOCATION_ID", value_name = "ID", value_hint = clap::ValueHint::Other)]
    pub invocation: Option<String>,

    #[command(flatten)]
    pub common: CommonArgs,
}
