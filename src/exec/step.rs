//! Step-time models: one engine iteration's wall time, including the framework's per-step
//! overhead (which operator profiles miss; a 0.6B model on an H100 is bound by it). This file
//! only predicts; the models are measured and fitted from recorded runs in `crate::replay`
//! (`replay::step_profile` holds the fit and the profile file, `replay::steps` and
//! `replay::reconstruct` the observed steps, `replay::experiment` the controlled experiments).
//!
//! The model follows what transformers' continuous batching pays per step
//! (`transformers/generation/continuous_batching/`: the scheduler pads the query tokens and the
//! KV context of a step to fixed multiples before the forward): a fixed cost, a cost per
//! request, costs that grow with the padded query tokens
//! `q̂ = ⌈Σq/64⌉·64` and the padded KV context `k̂ = ⌈Σpast/16384⌉·16384` (0 pads to 16384),
//! their product (dense attention over the padded shapes), the unpadded context `k` (host-side
//! index lists), and a regime change above `q̂ > split` (1024): measured on the H100 goldens,
//! steps with more than 1024 padded query tokens cost a step more plus a further cost per
//! padded KV token (the attention kernel changes):
//!
//! ```text
//! t = c₀ + c_req·n + c_q·q̂ + c_kv·k̂ + c_qkv·q̂·k̂/2²⁰ + c_k·k + [q̂ > split]·(c_big + c_bigkv·k̂/2²⁰)
//! ```
//!
//! On top of that, the server captures a CUDA graph the first time it meets a step shape
//! (key `(q̂, k̂, max context rounded up to a power of two ≥ 1024)`), which stalls that step by
//! [`StepModel::capture_s`]; [`StepExec`] keeps the set of shapes already captured.

use serde::{Deserialize, Serialize};

use super::{BatchItem, ExecModel, StageTime};
use crate::error::Result;

/// Padding rules of the server's step shapes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Padding {
    /// Query tokens are padded up to a multiple of this (64).
    pub q_multiple: u32,
    /// Largest padded query (the step token budget, 2048).
    pub q_cap: u32,
    /// KV context is padded up to a multiple of this (16384); 0 pads to it too.
    pub kv_multiple: u64,
    /// Largest padded KV context (131072).
    pub kv_cap: u64,
    /// The longest context in a step is rounded up to a power of two, at least this (1024),
    /// in the key of its CUDA graph.
    #[serde(default = "default_seqlen_k_min")]
    pub seqlen_k_min: u64,
}

fn default_seqlen_k_min() -> u64 {
    1024
}

fn default_split_q() -> u32 {
    1024
}

/// The shape key under which the server keeps a step's CUDA graph: padded query tokens,
/// padded KV context, and the longest context rounded up to a power of two.
pub type GraphKey = (u32, u64, u64);

impl Default for Padding {
    fn default() -> Self {
        Padding {
            q_multiple: 64,
            q_cap: 2048,
            kv_multiple: 16384,
            kv_cap: 131072,
            seqlen_k_min: 1024,
        }
    }
}

impl Padding {
    /// vLLM 0.24's step shapes with a token budget of `budget`: queries padded to its CUDA
    /// graph capture sizes (multiples of 8 up to 256, of 16 above; approximated by 8), no
    /// KV padding (FlashAttention 3 reads variable-length KV).
    pub fn vllm(budget: u32) -> Padding {
        Padding {
            q_multiple: 8,
            q_cap: budget.max(8),
            kv_multiple: 1,
            kv_cap: 1 << 40,
            seqlen_k_min: 1024,
        }
    }

    /// Padded query tokens.
    pub fn q(&self, q: u64) -> f64 {
        let m = self.q_multiple.max(1) as u64;
        (q.div_ceil(m) * m).min(self.q_cap.max(self.q_multiple) as u64) as f64
    }

    /// Padded KV context (0 pads to one multiple).
    pub fn kv(&self, kv: u64) -> f64 {
        let m = self.kv_multiple.max(1);
        (kv.max(1).div_ceil(m) * m).min(self.kv_cap.max(m)) as f64
    }

