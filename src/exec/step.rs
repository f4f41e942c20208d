//! Step-time profiles measured through a server's API: a model of one engine iteration's
//! wall time that includes the framework's per-step overhead (which operator profiles miss;
//! a 0.6B model on an H100 is bound by it).
//!
//! How it is measured. Tokens of one engine step reach the client within a fraction of a
//! millisecond of each other while steps are tens of milliseconds apart, so pooling every
//! streamed chunk time of a run and cutting at gaps larger than a few milliseconds recovers
//! the engine's steps ([`extract_steps`]). Two sources make each step's composition known:
//! controlled experiments ([`Experiment`]: B requests decoding together, single prompts
//! arriving into a running decode batch), and any recorded run of a FIFO server, whose steps
//! [`crate::exec::run_steps`] reconstructs by replaying the scheduler against the observed
//! steps. Each observed step becomes a [`StepObservation`]; [`StepModel::fit`] fits them by
//! (relative) least squares.
//!
//! The model follows what transformers' continuous batching pays per step (`shared/hfcb/
//! SPEC.md` §4): a fixed cost, a cost per request, costs that grow with the padded query tokens
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
use crate::error::{Error, Result};
use crate::fixture::Run;
use crate::workload::{RequestSpec, Workload};

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

/// One engine step whose composition is known.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepObservation {
    /// Requests in the step.
    pub requests: u32,
    /// Query tokens (decodes count 1, prefill chunks their length).
    pub q_tokens: u64,
    /// KV context read (sum over requests of the tokens already cached).
    pub kv_tokens: u64,
    /// Measured step time in seconds.
    pub seconds: f64,
}

/// Number of terms of the step model ([`StepModel::TERMS`]).
pub const NUM_TERMS: usize = 8;

