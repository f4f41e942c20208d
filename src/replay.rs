//! Replaying a real run in the simulator: the same requests (lengths, send times), a
//! configuration that describes the real server (a [`Preset`]), and the simulated run in the
//! same [`Run`] form, ready for [`crate::fidelity::compare`].

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::exec::ExecModel;
use crate::exec::step::StepProfile;
use crate::fixture::{Run, RunMeta, Source};
use crate::model::{DeviceSpec, ModelSpec};
use crate::sim::{RecordSink, RequestRecord, SchedulerConfig, SimConfig, Simulator};
use crate::workload::RequestSpec;

/// Everything needed to simulate one real deployment: model, GPU, scheduler with its KV
/// capacity, and a measured step-time profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    /// Name, e.g. `h100-qwen3-0.6b-hfcb`.
    pub name: String,
    /// What it describes.
    pub description: String,
    /// Model.
    pub model: ModelSpec,
    /// GPU.
    pub device: DeviceSpec,
    /// Replica scheduler and its knobs (KV capacity pinned to the server's).
    pub scheduler: SchedulerConfig,
    /// Step-time profile measured on the server.
    pub step: StepProfile,
}

/// Built-in presets: `(name, step profile JSON)`, compiled into the library. The step
/// profile of `h100-qwen3-0.6b-hfcb` was measured on this project's H100 (`simfid profile fit`
/// on `fixtures/profiles/h100/qwen3-0.6b/hf-cb/step-experiments/`) and calibrated on the
/// goldens' calibration runs (`simfid profile calibrate`), never on the runs it is judged on.
const BUILTIN: &[(&str, &str)] = &[(
    "h100-qwen3-0.6b-hfcb",
    include_str!("../fixtures/profiles/h100/qwen3-0.6b/hf-cb/step_profile_calibrated.json"),
)];

impl Preset {
    /// A built-in preset by name; an unknown name lists the known ones.
    pub fn builtin(name: &str) -> Result<Preset> {
        let Some((_, json)) = BUILTIN.iter().find(|(n, _)| *n == name) else {
            return Err(Error::Config(format!(
                "unknown preset '{name}'; known presets: {}",
                Self::builtin_names().join(", ")
            )));
        };
        let step: StepProfile =
            serde_json::from_str(json).map_err(|e| Error::Config(format!("preset {name}: {e}")))?;
        Preset::hf_cb_qwen3_h100(step)
    }

    /// Names of the built-in presets.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// Qwen3-0.6B on an H100 behind `transformers serve --continuous-batching
    /// --cb-num-blocks 512 --cb-max-batch-tokens 2048` (this project's goldens), with a step
    /// profile measured on it.
    pub fn hf_cb_qwen3_h100(step: StepProfile) -> Result<Preset> {
        Ok(Preset {
            name: "h100-qwen3-0.6b-hfcb".into(),
            description: "Qwen3-0.6B (bf16) on an H100, transformers 5.17 serve \
                          --continuous-batching --cb-use-cuda-graph --cb-num-blocks 512 \
                          --cb-max-batch-tokens 2048"
                .into(),
            model: ModelSpec::qwen3_0_6b(),
            device: DeviceSpec::builtin("h100")?,
            scheduler: SchedulerConfig::new(crate::sim::ReplicaSchedulerKind::HfCb),
            step,
        })
    }

    /// Reads a preset from a JSON file.
    pub fn from_file(path: &std::path::Path) -> Result<Preset> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// The simulator configuration of this preset.
    pub fn sim_config(&self) -> SimConfig {
        let mut cfg = SimConfig::new(self.model.clone(), self.device.clone(), self.scheduler.kind);
        cfg.scheduler = self.scheduler.clone();
        cfg.max_request_tokens = self.model.max_position_embeddings.max(4096);
        cfg
    }

    /// Replays `real` under this preset.
    pub fn replay(&self, real: &Run) -> Result<Run> {
        replay(
            real,
            self.sim_config(),
            &self.step.step,
            self.step.serving_delay_s,
            &self.name,
        )
    }
}

/// The requests of a real run as the server saw them: sent at their actual send time, with
/// the number of output tokens the server produced. Requests that failed are left out.
pub fn replay_workload(real: &Run) -> Vec<RequestSpec> {
    let mut v: Vec<RequestSpec> = real
        .requests
        .iter()
        .filter(|r| r.ok())
        .map(|r| RequestSpec {
            id: r.id,
            arrival_s: r.sent.unwrap_or(r.scheduled),
            prefill_tokens: r.usage_prompt_tokens.unwrap_or(r.prompt_tokens).max(1),
            decode_tokens: r.received_tokens().max(1),
        })
        .collect();
    v.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
    v
}

