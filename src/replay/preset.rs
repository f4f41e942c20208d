//! Presets: the simulator configuration of one real deployment (model, GPU, scheduler with
//! its KV capacity, step profile), built in or read from a file, adjusted by a run's server
//! flags.

use serde::{Deserialize, Serialize};

use super::step_profile::StepProfile;
use crate::error::{Error, Result};
use crate::exec::profile::{OpProfile, ProfileFiles};
use crate::exec::vidur::{VidurModel, VidurPredictorConfig};
use crate::fixture::Run;
use crate::model::{DeviceSpec, ModelSpec, NodeSpec};
use crate::sim::{SchedulerConfig, SimConfig};

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
///
/// The step profile of `h200-qwen3-0.6b-vllm` was fitted on the controlled decode experiments
/// recorded against vLLM 0.24 on this project's H200 (`simfid profile fit --server vllm` on
/// `fixtures/profiles/h200/qwen3-0.6b/vllm-0.24/step-experiments/`) and calibrated (prefill
/// cost per token, arrival and serving delays) on the two `calib-*` goldens only.
const BUILTIN: &[(&str, &str)] = &[
    (
        "h100-qwen3-0.6b-hfcb",
        include_str!("../../fixtures/profiles/h100/qwen3-0.6b/hf-cb/step_profile_calibrated.json"),
    ),
    (
        "h200-qwen3-0.6b-vllm",
        include_str!(
            "../../fixtures/profiles/h200/qwen3-0.6b/vllm-0.24/step_profile_calibrated.json"
        ),
    ),
];

/// Scheduler settings of a server, named as vLLM's flags; `None` leaves the preset's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulerKnobs {
    /// Step token budget (`--max-num-batched-tokens`; transformers' `--cb-max-batch-tokens`).
    pub max_num_batched_tokens: Option<u32>,
    /// Most requests running at once (`--max-num-seqs`).
    pub max_num_seqs: Option<u32>,
    /// KV block size in tokens (`--block-size`).
    pub block_size: Option<u32>,
    /// KV capacity in blocks (`--num-gpu-blocks-override`; transformers' `--cb-num-blocks`).
    pub num_gpu_blocks: Option<u64>,
}

/// The servers simfid has a scheduler model and a preset for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// `transformers serve --continuous-batching` (transformers 5.17): the `hf_cb` scheduler.
    TransformersCb,
    /// `vllm serve` (vLLM 0.24, V1 engine): the `vllm_v1` scheduler.
    Vllm,
}

impl ServerKind {
    /// Recognises the server from a fixture header's server name (`vllm 0.24.0`,
    /// `transformers-serve-cb 5.17.0`, …).
    pub fn from_server_name(name: &str) -> Option<ServerKind> {
        let n = name.to_ascii_lowercase();
        if n.contains("vllm") {
            Some(ServerKind::Vllm)
        } else if n.contains("transformers") {
            Some(ServerKind::TransformersCb)
        } else {
            None
        }
    }
}

impl Preset {
    /// A built-in preset by name; an unknown name lists the known ones.
    pub fn builtin(name: &str) -> Result<Preset> {
        let Some((_, json)) = BUILTIN.iter().find(|(n, _)| *n == name) else {
            return Err(Error::UnknownPreset {
                name: name.to_string(),
                known: Self::builtin_names().join(", "),
            });
        };
        let step: StepProfile =
            serde_json::from_str(json).map_err(|e| Error::Config(format!("preset {name}: {e}")))?;
        if name.contains("vllm") {
            Preset::vllm_qwen3_h200(step)
        } else {
            Preset::hf_cb_qwen3_h100(step)
        }
    }

