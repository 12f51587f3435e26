//! The trust gate (`verify:`): sync-repo moves a checkout only to commits signed by a key in
//! the allowed_signers file. Keys are made with `ssh-keygen`, commits signed with
//! `git commit -S` (gpg.format ssh), and `git verify-commit` with the same allowed_signers file
//! is the oracle for every case: sync-repo trusts exactly what git trusts.

use std::path::PathBuf;

use driftless_tests::env::git_output;
use driftless_tests::oracle::RepoSnapshot;

use crate::{Run, World};

/// An SSH signing key made in the test.
struct Key {
    private: PathBuf,
    public_line: String,
    fingerprint: String,
}

impl Key {
    fn new(w: &World, name: &str) -> Key {
        let dir = w.env.path("keys");
        std::fs::create_dir_all(&dir).expect("keys dir");
        let private = dir.join(name);
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&private)
            .output()
            .expect("run ssh-keygen");
        assert!(
            out.status.success(),
            "ssh-keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let public_line = std::fs::read_to_string(private.with_extension("pub")).expect("read .pub");
        let out = std::process::Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(private.with_extension("pub"))
            .output()
            .expect("ssh-keygen -l");
        let listing = String::from_utf8_lossy(&out.stdout).to_string();
        let fingerprint = listing.split_whitespace().nth(1).expect("fingerprint").to_owned();
        Key {
            private,
            public_line: public_line.trim().to_owned(),
            fingerprint,
        }
    }
}

/// A world whose repo `hub` has `verify:` with an allowed_signers file holding `lines`.
struct Gated {
    w: World,
    config: PathBuf,
    signers: PathBuf,
}

impl Gated {
    fn new(name: &str, mode: &str) -> Gated {
        let w = World::new(name);
        let signers = w.env.path("allowed_signers");
        std::fs::write(&signers, "").expect("write allowed_signers");
        let config = w.env.write_config(&format!(
            "metrics_dir: {}\nrepos:\n  hub:\n    path: {}\n    verify:\n      allowed_signers: {}\n      mode: {mode}\n",
            w.env.path("metrics").display(),
            w.checkout.display(),
            signers.display()
        ));
        std::fs::create_dir_all(w.env.path("metrics")).expect("metrics dir");
        Gated { w, config, signers }
    }

    fn trust(&self, lines: &[String]) {
        std::fs::write(&self.signers, lines.join("\n") + "\n").expect("write allowed_signers");
    }

    fn sync(&self, args: &[&str]) -> Run {
        let mut cmd = self.w.env.sync_repo();
        cmd.arg("--config").arg(&self.config).args(args).arg("hub");
        Run::of(&mut cmd)
    }