/// Simulates the requests of `real` with `cfg` and `exec`; every output token reaches the
/// client `serving_delay_s` after the step that produced it. The result keeps the real run's
/// request ids and scheduled times, so the two runs compare request by request.
pub fn replay(
    real: &Run,
    cfg: SimConfig,
    exec: &dyn ExecModel,
    serving_delay_s: f64,
    label: &str,
) -> Result<Run> {
    let workload = replay_workload(real);
    if workload.is_empty() {
        return Err(Error::Config(
            "the real run has no successful request to replay".into(),
        ));
    }
    let mut records: Vec<RequestRecord> = Vec::new();
    let mut sim = Simulator::new(cfg, exec)?;
    let summary = sim.run(workload, &mut records as &mut dyn RecordSink)?;
    if summary.stalled {
        return Err(Error::Config(format!(
            "the replay stalled with {} requests unfinished",
            summary.unfinished
        )));
    }
    for r in &mut records {
        for t in &mut r.token_times {
            *t += serving_delay_s;
        }
    }
    let mut meta = RunMeta::new(Source::Sim, real.meta.model.clone());
    meta.gpu = real.meta.gpu.clone();
    meta.workload = format!("replay of: {}", real.meta.workload);
    meta.extra.insert(
        "preset".into(),
        serde_json::Value::String(label.to_string()),
    );
    let mut run = Run::from_records(meta, &records);
    // Keep the real run's scheduled times so workload checks compare like with like.
    for r in &mut run.requests {
        if let Some(orig) = real.requests.iter().find(|x| x.id == r.id) {
            r.scheduled = orig.scheduled;
            r.output_tokens = orig.output_tokens;
        }
    }
    Ok(run)
}

/// Calibrates a step profile on recorded runs: the per-prompt-token cost
/// ([`crate::exec::step::StepModel::prefill_token_s`], from `prefill_grid`, seconds per token)
/// and the serving delay (from `delay_grid`, seconds) that minimise the mean squared relative
/// error of TTFT p50/p90, ITL p50/p90, TPOT p50 and E2E p50 over the runs (vLLM-bench
/// definitions). Returns `(prefill_token_s, serving_delay_s, score)`.
pub fn calibrate(
    preset: &Preset,
    runs: &[Run],
    prefill_grid: &[f64],
    delay_grid: &[f64],
) -> Result<(f64, f64, f64)> {
    use crate::fidelity::{Metric, MetricOptions, RunMetrics};
    let q = |v: &[f64], p: f64| crate::fidelity::quantile::quantile(v, p).unwrap_or(f64::NAN);
    let opts = MetricOptions::default();
    let summary = |run: &Run| -> Result<Vec<f64>> {
        let m = RunMetrics::compute(run, &opts);
        let get = |k| m.samples(k).map(<[f64]>::to_vec).unwrap_or_default();
        let (ttft, itl, tpot, e2e) = (
            get(Metric::Ttft),
            get(Metric::Itl),
            get(Metric::Tpot),
            get(Metric::E2e),
        );
        Ok(vec![
            q(&ttft, 0.5),
            q(&ttft, 0.9),
            q(&itl, 0.5),
            q(&itl, 0.9),
            q(&tpot, 0.5),
            q(&e2e, 0.5),
        ])
    };
    let reals: Vec<Vec<f64>> = runs.iter().map(summary).collect::<Result<_>>()?;
    let mut best = (f64::NAN, f64::NAN, f64::INFINITY);
    for (&x, &d) in prefill_grid
        .iter()
        .flat_map(|x| delay_grid.iter().map(move |d| (x, d)))
    {
        let mut p = preset.clone();
        p.step.step.prefill_token_s = x;
        p.step.serving_delay_s = d;
        let mut score = 0.0f64;
        let mut n = 0.0f64;
        for (run, real) in runs.iter().zip(&reals) {
            let sim = summary(&p.replay(run)?)?;
            for (s, r) in sim.iter().zip(real) {
                if r.is_finite() && *r > 0.0 && s.is_finite() {
                    score += ((s - r) / r).powi(2);
                    n += 1.0;
                }
            }
        }
        let score = score / n.max(1.0);
        if score < best.2 {
            best = (x, d, score);
        }
    }
    Ok(best)
}