    /// The built-in preset of the server, GPU and model a recorded run's header names, with
    /// the scheduler settings its recorded server flags give ([`Preset::with_server_flags`]).
    /// An error says what the header names and which presets exist when none fits.
    pub fn for_run(run: &Run) -> Result<Preset> {
        let server = run
            .meta
            .server
            .as_ref()
            .map(|s| s.name.as_str())
            .unwrap_or("");
        let gpu = run.meta.gpu.as_deref().unwrap_or("");
        let model = run.meta.model.to_ascii_lowercase();
        let name = match ServerKind::from_server_name(server) {
            Some(ServerKind::Vllm) if gpu.contains("H200") => Some("h200-qwen3-0.6b-vllm"),
            Some(ServerKind::TransformersCb) if gpu.contains("H100") => {
                Some("h100-qwen3-0.6b-hfcb")
            }
            _ => None,
        };
        let qwen = model.contains("qwen3") || model == "/tmp/qwen3";
        match name {
            Some(n) if qwen => {
                let mut p = Preset::builtin(n)?;
                if let Some(s) = &run.meta.server {
                    p.with_server_flags(&s.flags)?;
                }
                Ok(p)
            }
            _ => Err(Error::NoPresetForRun {
                server: server.to_string(),
                gpu: gpu.to_string(),
                model: run.meta.model.clone(),
                known: Self::builtin_names().join(", "),
            }),
        }
    }

    /// Fits this preset to a recorded run: an error ([`Error::PresetMismatch`]) when it models
    /// another server than the one the run's header names, else the scheduler settings that
    /// server was started with ([`Preset::with_server_flags`]). A run that names no server
    /// leaves the preset as it is.
    pub fn fit_to_run(&mut self, run: &Run) -> Result<&mut Self> {
        if let Some(server) = &run.meta.server {
            let kind = ServerKind::from_server_name(&server.name);
            let preset_vllm = self.scheduler.kind == crate::sim::ReplicaSchedulerKind::VllmV1;
            if kind == Some(ServerKind::Vllm) && !preset_vllm
                || kind == Some(ServerKind::TransformersCb) && preset_vllm
            {
                return Err(Error::PresetMismatch {
                    preset: self.name.clone(),
                    server: server.name.clone(),
                });
            }
            self.with_server_flags(&server.flags)?;
        }
        Ok(self)
    }