    /// The graph key of a step with `q` query tokens, `kv` cached tokens read and longest
    /// context (past + query of one request) `max_seqlen_k`.
    pub fn key(&self, q: u64, kv: u64, max_seqlen_k: u64) -> GraphKey {
        let s = max_seqlen_k
            .max(self.seqlen_k_min.max(1))
            .checked_next_power_of_two()
            .unwrap_or(u64::MAX)
            .min(self.kv_cap.max(1).next_power_of_two());
        (self.q(q) as u32, self.kv(kv) as u64, s)
    }
}

/// Number of terms of the step model ([`StepModel::TERMS`]).
pub const NUM_TERMS: usize = 8;

/// The fitted step-time model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepModel {
    /// Coefficients of [`StepModel::TERMS`], in seconds per unit (a shorter list, as written
    /// by profiles of format 1.0, leaves the remaining terms at 0).
    pub coef: Vec<f64>,
    /// Padding rules.
    pub padding: Padding,
    /// Smallest step time observed (predictions never go below it).
    pub min_step_s: f64,
    /// Extra seconds per prompt token processed in the step: what a prefill costs beyond the
    /// controlled experiments. vLLM's profile carries its whole prefill cost here, fitted by
    /// `replay::fit_prefill_steps` (`simfid profile fit --server vllm --run …`); 0 in the
    /// transformers profile.
    #[serde(default)]
    pub prefill_token_s: f64,
    /// Padded query tokens above which the second regime's terms apply (1024).
    #[serde(default = "default_split_q")]
    pub split_q: u32,
    /// Stall of a step whose shape the server has not captured yet (a CUDA-graph capture:
    /// one eager forward plus the capture), in seconds. Applied by [`StepExec`].
    #[serde(default)]
    pub capture_s: f64,
    /// Extra seconds of a step that carries a prefill chunk, fitted by `replay::fit_prefill_steps`.
    /// vLLM runs decode-only steps as full CUDA
    /// graphs and steps with a prefill as piecewise graphs with attention outside them, which
    /// costs several milliseconds more on a small model; 0 in the transformers profile.
    #[serde(default)]
    pub mixed_step_s: f64,
    /// Extra seconds of a step that continues a prefill begun in an earlier step (a chunk
    /// after the first of a prompt longer than the token budget), fitted by
    /// `replay::fit_prefill_steps`. On vLLM 0.24 the step that finishes a chunked prompt takes
    /// ~3 ms more than one that prefills a short prompt whole (H200 goldens); 0 elsewhere.
    #[serde(default)]
    pub continued_prefill_s: f64,
}

impl StepModel {
    /// What each coefficient multiplies.
    pub const TERMS: [&'static str; NUM_TERMS] = [
        "s per step",
        "s per request",
        "s per padded query token",
        "s per padded KV token",
        "s per (padded query × padded KV)/2^20",
        "s per KV token (unpadded)",
        "s per step with padded query > split",
        "s per padded KV token/2^20 with padded query > split",
    ];

    /// A model with the given coefficients, the default padding and nothing else.
    pub fn new(coef: &[f64]) -> StepModel {
        StepModel {
            coef: coef.to_vec(),
            padding: Padding::default(),
            min_step_s: 0.0,
            prefill_token_s: 0.0,
            split_q: default_split_q(),
            capture_s: 0.0,
            mixed_step_s: 0.0,
            continued_prefill_s: 0.0,
        }
    }

    pub(crate) fn features(&self, n: u32, q: u64, kv: u64) -> [f64; NUM_TERMS] {
        let qp = self.padding.q(q);
        let kp = self.padding.kv(kv);
        let big = if qp > self.split_q as f64 { 1.0 } else { 0.0 };
        [
            1.0,
            n as f64,
            qp,
            kp,
            qp * kp / 1_048_576.0,
            kv as f64,
            big,
            big * kp / 1_048_576.0,
        ]
    }

    /// Coefficient `i` (0 when the list is shorter).
    pub fn c(&self, i: usize) -> f64 {
        self.coef.get(i).copied().unwrap_or(0.0)
    }

