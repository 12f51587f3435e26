//! Which files a stack reads, seen from the outside: for each part of the compose spec that
//! names a file, changing that file in a commit re-applies the stack with a reason naming it,
//! and changing a file no stack reads does not. Compose is the recording fake (it exits 0):
//! what is under test is the decision, not compose. Every fixture is also valid for real
//! compose (`docker compose config` accepts it).

use crate::{Hub, compose};

/// A stack `stacks/<name>-s` of `files` (paths relative to the stack dir; `{dir}` in contents
/// is replaced by the stack dir), committed and applied once through the fake compose.
fn applied_stack(name: &str, files: &[(&str, &str)]) -> Hub {
    let mut hub = Hub::new(name, None);
    hub.use_fake_compose();
    let dir = hub.stack_dir("s");
    for (rel, content) in files {
        hub.write(&format!("{dir}/{rel}"), &content.replace("{dir}", &dir));
    }
    hub.write(&format!("{dir}/NOTES.md"), "not read by compose\n");
    hub.commit("the stack");
    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&hub.project("s"), "applied", &["never applied"]);
    hub
}

impl Hub {
    /// Rewrite `changes` (relative to the stack dir) in one commit, and assert the next run
    /// re-applies the stack (compose called with `up`) with a reason containing each of
    /// `reasons` (`{dir}` replaced by the stack dir), naming the new commit.
    fn expect_reapplied(&self, changes: &[(&str, &str)], reasons: &[&str]) {
        let dir = self.stack_dir("s");
        for (rel, content) in changes {
            self.write(&format!("{dir}/{rel}"), content);
        }
        let sha = self.commit("change an input");
        let calls = self.compose_calls().len();
        let reasons: Vec<String> = reasons.iter().map(|r| r.replace("{dir}", &dir)).collect();
        let reasons: Vec<&str> = reasons.iter().map(String::as_str).collect();
        let out = self.apply(&[]);
        out.expect_code(0).expect_stack(&self.project("s"), "applied", &reasons);
        assert!(
            out.reasons(&self.project("s")).iter().any(|r| r.contains(&sha[..7])),
            "{:?}",
            out.reasons(&self.project("s"))
        );
        let new_calls = &self.compose_calls()[calls..];
        assert!(
            new_calls
                .iter()
                .any(|c| c.contains(&format!("--project-name {}", self.project("s"))) && c.contains("up -d")),
            "compose was not run: {new_calls:?}"
        );
    }

    /// Change a file of the stack dir that compose does not read: the stack stays unchanged
    /// and compose is not called.
    fn expect_unchanged_by(&self, rel: &str) {
        self.write(&format!("{}/{rel}", self.stack_dir("s")), "changed, read by nobody\n");
        self.commit("change an unread file");
        let calls = self.compose_calls();
        self.apply(&[])
            .expect_code(0)
            .expect_stack(&self.project("s"), "unchanged", &["unchanged since"]);
        assert_eq!(self.compose_calls(), calls, "compose called for an unread file");
    }
}

#[test]
fn short_volume_syntax_bind_mounts_are_inputs_and_named_volumes_are_not() {
    let hub = applied_stack(
        "pvshort",
        &[
            (
                "compose.yaml",
                &compose(
                    "    volumes:\n      - ./conf:/etc/app:ro\n      - named:/data\n",
                    "volumes:\n  named: {}\n",
                ),
            ),
            ("conf/app.conf", "level=info\n"),
            ("named/decoy", "a directory called like the named volume\n"),
        ],
    );
    hub.expect_reapplied(
        &[("conf/app.conf", "level=debug\n")],
        &["bind mount {dir}/conf changed"],
    );
    hub.expect_unchanged_by("named/decoy");
    hub.expect_unchanged_by("NOTES.md");
}

#[test]
fn long_volume_syntax_bind_mounts_are_inputs() {
    let hub = applied_stack(
        "pvlong",
        &[
            (
                "compose.yaml",
                &compose(
                    "    volumes:\n      - type: bind\n        source: ./data.txt\n        target: /data.txt\n        read_only: true\n      - type: volume\n        source: cache\n        target: /cache\n",
                    "volumes:\n  cache: {}\n",
                ),
            ),
            ("data.txt", "one\n"),
        ],
    );
    hub.expect_reapplied(&[("data.txt", "two\n")], &["bind mount {dir}/data.txt changed"]);
    hub.expect_unchanged_by("NOTES.md");
}