    /// Applies a server's command-line flags to the scheduler: for vLLM
    /// `--max-num-batched-tokens`, `--max-num-seqs`, `--block-size`, `--num-gpu-blocks-override`;
    /// for transformers `--cb-max-batch-tokens`, `--cb-num-blocks`, `--cb-block-size`. Other
    /// flags are left alone; a value that is not a number is an error naming the flag.
    pub fn with_server_flags(&mut self, flags: &[String]) -> Result<&mut Self> {
        let vllm = self.scheduler.kind == crate::sim::ReplicaSchedulerKind::VllmV1;
        let mut knobs = SchedulerKnobs::default();
        let mut i = 0;
        while i < flags.len() {
            let (flag, value) = match flags[i].split_once('=') {
                Some((f, v)) => (f.to_string(), Some(v.to_string())),
                None => (flags[i].clone(), flags.get(i + 1).cloned()),
            };
            let consumed = if flags[i].contains('=') { 1 } else { 2 };
            let num = |v: Option<String>| -> Result<u64> {
                v.as_deref()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| Error::ServerFlag {
                        flag: flag.clone(),
                        value: v.clone(),
                    })
            };
            match (vllm, flag.as_str()) {
                (true, "--max-num-batched-tokens") | (false, "--cb-max-batch-tokens") => {
                    knobs.max_num_batched_tokens = Some(num(value)? as u32);
                    i += consumed;
                }
                (true, "--max-num-seqs") => {
                    knobs.max_num_seqs = Some(num(value)? as u32);
                    i += consumed;
                }
                (true, "--block-size") | (false, "--cb-block-size") => {
                    knobs.block_size = Some(num(value)? as u32);
                    i += consumed;
                }
                (true, "--num-gpu-blocks-override") | (false, "--cb-num-blocks") => {
                    knobs.num_gpu_blocks = Some(num(value)?);
                    i += consumed;
                }
                _ => i += 1,
            }
        }
        Ok(self.with_knobs(&knobs))
    }

    /// Sets the scheduler knobs given (the others stay), and widens the step model's query
    /// padding cap to the token budget.
    pub fn with_knobs(&mut self, k: &SchedulerKnobs) -> &mut Self {
        let s = &mut self.scheduler;
        if let Some(v) = k.max_num_batched_tokens {
            s.max_tokens_in_batch = v;
        }
        if let Some(v) = k.max_num_seqs {
            s.batch_size_cap = v;
        }
        if let Some(v) = k.block_size {
            s.block_size = v;
        }
        if let Some(v) = k.num_gpu_blocks {
            s.num_blocks = Some(v);
        }
        let pad = &mut self.step.step.padding;
        pad.q_cap = pad.q_cap.max(self.scheduler.max_tokens_in_batch);
        self
    }

    /// Qwen3-0.6B (bf16) on an H200 behind `vllm serve` (vLLM 0.24, V1 engine, FA3, CUDA
    /// graphs), configured as this project's vLLM goldens: `--max-num-batched-tokens 512
    /// --max-num-seqs 256 --gpu-memory-utilization 0.5` (KV cache 639,088 tokens as the
    /// server reported: 39,943 blocks of 16), prefix caching and chunked prefill on (vLLM's
    /// defaults). Other configurations: [`Preset::with_server_flags`].
    pub fn vllm_qwen3_h200(step: StepProfile) -> Result<Preset> {
        let mut scheduler = SchedulerConfig::new(crate::sim::ReplicaSchedulerKind::VllmV1);
        scheduler.max_tokens_in_batch = 512;
        scheduler.batch_size_cap = 256;
        scheduler.block_size = 16;
        scheduler.num_blocks = Some(639_088 / 16);
        scheduler.watermark_blocks_fraction = 0.0;
        Ok(Preset {
            name: "h200-qwen3-0.6b-vllm".into(),
            description: "Qwen3-0.6B (bf16) on an H200, vllm serve 0.24.0 --seed 0 --dtype \
                          bfloat16 --max-num-batched-tokens 512 --max-num-seqs 256 \
                          --gpu-memory-utilization 0.5"
                .into(),
            model: ModelSpec::qwen3_0_6b(),
            device: DeviceSpec::builtin("h200")?,
            scheduler,
            step,
        })
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

    /// Vidur-style composition over operator profiles (Vidur's `mlp.csv` and `attention.csv`)
    /// in place of the step profile: what an operator-level simulator predicts for this
    /// preset's model under the same scheduler (`simfid check --op-profiles`). The prediction
    /// grid covers the server's shapes (chunks up to its step budget, contexts up to 16,384
    /// tokens); the network is an H100 pair's, the model runs on one GPU.
    pub fn op_profile_model(
        &self,
        mlp: &std::path::Path,
        attention: &std::path::Path,
    ) -> Result<VidurModel> {
        let files = ProfileFiles {
            mlp: mlp.into(),
            attention: attention.into(),
            all_reduce: None,
            send_recv: None,
        };
        let cfg = self.sim_config();
        let pcfg = VidurPredictorConfig {
            max_tokens: cfg.scheduler.max_tokens_in_batch.max(4096),
            max_batch_size: 1024,
            max_kv: 16384,
            max_prefill_chunk: cfg.scheduler.max_tokens_in_batch,
            ..Default::default()
        };
        let node = NodeSpec::builtin("h100_pairwise_nvlink")?;
        let profile = OpProfile::load(&files, &self.model, 1, 1, cfg.scheduler.block_size, &node)?
            .with_grid((&pcfg).into());
        VidurModel::new(&profile, &self.model, 1, 1, &pcfg)
    }

    /// The simulator configuration of this preset.
    pub fn sim_config(&self) -> SimConfig {
        let mut cfg = SimConfig::new(self.model.clone(), self.device.clone(), self.scheduler.kind);
        cfg.scheduler = self.scheduler.clone();
        cfg.max_request_tokens = self.model.max_position_embeddings.max(4096);
        cfg
    }
}
