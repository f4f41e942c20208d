//! The library's error type. Messages are lowercase fragments that name the file, line or
//! request they are about, so that a CLI can print them as they are.

use std::path::PathBuf;

/// The exit code of bad input (see [`Error::exit_code`]).
pub const BAD_INPUT: i32 = 2;

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
    /// An invalid combination of simulator or server settings (cluster shape, scheduler
    /// knobs, tokenizer, recorder or server options).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A workload description that cannot generate requests (lengths, arrivals, a trace's
    /// values, a random stream's arguments).
    #[error("invalid configuration: {0}")]
    Workload(String),
    /// An execution-time model that cannot be built from what it was given (parallelism,
    /// missing tables or profile rows).
    #[error("invalid configuration: {0}")]
    Exec(String),
    /// An execution-time model name that is not `roofline`, `tables:DIR` or
    /// `profile:MLP_CSV,ATTENTION_CSV[,…]` ([`crate::exec::ExecSpec`]).
    #[error("invalid execution-time model '{spec}': expected {expected}")]
    InvalidExecSpec {
        /// What was given.
        spec: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// A scheduler name that simfid does not know.
    #[error("invalid configuration: unknown {what} scheduler '{name}'; known: {known}")]
    UnknownScheduler {
        /// `replica` or `global`.
        what: &'static str,
        /// The name asked for.
        name: String,
        /// Comma-separated list of known names.
        known: String,
    },
    /// A preset name that simfid does not know.
    #[error("invalid configuration: unknown preset '{name}'; known presets: {known}")]
    UnknownPreset {
        /// The name asked for.
        name: String,
        /// Comma-separated list of known presets.
        known: String,
    },
    /// No built-in preset describes the server a run was recorded on.
    #[error(
        "invalid configuration: no built-in preset fits this run (server '{server}', GPU \
         '{gpu}', model '{model}'); built-in presets: {known} (give one with --preset, or a \
         preset or step profile file)"
    )]
    NoPresetForRun {
        /// The server the run's header names.
        server: String,
        /// Its GPU.
        gpu: String,
        /// Its model.
        model: String,
        /// Comma-separated list of built-in presets.
        known: String,
    },
    /// A preset models another server than the run it is asked to replay.
    #[error(
        "preset {preset} models another server than the run's ('{server}'); omit --preset to \
         pick the run's, or give one for that server"
    )]
    PresetMismatch {
        /// The preset's name.
        preset: String,
        /// The server the run's header names.
        server: String,
    },
    /// A recorded server flag whose value is not a number.
    #[error("invalid configuration: server flag {flag}: not a number: {value:?}")]
    ServerFlag {
        /// The flag.
        flag: String,
        /// Its value, if any.
        value: Option<String>,
    },
    /// A run's metadata lists an earlier run of its server that is not there.
    #[error(
        "invalid configuration: {meta}: runs_before_on_server names {name}, but {missing} is missing"
    )]
    MissingHistoryRun {
        /// The metadata file.
        meta: PathBuf,
        /// The run it names.
        name: String,
        /// The file looked for.
        missing: PathBuf,
    },
    /// A real run with no successful request: nothing to replay.
    #[error("invalid configuration: the real run has no successful request to replay")]
    NothingToReplay,
    /// A replay left requests unfinished.
    #[error("invalid configuration: the replay stalled with {unfinished} requests unfinished")]
    ReplayStalled {
        /// Requests left unfinished.
        unfinished: u64,
    },
    /// Requests given to the simulator out of time order.
    #[error("invalid configuration: {0}")]
    UnsortedArrivals(String),
    /// A scheduler reached a state its real server does not survive (hf_cb with nothing to
    /// evict, LightLLM out of KV slots).
    #[error("invalid configuration: {0}")]
    SchedulerDeadEnd(String),
    /// A step model cannot be fitted on the observations given.
    #[error("invalid configuration: {0}")]
    StepFit(String),
    /// A worker thread could not be started or died.
    #[error("invalid configuration: {0}")]
    Thread(String),
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
    /// The exit code of the `simfid` command for this error: every library error is bad input
    /// (2: a file, flag or configuration the command cannot use). Failed assertions (1), stalled
    /// simulations (3), failed recordings (4) and interruptions (130) are outcomes the
    /// commands report without an error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Io { .. }
            | Error::Csv { .. }
            | Error::Parse { .. }
            | Error::UnknownModel { .. }
            | Error::UnknownDevice { .. }
            | Error::Config(_)
            | Error::Workload(_)
            | Error::Exec(_)
            | Error::InvalidExecSpec { .. }
            | Error::UnknownScheduler { .. }
            | Error::UnknownPreset { .. }
            | Error::NoPresetForRun { .. }
            | Error::PresetMismatch { .. }
            | Error::ServerFlag { .. }
            | Error::MissingHistoryRun { .. }
            | Error::NothingToReplay
            | Error::ReplayStalled { .. }
            | Error::UnsortedArrivals(_)
            | Error::SchedulerDeadEnd(_)
            | Error::StepFit(_)
            | Error::Thread(_)
            | Error::OutOfRange { .. }
            | Error::Tokenizer { .. }
            | Error::Network { .. }
            | Error::InvalidRequest { .. }
            | Error::Unschedulable { .. } => BAD_INPUT,
        }
    }

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
