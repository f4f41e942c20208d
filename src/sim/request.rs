//! A request's state inside the simulator: Vidur's `Request` entity (`vidur/entities/request.py`), field for
//! field, plus the times of its output tokens.

use crate::workload::RequestSpec;

/// Simulator state of one request. Times are seconds of simulated time.
#[derive(Debug, Clone, Default)]
pub(crate) struct Request {
    pub id: u64,
    pub arrived_at: f64,
    /// Current prompt length; a restart rewrites it (Vidur's `num_prefill_tokens`).
    pub prefill: u32,
    /// Current output length; a restart rewrites it.
    pub decode: u32,
    pub orig_prefill: u32,
    pub orig_decode: u32,
    pub processed: u32,
    pub scheduled_at: f64,
    pub execution_time: f64,
    pub model_execution_time: f64,
    pub scheduling_delay: f64,
    pub preempted_time: f64,
    pub completed_at: f64,
    pub prefill_completed_at: f64,
    pub latest_stage_completed_at: f64,
    pub latest_iteration_completed_at: f64,
    pub latest_iteration_scheduling_delay: f64,
    pub scheduled: bool,
    pub completed: bool,
    pub prefill_complete: bool,
    pub restarts: u32,
    /// Inter-arrival delay to the previous arrival (None for the first request).
    pub inter_arrival: Option<f64>,
    /// Blocks held in the replica's allocation map; `None` when not in the map.
    pub blocks: Option<u64>,
    /// Replica the request was routed to.
    pub replica: u32,
    /// Times at which output tokens were produced (one per output token).
    pub token_times: Vec<f64>,
    /// Whether the slot holds a request that has not finished yet.
    pub alive: bool,
}

impl Request {
    /// Re-initialises a (possibly recycled) slot for a newly arrived request.
    pub fn reset(&mut self, spec: &RequestSpec, inter_arrival: Option<f64>) {
        let mut token_times = std::mem::take(&mut self.token_times);
        token_times.clear();
        *self = Request {
            id: spec.id,
            arrived_at: spec.arrival_s,
            prefill: spec.prefill_tokens,
            decode: spec.decode_tokens,
            orig_prefill: spec.prefill_tokens,
            orig_decode: spec.decode_tokens,
            inter_arrival,
            token_times,
            alive: true,
            ..Request::default()
        };
    }

    pub fn total_tokens(&self) -> u32 {
        self.prefill + self.decode
    }

    /// Vidur's `Request.on_batch_schedule`.
    pub fn on_batch_schedule(&mut self, t: f64) {
        self.latest_iteration_scheduling_delay = t - self.latest_iteration_completed_at;
        if self.scheduled {
            return;
        }
        self.scheduled = true;
        if self.restarts > 0 {
            return;
        }
        self.scheduled_at = t;
        self.scheduling_delay = t - self.arrived_at;
    }

    /// Vidur's `Request.on_batch_end`; records an output token when one is produced.
    ///
    /// Output tokens are counted against the original prompt: the request has produced
    /// `processed − orig_prefill` tokens. (After a restart Vidur re-prefills the tokens it had
    /// generated, and a request restarted in the middle of its prefill turns the rest of its
    /// prompt into one-token "decode" steps; neither produces new output.)
    pub fn on_batch_end(&mut self, t: f64, n: u32) {
        self.processed += n;
        self.latest_iteration_completed_at = t;
        debug_assert!(self.processed <= self.total_tokens());
        if self.processed == self.prefill {
            self.prefill_complete = true;
            // The prefill iteration also yields the first output token.
            self.processed += 1;
            if self.prefill_completed_at == 0.0 {
                self.prefill_completed_at = t;
            }
        }
        if self.processed.saturating_sub(self.orig_prefill) as usize > self.token_times.len() {
            self.token_times.push(t);
        }
        if self.processed == self.total_tokens() {
            self.completed_at = t;
            self.completed = true;
        }
    }

    /// Vidur's `Request.on_batch_stage_schedule`.
    pub fn on_stage_schedule(&mut self, t: f64) {
        if self.latest_stage_completed_at == 0.0 {
            self.preempted_time = 0.0;
        } else {
            self.preempted_time += t - self.latest_stage_completed_at;
        }
    }

    /// Vidur's `Request.on_batch_stage_end`.
    pub fn on_stage_end(&mut self, t: f64, exec: f64, model_exec: f64) {
        self.execution_time += exec;
        self.model_execution_time += model_exec;
        self.latest_stage_completed_at = t;
    }

    /// transformers' soft reset (an eviction): the request goes back to the queue with prompt =
    /// prompt + generated tokens and the output budget reduced by them; a request evicted in the
    /// middle of its prefill keeps its prompt and starts over.
    pub fn soft_reset(&mut self) {
        if self.prefill_complete {
            self.restart();
        } else {
            self.processed = 0;
            self.restarts += 1;
            self.scheduled = false;
        }
    }

    /// Online use: the client went away (vLLM aborts such a request). The request is cut
    /// short so that it stops taking resources at its next step, which every scheduler already
    /// handles as a completion: a request decoding ends with its next output token, one in
    /// the middle of its prompt with the prompt's token, and one never scheduled shrinks to a
    /// 1-token prompt and output (it leaves at its first step).
    pub fn abort(&mut self) {
        if self.prefill_complete {
            let produced = self.processed - self.prefill;
            self.decode = self.decode.min(produced + 1);
        } else if self.processed == 0 && !self.scheduled && self.blocks.is_none() {
            self.prefill = 1;
            self.decode = 1;
        } else {
            self.decode = 1;
        }
    }

    /// Vidur's `Request.restart`: tokens generated so far are re-prefilled.
    pub fn restart(&mut self) {
        let total = self.prefill + self.decode;
        self.prefill = self.processed;
        self.decode = total - self.prefill;
        self.processed = 0;
        self.scheduled = false;
        self.completed = false;
        self.prefill_complete = false;
        self.restarts += 1;
    }
}
