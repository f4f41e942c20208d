//! Latency metrics computed from a [`Run`]'s raw times under a named definition.
//!
//! Tools disagree on what "ITL" and "TPOT" mean, so every number simfid reports is computed
//! from the chunk times under one [`MetricDef`]. With `tokens` = output tokens *received* (the
//! server's `usage.completion_tokens` when it gave one, else the sum of the chunks' token
//! counts — what vLLM bench calls `output_len`), `base` = the send time (`sent`), or the
//! arrival (`scheduled`) for [`MetricDef::Vidur`], `first`/`last` = the first/last content
//! chunk:
//!
//! | metric | `vllm-bench` (default) | `vidur` | `aiperf` |
//! | --- | --- | --- | --- |
//! | TTFT | `first − base` | `first − arrival` (`prefill_e2e_time`) | as vllm-bench |
//! | ITL | every gap between consecutive chunks, pooled over requests | per-token gaps (TBT) | per request `(last − first)/(tokens − 1)` |
//! | TPOT | per request `(last − first)/(tokens − 1)`, requests with `tokens > 1` | `(last − first)/tokens` (`decode_time_execution_plus_preemption_normalized`) | as vllm-bench |
//! | E2E | `last − base` | `last − arrival` (`request_e2e_time`) | as vllm-bench |
//!
//! Also: normalised E2E = E2E / tokens (Vidur paper), TBT = per-token gaps (a chunk of `n`
//! tokens after a gap `g` gives `n` samples `g/n`; Vidur's
//! `decode_token_execution_plus_preemption_time`), and the scheduling delay where the run
//! knows it (Vidur imports; see [`SCHEDULING_DELAY_KEY`]).
//!
//! Sources: vLLM `vllm/benchmarks/serve.py` `calculate_metrics` (TPOT divides by
//! `output_len − 1`, ITLs are pooled, goodput counts requests meeting every SLO); Vidur
//! `vidur/metrics/metrics_store.py`; AIPerf defines ITL as `(request_latency − TTFT) /
//! (output_sequence_length − 1)`.
//!
//! Failed requests ([`RequestRun::ok`] false) are excluded from every latency metric and
//! counted. [`MetricOptions::warmup`] drops the first requests (by scheduled time) and
//! [`MetricOptions::window`] keeps only requests scheduled inside a steady-state window.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::fixture::{RequestRun, Run, TokenTimes};

/// The run facts' keys, defined by the format ([`crate::fixture::RunMeta::token_times`] and
/// its siblings read them).
pub use crate::fixture::{ARRIVALS_KEY, SCHEDULING_DELAY_KEY, TOKEN_TIMES_KEY};

/// A named set of metric definitions (see the module docs for the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricDef {
    /// vLLM `bench serve`'s definitions (the default).
    #[default]
    VllmBench,
    /// Vidur's `request_metrics.csv` definitions (times from arrival, TPOT divides by D).
    Vidur,
    /// AIPerf's: ITL is the per-request mean gap, i.e. vLLM's TPOT.
    Aiperf,
}

impl MetricDef {
    /// All definitions.
    pub const ALL: [MetricDef; 3] = [MetricDef::VllmBench, MetricDef::Vidur, MetricDef::Aiperf];

    /// The name used on the command line (`vllm-bench`, `vidur`, `aiperf`).
    pub fn name(self) -> &'static str {
        match self {
            MetricDef::VllmBench => "vllm-bench",
            MetricDef::Vidur => "vidur",
            MetricDef::Aiperf => "aiperf",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<MetricDef> {
        MetricDef::ALL.into_iter().find(|d| d.name() == s)
    }
}

impl fmt::Display for MetricDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A latency metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Time to first token.
    Ttft,
    /// Inter-token latency.
    Itl,
    /// Time per output token (per request).
    Tpot,
    /// End-to-end latency.
    E2e,
    /// E2E / output tokens (Vidur paper's normalised latency).
    E2eNorm,
    /// Per-token gaps (Vidur's TBT).
    Tbt,
    /// First schedule − arrival, where the run knows it.
    SchedDelay,
}