const ALL_TERMS: [usize; NUM_TERMS] = [0, 1, 2, 3, 4, 5, 6, 7];

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
    /// [`fit_prefill_steps`] (`simfid profile fit --server vllm --run …`); 0 in the
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
    /// Extra seconds of a step that carries a prefill chunk, fitted by [`fit_prefill_steps`].
    /// vLLM runs decode-only steps as full CUDA
    /// graphs and steps with a prefill as piecewise graphs with attention outside them, which
    /// costs several milliseconds more on a small model; 0 in the transformers profile.
    #[serde(default)]
    pub mixed_step_s: f64,
    /// Extra seconds of a step that continues a prefill begun in an earlier step (a chunk
    /// after the first of a prompt longer than the token budget), fitted by
    /// [`fit_prefill_steps`]. On vLLM 0.24 the step that finishes a chunked prompt takes
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

    fn features(&self, n: u32, q: u64, kv: u64) -> [f64; NUM_TERMS] {
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

    /// Robust least-squares fit: an ordinary fit, then observations whose relative residual is
    /// more than three times the median one (and more than 10%) are set aside and the model is
    /// fitted again, until nothing changes. Steps that stall for a CUDA-graph capture (the
    /// first step of a new shape costs ~100 ms more) are such outliers; they are reported by
    /// [`StepModel::outliers`], not modelled.
    pub fn fit(obs: &[StepObservation], padding: Padding) -> Result<StepModel> {
        Self::fit_terms(obs, padding, &ALL_TERMS)
    }

    /// [`StepModel::fit`] on some of the [`StepModel::TERMS`] only (indices; the others stay
    /// 0): for data that cannot tell terms apart (in decode-only steps the query tokens are
    /// the request count).
    pub fn fit_terms(
        obs: &[StepObservation],
        padding: Padding,
        terms: &[usize],
    ) -> Result<StepModel> {
        let mut kept: Vec<StepObservation> = obs.to_vec();
        let mut model = Self::fit_plain_terms(&kept, padding, terms)?;
        for _ in 0..5 {
            let cut = model.outlier_cut(&kept);
            let next: Vec<StepObservation> = kept
                .iter()
                .copied()
                .filter(|o| model.rel_residual(o).abs() <= cut)
                .collect();
            if next.len() == kept.len() || next.len() < 3 {
                break;
            }
            kept = next;
            model = Self::fit_plain_terms(&kept, padding, terms)?;
        }
        Ok(model)
    }

    fn rel_residual(&self, o: &StepObservation) -> f64 {
        (self.predict(o.requests, o.q_tokens, o.kv_tokens) - o.seconds) / o.seconds
    }

    fn outlier_cut(&self, obs: &[StepObservation]) -> f64 {
        let mut r: Vec<f64> = obs.iter().map(|o| self.rel_residual(o).abs()).collect();
        r.sort_by(f64::total_cmp);
        let med = r.get(r.len() / 2).copied().unwrap_or(0.0);
        (3.0 * med).max(0.10)
    }

    /// Observations the robust fit set aside (relative residual beyond its cut).
    pub fn outliers(&self, obs: &[StepObservation]) -> Vec<StepObservation> {
        let cut = self.outlier_cut(obs);
        obs.iter()
            .copied()
            .filter(|o| self.rel_residual(o).abs() > cut)
            .collect()
    }

    /// Ordinary least squares on all observations.
    pub fn fit_plain(obs: &[StepObservation], padding: Padding) -> Result<StepModel> {
        Self::fit_plain_terms(obs, padding, &ALL_TERMS)
    }

    fn fit_plain_terms(
        obs: &[StepObservation],
        padding: Padding,
        terms: &[usize],
    ) -> Result<StepModel> {
        if obs.len() < 3 {
            return Err(Error::Config(format!(
                "a step model needs at least 3 observed steps, got {}",
                obs.len()
            )));
        }
        let mut probe = StepModel::new(&[]);
        probe.padding = padding;
        let rows: Vec<[f64; NUM_TERMS]> = obs
            .iter()
            .map(|o| probe.features(o.requests, o.q_tokens, o.kv_tokens))
            .collect();
        // Drop columns that do not vary (beyond the intercept) so the system stays regular.
        let mut cols = vec![0usize];
        for j in (1..NUM_TERMS).filter(|j| terms.contains(j)) {
            let first = rows[0][j];
            if rows
                .iter()
                .any(|r| (r[j] - first).abs() > 1e-9 * first.abs().max(1.0))
            {
                cols.push(j);
            }
        }
        let coef_sub = loop {
            match least_squares(&rows, obs, &cols) {
                Some(c) => break c,
                None if cols.len() > 1 => {
                    cols.pop();
                }
                None => {
                    return Err(Error::Config("step observations are degenerate".into()));
                }
            }
        };
        let mut coef = vec![0.0; NUM_TERMS];
        for (k, &j) in cols.iter().enumerate() {
            coef[j] = coef_sub[k];
        }
        let min_step_s = obs.iter().map(|o| o.seconds).fold(f64::INFINITY, f64::min);
        probe.coef = coef;
        probe.min_step_s = min_step_s;
        Ok(probe)
    }

    /// Root-mean-square and largest relative residual of the model on `obs`.
    pub fn residuals(&self, obs: &[StepObservation]) -> (f64, f64) {
        let mut sq = 0.0;
        let mut worst: f64 = 0.0;
        for o in obs {
            let rel = (self.predict(o.requests, o.q_tokens, o.kv_tokens) - o.seconds) / o.seconds;
            sq += rel * rel;
            worst = worst.max(rel.abs());
        }
        ((sq / obs.len().max(1) as f64).sqrt(), worst)
    }
}

/// Solves the normal equations of the relative least-squares problem (each observation
/// weighted by 1/seconds², so a 25 ms step and a 200 ms step count alike) on the given
/// columns; `None` when singular.
fn least_squares(
    rows: &[[f64; NUM_TERMS]],
    obs: &[StepObservation],
    cols: &[usize],
) -> Option<Vec<f64>> {
    let k = cols.len();
    // Scale columns to unit max to keep the system well conditioned.
    let scale: Vec<f64> = cols
        .iter()
        .map(|&j| {
            rows.iter()
                .map(|r| r[j].abs())
                .fold(0.0, f64::max)
                .max(1e-300)
        })
        .collect();
    let mut a = vec![vec![0.0; k + 1]; k];
    for (r, o) in rows.iter().zip(obs) {
        let w = 1.0 / o.seconds.max(1e-9);
        for i in 0..k {
            let xi = r[cols[i]] / scale[i] * w;
            for j in 0..k {
                a[i][j] += xi * r[cols[j]] / scale[j] * w;
            }
            a[i][k] += xi * o.seconds * w;
        }
    }
    // Gaussian elimination with partial pivoting.
    for c in 0..k {
        let p = (c..k).max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs()))?;
        if a[p][c].abs() < 1e-12 {
            return None;
        }
        a.swap(c, p);
        let pivot = a[c].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != c {
                let f = row[c] / pivot[c];
                for (x, p) in row[c..].iter_mut().zip(&pivot[c..]) {
                    *x -= f * p;
                }
            }
        }
    }
    Some((0..k).map(|i| a[i][k] / a[i][i] / scale[i]).collect())
}

