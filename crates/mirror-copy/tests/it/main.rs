//! Integration tests for the `mirror-copy` binary, run through the real executable against git
//! fixtures, with `rsync -a`, `git archive` and the real `rclone` as oracles. One test binary;
//! each module covers one concern.

mod changes;
mod contract;
mod crash;
mod excludes;
mod failures;
mod oracle;
mod rclone;
mod safety;
mod scale;
mod state;

use std::collections::BTreeMap;
use std::hash::Hasher;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

pub use driftless_tests::Run;
use driftless_tests::TestEnv;
use serde_json::Value;

/// The excludes every mirror starts with, spelled for rsync (same strings as rclone's).
pub const DEFAULT_EXCLUDES: [&str; 4] = [".git/**", "node_modules/**", ".terraform/**", ".tofu/**"];

/// The staging directory the native engine writes partial files to.
pub const PARTIAL_DIR: &str = ".driftless-partial";

/// A `TestEnv` that knows where cargo built `mirror-copy`.
pub fn env() -> TestEnv {
    TestEnv::new().with_bin("mirror-copy", env!("CARGO_BIN_EXE_mirror-copy"))
}

/// A test world: a git checkout `src` (one commit, `README.md`) and an empty directory `dest`.
pub struct World {
    /// Declared first so it is unmounted before `env` removes the temp dir.
    mount: Option<Tmpfs>,
    pub env: TestEnv,
    pub src: PathBuf,
    pub dest: PathBuf,
    /// Where `src`, `dest` and oracle output live: the test root, or a tmpfs below it.
    base: PathBuf,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    /// A world on the test root.
    pub fn new() -> World {
        let env = env();
        let base = env.root();
        World::build(env, base, None)
    }

    /// A world whose files live on a tmpfs of `size` (e.g. `1g`) of its own: for tests that make
    /// tens of thousands of files or hundreds of MB, which a disk with online discard (this VM's
    /// ext4, when `DRIFTLESS_TEST_TMPDIR` points there) takes many seconds to delete again, and
    /// unmounting frees at once. Falls back to the test root where mounting is not allowed.
    pub fn on_tmpfs(size: &str) -> World {
        let env = env();
        let base = env.path("fast");
        match Tmpfs::mount(&base, size) {
            Some(mount) => World::build(env, base, Some(mount)),
            None => {
                eprintln!("note: no tmpfs for this test, running it on the disk (slower)");
                let base = env.root();
                World::build(env, base, None)
            }
        }
    }

    fn build(env: TestEnv, base: PathBuf, mount: Option<Tmpfs>) -> World {
        let src = base.join("src");
        let dest = base.join("dest");
        std::fs::create_dir_all(&src).expect("create src");
        std::fs::create_dir_all(&dest).expect("create dest");
        env.git(&src, &["init", "-q", "-b", "main"]);
        let w = World {
            mount,
            env,
            src,
            dest,
            base,
        };
        w.write("README.md", "# mirrored\n");
        w.commit("initial commit");
        w
    }

    /// Whether this world's files are on a tmpfs.
    pub fn on_ram(&self) -> bool {
        self.mount.is_some()
    }

    /// Write a file in the checkout (parents created).
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> &World {
        driftless_tests::fixture::write_file(&self.src, rel, content);
        self
    }

