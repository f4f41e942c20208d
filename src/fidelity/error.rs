//! Why a comparison cannot be made. Messages name the run (its file in the CLI).

/// Errors of [`compare`](super::compare) and the assertion parsers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FidelityError {
    /// A run without any request.
    #[error("{label}: the run has no requests")]
    EmptyRun {
        /// The run.
        label: String,
    },
    /// Warm-up and window leave no request.
    #[error("{label}: warm-up and window leave none of its {requests} requests")]
    NoneConsidered {
        /// The run.
        label: String,
        /// Requests in the run.
        requests: usize,
    },
    /// Every request failed.
    #[error("{label}: all {failed} requests failed (first: {first_error})")]
    AllFailed {
        /// The run.
        label: String,
        /// Failed requests.
        failed: usize,
        /// The first failure.
        first_error: String,
    },
    /// The two runs did not execute the same workload.
    #[error(
        "{sim} and {real} are not the same workload: {}; compare anyway with \
         --allow-mismatch (CompareOptions::allow_workload_mismatch)",
        details.join("; ")
    )]
    WorkloadMismatch {
        /// The simulated run.
        sim: String,
        /// The real run.
        real: String,
        /// What differs.
        details: Vec<String>,
    },
    /// A malformed assertion such as `ttft:p99<=10%`.
    #[error("invalid assertion '{spec}': {reason}")]
    BadAssertion {
        /// The text.
        spec: String,
        /// What is wrong.
        reason: String,
    },
    /// A noise floor needs at least two real repeats.
    #[error("a noise floor needs at least two real repeats, got {0}")]
    TooFewRepeats(usize),
}
