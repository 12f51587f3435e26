//! The one error type of xtask: a message with its context, like a tiny `anyhow`.

use std::fmt;

/// Result with xtask's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A human-readable failure, context first ("building fixture: git clone ...: exit 128").
#[derive(Debug)]
pub struct Error(String);

impl Error {
    /// An error from a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error(message.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// No `impl std::error::Error for Error`: it would clash with this blanket conversion.
impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Self {
        Error(error.to_string())
    }
}

/// Adds what was being done to an error, the way `anyhow::Context` does.
pub trait Context<T> {
    /// Prefix the error with `what: `.
    fn context(self, what: impl fmt::Display) -> Result<T>;
    /// Like [`Context::context`], computing the text only on error.
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error(format!("{what}: {e}")))
    }
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| Error(format!("{}: {e}", what())))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.ok_or_else(|| Error(what.to_string()))
    }
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.ok_or_else(|| Error(what().to_string()))
    }
}

/// Return early with an [`Error`] built like `format!`.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::msg(format!($($arg)*)))
    };
}
pub(crate) use bail;
