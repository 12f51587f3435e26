//! Project automation, run as `cargo xtask <task>`: the benchmark behind docs/benchmarks.md and
//! the narrated demo that doubles as a smoke test. Arguments are parsed by hand: few and simple.

mod bench;
mod config_ref;
mod deb;
mod demo;
mod error;
mod fixture;
mod generate;
mod install;
mod sandbox;
mod units;
mod workspace;

use std::process::ExitCode;

use error::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  bench sync [--repos N] [--rounds K] [--no-docs] [--keep]
        Time sync-repo (release build) against the RFC 005 bash controller and
        `git ls-remote` over N loopback repos (default 100) served by smart HTTP
        and git daemon, K rounds per case (default 3); write the medians into
        the generated section of docs/benchmarks.md (unless --no-docs) and
        target/xtask/bench-sync.json. --keep keeps the fixtures' temp dir.
  bench mirror [--rounds K] [--no-docs]
        Time mirror-copy (release build) against `rsync -a` and `rclone copy` with
        the same excludes on a 20,000-file, ~200 MB tree, destination on tmpfs and
        on disk, K alternating rounds (default 5); write the mirror section of
        docs/benchmarks.md (unless --no-docs).
  bench apply [--rounds K] [--no-docs]
        A no-change tick of sync-repo --all + apply-compose --all against
        Harbormaster (installed from PyPI into target/xtask) on the same 10 apps
        and a private dockerd; and a no-op apply-compose over 100 stacks.
  demo [--keep]
        Narrated tour of sync-repo on a throwaway forge: fast-forward, in sync,
        dry run, refusal of a dirty checkout, --force with preserved work.
        Exits non-zero if any step misbehaves, so it doubles as a smoke test.
  units [--check]
        Check units/ offline: `systemd-analyze verify` of an instance of every
        unit (ExecStart at the built binaries, man: links at the generated pages),
        the `systemd-analyze security` exposure of every service against its
        target, and what `systemctl enable` of each instance links.
  man [--check]
        Render docs/man/TOOL.1 from each tool's clap definition; --check only
        compares and fails when the committed pages are stale.
  completions [--check]
        Render bash, zsh and fish completions into docs/completions/: scripts
        that ask the installed tool on TAB (DRIFTLESS_COMPLETE=<shell>, clap's
        dynamic completion), which offers repo names from the config and no
        file names for numbers, durations and branches; --check as for man.
  install [--prefix P] [--destdir D] [--no-build]
        Build the static release binaries and install them with the units, the cron
        file (DESTDIR/etc/cron.d/driftless), man pages, completions and docs.
        PREFIX defaults to /usr/local; `make install` wraps this.
  dist [--no-build]
        The same tree as a tarball: target/dist/driftless-VERSION-ARCH-linux.tar.gz.
  deb [--no-build] [--debug] [--bin-dir DIR] [--out-dir DIR]
        A Debian package built by dpkg-deb: target/dist/driftless_VERSION_ARCH.deb
        (binaries in /usr/bin, stripped; units in /lib/systemd/system, none enabled;
        the cron file with every job off; the commented sample config as the
        conffile /etc/driftless/driftless.yaml; man pages, completions, docs).
        Static release binaries (glibc's crt-static: no musl target here; they
        need no shared library, so the package depends on none). --debug packs the debug
        builds and --bin-dir the binaries in DIR, unbuilt, to test the packaging
        quickly (the package test does); never ship those. --out-dir writes the
        package into DIR instead of target/dist.
  help  This text.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["bench", "sync", rest @ ..] => bench::sync(&parse_bench_sync(rest)?),
        ["bench", "mirror", rest @ ..] => bench::mirror(&parse_bench_mirror(rest)?),
        ["bench", "apply", rest @ ..] => {
            let mirror = parse_bench_mirror(rest)?;
            bench::apply(&bench::ApplyOptions {
                rounds: mirror.rounds,
                write_docs: mirror.write_docs,
            })
        }
        ["bench", ..] => bail!("unknown benchmark; try `cargo xtask bench sync` or `bench mirror`\n\n{USAGE}"),
        ["demo", rest @ ..] => {
            let keep = match rest {
                [] => false,
                ["--keep"] => true,
                _ => bail!("unexpected arguments to demo: {}\n\n{USAGE}", rest.join(" ")),
            };
            demo::check_tools()?;
            demo::run_demo(keep)
        }
        ["units"] | ["units", "--check"] => units::check(),
        ["man"] => generate::write_or_check("man", &generate::man_pages()?, false),
        ["man", "--check"] => generate::write_or_check("man", &generate::man_pages()?, true),
        ["completions"] => generate::write_or_check("completions", &generate::completions(), false),
        ["completions", "--check"] => generate::write_or_check("completions", &generate::completions(), true),
        ["install", rest @ ..] => {
            let opts = parse_install(rest)?;
            let files = install::install(&opts)?;
            print!("{}", install::summary(&files, opts.destdir.as_deref()));
            Ok(())
        }
        ["dist", rest @ ..] => {
            let no_build = match rest {
                [] => false,
                ["--no-build"] => true,
                _ => bail!("unexpected arguments to dist: {}\n\n{USAGE}", rest.join(" ")),
            };
            install::dist(no_build).map(|_| ())
        }
        ["deb", rest @ ..] => deb::deb(&parse_deb(rest)?).map(|_| ()),
        [] | ["help" | "--help" | "-h"] => {
            print!("{USAGE}");
            Ok(())
        }
        [task, ..] => bail!("unknown task `{task}`\n\n{USAGE}"),
    }
}