    /// Set the permission bits of a file in the checkout.
    pub fn chmod(&self, rel: &str, mode: u32) -> &World {
        std::fs::set_permissions(self.src.join(rel), std::fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {rel}: {e}"));
        self
    }

    /// Create (or replace) a symlink in the checkout.
    pub fn symlink(&self, rel: &str, target: &str) -> &World {
        driftless_tests::fixture::symlink(&self.src, rel, target);
        self
    }

    /// Delete a file, link or tree from the checkout.
    pub fn remove(&self, rel: &str) -> &World {
        driftless_tests::fixture::remove(&self.src, rel);
        self
    }

    /// `git add -A && git commit`; returns the new HEAD.
    pub fn commit(&self, message: &str) -> String {
        self.env.git(&self.src, &["add", "-A"]);
        self.env.git(
            &self.src,
            &["commit", "-q", "--allow-empty", "--no-verify", "-m", message],
        );
        self.head()
    }

    /// The checkout's HEAD.
    pub fn head(&self) -> String {
        self.env.git(&self.src, &["rev-parse", "HEAD"]).trim().to_owned()
    }

    /// `mirror-copy --state-dir <state>`, with the isolated environment, ready for arguments.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = self.env.cmd("mirror-copy");
        cmd.arg("--state-dir").arg(self.env.state_dir());
        cmd
    }

    /// `mirror-copy --state-dir <state> <src> --to <dest> ARGS`.
    pub fn mirror(&self, args: &[&str]) -> Run {
        self.mirror_to(&self.dest.display().to_string(), args)
    }

    /// `mirror-copy --state-dir <state> <src> --to TO ARGS`.
    pub fn mirror_to(&self, to: &str, args: &[&str]) -> Run {
        let mut cmd = self.cmd();
        cmd.arg(&self.src).arg("--to").arg(to).args(args);
        Run::of(&mut cmd)
    }

    /// A fresh directory below the test root for an oracle's output.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.base.join(name);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        dir
    }

    /// What `rsync -a` with the default excludes plus `extra_excludes` makes of the checkout,
    /// in a new directory `name`.
    pub fn rsync_oracle(&self, name: &str, extra_excludes: &[&str]) -> PathBuf {
        let out = self.scratch(name);
        rsync(&self.src, &out, &excludes_with(extra_excludes), &[]);
        out
    }

    /// What `git archive HEAD` minus the default excludes plus `extra_excludes` holds, in a new
    /// directory `name`.
    pub fn archive_oracle(&self, name: &str, extra_excludes: &[&str]) -> PathBuf {
        let raw = self.scratch(&format!("{name}.raw"));
        let out = self.scratch(name);
        git_archive(&self.src, "HEAD", &raw);
        rsync(&raw, &out, &excludes_with(extra_excludes), &[]);
        std::fs::remove_dir_all(&raw).expect("remove raw archive");
        out
    }
}

/// The default excludes followed by `extra`.
pub fn excludes_with(extra: &[&str]) -> Vec<String> {
    DEFAULT_EXCLUDES.iter().chain(extra).map(|s| (*s).to_owned()).collect()
}