    /// Predicted time of a step (no capture stall).
    pub fn predict(&self, n: u32, q: u64, kv: u64) -> f64 {
        let f = self.features(n, q, kv);
        let t: f64 = f.iter().zip(&self.coef).map(|(a, b)| a * b).sum();
        t.max(self.min_step_s)
    }
}

/// What the step model needs of a batch: requests, query tokens, KV tokens read, prompt
/// tokens, and the longest context.
fn batch_shape(batch: &[BatchItem]) -> (u32, u64, u64, u64, u64) {
    let mut q = 0u64;
    let mut kv = 0u64;
    let mut prefill = 0u64;
    let mut max_k = 0u64;
    for b in batch {
        q += b.num_tokens as u64;
        if !b.prefill_complete {
            prefill += b.num_tokens as u64;
        }
        // transformers' position: the newest generated token is cached in the next step.
        let past = if b.prefill_complete {
            (b.processed_tokens as u64).saturating_sub(1)
        } else {
            b.processed_tokens as u64
        };
        kv += past;
        max_k = max_k.max(past + b.num_tokens as u64);
    }
    (batch.len() as u32, q, kv, prefill, max_k)
}

impl StepModel {
    fn batch_time(&self, batch: &[BatchItem]) -> (f64, GraphKey) {
        let (n, q, kv, prefill, max_k) = batch_shape(batch);
        let mut mixed = if prefill > 0 { self.mixed_step_s } else { 0.0 };
        if batch
            .iter()
            .any(|b| !b.prefill_complete && b.processed_tokens > 0)
        {
            mixed += self.continued_prefill_s;
        }
        let t = self.predict(n, q, kv) + self.prefill_token_s * prefill as f64 + mixed;
        (t, self.padding.key(q, kv, max_k))
    }
}

/// The step model without capture stalls: every shape is assumed captured already.
impl ExecModel for StepModel {
    fn stage_time(&self, batch: &[BatchItem], _stage: usize) -> Result<StageTime> {
        let (t, _) = self.batch_time(batch);
        Ok(StageTime {
            total_s: t,
            model_s: t,
        })
    }
}

/// The step model of one server process: it remembers the step shapes (CUDA graphs) already
/// captured and stalls a step whose shape is new by [`StepModel::capture_s`]. Warm it with
/// [`StepExec::with_keys`] or by simulating the runs the server served before.
#[derive(Debug)]
pub struct StepExec<'a> {
    model: &'a StepModel,
    seen: std::sync::Mutex<std::collections::HashSet<GraphKey>>,
    captures: std::sync::atomic::AtomicU64,
    /// Shapes known not to be captured (they stall in full whatever `unknown_stall_s` says).
    known_new: std::collections::HashSet<GraphKey>,
    /// Stall of a shape whose state is unknown (neither seen nor known new); `None`: the full
    /// capture stall.
    unknown_stall_s: Option<f64>,
}

