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

    /// A particle file that gives no pixel size (a RELION 3.0 table without optics, pixel size
    /// or detector pixel and magnification): the caller must supply one.
    #[error(
        "{path}: the file gives no pixel size ({looked_for}); pass it with --apix Å (in the app: the file's pixel-size field)"
    )]
    MissingPixelSize { path: PathBuf, looked_for: String },
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

/// A problem inside a file's content found by a parser that does not know the file (a dtype,
/// a header literal, a column being built); the reader adds the path with
/// [`FormatError::invalid`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ContentError(pub String);

impl From<ContentError> for String {
    fn from(e: ContentError) -> Self {
        e.0
    }
}

impl From<String> for ContentError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for ContentError {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}
