//! The one error type of the format layer. Every variant names the file it is about, so a
//! message printed as-is tells the user which file is wrong and how.

use std::path::{Path, PathBuf};

/// Anything that can go wrong reading or writing a file.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The operating system refused (missing file, permissions, full disk, ...).
    // The message already says what the OS said; not chaining it avoids printing it twice.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    /// The file is shorter (or longer) than its own header says it must be.
    #[error("{path}: {what}: the header implies {expected_bytes} bytes but the file has {actual_bytes}")]
    SizeMismatch {
        path: PathBuf,
        what: String,
        expected_bytes: u64,
        actual_bytes: u64,
    },

    /// The content is not what the format allows.
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },

    /// The content is valid for the format but this feature is not handled.
    #[error("{path}: unsupported: {message}")]
    Unsupported { path: PathBuf, message: String },
}

pub type FormatResult<T> = Result<T, FormatError>;

impl FormatError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub fn invalid(path: &Path, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_owned(),
            message: message.into(),
        }
    }

    pub fn unsupported(path: &Path, message: impl Into<String>) -> Self {
        Self::Unsupported {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// The text of a caught panic's payload (panics carry a `&str` or a `String`).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}
