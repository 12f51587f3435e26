//! SIGKILL in the middle of a copy: whatever the kill leaves, no file under its final name is
//! half written, and the next run converges to the oracle and removes the staging directory.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use crate::scale::write_big;
use crate::{PARTIAL_DIR, World, assert_no_partial, assert_same_tree, assert_subset, have, tree};

#[test]
fn sigkill_mid_copy_leaves_no_half_file_and_a_rerun_converges() {
    if !have("rsync", "the worktree oracle") {
        return;
    }
    // On a tmpfs: five rounds of ~100 MB would take the disk longer to delete than to write.
    let w = World::on_tmpfs("1g");
    for i in 0..4 {
        write_big(&w.src.join(format!("big/{i}.bin")), 24 * 1024 * 1024 + i);
    }
    driftless_tests::fixture::many_files(&w.src, "small", 1500, "s");
    let expected = tree(&w.rsync_oracle("oracle", &[]));

    let mut interrupted = 0;
    for (n, delay_ms) in [3u64, 10, 30, 80, 200].into_iter().enumerate() {
        let dest = w.scratch(&format!("dest-{n}"));
        let mut child = w
            .env
            .std_cmd("mirror-copy")
            .arg("--state-dir")
            .arg(w.env.state_dir())
            .arg(&w.src)
            .arg("--to")
            .arg(&dest)
            .args(["--jobs", "2", "--quiet"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn mirror-copy");
        std::thread::sleep(Duration::from_millis(delay_ms));
        // Child::kill is SIGKILL on Unix; it fails only if the child was already reaped.
        let _ = child.kill();
        let status = child.wait().expect("wait for mirror-copy");
        let killed = status.signal() == Some(9);

        // Whatever is there under a final name is complete and identical to the source.
        let mut after_kill = tree(&dest);
        after_kill.retain(|path, _| !path.starts_with(PARTIAL_DIR));
        assert_subset(&after_kill, &expected, &format!("after SIGKILL at {delay_ms} ms"));
        if killed && after_kill.len() < expected.len() {
            interrupted += 1;
        }
        eprintln!(
            "kill after {delay_ms} ms: {status}, {} of {} files in place, staging dir left: {}",
            after_kill.len(),
            expected.len(),
            dest.join(PARTIAL_DIR).exists()
        );

        let rerun = w.mirror_to(&dest.display().to_string(), &["--json"]);
        rerun.expect_code(0);
        assert_same_tree(
            &tree(&dest),
            &expected,
            &format!("rerun after SIGKILL at {delay_ms} ms"),
        );
        assert_no_partial(&dest);
        std::fs::remove_dir_all(&dest).expect("remove this round's destination");
    }
    assert!(
        interrupted > 0,
        "no kill landed mid-copy: every run finished before its SIGKILL, so this test proved nothing"
    );
}