/// A step profile: the fitted model plus the client-visible serving delay and provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepProfile {
    /// Format name (`simfid-step-profile`).
    pub format: String,
    /// Format version.
    pub format_version: String,
    /// Model served.
    pub model: String,
    /// GPU.
    pub gpu: Option<String>,
    /// Server description.
    pub server: Option<String>,
    /// The step model.
    pub step: StepModel,
    /// Delay between the end of the step that produced a token and the client receiving it,
    /// plus the request's way in (HTTP, tokenisation), estimated from idle-server TTFTs.
    pub serving_delay_s: f64,
    /// Time from a request's send to its arrival in the server's scheduler queue (HTTP,
    /// tokenisation on the event loop). It decides which step a request can join; the
    /// client-visible part of it is in [`StepProfile::serving_delay_s`] too, so a replay
    /// delays arrivals by this and tokens by `serving_delay_s − arrival_delay_s`.
    #[serde(default)]
    pub arrival_delay_s: f64,
    /// Fit quality: RMS and largest relative residual.
    pub fit_rms_rel: f64,
    /// Largest relative residual.
    pub fit_max_rel: f64,
    /// The observations the model was fitted on.
    pub observations: Vec<StepObservation>,
}

impl StepProfile {
    /// Reads a step profile written by `simfid profile fit`.
    pub fn from_file(path: &std::path::Path) -> Result<StepProfile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
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

/// A controlled experiment whose steps have a known composition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Experiment {
    /// `batch` requests sent together with `prompt` tokens each, decoding `output` tokens.
    Decode {
        /// Requests decoding together.
        batch: u32,
        /// Prompt length of each.
        prompt: u32,
        /// Output length of each.
        output: u32,
    },
    /// `batch` long-decoding requests; then one probe prompt at a time arrives (every
    /// `spacing_s`), each with 2 output tokens. The step that prefills a probe is observed as
    /// one gap in the decoders' streams.
    Mixed {
        /// Background decoders.
        batch: u32,
        /// Their prompt length.
        prompt: u32,
        /// Probe prompt lengths, in arrival order.
        probes: Vec<u32>,
        /// Time between probes.
        spacing_s: f64,
        /// Arrival of the first probe (after the decoders' prompts are prefilled).
        #[serde(default)]
        start_s: f64,
    },
}

impl Experiment {
    /// The default plan: decode batches of 1–64 at two contexts, and probes of 64–1984 tokens
    /// into 1 and 16 decoders. About 40 s of server time in total for a ~25 ms step.
    pub fn default_plan() -> Vec<(String, Experiment)> {
        let mut plan = Vec::new();
        // Batch × context stays well inside 512 blocks of 256 tokens (the goldens' cache).
        for (prompt, batches) in [
            (256u32, &[1u32, 2, 4, 8, 16, 32, 64][..]),
            (2048, &[1, 2, 4, 8, 16, 32][..]),
        ] {
            for &batch in batches {
                // Prompts are prefilled 2048 tokens per step, so outputs start staggered:
                // lengthen them by that many steps to keep ~40 steps with every request.
                let output = 40 + (batch * prompt).div_ceil(2048);
                plan.push((
                    format!("decode-b{batch}-p{prompt}"),
                    Experiment::Decode {
                        batch,
                        prompt,
                        output,
                    },
                ));
            }
        }
        // Probes into small and large decode contexts, so that the cost of a prefill chunk
        // against the padded KV context (their product) is identifiable.
        for (batch, prompt, start_s) in [(1u32, 256u32, 0.4), (16, 256, 0.4), (16, 2048, 1.0)] {
            plan.push((
                format!("mixed-b{batch}-p{prompt}"),
                Experiment::Mixed {
                    batch,
                    prompt,
                    probes: vec![64, 256, 512, 1024, 1536, 1984, 128, 768, 1280, 1792],
                    spacing_s: 0.4,
                    start_s,
                },
            ));
        }
        plan
    }

