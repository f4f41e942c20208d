//! Controlled profiling experiments: workloads whose engine steps have a known composition
//! (B requests decoding together; single prompts arriving into a running decode batch), the
//! step observations read off their recorded runs, and the serving delay estimated from them.

use serde::{Deserialize, Serialize};

use super::step_profile::StepObservation;
use super::steps::{ObservedStep, extract_steps};
use crate::exec::step::StepModel;
use crate::fixture::Run;
use crate::workload::{RequestSpec, Workload};

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
