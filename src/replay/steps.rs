//! Engine steps cut from a run's streamed chunk times. Tokens of one engine step reach the
//! client within a fraction of a millisecond of each other while steps are tens of
//! milliseconds apart, so pooling every chunk time of a run and cutting at gaps larger than a
//! few milliseconds ([`STEP_GAP_S`]) recovers the engine's steps ([`extract_steps`]).

use serde::{Deserialize, Serialize};

use crate::fixture::Run;

/// The gap between chunk times that separates two engine steps: 3 ms (steps are tens of
/// milliseconds apart, tokens of one step arrive within a fraction of a millisecond).
pub const STEP_GAP_S: f64 = 0.003;

/// One step recovered from a run's streamed chunks.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedStep {
    /// Time the step's tokens reached the client (the earliest chunk of the cluster).
    pub t: f64,
    /// `(request id, output token index)` of every token in the step.
    pub tokens: Vec<(u64, u32)>,
}

/// Recovers engine steps from a run: all chunk times pooled and sorted, cut wherever two
/// consecutive chunks are more than `gap_s` apart.
pub fn extract_steps(run: &Run, gap_s: f64) -> Vec<ObservedStep> {
    let mut all: Vec<(f64, u64, u32)> = Vec::new();
    for r in &run.requests {
        if r.error.is_some() {
            continue;
        }
        let mut idx = 0u32;
        for c in &r.chunks {
            all.push((c.t, r.id, idx));
            idx += c.n.max(1);
        }
    }
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut steps: Vec<ObservedStep> = Vec::new();
    let mut last = f64::NEG_INFINITY;
    for (t, id, i) in all {
        if t - last > gap_s || steps.is_empty() {
            steps.push(ObservedStep {
                t,
                tokens: Vec::new(),
            });
        }
        steps.last_mut().expect("pushed").tokens.push((id, i));
        last = t;
    }
    steps
}

/// One step of a recorded run that finished a request's prefill: read off the client's chunk
/// times at light load (see [`fit_prefill_steps`](super::step_profile::fit_prefill_steps)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrefillStep {
    /// Decoding requests in the step (tokens in the cluster besides the new first token).
    pub decoders: u32,
    /// Tokens of the prefill chunk (the prompt, or its last chunk under the token budget).
    pub chunk: u32,
    /// Prompt tokens prefilled in earlier steps (0 for a prompt prefilled whole).
    pub prefix: u64,
    /// KV tokens the decoders read.
    pub kv: u64,
    /// The step's duration (gap to the step before).
    pub seconds: f64,
}

/// Steps of `run` that carry exactly one request's first token: chunk times are clustered
/// into steps at gaps above `gap_s`; a step qualifies when exactly one request's first token
/// is in it and none in the step before. The chunk is the prompt when it fits the token
/// `budget` left by the decoders, else the prompt's remainder modulo that budget (chunked
/// prefill in vLLM's order: decodes first, the rest of the budget to the prompt).
pub fn prefill_steps(run: &Run, gap_s: f64, budget: u32) -> Vec<PrefillStep> {
    let steps = extract_steps(run, gap_s);
    let by_id: std::collections::HashMap<u64, &crate::fixture::RequestRun> =
        run.requests.iter().map(|r| (r.id, r)).collect();
    let mut out = Vec::new();
    for w in steps.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let firsts: Vec<u64> = b.tokens.iter().filter(|t| t.1 == 0).map(|t| t.0).collect();
        if firsts.len() != 1 || a.tokens.iter().any(|t| t.1 == 0) {
            continue;
        }
        let Some(r) = by_id.get(&firsts[0]) else {
            continue;
        };
        let p = r.usage_prompt_tokens.unwrap_or(r.prompt_tokens);
        let decoders = (b.tokens.len() - 1) as u32;
        let room = budget.saturating_sub(decoders).max(1);
        let chunk = if p <= room { p } else { (p - 1) % room + 1 };
        let kv = b
            .tokens
            .iter()
            .filter(|t| t.1 > 0)
            .map(|&(id, i)| {
                by_id.get(&id).map_or(0, |x| {
                    x.usage_prompt_tokens.unwrap_or(x.prompt_tokens) as u64
                }) + i as u64
                    - 1
            })
            .sum();
        out.push(PrefillStep {
            decoders,
            chunk,
            prefix: (p - chunk) as u64,
            kv,
            seconds: b.t - a.t,
        });
    }
    out
}
