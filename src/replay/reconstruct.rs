//! Engine steps recovered from any recorded run of a FIFO continuous-batching server, with
//! their composition: how many requests decoded, which prompt chunks were prefilled, how much
//! KV context was read, and how long the step took. This turns every recording (not only the
//! controlled experiments of [`super::experiment::Experiment`]) into step-time observations,
//! framework overhead, serving path and all.
//!
//! The client sees each step as a cluster of chunk times ([`extract_steps`]): which requests got
//! a token, and for which request it was the first. What it does not see is prefill chunks
//! that produce no token. [`run_steps`] fills them in by running the server's policy
//! (transformers' `generation/continuous_batching/scheduler.py`, as `sim/scheduler/hf_cb.rs`
//! models it: decodes first, then prompts in arrival order in what is left of
//! the token budget, a prompt split across steps when it does not fit) against the observed
//! steps, with the observed first tokens as ground truth:
//!
//! - a step's decoders are the requests that got a non-first token in it;
//! - a prompt whose first token is seen in step k is complete in step k;
//! - a prompt that would have fitted whole in step k but whose first token comes later had not
//!   reached the scheduler yet (the way in is not instantaneous), and nothing behind it in the
//!   queue had either;
//! - a request counts as eligible for a step once it was sent before the step began (the end
//!   of the previous step when the server was busy).
//!
//! Steps where these rules and the observation disagree (a decoder without a token, a prompt
//! that cannot have finished in its first-token step) are marked inconsistent and should not
//! be fitted; on the H100 goldens that is 0.5–2% of the steps below the knee.

use super::step_profile::StepObservation;
use super::steps::{ObservedStep, extract_steps};
use crate::exec::step::{GraphKey, Padding, StepModel};
use crate::fixture::Run;

/// One engine step of a recorded run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStep {
    /// Client time of the step's first chunk (seconds on the run's clock).
    pub t: f64,
    /// Duration, when the server was busy since the previous step (back to back: the
    /// difference of their client times); `None` after an idle gap.
    pub seconds: Option<f64>,
    /// Requests that decoded one token.
    pub decodes: u32,
    /// Requests with a prompt chunk in the step.
    pub prefills: u32,
    /// Prompt tokens processed.
    pub prefill_tokens: u64,
    /// KV tokens read (sum over the step's requests of their cached tokens).
    pub kv_tokens: u64,
    /// Longest context of one request (cached + processed now).
    pub max_seqlen_k: u64,
    /// Whether the reconstruction agrees with everything observed in the step.
    pub consistent: bool,
    /// After an idle gap: the send time of the earliest request prefilled in the step (the
    /// step began when it reached the server).
    pub opened_by: Option<f64>,
}

impl RunStep {
    /// Requests in the step.
    pub fn requests(&self) -> u32 {
        self.decodes + self.prefills
    }

    /// Query tokens of the step.
    pub fn q_tokens(&self) -> u64 {
        self.decodes as u64 + self.prefill_tokens
    }

    /// The step's graph key under `padding`.
    pub fn key(&self, padding: &Padding) -> GraphKey {
        padding.key(self.q_tokens(), self.kv_tokens, self.max_seqlen_k)
    }