impl<'a> StepExec<'a> {
    /// A server that has captured nothing yet.
    pub fn new(model: &'a StepModel) -> StepExec<'a> {
        StepExec {
            model,
            seen: Default::default(),
            captures: Default::default(),
            known_new: Default::default(),
            unknown_stall_s: None,
        }
    }

    /// A server that has captured `keys` already.
    pub fn with_keys(model: &'a StepModel, keys: impl IntoIterator<Item = GraphKey>) -> Self {
        let e = StepExec::new(model);
        e.seen.lock().expect("not poisoned").extend(keys);
        e
    }

    /// A server whose capture state is only partly known: `new` shapes stall in full on first
    /// use, and any other shape not captured yet stalls `unknown_stall_s` (an expectation:
    /// the capture stall times the probability that such a shape was not captured).
    pub fn with_unknown(
        mut self,
        new: impl IntoIterator<Item = GraphKey>,
        unknown_stall_s: f64,
    ) -> Self {
        self.known_new.extend(new);
        self.unknown_stall_s = Some(unknown_stall_s);
        self
    }

    /// Marks `keys` as captured.
    pub fn add_keys(&self, keys: impl IntoIterator<Item = GraphKey>) {
        self.seen.lock().expect("not poisoned").extend(keys);
    }

    /// Shapes captured so far.
    pub fn keys(&self) -> Vec<GraphKey> {
        let mut v: Vec<GraphKey> = self
            .seen
            .lock()
            .expect("not poisoned")
            .iter()
            .copied()
            .collect();
        v.sort_unstable();
        v
    }

    /// Captures simulated since creation (or the last [`StepExec::take_captures`]).
    pub fn take_captures(&self) -> u64 {
        self.captures.swap(0, std::sync::atomic::Ordering::Relaxed)
    }
}

impl ExecModel for StepExec<'_> {
    fn stage_time(&self, batch: &[BatchItem], _stage: usize) -> Result<StageTime> {
        let (mut t, key) = self.model.batch_time(batch);
        if self.model.capture_s > 0.0 && self.seen.lock().expect("not poisoned").insert(key) {
            t += match self.unknown_stall_s {
                Some(s) if !self.known_new.contains(&key) => s,
                _ => self.model.capture_s,
            };
            self.captures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(StageTime {
            total_s: t,
            model_s: t,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth() -> StepModel {
        StepModel::new(&[0.022, 0.0004, 2e-6, 5e-8, 1e-6, 2e-7, 0.003, 0.6])
    }

    #[test]
    fn padding_follows_the_server_rules() {
        let p = Padding::default();
        assert_eq!(p.q(1), 64.0);
        assert_eq!(p.q(65), 128.0);
        assert_eq!(p.q(5000), 2048.0);
        assert_eq!(p.kv(0), 16384.0);
        assert_eq!(p.kv(16385), 32768.0);
        assert_eq!(p.kv(10_000_000), 131072.0);
    }

    #[test]
    fn graph_keys_follow_the_server_rules() {
        let p = Padding::default();
        // Decode of 3 requests with 4000 cached tokens, longest context 1500.
        assert_eq!(p.key(3, 4000, 1500), (64, 16384, 2048));
        // Contexts below 1024 share the smallest bucket; above the cache, the cap.
        assert_eq!(p.key(1, 10, 10), (64, 16384, 1024));
        assert_eq!(p.key(5000, 200_000, 200_000), (2048, 131072, 131072));
    }

    #[test]
    fn a_new_shape_stalls_once() {
        let mut m = truth();
        m.capture_s = 0.1;
        let batch = [BatchItem {
            num_tokens: 1,
            processed_tokens: 300,
            prefill_complete: true,
        }];
        let plain = m.stage_time(&batch, 0).unwrap().total_s;
        let exec = StepExec::new(&m);
        let first = exec.stage_time(&batch, 0).unwrap().total_s;
        let again = exec.stage_time(&batch, 0).unwrap().total_s;
        assert!((first - plain - 0.1).abs() < 1e-12 && (again - plain).abs() < 1e-12);
        assert_eq!(exec.take_captures(), 1);
        let warm = StepExec::with_keys(&m, exec.keys());
        assert_eq!(warm.stage_time(&batch, 0).unwrap().total_s, plain);
        assert_eq!(warm.take_captures(), 0);
    }

    #[test]
    fn profiles_of_format_1_0_still_load() {
        // Five coefficients, no split, no capture: the remaining terms are 0.
        let m: StepModel = serde_json::from_str(
            r#"{"coef":[0.005,0.0002,7e-7,1e-6,0.0],"padding":{"q_multiple":64,"q_cap":2048,
                "kv_multiple":16384,"kv_cap":131072},"min_step_s":0.02,"prefill_token_s":2.4e-5}"#,
        )
        .unwrap();
        assert_eq!(m.split_q, 1024);
        assert_eq!(m.capture_s, 0.0);
        assert_eq!(m.padding.seqlen_k_min, 1024);
        let want = 0.005 + 0.0002 * 2.0 + 7e-7 * 64.0 + 1e-6 * 16384.0;
        assert!((m.predict(2, 2, 500) - want).abs() < 1e-12);
    }
}
