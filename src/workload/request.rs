//! A workload's requests: [`RequestSpec`] (id, arrival, prompt and output lengths) and
//! [`Workload`], the ordered list with its provenance.

use serde::{Deserialize, Serialize};

/// One request of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RequestSpec {
    /// Request id, unique within the workload (Vidur: creation order, 0-based).
    pub id: u64,
    /// Arrival time in seconds from the start of the run.
    pub arrival_s: f64,
    /// Prompt length in tokens (Vidur: `num_prefill_tokens`), at least 1.
    pub prefill_tokens: u32,
    /// Output length in tokens (Vidur: `num_decode_tokens`), at least 1.
    pub decode_tokens: u32,
}

/// An ordered list of requests plus the description of what produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// The requests, sorted by arrival time (ties keep id order).
    pub requests: Vec<RequestSpec>,
    /// Human-readable provenance, e.g. `"synthetic: uniform(136..4096, p:d 16) + poisson(2 qps), seed 42"`.
    pub source: String,
}

impl Workload {
    /// Builds a workload and sorts it by arrival time, stably (as Vidur does).
    pub fn new(mut requests: Vec<RequestSpec>, source: impl Into<String>) -> Self {
        requests.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
        Workload {
            requests,
            source: source.into(),
        }
    }

    /// Number of requests.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// True when the workload has no request.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}