    /// The workload that runs the experiment.
    pub fn workload(&self, name: &str) -> Workload {
        let reqs = match self {
            Experiment::Decode {
                batch,
                prompt,
                output,
            } => (0..*batch as u64)
                .map(|id| RequestSpec {
                    id,
                    arrival_s: 0.0,
                    prefill_tokens: *prompt,
                    decode_tokens: *output,
                })
                .collect(),
            Experiment::Mixed {
                batch,
                prompt,
                probes,
                spacing_s,
                start_s,
            } => {
                let n = probes.len() as f64;
                // Decoders long enough to outlast every probe at up to 60 steps per second.
                let output = ((start_s + (n + 2.0) * spacing_s) * 60.0).ceil() as u32;
                let mut v: Vec<RequestSpec> = (0..*batch as u64)
                    .map(|id| RequestSpec {
                        id,
                        arrival_s: 0.0,
                        prefill_tokens: *prompt,
                        decode_tokens: output,
                    })
                    .collect();
                for (k, &p) in probes.iter().enumerate() {
                    v.push(RequestSpec {
                        id: *batch as u64 + k as u64,
                        arrival_s: start_s + k as f64 * spacing_s,
                        prefill_tokens: p,
                        decode_tokens: 2,
                    });
                }
                v
            }
        };
        Workload::new(
            reqs,
            format!("simfid step-profile experiment {name}: {self:?}"),
        )
    }

    /// Step observations from the recorded run of this experiment.
    pub fn observations(&self, run: &Run, gap_s: f64) -> Vec<StepObservation> {
        let steps = extract_steps(run, gap_s);
        let prompt_of = |id: u64| {
            run.requests
                .iter()
                .find(|r| r.id == id)
                .map_or(0, |r| r.prompt_tokens as u64)
        };
        let mut obs = Vec::new();
        match self {
            Experiment::Decode { batch, .. } => {
                // Steady decode steps: every request in the step, none in its first token.
                for w in steps.windows(2) {
                    let (a, b) = (&w[0], &w[1]);
                    let full = |s: &ObservedStep| {
                        s.tokens.len() == *batch as usize && s.tokens.iter().all(|&(_, i)| i > 0)
                    };
                    if full(a) && full(b) {
                        let kv: u64 = b
                            .tokens
                            .iter()
                            .map(|&(id, i)| prompt_of(id) + i as u64 - 1)
                            .sum();
                        obs.push(StepObservation {
                            requests: *batch,
                            q_tokens: *batch as u64,
                            kv_tokens: kv,
                            seconds: b.t - a.t,
                        });
                    }
                }
            }
            Experiment::Mixed { batch, .. } => {
                // A step carrying a probe's first token right after a step of decoders only.
                for w in steps.windows(2) {
                    let (a, b) = (&w[0], &w[1]);
                    let probe_first: Vec<u64> = b
                        .tokens
                        .iter()
                        .filter(|&&(id, i)| id >= *batch as u64 && i == 0)
                        .map(|&(id, _)| id)
                        .collect();
                    let decoders_a = a
                        .tokens
                        .iter()
                        .filter(|&&(id, i)| id < *batch as u64 && i > 0)
                        .count();
                    let decoders_b: Vec<(u64, u32)> = b
                        .tokens
                        .iter()
                        .copied()
                        .filter(|&(id, i)| id < *batch as u64 && i > 0)
                        .collect();
                    let others_b = b.tokens.len() - decoders_b.len() - probe_first.len();
                    if probe_first.len() == 1
                        && decoders_a == *batch as usize
                        && decoders_b.len() == *batch as usize
                        && others_b == 0
                        && a.tokens.len() == *batch as usize
                    {
                        let p = prompt_of(probe_first[0]);
                        let kv: u64 = decoders_b
                            .iter()
                            .map(|&(id, i)| prompt_of(id) + i as u64 - 1)
                            .sum();
                        obs.push(StepObservation {
                            requests: batch + 1,
                            q_tokens: *batch as u64 + p,
                            kv_tokens: kv,
                            seconds: b.t - a.t,
                        });
                    }
                }
            }
        }
        obs
    }
}

