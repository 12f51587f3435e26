//! Log set-up shared by every tool: tracing to stderr, journal-friendly under systemd.

use tracing_subscriber::EnvFilter;

/// Install the global subscriber.
///
/// `verbosity` is `-v` count minus `-q` count. `DRIFTLESS_LOG` (an `EnvFilter` directive such as
/// `debug` or `driftless_core=trace`) overrides it. Under systemd (`JOURNAL_STREAM` set) lines
/// carry no colours and no timestamps, since the journal adds its own; by default a unit logs at
/// `info`, so the journal shows what each run did, while an interactive run stays quiet at `warn`.
/// A privilege-separated worker (`sync-repo` serving one repo as its owner) calls it again with
/// the verbosity its parent was given.
pub fn init(verbosity: i8) {
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let base = if under_journal { 1 } else { 0 } + i16::from(verbosity);
    let level = match base {
        i16::MIN..=-1 => "error",
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("DRIFTLESS_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = if under_journal {
        builder.with_ansi(false).without_time().try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
    // A second init (tests calling run() twice) keeps the first subscriber.
    drop(result);
}