    /// The step as a fitting observation, when its composition and duration are known.
    pub fn observation(&self) -> Option<StepObservation> {
        match (self.consistent, self.seconds) {
            (true, Some(seconds)) => Some(StepObservation {
                requests: self.requests(),
                q_tokens: self.q_tokens(),
                kv_tokens: self.kv_tokens,
                seconds,
            }),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Waiting,
    Prefilling,
    Decoding,
    Done,
}

#[derive(Debug, Clone)]
struct Req {
    prompt: u64,
    sent: f64,
    first_step: usize,
    last_step: usize,
    prefilled: u64,
    phase: Phase,
}

/// Reconstructs the engine steps of `run` (chunks closer than `gap_s` belong to one step) under
/// a FIFO policy with `token_budget` tokens per step (module docs). Failed requests are left
/// out.
pub fn run_steps(run: &Run, gap_s: f64, token_budget: u32) -> Vec<RunStep> {
    let steps: Vec<ObservedStep> = extract_steps(run, gap_s);
    let mut reqs: std::collections::HashMap<u64, Req> = std::collections::HashMap::new();
    for r in run.requests.iter().filter(|r| r.error.is_none()) {
        reqs.insert(
            r.id,
            Req {
                prompt: r.usage_prompt_tokens.unwrap_or(r.prompt_tokens).max(1) as u64,
                sent: r.sent.unwrap_or(r.scheduled),
                first_step: usize::MAX,
                last_step: 0,
                prefilled: 0,
                phase: Phase::Waiting,
            },
        );
    }
    for (k, s) in steps.iter().enumerate() {
        for &(id, i) in &s.tokens {
            if let Some(r) = reqs.get_mut(&id) {
                if i == 0 {
                    r.first_step = r.first_step.min(k);
                }
                r.last_step = r.last_step.max(k);
            }
        }
    }
    // Arrival order, then FIFO among the prompts being prefilled.
    let mut waiting: Vec<u64> = reqs
        .iter()
        .filter(|(_, r)| r.first_step != usize::MAX)
        .map(|(&id, _)| id)
        .collect();
    waiting.sort_by(|a, b| reqs[a].sent.total_cmp(&reqs[b].sent).then(a.cmp(b)));
    let mut waiting: std::collections::VecDeque<u64> = waiting.into();
    let mut prefilling: Vec<u64> = Vec::new();
    let mut decoding: Vec<u64> = Vec::new();
    let mut out = Vec::with_capacity(steps.len());
    let mut prev_t: Option<f64> = None;
    for (k, s) in steps.iter().enumerate() {
        let busy = !decoding.is_empty() || !prefilling.is_empty();
        let start = if busy { prev_t } else { None };
        let mut consistent = true;
        // Decoders: every non-first token; the engine decodes every running request.
        let mut decodes = 0u32;
        let mut kv = 0u64;
        let mut max_k = 0u64;
        let mut got: std::collections::HashSet<u64> = std::collections::HashSet::new();
        for &(id, i) in &s.tokens {
            let Some(r) = reqs.get(&id) else { continue };
            got.insert(id);
            if i > 0 {
                decodes += 1;
                let past = r.prompt + i as u64 - 1;
                kv += past;
                max_k = max_k.max(past + 1);
                if r.phase != Phase::Decoding {
                    consistent = false;
                }
            }
        }
        if decoding.iter().any(|id| !got.contains(id)) {
            consistent = false;
        }
        // Prompts, FIFO, in the budget the decoders leave.
        let mut budget = (token_budget as u64).saturating_sub(decodes as u64);
        let mut prefills = 0u32;
        let mut prefill_tokens = 0u64;
        let mut opened_by: Option<f64> = None;
        let mut queue: Vec<u64> = prefilling.clone();
        let horizon = start.unwrap_or(s.t);
        queue.extend(
            waiting
                .iter()
                .copied()
                .take_while(|id| reqs[id].sent <= horizon),
        );
        for id in queue {
            if budget == 0 {
                break;
            }
            let r = reqs.get_mut(&id).expect("known");
            let rem = r.prompt - r.prefilled;
            let take = if r.first_step == k {
                if rem > budget {
                    consistent = false;
                }
                rem.min(budget)
            } else if rem <= budget {
                // It would have finished here: it had not reached the scheduler yet.
                break;
            } else {
                budget
            };
            if start.is_none() {
                opened_by = Some(opened_by.map_or(r.sent, |o: f64| o.min(r.sent)));
            }
            prefills += 1;
            prefill_tokens += take;
            kv += r.prefilled;
            max_k = max_k.max(r.prefilled + take);
            r.prefilled += take;
            budget -= take;
            if r.phase == Phase::Waiting {
                r.phase = Phase::Prefilling;
                waiting.retain(|x| *x != id);
                prefilling.push(id);
            }
        }
        // First tokens: those prompts are complete now, whatever the rules said.
        for &(id, i) in &s.tokens {
            if i != 0 {
                continue;
            }
            let Some(r) = reqs.get_mut(&id) else { continue };
            if r.prefilled != r.prompt || r.phase == Phase::Waiting {
                consistent = false;
                r.prefilled = r.prompt;
            }
            r.phase = Phase::Decoding;
            waiting.retain(|x| *x != id);
            prefilling.retain(|x| *x != id);
            decoding.push(id);
        }
        // Requests that ended with this step free their place.
        decoding.retain(|id| {
            let r = reqs.get_mut(id).expect("known");
            if r.last_step <= k {
                r.phase = Phase::Done;
                false
            } else {
                true
            }
        });
        out.push(RunStep {
            t: s.t,
            seconds: start.map(|p| s.t - p),
            decodes,
            prefills,
            prefill_tokens,
            kv_tokens: kv,
            max_seqlen_k: max_k,
            consistent,
            opened_by,
        });
        prev_t = Some(s.t);
    }
    out
}

/// The step shapes (graph keys) a recorded run made its server capture: the keys of all its
/// reconstructed steps.
pub fn run_keys(run: &Run, gap_s: f64, token_budget: u32, padding: &Padding) -> Vec<GraphKey> {
    let mut k: Vec<GraphKey> = run_steps(run, gap_s, token_budget)
        .iter()
        .map(|s| s.key(padding))
        .collect();
    k.sort_unstable();
    k.dedup();
    k
}

/// What a recorded run's own steps say about the shapes its server had captured before it: the
/// first step of each shape either stalled (its time exceeds `model`'s prediction by more than
/// half the capture stall: the shape was new) or did not (it was captured already). A step that
/// started an idle server is timed from its first request's send, less `serving_delay_s` (the
/// way in and out). Returns `(captured, new)`; shapes whose first step is inconsistent are in
/// neither.
pub fn infer_captured(
    run: &Run,
    gap_s: f64,
    token_budget: u32,
    model: &StepModel,
    serving_delay_s: f64,
) -> (Vec<GraphKey>, Vec<GraphKey>) {
    let mut first: std::collections::HashSet<GraphKey> = std::collections::HashSet::new();
    let (mut warm, mut new) = (Vec::new(), Vec::new());
    for s in run_steps(run, gap_s, token_budget) {
        let key = s.key(&model.padding);
        if !first.insert(key) {
            continue;
        }
        let seconds = match (s.consistent, s.seconds, s.opened_by) {
            (true, Some(d), _) => Some(d),
            (true, None, Some(sent)) => Some(s.t - sent - serving_delay_s),
            _ => None,
        };
        if let Some(d) = seconds {
            let excess = d - model.predict(s.requests(), s.q_tokens(), s.kv_tokens);
            if excess > 0.5 * model.capture_s {
                new.push(key);
            } else {
                warm.push(key);
            }
        }
    }
    (warm, new)
}

/// Step observations of a server session: `session` are runs recorded one after the other on
/// one server process from its start (in that order), so the step shapes it had captured are
/// known; `later` are runs of the same process recorded afterwards with unknown runs in
/// between. Returns the observations of steps whose shape had been seen before (no capture in
/// them) and the excess over `model` of the steps of `session` that met a new shape (their
/// capture stalls; empty without a model).
pub fn session_observations(
    session: &[&Run],
    later: &[&Run],
    gap_s: f64,
    token_budget: u32,
    padding: &Padding,
    model: Option<&StepModel>,
) -> (Vec<StepObservation>, Vec<f64>) {
    let mut seen: std::collections::HashSet<GraphKey> = std::collections::HashSet::new();
    let mut obs = Vec::new();
    let mut stalls = Vec::new();
    for (i, run) in session.iter().chain(later).enumerate() {
        let exact = i < session.len();
        for s in run_steps(run, gap_s, token_budget) {
            let new = seen.insert(s.key(padding));
            let Some(o) = s.observation() else { continue };
            if !new {
                obs.push(o);
            } else if exact && let Some(m) = model {
                stalls.push(o.seconds - m.predict(o.requests, o.q_tokens, o.kv_tokens));
            }
        }
    }
    (obs, stalls)
}
