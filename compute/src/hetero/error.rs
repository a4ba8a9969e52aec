//! The one error type of the heterogeneity explorer: training, analysis, classification and
//! subset export. A message about a file names that file once: format errors already carry
//! their path, the other file variants carry it here.

use std::path::PathBuf;

use crate::formats::error::FormatError;
use crate::training::WorkerPanic;

/// Anything that can stop training, analysing or exporting a heterogeneity run.
#[derive(Debug, thiserror::Error)]
pub enum HeteroError {
    /// A particle, stack, map, `.npy` or text file could not be read or written (the message
    /// names the file).
    #[error(transparent)]
    Format(#[from] FormatError),

    /// A run folder (or a file given with it) is missing or does not fit what was asked.
    #[error("{path}: {message}")]
    Run { path: PathBuf, message: String },

    /// The options or the input cannot be used as given.
    #[error("{0}")]
    Invalid(String),

    /// burn could not read or write a checkpoint (weights or optimizer state).
    #[error("{path}: {source}")]
    Checkpoint {
        path: PathBuf,
        source: burn::store::RecordError,
    },

    /// A run's JSON file (configuration, state, analysis summary) could not be read or written.
    #[error("{path}: {source}")]
    Json { path: PathBuf, source: serde_json::Error },

    /// A tensor's values could not be read back from the device.
    #[error("reading a tensor's values: {0}")]
    Tensor(#[from] burn::tensor::DataError),

    /// A training step failed (a worker panicked).
    #[error(transparent)]
    Training(#[from] WorkerPanic),

    /// The progress callback asked to stop; the message says what stopped.
    #[error("{0}")]
    Cancelled(&'static str),
}

pub type HeteroResult<T> = Result<T, HeteroError>;

impl HeteroError {
    pub(crate) fn run(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Run {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn checkpoint(path: impl Into<PathBuf>, source: burn::store::RecordError) -> Self {
        Self::Checkpoint {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn json(path: impl Into<PathBuf>, source: serde_json::Error) -> Self {
        Self::Json {
            path: path.into(),
            source,
        }
    }
}
