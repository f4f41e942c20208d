//! The library's error type. Messages are lowercase fragments that name the file, line or
//! request they are about, so that a CLI can print them as they are.

use std::path::PathBuf;

/// Everything that can go wrong in simfid's library code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV file is malformed; `line` is 1-based and counts the header.
    #[error("{path}:{line}: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number (the header is line 1); 0 when unknown.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A JSON or TOML document is malformed.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A model name that simfid does not know.
    #[error("unknown model '{name}'; known models: {known}")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// Comma-separated list of known names.
        known: String,
    },
    /// A device name that simfid does not know.
    #[error("unknown device '{name}'; known devices: {known}")]
    UnknownDevice {
        /// The name asked for.
        name: String,
        /// Comma-separated list of known names.
        known: String,
    },
    /// An invalid combination of settings.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The execution-time model has no prediction for a batch shape (Vidur raises `KeyError`).
    #[error("execution-time model has no prediction for {what}")]
    OutOfRange {
        /// The operation and the key that was looked up.
        what: String,
    },
    /// A tokenizer could not be loaded or failed to encode.
    #[error("tokenizer {what}: {source}")]
    Tokenizer {
        /// The file, or what was being encoded.
        what: String,
        /// The tokenizer's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A server could not be reached or answered something unusable (recorder set-up).
    #[error("{url}: {message}")]
    Network {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A request of a run is inconsistent: a time that is not finite, before the request was
    /// sent or before an earlier token, or token counts that disagree with the chunks. Raised
    /// by [`crate::fixture::Run::validate`] and [`crate::fixture::RunBuilder::build`].
    #[error("request {id}: {field}: {message}")]
    InvalidRequest {
        /// The request id.
        id: u64,
        /// The field, as named by the caller's input (`token_times[3]`, `chunks[2].t`, …).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A request can never be scheduled under the configuration (it would stall the replica).
    #[error("request {id} can never be scheduled: {reason}")]
    Unschedulable {
        /// The request id.
        id: u64,
        /// Why not.
        reason: String,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An inconsistent request of a run: `field` names the field as the caller knows it.
    pub fn invalid_request(id: u64, field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidRequest {
            id,
            field: field.into(),
            message: message.into(),
        }
    }

    /// A CSV error at a 1-based line of a file.
    pub fn csv(path: impl Into<PathBuf>, line: u64, message: impl Into<String>) -> Self {
        Error::Csv {
            path: path.into(),
            line,
            message: message.into(),
        }
    }
}

/// `Result` with simfid's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