impl Metric {
    /// The four metrics every report shows.
    pub const MAIN: [Metric; 4] = [Metric::Ttft, Metric::Itl, Metric::Tpot, Metric::E2e];
    /// All metrics.
    pub const ALL: [Metric; 7] = [
        Metric::Ttft,
        Metric::Itl,
        Metric::Tpot,
        Metric::E2e,
        Metric::E2eNorm,
        Metric::Tbt,
        Metric::SchedDelay,
    ];

    /// Lowercase key (`ttft`, `itl`, `tpot`, `e2e`, `e2e_norm`, `tbt`, `sched_delay`).
    pub fn key(self) -> &'static str {
        match self {
            Metric::Ttft => "ttft",
            Metric::Itl => "itl",
            Metric::Tpot => "tpot",
            Metric::E2e => "e2e",
            Metric::E2eNorm => "e2e_norm",
            Metric::Tbt => "tbt",
            Metric::SchedDelay => "sched_delay",
        }
    }

    /// Display name (`TTFT`, …).
    pub fn label(self) -> &'static str {
        match self {
            Metric::Ttft => "TTFT",
            Metric::Itl => "ITL",
            Metric::Tpot => "TPOT",
            Metric::E2e => "E2E",
            Metric::E2eNorm => "E2E/token",
            Metric::Tbt => "TBT",
            Metric::SchedDelay => "scheduling delay",
        }
    }

    /// Parses a key (also accepts `e2el`, vLLM's name).
    pub fn parse(s: &str) -> Option<Metric> {
        if s == "e2el" {
            return Some(Metric::E2e);
        }
        Metric::ALL.into_iter().find(|m| m.key() == s)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A steady-state window on scheduled times, in seconds after the run's first scheduled
/// request: requests scheduled in `[start_s, end_s)` are kept.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Start (inclusive).
    pub start_s: f64,
    /// End (exclusive).
    pub end_s: f64,
}

/// How to turn a run into metric samples.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MetricOptions {
    /// Which definitions.
    pub def: MetricDef,
    /// Drop the first `warmup` requests (ordered by scheduled time, then id).
    pub warmup: usize,
    /// Keep only requests scheduled inside this window.
    pub window: Option<Window>,
}

/// Service-level objectives for goodput (vLLM bench `--goodput`): a request is good when it
/// meets every objective given. Milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Slo {
    /// TTFT objective.
    pub ttft_ms: Option<f64>,
    /// TPOT objective (a request with one token counts as TPOT 0, as in vLLM bench).
    pub tpot_ms: Option<f64>,
    /// E2E objective.
    pub e2e_ms: Option<f64>,
}

/// Per-request latencies (seconds) of a successful request, for goodput.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestLatency {
    /// Request id.
    pub id: u64,
    /// TTFT.
    pub ttft: f64,
    /// TPOT (`None` with a single token under vLLM's definition).
    pub tpot: Option<f64>,
    /// E2E.
    pub e2e: f64,
    /// Output tokens received.
    pub tokens: u32,
}

/// The latencies of one successful request in seconds: the formulas of the module's table,
/// written once, for runs ([`RunMetrics::compute`]) and for the command line's summaries of
/// simulations and recordings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestSamples {
    /// `first − base`.
    pub ttft: f64,
    /// `last − base`.
    pub e2e: f64,
    /// TPOT under the definition asked for (`None` when it has too few tokens).
    pub tpot: Option<f64>,
    /// vLLM bench's TPOT, `(last − first)/(tokens − 1)` (`None` for a single token).
    pub tpot_vllm: Option<f64>,
}

impl RequestSamples {
    /// The latencies under `def` of a request whose first and last output chunks arrived at
    /// `first` and `last`, counted from `base` (the send time; the arrival under
    /// [`MetricDef::Vidur`]), with `tokens` output tokens received.
    pub fn new(def: MetricDef, base: f64, first: f64, last: f64, tokens: u32) -> RequestSamples {
        let tpot_vllm = (tokens > 1).then(|| (last - first) / (tokens - 1) as f64);
        let tpot = match def {
            MetricDef::Vidur => (tokens > 0).then(|| (last - first) / tokens as f64),
            _ => tpot_vllm,
        };
        RequestSamples {
            ttft: first - base,
            e2e: last - base,
            tpot,
            tpot_vllm,
        }
    }
}