fn parse_bench_sync(args: &[&str]) -> Result<bench::SyncOptions> {
    let mut opts = bench::SyncOptions::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value)),
            None => (*arg, None),
        };
        let mut value = |name: &str| -> Result<usize> {
            let text = match inline {
                Some(v) => v,
                None => args.next().with_context(|| format!("{name} needs a number"))?,
            };
            text.parse().with_context(|| format!("{name} {text:?}"))
        };
        match flag {
            "--repos" => opts.repos = value("--repos")?,
            "--rounds" => opts.rounds = value("--rounds")?,
            "--no-docs" => opts.write_docs = false,
            "--keep" => opts.keep = true,
            _ => bail!("unknown option `{arg}` for bench sync\n\n{USAGE}"),
        }
    }
    Ok(opts)
}

fn parse_bench_mirror(args: &[&str]) -> Result<bench::MirrorOptions> {
    let mut opts = bench::MirrorOptions {
        rounds: 5,
        write_docs: true,
    };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "--rounds" => {
                let value = rest
                    .next()
                    .ok_or_else(|| error::Error::msg("--rounds needs a number"))?;
                opts.rounds = value
                    .parse()
                    .map_err(|_| error::Error::msg(format!("--rounds: `{value}` is not a number")))?;
            }
            "--no-docs" => opts.write_docs = false,
            other => bail!("unexpected argument to bench mirror: {other}\n\n{USAGE}"),
        }
    }
    Ok(opts)
}

fn parse_deb(args: &[&str]) -> Result<deb::DebOptions> {
    let mut opts = deb::DebOptions::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value)),
            None => (*arg, None),
        };
        let mut value = |name: &str| -> Result<std::path::PathBuf> {
            let text: &str = match inline {
                Some(v) => v,
                None => args.next().with_context(|| format!("{name} needs a folder"))?,
            };
            Ok(text.into())
        };
        match flag {
            "--no-build" => opts.no_build = true,
            "--debug" => opts.debug = true,
            "--bin-dir" => opts.bin_dir = Some(value("--bin-dir")?),
            "--out-dir" => opts.out_dir = Some(value("--out-dir")?),
            _ => bail!("unexpected argument to deb: {arg}\n\n{USAGE}"),
        }
    }
    Ok(opts)
}

fn parse_install(args: &[&str]) -> Result<install::Options> {
    let mut opts = install::Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value)),
            None => (*arg, None),
        };
        let mut value = |name: &str| -> Result<std::path::PathBuf> {
            let text: &str = match inline {
                Some(v) => v,
                None => args.next().with_context(|| format!("{name} needs a path"))?,
            };
            Ok(text.into())
        };
        match flag {
            "--prefix" => opts.prefix = value("--prefix")?,
            "--destdir" => {
                let dir = value("--destdir")?;
                // `make install DESTDIR=` passes an empty value: no staging.
                opts.destdir = (!dir.as_os_str().is_empty()).then_some(dir);
            }
            "--no-build" => opts.no_build = true,
            _ => bail!("unknown option `{arg}` for install\n\n{USAGE}"),
        }
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_summary_says_where_files_went_and_what_next() {
        let files: Vec<std::path::PathBuf> = [
            "/usr/local/bin/sync-repo",
            "/usr/local/bin/drift-check",
            "/etc/cron.d/driftless",
        ]
        .iter()
        .map(std::path::PathBuf::from)
        .collect();
        let text = crate::install::summary(&files, None);
        assert!(text.starts_with("install: 3 files\n"), "{text}");
        assert!(text.contains("  /usr/local/bin/: sync-repo, drift-check\n"), "{text}");
        assert!(text.contains("  /etc/cron.d/: driftless\n"), "{text}");
        assert!(text.contains("systemctl enable --now sync-repo@NAME.timer"), "{text}");
    }

    #[test]
    fn install_options_parse() -> Result<()> {
        let opts = parse_install(&["--prefix", "/usr", "--destdir=/tmp/stage", "--no-build"])?;
        assert_eq!(opts.prefix, std::path::Path::new("/usr"));
        assert_eq!(opts.destdir.as_deref(), Some(std::path::Path::new("/tmp/stage")));
        assert!(opts.no_build);
        assert_eq!(parse_install(&["--destdir="])?.destdir, None);
        assert!(parse_install(&["--prefix"]).is_err());
        Ok(())
    }

    #[test]
    fn deb_options_parse() -> Result<()> {
        let opts = parse_deb(&["--bin-dir", "/t/debug", "--out-dir=/tmp/pkg"])?;
        assert_eq!(opts.bin_dir.as_deref(), Some(std::path::Path::new("/t/debug")));
        assert_eq!(opts.out_dir.as_deref(), Some(std::path::Path::new("/tmp/pkg")));
        assert!(!opts.no_build && !opts.debug);
        assert!(parse_deb(&["--bin-dir"]).is_err());
        assert!(parse_deb(&["--frobnicate"]).is_err());
        Ok(())
    }

    #[test]
    fn bench_sync_options_parse() -> Result<()> {
        let opts = parse_bench_sync(&["--repos", "20", "--rounds=3", "--no-docs"])?;
        assert_eq!(
            (opts.repos, opts.rounds, opts.write_docs, opts.keep),
            (20, 3, false, false)
        );
        assert!(parse_bench_sync(&["--repos"]).is_err());
        assert!(parse_bench_sync(&["--frobnicate"]).is_err());
        Ok(())
    }
}