#[test]
fn paths_are_interpolated_from_the_project_env_file() {
    let hub = applied_stack(
        "pinterp",
        &[
            (".env", "# where the config lives\nCONF_DIR=conf-prod\n"),
            (
                "compose.yaml",
                &compose("    volumes:\n      - ./${CONF_DIR}:/etc/app\n", ""),
            ),
            ("conf-prod/app.conf", "prod\n"),
            ("conf-dev/app.conf", "dev\n"),
        ],
    );
    hub.expect_reapplied(
        &[("conf-prod/app.conf", "prod 2\n")],
        &["bind mount {dir}/conf-prod changed"],
    );
    hub.expect_unchanged_by("conf-dev/app.conf");
    // Pointing the variable elsewhere changes which directory is read.
    hub.expect_reapplied(
        &[(".env", "CONF_DIR=conf-dev\n")],
        &[
            "env file {dir}/.env changed",
            "bind mount {dir}/conf-dev added",
            "{dir}/conf-prod no longer used",
        ],
    );
    hub.expect_reapplied(
        &[("conf-dev/app.conf", "dev 2\n")],
        &["bind mount {dir}/conf-dev changed"],
    );
    hub.expect_unchanged_by("conf-prod/app.conf");
}

/// `${VAR:-default}` holds a colon: the short volume syntax must be interpolated before it is
/// split at `:` (`docker compose config` mounts `fallback` here).
#[test]
fn a_short_syntax_volume_source_with_a_default_value_is_interpolated() {
    let hub = applied_stack(
        "pdefault",
        &[
            (
                "compose.yaml",
                &compose("    volumes:\n      - ${DATA_DIR:-./fallback}:/data\n", ""),
            ),
            ("fallback/seed", "seed\n"),
        ],
    );
    hub.expect_reapplied(&[("fallback/seed", "seed 2\n")], &["bind mount {dir}/fallback changed"]);
}

#[test]
fn anchors_and_merge_keys_are_resolved() {
    let hub = applied_stack(
        "panchor",
        &[
            (
                "compose.yaml",
                &format!(
                    "x-common: &common\n  env_file: common.env\n  volumes: [\"./shared:/shared\"]\n{}",
                    compose("    <<: *common\n", "")
                ),
            ),
            ("common.env", "A=1\n"),
            ("shared/file", "x\n"),
        ],
    );
    hub.expect_reapplied(&[("common.env", "A=2\n")], &["env_file {dir}/common.env changed"]);
    hub.expect_reapplied(&[("shared/file", "y\n")], &["bind mount {dir}/shared changed"]);
    hub.expect_unchanged_by("NOTES.md");
}

#[test]
fn include_short_form_follows_the_included_file_and_its_relative_paths() {
    let extra = "services:\n  extra:\n    image: localhost/bb:1\n    pull_policy: never\n    env_file: extra.env\n";
    let hub = applied_stack(
        "pincshort",
        &[
            (
                "compose.yaml",
                &format!("include:\n  - inc/extra.yaml\n{}", compose("", "")),
            ),
            ("inc/extra.yaml", extra),
            ("inc/extra.env", "E=1\n"),
            (
                "extra.env",
                "decoy: relative paths of an included file are from its own dir\n",
            ),
        ],
    );
    hub.expect_reapplied(
        &[(
            "inc/extra.yaml",
            &extra.replace("pull_policy: never", "pull_policy: never\n    user: \"1000\""),
        )],
        &["included file {dir}/inc/extra.yaml changed"],
    );
    hub.expect_reapplied(&[("inc/extra.env", "E=2\n")], &["env_file {dir}/inc/extra.env changed"]);
    hub.expect_unchanged_by("extra.env");
}

#[test]
fn include_long_form_follows_path_lists_and_env_file() {
    let hub = applied_stack(
        "pinclong",
        &[
            (
                "compose.yaml",
                &format!(
                    "include:\n  - path: [inc/one.yaml, inc/two.yaml]\n    env_file: inc/long.env\n{}",
                    compose("", "")
                ),
            ),
            (
                "inc/one.yaml",
                "services:\n  one:\n    image: localhost/bb:${TAG}\n    pull_policy: never\n",
            ),
            ("inc/two.yaml", "services:\n  one:\n    environment: {X: \"1\"}\n"),
            ("inc/long.env", "TAG=1\n"),
        ],
    );
    hub.expect_reapplied(&[("inc/long.env", "TAG=2\n")], &["env file {dir}/inc/long.env changed"]);
    hub.expect_reapplied(
        &[("inc/two.yaml", "services:\n  one:\n    environment: {X: \"2\"}\n")],
        &["included file {dir}/inc/two.yaml changed"],
    );
    hub.expect_unchanged_by("NOTES.md");
}

#[test]
fn extends_follows_the_extended_file() {
    let base = "services:\n  base:\n    image: localhost/bb:1\n    pull_policy: never\n    environment: {B: \"1\"}\n";
    let hub = applied_stack(
        "pextends",
        &[
            (
                "compose.yaml",
                &compose("    extends: {file: base.yaml, service: base}\n", ""),
            ),
            ("base.yaml", base),
        ],
    );
    hub.expect_reapplied(
        &[("base.yaml", &base.replace("\"1\"", "\"2\""))],
        &["extended file {dir}/base.yaml changed"],
    );
    hub.expect_unchanged_by("NOTES.md");
}