/// The gaps between consecutive times (vLLM bench's ITL samples of one request, pooled over
/// requests).
pub fn gaps(times: impl IntoIterator<Item = f64>) -> impl Iterator<Item = f64> {
    let mut prev: Option<f64> = None;
    times.into_iter().filter_map(move |t| {
        let gap = prev.map(|p| t - p);
        prev = Some(t);
        gap
    })
}

/// The metric samples of one run (seconds), with its request counts.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMetrics {
    /// The definitions used.
    pub def: MetricDef,
    /// Requests in the run.
    pub requests: usize,
    /// Requests left after warm-up and window.
    pub considered: usize,
    /// Of those, successful.
    pub ok: usize,
    /// Of those, failed (excluded from latencies).
    pub failed: usize,
    /// The first failure's message, if any.
    pub first_error: Option<String>,
    /// Successful requests' latencies.
    pub per_request: Vec<RequestLatency>,
    /// First send → last chunk of the considered requests (seconds).
    pub duration_s: f64,
    /// Output tokens received by successful requests.
    pub output_tokens: u64,
    /// Prompt tokens of successful requests.
    pub input_tokens: u64,
    samples: BTreeMap<Metric, Vec<f64>>,
    unavailable: BTreeMap<Metric, String>,
}

/// Whether the run holds every chunk's time (not only first and last).
pub fn token_times_known(run: &Run) -> bool {
    run.meta.token_times() == TokenTimes::All
}

/// Whether the run knows when each request arrived.
pub fn arrivals_known(run: &Run) -> bool {
    run.meta.arrivals_known()
}

/// The requests kept by warm-up and window, in scheduled order.
pub fn considered<'a>(run: &'a Run, opts: &MetricOptions) -> Vec<&'a RequestRun> {
    let mut reqs: Vec<&RequestRun> = run.requests.iter().collect();
    reqs.sort_by(|a, b| a.scheduled.total_cmp(&b.scheduled).then(a.id.cmp(&b.id)));
    let t0 = reqs.first().map_or(0.0, |r| r.scheduled);
    reqs.into_iter()
        .skip(opts.warmup)
        .filter(|r| {
            opts.window.is_none_or(|w| {
                let t = r.scheduled - t0;
                t >= w.start_s && t < w.end_s
            })
        })
        .collect()
}