/// `rsync -a EXTRA --exclude=P... SRC/ DST/`; panics on failure.
pub fn rsync(src: &Path, dst: &Path, excludes: &[String], extra: &[&str]) {
    let mut cmd = Command::new("rsync");
    cmd.arg("-a").args(extra);
    for pattern in excludes {
        cmd.arg(format!("--exclude={pattern}"));
    }
    cmd.arg(format!("{}/", src.display()))
        .arg(format!("{}/", dst.display()));
    let out = cmd.output().expect("spawn rsync (apt-get install rsync)");
    assert!(
        out.status.success(),
        "rsync failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Extract `git -c tar.umask=0022 archive REV` of `repo` into `dst` (modes 0644/0755, mtimes
/// the commit's time, like `--from commit`).
pub fn git_archive(repo: &Path, rev: &str, dst: &Path) {
    let out = driftless_tests::git_output(repo, &["-c", "tar.umask=0022", "archive", "--format=tar", rev]);
    assert!(
        out.status.success(),
        "git archive failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut tar = Command::new("tar")
        .arg("-x")
        .arg("-p")
        .arg("-C")
        .arg(dst)
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn tar");
    tar.stdin
        .take()
        .expect("tar stdin")
        .write_all(&out.stdout)
        .expect("feed tar");
    let status = tar.wait().expect("wait for tar");
    assert!(status.success(), "tar -x failed: {status}");
}

/// A tmpfs mounted for one test, unmounted on drop (even when the test panics).
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mount a tmpfs of `size` (e.g. `2m`) on `dir`; `None` when this machine does not allow it
    /// (not root, no CAP_SYS_ADMIN).
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).expect("create mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("spawn mount");
        if !out.status.success() {
            eprintln!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim());
            return None;
        }
        Some(Tmpfs { dir: dir.to_owned() })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Busy (a process still has it open): detach it so the temp dir can go.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// A FAT file system: a `mkfs.vfat` image mounted through FUSE (`fusefat`), since this kernel
/// has no vfat module. The on-disk format is FAT's own: 2-second times, no permission bits, no
/// links.
pub struct Vfat {
    dir: PathBuf,
}

impl Vfat {
    /// Make a FAT image of `megabytes` at `image` and mount it read-write on `dir`.
    pub fn mount(image: &Path, dir: &Path, megabytes: u32) -> Vfat {
        std::fs::create_dir_all(dir).expect("create mount point");
        let file = std::fs::File::create(image).expect("create image");
        file.set_len(u64::from(megabytes) << 20).expect("size image");
        let mkfs = Command::new("mkfs.vfat")
            .arg(image)
            .output()
            .expect("spawn mkfs.vfat (dosfstools)");
        assert!(
            mkfs.status.success(),
            "mkfs.vfat: {}",
            String::from_utf8_lossy(&mkfs.stderr)
        );
        let mount = Command::new("fusefat")
            .args(["-o", "rw+"])
            .arg(image)
            .arg(dir)
            .output()
            .expect("spawn fusefat");
        assert!(
            mount.status.success(),
            "fusefat: {}",
            String::from_utf8_lossy(&mount.stderr)
        );
        Vfat { dir: dir.to_owned() }
    }
}

impl Drop for Vfat {
    fn drop(&mut self) {
        let ok = Command::new("fusermount")
            .arg("-u")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Whether `program` runs. When it does not, say why; under `CI=true` that is a failure, since
/// `.ci/run` installs everything these tests need.
pub fn have(program: &str, why: &str) -> bool {
    let ok = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip(&format!(
            "`{program}` is not installed ({why}); apt-get install -y {program}"
        ));
    }
    ok
}

/// Print why a test returns early; panic instead under `CI=true`.
pub fn skip(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "cannot run under CI: {why}"
    );
    eprintln!("SKIPPED: {why}");
}

/// One file, link or special file of a tree, as the oracle compares it (directories are left
/// out: rsync keeps an empty `.git/` for `.git/**`, rclone does not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    File {
        size: u64,
        /// SipHash of the content (deterministic keys), so a 100 MB file costs no memory.
        digest: u64,
        /// Permission bits; 0 when compared without modes.
        mode: u32,
        /// `None` when compared without mtimes.
        mtime: Option<SystemTime>,
    },
    Symlink(PathBuf),
    /// A FIFO, socket or device.
    Special,
}

impl Node {
    fn describe(&self) -> String {
        match self {
            Node::File { size, mode, mtime, .. } => format!("file {size} bytes mode {mode:o} mtime {mtime:?}"),
            Node::Symlink(target) => format!("symlink -> {}", target.display()),
            Node::Special => "special file".to_owned(),
        }
    }
}

/// Every file, link and special file below a directory, by relative path.
pub type Tree = BTreeMap<PathBuf, Node>;