/// Compose resolves the relative paths of an extended service from the extended file's own
/// directory (`docker compose config` shows `common/base.env` and `common/data` here).
#[test]
fn extends_from_another_directory_resolves_its_paths_from_there() {
    let hub = applied_stack(
        "pextdir",
        &[
            (
                "compose.yaml",
                &compose("    extends: {file: common/base.yaml, service: base}\n", ""),
            ),
            (
                "common/base.yaml",
                "services:\n  base:\n    image: localhost/bb:1\n    env_file: base.env\n    volumes: [\"./data:/data\"]\n",
            ),
            ("common/base.env", "B=1\n"),
            ("common/data/seed", "1\n"),
        ],
    );
    hub.expect_reapplied(
        &[("common/base.env", "B=2\n")],
        &["env_file {dir}/common/base.env changed"],
    );
    hub.expect_reapplied(
        &[("common/data/seed", "2\n")],
        &["bind mount {dir}/common/data changed"],
    );
}

#[test]
fn configs_and_secrets_file_sources_are_inputs_and_untracked_ones_by_content_when_watched() {
    let hub = applied_stack(
        "pconfigs",
        &[
            (
                "compose.yaml",
                &compose(
                    "    configs: [app_conf]\n    secrets: [token, local_token]\n",
                    "configs:\n  app_conf:\n    file: ./app.conf\n  from_env:\n    environment: HOME\nsecrets:\n  token:\n    file: ./token.txt\n  local_token:\n    file: ./local-token.txt\n",
                ),
            ),
            ("app.conf", "a=1\n"),
            ("token.txt", "t1\n"),
            // A secret kept out of git.
            (".gitignore", "local-token.txt\n"),
            ("local-token.txt", "s1\n"),
        ],
    );
    hub.expect_reapplied(&[("app.conf", "a=2\n")], &["config file {dir}/app.conf changed"]);
    hub.expect_reapplied(&[("token.txt", "t2\n")], &["secret file {dir}/token.txt changed"]);
    // A secret kept out of git counts by existence only, unless `inputs.watch` lists it.
    hub.write(&format!("{}/local-token.txt", hub.stack_dir("s")), "s2\n");
    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&hub.project("s"), "unchanged", &[]);
    hub.configure("    stacks: [\"stacks/*\"]\n    inputs: {watch: [\"stacks/*/local-token.txt\"]}\n");
    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&hub.project("s"), "applied", &["local-token.txt changed"]);
    hub.expect_reapplied(
        &[("local-token.txt", "s3\n")],
        &["secret file {dir}/local-token.txt changed"],
    );
    hub.expect_unchanged_by("NOTES.md");
}

#[test]
fn build_contexts_and_dockerfiles_are_inputs() {
    let hub = applied_stack(
        "pbuild",
        &[
            (
                "compose.yaml",
                &format!(
                    "{}  short:\n    build: ./img2\n    image: localhost/short:1\n",
                    compose(
                        "    build:\n      context: ./img\n      dockerfile: Containerfile\n",
                        ""
                    )
                ),
            ),
            ("img/Containerfile", "FROM localhost/bb:1\nCOPY app.sh /app.sh\n"),
            ("img/app.sh", "echo 1\n"),
            ("img2/Dockerfile", "FROM localhost/bb:1\n"),
        ],
    );
    hub.expect_reapplied(
        &[("img/Containerfile", "FROM localhost/bb:1\nCOPY app.sh /bin/app.sh\n")],
        &[
            "Dockerfile {dir}/img/Containerfile changed",
            "build context {dir}/img changed",
        ],
    );
    hub.expect_reapplied(&[("img/app.sh", "echo 2\n")], &["build context {dir}/img changed"]);
    hub.expect_reapplied(
        &[("img2/Dockerfile", "FROM localhost/bb:1\nENV X=1\n")],
        &["Dockerfile {dir}/img2/Dockerfile changed"],
    );
    hub.expect_unchanged_by("NOTES.md");
}

#[test]
fn a_file_outside_every_stack_changes_nothing_and_never_calls_compose() {
    let hub = applied_stack(
        "poutside",
        &[
            ("compose.yaml", &compose("    env_file: app.env\n", "")),
            ("app.env", "A=1\n"),
        ],
    );
    hub.write("docs/runbook.md", "# runbook\n");
    hub.write("README.md", "# changed\n");
    hub.commit("docs");
    let calls = hub.compose_calls();
    hub.apply(&[])
        .expect_code(0)
        .expect_stack(&hub.project("s"), "unchanged", &["unchanged since"]);
    assert_eq!(
        hub.compose_calls(),
        calls,
        "compose called although no stack input changed"
    );
}