impl RunMetrics {
    /// Computes every metric of `run`.
    pub fn compute(run: &Run, opts: &MetricOptions) -> RunMetrics {
        let def = opts.def;
        let reqs = considered(run, opts);
        let all_times = token_times_known(run);
        let sched: BTreeMap<u64, f64> = run.meta.scheduling_delays();
        let mut m = RunMetrics {
            def,
            requests: run.requests.len(),
            considered: reqs.len(),
            ok: 0,
            failed: 0,
            first_error: None,
            per_request: Vec::new(),
            duration_s: 0.0,
            output_tokens: 0,
            input_tokens: 0,
            samples: BTreeMap::new(),
            unavailable: BTreeMap::new(),
        };
        let mut s: BTreeMap<Metric, Vec<f64>> =
            Metric::ALL.iter().map(|&k| (k, Vec::new())).collect();
        let (mut t_start, mut t_end) = (f64::INFINITY, f64::NEG_INFINITY);
        for r in reqs {
            if let Some(sent) = r.sent {
                t_start = t_start.min(sent);
            }
            if !r.ok() {
                m.failed += 1;
                if m.first_error.is_none() {
                    m.first_error = Some(format!(
                        "request {}: {}",
                        r.id,
                        r.error.as_deref().unwrap_or("no output chunk")
                    ));
                }
                continue;
            }
            m.ok += 1;
            let base = match def {
                MetricDef::Vidur => r.scheduled,
                _ => r.sent.unwrap_or(r.scheduled),
            };
            let (first, last) = (r.chunks[0].t, r.chunks[r.chunks.len() - 1].t);
            t_end = t_end.max(last);
            let tokens = r.received_tokens();
            m.output_tokens += tokens as u64;
            m.input_tokens += r.usage_prompt_tokens.unwrap_or(r.prompt_tokens) as u64;
            let RequestSamples {
                ttft,
                e2e,
                tpot,
                tpot_vllm,
            } = RequestSamples::new(def, base, first, last, tokens);
            s.get_mut(&Metric::Ttft).unwrap().push(ttft);
            s.get_mut(&Metric::E2e).unwrap().push(e2e);
            if let Some(t) = tpot {
                s.get_mut(&Metric::Tpot).unwrap().push(t);
            }
            if tokens > 0 {
                s.get_mut(&Metric::E2eNorm)
                    .unwrap()
                    .push(e2e / tokens as f64);
            }
            if let Some(d) = sched.get(&r.id) {
                s.get_mut(&Metric::SchedDelay).unwrap().push(*d);
            }
            if all_times {
                let tbt = s.get_mut(&Metric::Tbt).unwrap();
                for w in r.chunks.windows(2) {
                    let n = w[1].n.max(1);
                    let g = (w[1].t - w[0].t) / n as f64;
                    tbt.extend(std::iter::repeat_n(g, n as usize));
                }
            }
            match def {
                MetricDef::VllmBench => {
                    if all_times {
                        let itl = s.get_mut(&Metric::Itl).unwrap();
                        itl.extend(gaps(r.chunks.iter().map(|c| c.t)));
                    }
                }
                MetricDef::Aiperf => {
                    if let Some(t) = tpot_vllm {
                        s.get_mut(&Metric::Itl).unwrap().push(t);
                    }
                }
                MetricDef::Vidur => {}
            }
            m.per_request.push(RequestLatency {
                id: r.id,
                ttft,
                tpot: tpot_vllm,
                e2e,
                tokens,
            });
        }
        if def == MetricDef::Vidur && all_times {
            let tbt = s[&Metric::Tbt].clone();
            s.insert(Metric::Itl, tbt);
        }
        if !all_times {
            let why = "the run has only first- and last-token times (e.g. a Vidur \
                       request_metrics.csv), so gaps between tokens are unknown";
            if def != MetricDef::Aiperf {
                m.unavailable.insert(Metric::Itl, why.to_string());
            }
            m.unavailable.insert(Metric::Tbt, why.to_string());
        }
        if sched.is_empty() {
            m.unavailable.insert(
                Metric::SchedDelay,
                "the run does not record scheduling delays".to_string(),
            );
        }
        for (k, v) in s {
            if !m.unavailable.contains_key(&k) {
                m.samples.insert(k, v);
            }
        }
        if t_end > t_start {
            m.duration_s = t_end - t_start;
        }
        m
    }

    /// The samples of a metric (seconds, in request order), or why they are not available.
    pub fn samples(&self, metric: Metric) -> Result<&[f64], &str> {
        match self.samples.get(&metric) {
            Some(v) => Ok(v),
            None => Err(self
                .unavailable
                .get(&metric)
                .map_or("not computed", String::as_str)),
        }
    }

    /// Successful requests per second over [`RunMetrics::duration_s`].
    pub fn request_throughput(&self) -> f64 {
        per_s(self.ok as f64, self.duration_s)
    }

    /// Output tokens per second.
    pub fn output_throughput(&self) -> f64 {
        per_s(self.output_tokens as f64, self.duration_s)
    }

    /// Requests per second that met every objective of `slo` (vLLM bench's goodput).
    pub fn goodput(&self, slo: &Slo) -> f64 {
        let good = self
            .per_request
            .iter()
            .filter(|r| {
                slo.ttft_ms.is_none_or(|x| r.ttft * 1e3 <= x)
                    && slo.tpot_ms.is_none_or(|x| r.tpot.unwrap_or(0.0) * 1e3 <= x)
                    && slo.e2e_ms.is_none_or(|x| r.e2e * 1e3 <= x)
            })
            .count();
        per_s(good as f64, self.duration_s)
    }
}

fn per_s(n: f64, d: f64) -> f64 {
    if d > 0.0 { n / d } else { 0.0 }
}