/// Snapshot `dir` (everything, `.driftless-partial` included, so leftovers show up).
pub fn tree(dir: &Path) -> Tree {
    let mut out = Tree::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Tree) {
    let read = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read dir {}: {e}", dir.display()));
    for entry in read {
        let path = entry.expect("read dir entry").path();
        let meta = path
            .symlink_metadata()
            .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
        let rel = path.strip_prefix(root).expect("below root").to_owned();
        let kind = meta.file_type();
        if kind.is_dir() {
            walk(root, &path, out);
        } else if kind.is_symlink() {
            out.insert(rel, Node::Symlink(std::fs::read_link(&path).expect("read link")));
        } else if kind.is_file() {
            out.insert(
                rel,
                Node::File {
                    size: meta.len(),
                    digest: digest(&path),
                    mode: meta.permissions().mode() & 0o7777,
                    mtime: Some(meta.modified().expect("mtime")),
                },
            );
        } else if kind.is_fifo() || kind.is_socket() || kind.is_block_device() || kind.is_char_device() {
            out.insert(rel, Node::Special);
        }
    }
}

fn digest(path: &Path) -> u64 {
    let mut file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut hasher = std::hash::DefaultHasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        if n == 0 {
            break;
        }
        hasher.write(&buf[..n]);
    }
    hasher.finish()
}

/// `tree` with modes and mtimes blanked: for rclone, which keeps neither mode nor (always) time.
pub fn content_only(tree: &Tree) -> Tree {
    tree.iter()
        .map(|(path, node)| {
            let node = match node {
                Node::File { size, digest, .. } => Node::File {
                    size: *size,
                    digest: *digest,
                    mode: 0,
                    mtime: None,
                },
                other => other.clone(),
            };
            (path.clone(), node)
        })
        .collect()
}

/// Panic with a readable list of differences unless the two trees are equal.
#[track_caller]
pub fn assert_same_tree(actual: &Tree, expected: &Tree, what: &str) {
    let mut problems = Vec::new();
    for (path, want) in expected {
        match actual.get(path) {
            None => problems.push(format!("missing: {} (want {})", path.display(), want.describe())),
            Some(have) if have != want => problems.push(format!(
                "differs: {}: have {}, want {}",
                path.display(),
                have.describe(),
                want.describe()
            )),
            Some(_) => {}
        }
    }
    for (path, have) in actual {
        if !expected.contains_key(path) {
            problems.push(format!("extra: {} ({})", path.display(), have.describe()));
        }
    }
    if !problems.is_empty() {
        let shown: Vec<_> = problems.iter().take(40).cloned().collect();
        panic!("{what}: {} difference(s):\n  {}", problems.len(), shown.join("\n  "));
    }
}

/// Every entry of `actual` is in `expected` and equal there (the destination may lack some,
/// but what it has is complete): the "no half file under a final name" check.
#[track_caller]
pub fn assert_subset(actual: &Tree, expected: &Tree, what: &str) {
    let problems: Vec<String> = actual
        .iter()
        .filter(|(path, have)| expected.get(*path) != Some(*have))
        .map(|(path, have)| match expected.get(path) {
            None => format!("unexpected: {} ({})", path.display(), have.describe()),
            Some(want) => format!(
                "incomplete or wrong: {}: have {}, want {}",
                path.display(),
                have.describe(),
                want.describe()
            ),
        })
        .collect();
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s):\n  {}",
        problems.len(),
        problems.iter().take(40).cloned().collect::<Vec<_>>().join("\n  ")
    );
}

/// No staging directory (and so no temp file) is left in the destination.
#[track_caller]
pub fn assert_no_partial(dest: &Path) {
    let partial = dest.join(PARTIAL_DIR);
    assert!(
        partial.symlink_metadata().is_err(),
        "{} was left behind, holding {:?}",
        partial.display(),
        std::fs::read_dir(&partial)
            .map(|r| r.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
            .unwrap_or_default()
    );
}

/// Seconds since the epoch, now.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// A JSON count field as a number.
#[track_caller]
pub fn count(record: &Value, field: &str) -> u64 {
    record[field]
        .as_u64()
        .unwrap_or_else(|| panic!("`{field}` is not a count: {record}"))
}

/// How many files and links `tree` holds: what `unchanged` counts on a no-change run.
pub fn entries(tree: &Tree) -> u64 {
    tree.len() as u64
}
