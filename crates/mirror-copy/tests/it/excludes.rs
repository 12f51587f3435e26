//! Exclude patterns: the four defaults at any depth (and their near misses kept), extra
//! `--exclude` globs, and a config entry's `exclude:` list, each checked against rsync with the
//! same patterns.

use crate::{World, assert_same_tree, count, have, now_unix, tree};

/// Paths the defaults exclude, at the top and nested.
const EXCLUDED: [&str; 9] = [
    "node_modules/top.js",
    "web/app/node_modules/x/index.js",
    "web/app/node_modules/.bin/tool",
    ".terraform/modules/m.json",
    "infra/prod/.terraform/providers/registry/p",
    ".tofu/state",
    "infra/dev/.tofu/plan",
    "vendor/lib/.git/HEAD",
    "deep/a/b/c/d/node_modules/e.js",
];

/// Names that look like the defaults but are not them.
const KEPT: [&str; 9] = [
    "web/node_modules.txt",
    "web/node_modules_old/x.js",
    "web/my_node_modules/y.js",
    "infra/.terraform.lock.hcl",
    "infra/.terraform-version",
    "infra/.tofurc",
    ".gitignore",
    ".github/workflows/ci.yml",
    "my.git/x",
];

#[test]
fn default_excludes_apply_at_any_depth_and_spare_near_misses() {
    if !have("rsync", "the worktree oracle") {
        return;
    }
    let w = World::new();
    for path in EXCLUDED.iter().chain(&KEPT) {
        w.write(path, format!("{path}\n"));
    }
    w.mirror(&[]).expect_code(0);

    for path in EXCLUDED {
        assert!(
            !w.dest.join(path).exists(),
            "{path} is excluded by default but was mirrored"
        );
    }
    for path in KEPT {
        assert!(w.dest.join(path).is_file(), "{path} is not excluded but is missing");
    }
    assert!(!w.dest.join(".git").exists(), "the checkout's .git was mirrored");
    let expected = tree(&w.rsync_oracle("oracle", &[]));
    assert_same_tree(
        &tree(&w.dest),
        &expected,
        "mirror vs rsync -a with the default excludes",
    );
}

#[test]
fn exclude_flags_add_to_the_defaults() {
    if !have("rsync", "the worktree oracle") {
        return;
    }
    let w = World::new();
    for path in [
        "app.log",
        "logs/deep/x.log",
        "logs/keep.txt",
        "build/out.o",
        "src/build/keep.rs",
        "cache/tmp/a",
        "cache/tmpfile",
        "secrets.env",
        "web/node_modules/y.js",
        "src/main.rs",
    ] {
        w.write(path, format!("{path}\n"));
    }
    let extra = ["*.log", "/build/**", "tmp/**", "secrets.*"];
    let mut args = Vec::new();
    for pattern in extra {
        args.extend(["--exclude", pattern]);
    }
    w.mirror(&args).expect_code(0);

    for gone in [
        "app.log",
        "logs/deep/x.log",
        "build/out.o",
        "cache/tmp/a",
        "secrets.env",
        "web/node_modules/y.js",
    ] {
        assert!(!w.dest.join(gone).exists(), "{gone} should be excluded");
    }
    for kept in ["logs/keep.txt", "src/build/keep.rs", "cache/tmpfile", "src/main.rs"] {
        assert!(w.dest.join(kept).is_file(), "{kept} should be mirrored");
    }
    let expected = tree(&w.rsync_oracle("oracle", &extra));
    assert_same_tree(
        &tree(&w.dest),
        &expected,
        "mirror vs rsync -a with the same extra excludes",
    );
}

#[test]
fn config_exclude_list_applies_to_a_named_repo() {
    if !have("rsync", "the worktree oracle") {
        return;
    }
    let w = World::new();
    for path in [
        "keep.txt",
        "tmp/scratch",
        "big.iso",
        "sub/dir/image.iso",
        "web/node_modules/z.js",
    ] {
        w.write(path, format!("{path}\n"));
    }
    let config = w.env.write_config(&format!(
        "repos:\n  lab:\n    path: {src}\n    mirror:\n      to: {dest}\n      exclude: ['*.iso', 'tmp/']\n",
        src = w.src.display(),
        dest = w.dest.display()
    ));

    let before = now_unix();
    let mut cmd = w.cmd();
    cmd.arg("--config").arg(&config).args(["lab", "--json"]);
    let run = crate::Run::of(&mut cmd);
    run.expect_code(0);
    let record = run.json();
    assert_eq!(record["repo"], "lab", "{record}");
    assert_eq!(record["outcome"], "copied", "{record}");

    let expected = tree(&w.rsync_oracle("oracle", &["*.iso", "tmp/**"]));
    assert_same_tree(
        &tree(&w.dest),
        &expected,
        "mirror vs rsync -a with the config's excludes",
    );
    for gone in ["big.iso", "sub/dir/image.iso", "tmp/scratch", "web/node_modules/z.js"] {
        assert!(!w.dest.join(gone).exists(), "{gone} should be excluded by the config");
    }

    // The record lives under repos/NAME, not paths/.
    let state = w.env.state_dir().join("repos/lab/mirror-copy.json");
    let text = std::fs::read_to_string(&state).unwrap_or_else(|e| panic!("read {}: {e}", state.display()));
    let saved: serde_json::Value = serde_json::from_str(&text).expect("state file is JSON");
    assert_eq!(saved["last_success_commit"], w.head().as_str(), "{saved}");
    assert!(count(&saved, "last_success_at") >= before, "{saved}");
    assert!(
        !w.env.state_dir().join("paths").exists(),
        "a named repo also got a record under paths/"
    );

    // --all picks the same entry; the new file arrives, the excludes still hold.
    w.write("later.txt", "later\n").write("later.iso", "iso\n");
    let mut cmd = w.cmd();
    cmd.arg("--config").arg(&config).args(["--all", "--json"]);
    let run = crate::Run::of(&mut cmd);
    run.expect_code(0);
    assert_eq!(count(&run.json(), "copied"), 1, "{}", run.stdout);
    assert!(w.dest.join("later.txt").is_file(), "--all did not copy later.txt");
    assert!(
        !w.dest.join("later.iso").exists(),
        "--all ignored the config's excludes"
    );
}
