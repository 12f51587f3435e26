//! One finished run of a tool under test: exit code, output, and the checks every test makes
//! on them (the code, the JSON records on stdout, a message naming something).

use serde_json::Value;

/// One finished run of a binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: std::time::Duration,
}

impl Run {
    /// Run `cmd` to completion.
    pub fn of(cmd: &mut assert_cmd::Command) -> Run {
        let start = std::time::Instant::now();
        let out = cmd.output().expect("spawn the command under test");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: start.elapsed(),
        }
    }

    /// Run `cmd` with its stdout a pipe whose reading end is already closed, as in
    /// `sync-repo --all | head -0`; stdout is empty, stderr is captured.
    pub fn with_closed_stdout(cmd: &mut std::process::Command) -> Run {
        let (reader, writer) = std::io::pipe().expect("create a pipe");
        drop(reader);
        let start = std::time::Instant::now();
        let out = cmd
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("spawn the command under test");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: start.elapsed(),
        }
    }

    /// Panic (showing the output) unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Every stdout line parsed as JSON.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}\n--- stderr\n{}", self.stderr))
            })
            .collect()
    }

    /// The one JSON record on stdout.
    #[track_caller]
    pub fn json(&self) -> Value {
        let mut lines = self.json_lines();
        assert_eq!(
            lines.len(),
            1,
            "want exactly one JSON line on stdout:\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        lines.remove(0)
    }

    /// stdout and stderr together, for "the message names X" checks.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}
