//! The one table of exit codes shared by every driftless tool (docs/exit-codes.md).
//!
//! Codes follow sysexits(3) where one fits, so systemd, cron and shell scripts can act on them.

/// How a run ended, as a process exit code.
///
/// When several repos or parts are handled in one run, the process exits with the
/// [`worst`](Exit::worst) of their outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// 0: everything is as it should be (in sync, updated, applied, copied).
    #[default]
    Ok,
    /// 1: drift-check found drift, or `apply-compose --validate` found problems. Nothing else
    /// uses it.
    Drift,
    /// 2: the command line or the config is wrong; fix it and run again.
    Usage,
    /// 3: refused to act because a person has to decide (dirty or diverged checkout, ...).
    /// Nothing was changed.
    Refused,
    /// 65: the desired state could not be applied: a stack's compose failed (a broken compose
    /// file, a failing healthcheck). That stack's state was not advanced; the next run retries.
    ApplyFailed,
    /// 74: a local I/O failure (disk full, permission denied) stopped the run.
    /// Whatever was already written is recoverable by running again.
    Io,
    /// 75: a temporary failure (remote unreachable, lock busy, engine down); the next run may succeed.
    TempFail,
}

impl Exit {
    /// The numeric process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Drift => 1,
            Exit::Usage => 2,
            Exit::Refused => 3,
            Exit::ApplyFailed => 65,
            Exit::Io => 74,
            Exit::TempFail => 75,
        }
    }

    /// The outcome whose [`code`](Exit::code) is `code`; an unknown code is a local failure
    /// (74), never a success.
    pub fn from_code(code: u8) -> Exit {
        [
            Exit::Ok,
            Exit::Drift,
            Exit::Usage,
            Exit::Refused,
            Exit::ApplyFailed,
            Exit::Io,
            Exit::TempFail,
        ]
        .into_iter()
        .find(|exit| exit.code() == code)
        .unwrap_or(Exit::Io)
    }

    /// How bad an outcome is, for picking the process exit code of a multi-repo run.
    /// A run that needs a human outranks one that will heal by itself.
    fn severity(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::TempFail => 1,
            Exit::Drift => 2,
            Exit::Io => 3,
            Exit::ApplyFailed => 4,
            Exit::Refused => 5,
            Exit::Usage => 6,
        }
    }

    /// The worse of two outcomes.
    pub fn max(self, other: Exit) -> Exit {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }

    /// The worst of many outcomes; `Ok` when there are none.
    pub fn worst(outcomes: impl IntoIterator<Item = Exit>) -> Exit {
        outcomes.into_iter().fold(Exit::Ok, Exit::max)
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn worst_prefers_outcomes_that_need_a_human() {
        assert_eq!(Exit::worst([]), Exit::Ok);
        assert_eq!(Exit::worst([Exit::Ok, Exit::TempFail]), Exit::TempFail);
        assert_eq!(Exit::worst([Exit::TempFail, Exit::Refused, Exit::Ok]), Exit::Refused);
        assert_eq!(Exit::worst([Exit::Refused, Exit::Usage]), Exit::Usage);
        assert_eq!(Exit::worst([Exit::Io, Exit::TempFail]), Exit::Io);
    }

    #[test]
    fn codes_match_the_documented_table() {
        let table = [
            (Exit::Ok, 0),
            (Exit::Drift, 1),
            (Exit::Usage, 2),
            (Exit::Refused, 3),
            (Exit::ApplyFailed, 65),
            (Exit::Io, 74),
            (Exit::TempFail, 75),
        ];
        for (exit, code) in table {
            assert_eq!(exit.code(), code, "{exit:?}");
            assert_eq!(Exit::from_code(code), exit);
        }
        assert_eq!(Exit::from_code(134), Exit::Io);
    }
}