    /// Commit a change upstream, signed with `key` (unsigned when `None`), and push.
    fn commit(&self, key: Option<&Key>, file: &str, message: &str) -> String {
        let origin = &self.w.origin;
        origin.write(file, format!("{message}\n"));
        self.w.env.git(&origin.work, &["add", "-A"]);
        let mut args: Vec<String> = Vec::new();
        if let Some(key) = key {
            args.extend([
                "-c".into(),
                "gpg.format=ssh".into(),
                "-c".into(),
                format!("user.signingkey={}", key.private.display()),
            ]);
        }
        args.extend(["commit".into(), "-q".into(), "-m".into(), message.into()]);
        if key.is_some() {
            args.push("-S".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.w.env.git(&origin.work, &args);
        origin.push();
        origin.work_head()
    }

    /// The oracle: whether `git verify-commit` trusts `commit` with the same allowed_signers.
    fn git_trusts(&self, commit: &str) -> bool {
        let config = format!("gpg.ssh.allowedSignersFile={}", self.signers.display());
        git_output(&self.w.origin.work, &["-c", &config, "verify-commit", commit])
            .status
            .success()
    }

    fn metric(&self) -> String {
        let prom = std::fs::read_to_string(self.w.env.path("metrics/sync-repo-hub.prom")).expect("metrics file");
        prom.lines()
            .find(|l| l.starts_with("driftless_verify_failed{"))
            .unwrap_or_else(|| panic!("no driftless_verify_failed in\n{prom}"))
            .to_owned()
    }

    fn state(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.w.env.state_dir().join("repos/hub/sync-repo.json"))
            .or_else(|_| {
                let found = crate::find_files(&self.w.env.state_dir(), "sync-repo.json");
                std::fs::read_to_string(found.first().expect("a sync-repo state record"))
            })
            .expect("state record");
        serde_json::from_str(&text).expect("state JSON")
    }

    /// sync-repo refuses the remote tip: exit 3, the reason names `commit` and `needle`, and
    /// the checkout (worktree, index, HEAD, every ref) is exactly as it was.
    fn assert_refused(&self, args: &[&str], commit: &str, needle: &str) -> serde_json::Value {
        let snapshot = RepoSnapshot::take(&self.w.checkout);
        let head = self.w.head();
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let run = self.sync(&all);
        run.expect_code(3);
        let record = run.json();
        let reason = record["reason"].as_str().unwrap_or_default().to_owned();
        assert_eq!(record["outcome"], "refused", "{record}");
        assert!(reason.contains(&format!("commit {}", &commit[..7])), "{reason}");
        assert!(reason.contains(needle), "{reason} lacks {needle}");
        assert!(!record["resolve"].as_array().expect("resolve").is_empty(), "{record}");
        snapshot.assert_unchanged(&self.w.checkout);
        assert_eq!(self.w.head(), head);
        assert!(self.metric().ends_with(" 1"), "{}", self.metric());
        assert_eq!(self.state()["unverified_tip"], self.w.origin.tip(), "{}", self.state());
        record
    }
}

fn line(principal: &str, options: &str, key: &Key) -> String {
    format!("{principal} {options} {}", key.public_line)
}

#[test]
fn a_tip_signed_by_a_trusted_key_updates_and_names_its_signer() {
    let g = Gated::new("trust-good", "tip");
    let alice = Key::new(&g.w, "alice");
    g.trust(&[line("alice@ops", "namespaces=\"git\"", &alice)]);
    let before = g.w.head();
    let tip = g.commit(Some(&alice), "a.txt", "signed change");
    assert!(g.git_trusts(&tip), "the oracle trusts it");

    let run = g.sync(&["--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(record["outcome"], "updated", "{record}");
    assert_eq!(record["signer"]["principal"], "alice@ops", "{record}");
    assert_eq!(record["signer"]["fingerprint"], alice.fingerprint.as_str(), "{record}");
    assert_eq!(g.w.head(), tip);
    assert!(g.metric().ends_with(" 0"), "{}", g.metric());
    let state = g.state();
    assert_eq!(state["signer"]["principal"], "alice@ops", "{state}");

    // The summary line names the signer; an in-sync tick keeps the signer in the record.
    let tip2 = g.commit(Some(&alice), "b.txt", "another signed change");
    let human = g.sync(&[]);
    human.expect_code(0);
    assert!(
        human.stdout.contains(&format!("updated {}..{}", &tip[..7], &tip2[..7]))
            && human
                .stdout
                .contains(&format!("signed by alice@ops ({})", alice.fingerprint)),
        "{}",
        human.stdout
    );
    g.sync(&[]).expect_code(0);
    assert_eq!(g.state()["signer"]["principal"], "alice@ops");
    assert_ne!(before, tip2);
}

#[test]
fn an_unsigned_tip_is_refused_and_not_notified_twice() {
    let g = Gated::new("trust-unsigned", "tip");
    let alice = Key::new(&g.w, "alice");
    g.trust(&[line("alice@ops", "", &alice)]);
    let tip = g.commit(None, "a.txt", "unsigned change");
    assert!(!g.git_trusts(&tip), "the oracle refuses it");
    let first = g.assert_refused(&[], &tip, "is not signed");

    // The next tick refuses the same tip with the same words: the notifier's memory of the
    // cause it alerted holds the alert back.
    let second = g.assert_refused(&[], &tip, "is not signed");
    assert_eq!(first["reason"], second["reason"]);
    let failure = |reason: &serde_json::Value| driftless_core::alert::Failure {
        exit_status: Some(3),
        result: "exit-code".to_owned(),
        detail: reason.as_str().unwrap_or_default().to_owned(),
    };
    let (streak, verdict) =
        driftless_core::alert::on_failure(None, &failure(&first["reason"]), 100, Default::default());
    assert_eq!(verdict, driftless_core::alert::Verdict::Alert);
    let mut streak = streak;
    streak.alerted = Some(driftless_core::alert::Alerted {
        cause: streak.cause.clone(),
        at: 100,
    });
    let (_, verdict) =
        driftless_core::alert::on_failure(Some(streak), &failure(&second["reason"]), 400, Default::default());
    assert!(
        matches!(verdict, driftless_core::alert::Verdict::Hold(_)),
        "{verdict:?}"
    );

    // The human line names the commit too.
    let human = g.sync(&[]);
    human.expect_code(3);
    assert!(
        human
            .all_output()
            .contains(&format!("commit {} is not signed", &tip[..7])),
        "{}",
        human.all_output()
    );
}

#[test]
fn a_key_not_in_allowed_signers_is_refused_with_its_fingerprint() {
    let g = Gated::new("trust-unknown", "tip");
    let alice = Key::new(&g.w, "alice");
    let mallory = Key::new(&g.w, "mallory");
    g.trust(&[line("alice@ops", "", &alice)]);
    let tip = g.commit(Some(&mallory), "a.txt", "signed by someone else");
    assert!(!g.git_trusts(&tip), "the oracle refuses it");
    g.assert_refused(
        &[],
        &tip,
        &format!(
            "is signed by {} which is not in {}",
            mallory.fingerprint,
            g.signers.display()
        ),
    );
}

#[test]
fn a_commit_changed_after_signing_is_refused() {
    let g = Gated::new("trust-tampered", "tip");
    let alice = Key::new(&g.w, "alice");
    g.trust(&[line("alice@ops", "", &alice)]);
    let signed = g.commit(Some(&alice), "a.txt", "signed change");
    let work = &g.w.origin.work;
    let raw = g.w.env.git(work, &["cat-file", "commit", &signed]);
    let forged = raw.replace("signed change", "something else entirely");
    assert_ne!(raw, forged);
    let path = g.w.env.path("forged-commit");
    std::fs::write(&path, forged).expect("write forged commit");
    let tampered =
        g.w.env
            .git(
                work,
                &["hash-object", "-t", "commit", "-w", &path.display().to_string()],
            )
            .trim()
            .to_owned();
    g.w.env.git(work, &["reset", "-q", "--hard", &tampered]);
    g.w.origin.force_push();
    // The checkout is still at the base: only the forged commit is new to it.
    g.w.env.git(work, &["cat-file", "-p", &tampered]);
    assert!(
        g.git_trusts(&signed) && !g.git_trusts(&tampered),
        "the oracle refuses the forgery"
    );
    g.assert_refused(&[], &tampered, "does not match its content");
}

#[test]
fn a_key_outside_its_validity_or_namespace_is_refused() {
    let g = Gated::new("trust-expired", "tip");
    let alice = Key::new(&g.w, "alice");
    let tip = g.commit(Some(&alice), "a.txt", "signed change");
    for (options, needle) in [
        ("valid-before=\"20200101Z\"", "trusts it only until 2020-01-01"),
        ("valid-after=\"20990101Z\"", "trusts it only from 2099-01-01"),
        ("namespaces=\"file\"", "allows it only for namespaces \"file\""),
    ] {
        g.trust(&[line("alice@ops", options, &alice)]);
        assert!(!g.git_trusts(&tip), "the oracle refuses it with {options}");
        g.assert_refused(&[], &tip, needle);
    }
    // The same key, trusted for the commit's time and namespace: the oracle and sync-repo agree.
    g.trust(&[line(
        "alice@ops",
        "namespaces=\"git\",valid-after=\"20200101Z\"",
        &alice,
    )]);
    assert!(g.git_trusts(&tip));
    g.sync(&[]).expect_code(0);
    assert_eq!(g.w.head(), tip);
}

#[test]
fn every_commit_refuses_one_unsigned_commit_in_the_middle_that_tip_lets_through() {
    let g = Gated::new("trust-every", "every-commit");
    let alice = Key::new(&g.w, "alice");
    g.trust(&[line("alice@ops", "", &alice)]);
    g.commit(Some(&alice), "a.txt", "first, signed");
    let middle = g.commit(None, "b.txt", "second, unsigned");
    let tip = g.commit(Some(&alice), "c.txt", "third, signed");
    assert!(!g.git_trusts(&middle) && g.git_trusts(&tip));
    g.assert_refused(&[], &middle, "is not signed");

    // The same range under `mode: tip` moves: only the tip is checked.
    let yaml = std::fs::read_to_string(&g.config)
        .expect("config")
        .replace("every-commit", "tip");
    std::fs::write(&g.config, yaml).expect("config");
    g.sync(&[]).expect_code(0);
    assert_eq!(g.w.head(), tip);
}

#[test]
fn force_is_gated_too() {
    let g = Gated::new("trust-force", "tip");
    let alice = Key::new(&g.w, "alice");
    g.trust(&[line("alice@ops", "", &alice)]);
    let tip = g.commit(None, "a.txt", "unsigned change");
    // Local work that --force would preserve and replace.
    std::fs::write(g.w.checkout.join("a.txt"), "local edit\n").expect("edit");
    let record = g.assert_refused(&["--force"], &tip, "is not signed");
    assert!(record["preserved_ref"].is_null(), "{record}");
    assert_eq!(g.w.git(&["for-each-ref", "refs/driftless/"]), "");
}

#[test]
fn print_config_shows_the_gate() {
    let g = Gated::new("trust-print", "every-commit");
    let run = Run::of(g.w.env.sync_repo().arg("--config").arg(&g.config).arg("--print-config"));
    run.expect_code(0);
    let effective = driftless_core::config::Config::parse(&run.stdout, &g.config).expect("parses");
    let verify = effective.repos["hub"].verify.as_ref().expect("verify printed");
    assert_eq!(verify.allowed_signers.as_deref(), Some(g.signers.as_path()));
    assert_eq!(verify.mode, driftless_core::config::VerifyMode::EveryCommit);
    assert!(run.stdout.contains("mode: every-commit"), "{}", run.stdout);
}

/// A GnuPG home made in the test (`$HOME/.gnupg` of the test env, where the env's git finds
/// it), with an OpenPGP signing key per user; its gpg-agent is stopped by PID on drop.
struct Gpg {
    home: PathBuf,
    env_home: PathBuf,
}

impl Gpg {
    fn new(w: &World) -> Gpg {
        use std::os::unix::fs::PermissionsExt;
        let env_home = w.env.home();
        let home = env_home.join(".gnupg");
        std::fs::create_dir_all(&home).expect("gnupg home");
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).expect("chmod gnupg home");
        Gpg { home, env_home }
    }

    fn cmd(&self, program: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new(program);
        cmd.env_clear()
            .envs(driftless_tests::env::isolated_env(&self.env_home))
            .env("GNUPGHOME", &self.home);
        cmd
    }

    fn run(&self, program: &str, args: &[&str]) -> Vec<u8> {
        let out = self.cmd(program).args(args).output().expect("run gpg");
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// A signing-only ed25519 key for `user`; its fingerprint.
    fn key(&self, user: &str) -> String {
        self.run(
            "gpg",
            &[
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                user,
                "ed25519",
                "sign",
                "never",
            ],
        );
        let listing = String::from_utf8_lossy(&self.run("gpg", &["--with-colons", "--list-keys", user])).to_string();
        listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:::::::::"))
            .map(|f| f.trim_end_matches(':').to_owned())
            .expect("fingerprint")
    }

    /// `users`' public keys, exported (armored or binary) to `path`.
    fn export(&self, users: &[&str], path: &std::path::Path, armor: bool) {
        let mut args = vec!["--export"];
        if armor {
            args.insert(0, "--armor");
        }
        args.extend_from_slice(users);
        std::fs::write(path, self.run("gpg", &args)).expect("write keyring");
    }

    /// The oracle: gpgv (gpg's verifier, which trusts exactly the keyring it is given) on
    /// the commit's signature and payload, split as git splits them.
    fn trusts(&self, w: &World, keyring: &std::path::Path, commit: &str) -> bool {
        let raw = w.env.git(&w.origin.work, &["cat-file", "commit", commit]);
        let (mut payload, mut sig, mut in_sig) = (String::new(), String::new(), false);
        for line in raw.split_inclusive('\n') {
            if let Some(rest) = line.strip_prefix("gpgsig ") {
                in_sig = true;
                sig.push_str(rest);
            } else if in_sig && line.starts_with(' ') {
                sig.push_str(&line[1..]);
            } else {
                in_sig = false;
                payload.push_str(line);
            }
        }
        if sig.is_empty() {
            return false;
        }
        let dir = w.env.path("gpgv");
        std::fs::create_dir_all(&dir).expect("gpgv dir");
        std::fs::write(dir.join("sig"), sig).expect("sig");
        std::fs::write(dir.join("payload"), payload).expect("payload");
        self.cmd("gpgv")
            .arg("--keyring")
            .arg(keyring)
            .arg(dir.join("sig"))
            .arg(dir.join("payload"))
            .output()
            .expect("gpgv")
            .status
            .success()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        // The agent gpg started for this home: asked for its PID, stopped by it.
        let Ok(out) = self
            .cmd("gpg-connect-agent")
            .args(["--no-autostart", "getinfo pid", "/bye"])
            .output()
        else {
            return;
        };
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if let Some(pid) = text
            .lines()
            .find_map(|l| l.strip_prefix("D "))
            .and_then(|p| p.trim().parse::<i32>().ok())
        {
            let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

#[test]
fn openpgp_signatures_are_verified_against_the_keyring() {
    let w = World::new("trust-openpgp");
    let gpg = Gpg::new(&w);
    let alice = gpg.key("alice@ops");
    gpg.key("mallory@elsewhere");
    for armor in [false, true] {
        let keyring = w.env.path(format!("trusted-{armor}.pgp"));
        gpg.export(&["alice@ops"], &keyring, armor);
        assert!(keyring.metadata().expect("keyring").len() > 0);
    }
    let keyring = w.env.path("trusted-false.pgp");
    let config = w.env.write_config(&format!(
        "repos:\n  hub:\n    path: {}\n    verify:\n      openpgp_keyring: {}\n",
        w.checkout.display(),
        keyring.display()
    ));
    let sync = |args: &[&str]| {
        let mut cmd = w.env.sync_repo();
        cmd.arg("--config").arg(&config).args(args).arg("hub");
        Run::of(&mut cmd)
    };
    let commit = |user: &str, message: &str| {
        w.origin.write("a.txt", format!("{message}\n"));
        w.env.git(&w.origin.work, &["add", "-A"]);
        let key = format!("user.signingkey={user}");
        w.env
            .git(&w.origin.work, &["-c", &key, "commit", "-q", "-S", "-m", message]);
        w.origin.push();
        w.origin.work_head()
    };

    // Signed by a key the keyring does not hold: refused, nothing moved.
    let base = w.head();
    let bad = commit("mallory@elsewhere", "signed by mallory");
    assert!(!gpg.trusts(&w, &keyring, &bad), "the oracle refuses it");
    let snapshot = RepoSnapshot::take(&w.checkout);
    let run = sync(&["--json"]);
    run.expect_code(3);
    let reason = run.json()["reason"].as_str().unwrap_or_default().to_owned();
    assert!(
        reason.contains(&format!("commit {} is signed by OpenPGP key", &bad[..7]))
            && reason.contains(&format!("which is not in {}", keyring.display())),
        "{reason}"
    );
    snapshot.assert_unchanged(&w.checkout);
    assert_eq!(w.head(), base);

    // Signed by alice on top: trusted by the binary keyring, and by the armored one.
    let good = commit("alice@ops", "signed by alice");
    assert!(gpg.trusts(&w, &keyring, &good), "the oracle trusts it");
    let run = sync(&["--json"]);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(record["outcome"], "updated", "{record}");
    assert_eq!(record["signer"]["fingerprint"], alice.as_str(), "{record}");
    assert!(
        record["signer"]["principal"]
            .as_str()
            .is_some_and(|p| p.contains("alice@ops")),
        "{record}"
    );
    assert_eq!(w.head(), good);

    let armored = w.env.path("trusted-true.pgp");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .expect("config")
            .replace(&keyring.display().to_string(), &armored.display().to_string()),
    )
    .expect("config");
    let next = commit("alice@ops", "signed by alice again");
    // gpgv reads binary keyrings only: the oracle checks against the same keys, exported binary.
    assert!(gpg.trusts(&w, &keyring, &next));
    sync(&[]).expect_code(0);
    assert_eq!(w.head(), next);
}
