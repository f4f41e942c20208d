//! A simulation's records as a [`Run`], the format real runs are recorded in, so that every
//! metric is computed by the same code for both: one chunk per output token, each request
//! sent at its arrival (a simulator has no client).

use crate::fixture::{Chunk, RequestRun, Run, RunMeta};

use super::RequestRecord;

impl RequestRun {
    /// A simulated request as a run entry: sent at arrival, one chunk per output token.
    pub fn from_record(r: &RequestRecord) -> RequestRun {
        RequestRun {
            id: r.id,
            scheduled: r.arrived_at,
            sent: Some(r.arrived_at),
            prompt_tokens: r.prefill_tokens,
            output_tokens: r.decode_tokens,
            usage_prompt_tokens: Some(r.prefill_tokens),
            usage_completion_tokens: r.completed.then_some(r.decode_tokens),
            chunks: r.token_times.iter().map(|&t| Chunk { t, n: 1 }).collect(),
            finish_reason: r.completed.then(|| "length".to_string()),
            error: (!r.completed).then(|| "unfinished at the end of the simulation".to_string()),
            warnings: Vec::new(),
        }
    }
}

impl Run {
    /// A run from simulation records (sorted by request id).
    pub fn from_records(meta: RunMeta, records: &[RequestRecord]) -> Run {
        let mut requests: Vec<RequestRun> = records.iter().map(RequestRun::from_record).collect();
        requests.sort_by_key(|r| r.id);
        Run { meta, requests }
    }
}

/// Records each finished simulated request's scheduling delay in `run`
/// ([`RunMeta::scheduling_delays`]), so that the scheduling-delay metric can be compared.
pub fn attach_scheduling_delays(run: &mut Run, records: &[RequestRecord]) {
    run.meta.set_scheduling_delays(
        records
            .iter()
            .filter(|r| r.completed)
            .map(|r| (r.id, r.scheduling_delay)),
    );
}
