//! `cargo xtask bench apply`: a no-change tick of `sync-repo --all` + `apply-compose --all`
//! against Harbormaster (the closest existing tool: a timer-run git sync and compose
//! supervisor) on the same 10 one-service apps and the same private engine; and a no-op
//! `apply-compose` over 100 stacks, which must not start docker at all.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use driftless_tests::engine::Engine;

use super::median;
use super::report::{load_average, now_utc, write_named_section};
use crate::error::{Context, Result, bail};
use crate::sandbox::{Sandbox, run};
use crate::workspace;

/// How many rounds.
pub struct Options {
    pub rounds: usize,
    pub write_docs: bool,
}

const APPS: usize = 10;
const STACKS: usize = 100;

const COMPOSE: &str =
    "services:\n  app:\n    image: localhost/bb:1\n    command: [\"sleep\", \"3600\"]\n    pull_policy: never\n";

/// Run the benchmark and write its section of docs/benchmarks.md.
pub fn run_bench(opts: &Options) -> Result<()> {
    let sync_bin = workspace::build_bin("sync-repo", true)?;
    let apply_bin = workspace::build_bin("apply-compose", true)?;
    let harbormaster = harbormaster()?;
    let engine = Engine::try_start().map_err(|e| crate::error::Error::msg(format!("no engine: {e}")))?;
    let sb = Sandbox::new("driftless-bench-apply-")?;
    let root = sb.root().to_owned();
    let env = engine.client_env();
    let with_engine = |mut cmd: Command| {
        for (key, value) in &env {
            cmd.env(key, value);
        }
        cmd
    };

    eprintln!("xtask: {APPS} one-service apps, their checkouts, and Harbormaster's config");
    let mut config = format!("state_dir: {}\nrepos:\n", root.join("state").display());
    let mut hm = String::from("apps:\n");
    for i in 0..APPS {
        let work = root.join(format!("work/app{i}"));
        std::fs::create_dir_all(&work).context("work dir")?;
        std::fs::write(work.join("compose.yaml"), COMPOSE).context("compose.yaml")?;
        run(sb.git(&work).args(["init", "-q", "-b", "main"]))?;
        run(sb.git(&work).args(["add", "-A"]))?;
        run(sb.git(&work).args(["commit", "-q", "-m", "app"]))?;
        let origin = root.join(format!("origins/app{i}.git"));
        run(sb
            .command("git")
            .args(["clone", "-q", "--bare"])
            .arg(&work)
            .arg(&origin))?;
        let checkout = root.join(format!("checkouts/app{i}"));
        run(sb.command("git").args(["clone", "-q"]).arg(&origin).arg(&checkout))?;
        config.push_str(&format!(
            "  app{i}:\n    path: {}\n    stacks: [{{dir: \".\", project: dl-app{i}}}]\n",
            checkout.display()
        ));
        hm.push_str(&format!("  app{i}:\n    url: {}\n    branch: main\n", origin.display()));
    }
    let config_path = root.join("driftless.yaml");
    std::fs::write(&config_path, config).context("config")?;
    std::fs::write(root.join("hm.yml"), hm).context("hm.yml")?;
    let hm_dir = root.join("hm");
    std::fs::create_dir_all(&hm_dir).context("hm dir")?;

    let driftless = |bin: &Path| {
        let mut c = with_engine(sb.command(bin));
        c.arg("--all").arg("--config").arg(&config_path).arg("-q");
        c
    };
    let harbor = || {
        let mut c = with_engine(sb.command(&harbormaster));
        c.arg("run").arg("-c").arg(root.join("hm.yml")).arg("-d").arg(&hm_dir);
        c
    };

    eprintln!("xtask: first run of each (clones, compose up)");
    run(&mut harbor())?;
    run(&mut driftless(&sync_bin))?;
    run(&mut driftless(&apply_bin))?;
    let running = engine.docker(&["ps", "-q"]).lines().count();
    if running < 2 * APPS {
        bail!(
            "expected {} running containers after the first runs, found {running}",
            2 * APPS
        );
    }

    let load_before = load_average();
    let (mut hm_ms, mut dl_ms, mut sync_ms, mut apply_ms) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..opts.rounds {
        let mut driftless_tick = || -> Result<()> {
            let start = Instant::now();
            run(&mut driftless(&sync_bin))?;
            let mid = Instant::now();
            run(&mut driftless(&apply_bin))?;
            sync_ms.push((mid - start).as_secs_f64() * 1000.0);
            apply_ms.push(mid.elapsed().as_secs_f64() * 1000.0);
            dl_ms.push(start.elapsed().as_secs_f64() * 1000.0);
            Ok(())
        };
        if round % 2 == 0 {
            driftless_tick()?;
            hm_ms.push(time(&mut harbor())?);
        } else {
            hm_ms.push(time(&mut harbor())?);
            driftless_tick()?;
        }
    }
    let rss_hm = peak_rss_mb(&sb, harbor())?;
    let rss_sync = peak_rss_mb(&sb, driftless(&sync_bin))?;
    let rss_apply = peak_rss_mb(&sb, driftless(&apply_bin))?;

    eprintln!("xtask: {STACKS} stacks in one repo, no-op apply-compose");
    let (noop_ms, compose_calls) = hundred_stacks(&sb, &apply_bin, opts.rounds.max(5))?;

    let (hm_med, dl_med) = (median(&hm_ms), median(&dl_ms));
    let ratio = hm_med / dl_med.max(0.001);
    let section = format!(
        "Generated by `cargo xtask bench apply --rounds {}` on {} (load average before: {load_before}).\n\n\
         {APPS} apps of one service each (busybox `sleep`), one private dockerd 20.10 with Compose v2 \
         (vfs storage), the same engine for both tools. Harbormaster {} runs `harbormaster run` \
         over the apps' origins; driftless runs `sync-repo --all` then `apply-compose --all` over \
         checkouts of the same origins. Nothing changes between ticks. Rounds alternate the order.\n\n\
         | no-change tick over {APPS} apps | ms (median) | peak RSS |\n|---|---:|---:|\n\
         | Harbormaster | {hm_med:.0} | {rss_hm:.1} MB |\n\
         | driftless: sync-repo --all + apply-compose --all | {dl_med:.1} | {:.1} MB |\n\
         | of which sync-repo --all | {:.1} | {rss_sync:.1} MB |\n\
         | of which apply-compose --all | {:.1} | {rss_apply:.1} MB |\n\n\
         No-op `apply-compose` over {STACKS} stacks of one repo (after a first apply recorded \
         their digests): {noop_ms:.1} ms median; compose was called {compose_calls} times during \
         the timed runs (it must not start docker at all).\n\n\
         | target | measured | met |\n|---|---:|:---:|\n\
         | no-change tick ≥ 20× faster than Harbormaster | {ratio:.0}× | {} |\n\
         | no-op over {STACKS} stacks < 50 ms, no docker | {noop_ms:.1} ms, {compose_calls} calls | {} |\n",
        opts.rounds,
        now_utc(),
        harbormaster_version(&sb, &harbormaster),
        rss_sync.max(rss_apply),
        median(&sync_ms),
        median(&apply_ms),
        if ratio >= 20.0 { "yes" } else { "**no**" },
        if noop_ms < 50.0 && compose_calls == 0 {
            "yes"
        } else {
            "**no**"
        },
    );
    print!("{section}");
    drop(engine);
    if opts.write_docs {
        write_named_section(&workspace::root().join("docs/benchmarks.md"), "apply", &section)?;
        eprintln!("xtask: wrote the apply section of docs/benchmarks.md");
    }
    Ok(())
}

