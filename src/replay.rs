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

/// Built-in presets, as `(name, JSON)` compiled into the library.
const BUILTIN: &[(&str, &str)] = &[];

impl Preset {
    /// A built-in preset by name; an unknown name lists the known ones.
    pub fn builtin(name: &str) -> Result<Preset> {
        let Some((_, json)) = BUILTIN.iter().find(|(n, _)| *n == name) else {
            let known: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            return Err(Error::Config(format!(
                "unknown preset '{name}'; known presets: {}",
                if known.is_empty() {
                    "(none)".to_string()
                } else {
                    known.join(", ")
                }
            )));
        };
        serde_json::from_str(json).map_err(|e| Error::Config(format!("preset {name}: {e}")))
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