/// Estimates the serving delay (request in + token out) from runs: for every request that
/// arrived to an idle server and whose prompt fits one step, TTFT minus the predicted step.
pub fn serving_delay(model: &StepModel, runs: &[&Run]) -> Option<f64> {
    let mut d = Vec::new();
    for run in runs {
        for r in &run.requests {
            let (Some(sent), Some(first)) = (r.sent, r.chunks.first()) else {
                continue;
            };
            // Only the first request of a run is guaranteed an idle server.
            if r.id != run.requests.iter().map(|x| x.id).min().unwrap_or(0) {
                continue;
            }
            let step = model.predict(1, r.prompt_tokens as u64, 0);
            d.push(first.t - sent - step);
        }
    }
    crate::fidelity::quantile::quantile(&d, 0.5)
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
    fn fit_recovers_a_known_model() {
        let t = truth();
        let mut obs = Vec::new();
        for n in [1u32, 2, 4, 8, 16, 32, 64] {
            for kv in [256u64, 2048, 20_000, 70_000] {
                for q in [n as u64, n as u64 + 512, n as u64 + 1900] {
                    let kv = kv * n as u64 / 8;
                    obs.push(StepObservation {
                        requests: n,
                        q_tokens: q,
                        kv_tokens: kv,
                        seconds: t.predict(n, q, kv),
                    });
                }
            }
        }
        let m = StepModel::fit(&obs, Padding::default()).unwrap();
        let (rms, max) = m.residuals(&obs);
        assert!(rms < 1e-9 && max < 1e-8, "{rms} {max} {:?}", m.coef);
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

    #[test]
    fn too_few_observations_are_refused() {
        assert!(StepModel::fit(&[], Padding::default()).is_err());
    }
}

/// One step of a recorded run that finished a request's prefill: read off the client's chunk
/// times at light load (see [`fit_prefill_steps`]).
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

/// Fits a step model's prefill terms on [`prefill_steps`]: what each step took beyond the
/// model's decode-step prediction for its requests is
/// `mixed_step_s + prefill_token_s × chunk + continued_prefill_s × [prefix > 0]`, by least squares after setting aside steps whose
/// excess is more than three times the median one (a step delayed by anything else).
/// Returns `(mixed_step_s, prefill_token_s, continued_prefill_s, steps used)`, or `None` with
/// too few steps of each kind.
pub fn fit_prefill_steps(
    model: &StepModel,
    steps: &[PrefillStep],
) -> Option<(f64, f64, f64, usize)> {
    let excess: Vec<(f64, f64, f64)> = steps
        .iter()
        .map(|s| {
            let n = s.decoders + 1;
            let base = model.predict(n, n as u64, s.kv);
            (
                s.chunk as f64,
                if s.prefix > 0 { 1.0 } else { 0.0 },
                s.seconds - base,
            )
        })
        .collect();
    let mut abs: Vec<f64> = excess.iter().map(|e| e.2.abs()).collect();
    abs.sort_by(f64::total_cmp);
    let cut = 3.0 * abs.get(abs.len() / 2).copied()?;
    let kept: Vec<&(f64, f64, f64)> = excess.iter().filter(|e| e.2.abs() <= cut).collect();
    let cont = kept.iter().filter(|e| e.1 > 0.0).count();
    if kept.len() - cont < 5 || cont < 5 {
        return None;
    }
    // Normal equations of y = m + c·chunk + k·[continued], solved by Cramer's rule.
    let mut a = [[0.0f64; 3]; 3];
    let mut v = [0.0f64; 3];
    for e in &kept {
        let x = [1.0, e.0, e.1];
        for i in 0..3 {
            for j in 0..3 {
                a[i][j] += x[i] * x[j];
            }
            v[i] += x[i] * e.2;
        }
    }
    let det = |m: &[[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(&a);
    if d.abs() < 1e-12 {
        return None;
    }
    let solve = |k: usize| {
        let mut m = a;
        for i in 0..3 {
            m[i][k] = v[i];
        }
        det(&m) / d
    };
    Some((solve(0), solve(1), solve(2), kept.len()))
}