/// One repo with [`STACKS`] stacks, applied once through a stand-in compose command that only
/// records its calls; then the no-op runs are timed and the recorder must stay empty.
fn hundred_stacks(sb: &Sandbox, apply_bin: &Path, rounds: usize) -> Result<(f64, usize)> {
    let root = sb.root().join("many");
    for i in 0..STACKS {
        let dir = root.join(format!("stacks/s{i:03}"));
        std::fs::create_dir_all(&dir).context("stack dir")?;
        std::fs::write(dir.join("compose.yaml"), COMPOSE).context("compose")?;
        std::fs::write(dir.join("app.env"), format!("N={i}\n")).context("env")?;
    }
    run(sb.git(&root).args(["init", "-q", "-b", "main"]))?;
    run(sb.git(&root).args(["add", "-A"]))?;
    run(sb.git(&root).args(["commit", "-q", "-m", "stacks"]))?;
    let log = sb.root().join("compose-calls.log");
    let fake = sb.root().join("fake-compose.sh");
    std::fs::write(&fake, format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display())).context("fake compose")?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).context("chmod")?;
    }
    let config = sb.root().join("many.yaml");
    std::fs::write(
        &config,
        format!(
            "state_dir: {}\ncompose_command: [{}]\nrepos:\n  many:\n    path: {}\n    stacks: [\"stacks/*\"]\n",
            sb.root().join("state-many").display(),
            fake.display(),
            root.display()
        ),
    )
    .context("config")?;
    let apply = || {
        let mut c = sb.command(apply_bin);
        c.arg("many").arg("--config").arg(&config).arg("-q");
        c
    };
    run(&mut apply())?;
    let before = std::fs::read_to_string(&log).unwrap_or_default().lines().count();
    if before < STACKS {
        bail!("the first apply called compose {before} times, expected at least {STACKS}");
    }
    let mut ms = Vec::new();
    for _ in 0..rounds {
        ms.push(time(&mut apply())?);
    }
    let after = std::fs::read_to_string(&log).unwrap_or_default().lines().count();
    Ok((median(&ms), after - before))
}

fn time(cmd: &mut Command) -> Result<f64> {
    let start = Instant::now();
    run(cmd)?;
    Ok(start.elapsed().as_secs_f64() * 1000.0)
}

fn peak_rss_mb(sb: &Sandbox, cmd: Command) -> Result<f64> {
    let mut timed = sb.command("/usr/bin/time");
    timed.arg("-v").arg(cmd.get_program()).args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => timed.env(key, value),
            None => timed.env_remove(key),
        };
    }
    let out = timed.output().context("running /usr/bin/time -v")?;
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .ok_or_else(|| crate::error::Error::msg(format!("no peak RSS in /usr/bin/time output:\n{text}")))
}

/// Harbormaster from PyPI, in a venv under target/xtask (created once).
fn harbormaster() -> Result<PathBuf> {
    let venv = workspace::target_dir().join("xtask/hm-venv");
    let bin = venv.join("bin/harbormaster");
    if bin.is_file() {
        return Ok(bin);
    }
    eprintln!(
        "xtask: installing docker-harbormaster from PyPI into {}",
        venv.display()
    );
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(venv.join("bin/pip")).args(["install", "-q", "docker-harbormaster"]))?;
    if !bin.is_file() {
        bail!("pip installed docker-harbormaster but {} is missing", bin.display());
    }
    Ok(bin)
}

fn harbormaster_version(sb: &Sandbox, bin: &Path) -> String {
    let pip = bin.with_file_name("pip");
    sb.command(pip)
        .args(["show", "docker-harbormaster"])
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("Version: ").map(str::to_owned))
        })
        .unwrap_or_else(|| "(version unknown)".into())
}
