//! Replaying a real run in the simulator: the same requests (lengths, send times), a
//! configuration that describes the real server (a [`Preset`]), and the simulated run in the
//! same [`Run`] form, ready for [`crate::fidelity::compare`].

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::exec::ExecModel;
use crate::exec::step::{StepExec, StepProfile};
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
///
/// The step profile of `h200-qwen3-0.6b-vllm` was fitted on the controlled decode experiments
/// recorded against vLLM 0.24 on this project's H200 (`simfid profile fit --server vllm` on
/// `fixtures/profiles/h200/qwen3-0.6b/vllm-0.24/step-experiments/`) and calibrated (prefill
/// cost per token, arrival and serving delays) on the two `calib-*` goldens only.
const BUILTIN: &[(&str, &str)] = &[
    (
        "h100-qwen3-0.6b-hfcb",
        include_str!("../fixtures/profiles/h100/qwen3-0.6b/hf-cb/step_profile_calibrated.json"),
    ),
    (
        "h200-qwen3-0.6b-vllm",
        include_str!("../fixtures/profiles/h200/qwen3-0.6b/vllm-0.24/step_profile_calibrated.json"),
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
            return Err(Error::Config(format!(
                "unknown preset '{name}'; known presets: {}",
                Self::builtin_names().join(", ")
            )));
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
            _ => Err(Error::Config(format!(
                "no built-in preset fits this run (server '{server}', GPU '{gpu}', model '{}'); \
                 built-in presets: {} (give one with --preset, or a preset or step profile file)",
                run.meta.model,
                Self::builtin_names().join(", ")
            ))),
        }
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
                    .ok_or_else(|| {
                        Error::Config(format!("server flag {flag}: not a number: {v:?}"))
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

    /// The simulator configuration of this preset.
    pub fn sim_config(&self) -> SimConfig {
        let mut cfg = SimConfig::new(self.model.clone(), self.device.clone(), self.scheduler.kind);
        cfg.scheduler = self.scheduler.clone();
        cfg.max_request_tokens = self.model.max_position_embeddings.max(4096);
        cfg
    }

    /// Replays `real` under this preset on a server that has served nothing before: every step
    /// shape is captured (and stalls) the first time it occurs. See [`Preset::replay_after`].
    pub fn replay(&self, real: &Run) -> Result<Run> {
        self.replay_after(real, &[])
    }

    /// Replays `real` on a server that served `history` before it (recorded runs, in that
    /// order, from its start): the step shapes (CUDA graphs) those runs made the real server
    /// capture, read off their reconstructed steps ([`crate::exec::run_steps::run_keys`]),
    /// are warm when `real` starts, as they were on the real server.
    pub fn replay_after(&self, real: &Run, history: &[&Run]) -> Result<Run> {
        let served: Vec<Served> = history.iter().map(|r| Served::Run(r)).collect();
        Ok(self.replay_served(real, &served)?.0)
    }

    /// Replays `real` after `history` (runs and warm-ups the server served before it, in
    /// order); also returns how many step shapes the replay of `real` captured.
    pub fn replay_served(&self, real: &Run, history: &[Served]) -> Result<(Run, u64)> {
        let mut exec = StepExec::new(&self.step.step);
        // A server that captures its CUDA graphs at start (vLLM): no history changes a step.
        let history = if self.step.step.capture_s > 0.0 {
            history
        } else {
            &[]
        };
        for h in history {
            if let Served::InferredFrom(r) = h {
                let (warm, new) = crate::exec::run_steps::infer_captured(
                    r,
                    0.003,
                    self.scheduler.max_tokens_in_batch,
                    &self.step.step,
                    self.step.serving_delay_s,
                );
                let decided = (warm.len() + new.len()).max(1) as f64;
                let unknown = self.step.step.capture_s * new.len() as f64 / decided;
                exec = exec.with_unknown(new, unknown);
                exec.add_keys(warm);
            }
        }
        for h in history {
            match h {
                Served::Run(r) => exec.add_keys(self.recorded_keys(r)),
                Served::WarmUp { lengths_of, warmup } => {
                    self.simulate_warmup(lengths_of, warmup, &exec)?;
                }
                Served::InferredFrom(_) => {}
            }
        }
        exec.take_captures();
        let run = self.replay_with(real, &exec)?;
        Ok((run, exec.take_captures()))
    }

    /// Replays a recording session: `runs` as one server process served them, in order. Each
    /// run is replayed with the step shapes the runs before it captured on the real server
    /// warm; returns every replay with the number of shapes it captured. The same as
    /// [`Preset::replay_after`] on each run with the runs before it, in linear time.
    pub fn replay_session(&self, runs: &[&Run]) -> Result<Vec<(Run, u64)>> {
        let mut out = Vec::with_capacity(runs.len());
        let mut warm: Vec<crate::exec::step::GraphKey> = Vec::new();
        for r in runs {
            let exec = StepExec::with_keys(&self.step.step, warm.iter().copied());
            let run = self.replay_with(r, &exec)?;
            out.push((run, exec.take_captures()));
            warm.extend(self.recorded_keys(r));
        }
        Ok(out)
    }

    /// The step shapes a recorded run made its server capture, under this preset's token
    /// budget and padding (steps cut at 3 ms gaps).
    pub fn recorded_keys(&self, run: &Run) -> Vec<crate::exec::step::GraphKey> {
        crate::exec::run_steps::run_keys(
            run,
            0.003,
            self.scheduler.max_tokens_in_batch,
            &self.step.step.padding,
        )
    }

    /// A closed-loop warm-up as `simfid record --warmup N --warmup-concurrency C` sends it:
    /// `N` requests with lengths cycled from `lengths_of`'s requests, `C` in flight at a time,
    /// each sent when one finishes.
    fn simulate_warmup(&self, lengths_of: &Run, w: &WarmUp, exec: &dyn ExecModel) -> Result<()> {
        let specs = replay_workload(lengths_of);
        if specs.is_empty() || w.requests == 0 {
            return Ok(());
        }
        let spec = |i: u64, t: f64| {
            let s = &specs[(i % specs.len() as u64) as usize];
            RequestSpec {
                id: i,
                arrival_s: t,
                prefill_tokens: s.prefill_tokens,
                decode_tokens: s.decode_tokens,
            }
        };
        let mut sim = Simulator::new(self.sim_config(), exec)?;
        let mut done: Vec<RequestRecord> = Vec::new();
        let mut sent = 0u64;
        while sent < w.requests.min(w.concurrency.max(1) as u64) {
            sim.add_request(spec(sent, 0.0))?;
            sent += 1;
        }
        let mut finished = 0usize;
        while let Some(t) = sim.next_event_time() {
            sim.advance_until(t, &mut done as &mut dyn RecordSink)?;
            while done.len() > finished {
                finished += 1;
                if sent < w.requests {
                    sim.add_request(spec(sent, sim.now()))?;
                    sent += 1;
                }
            }
        }
        sim.finish(&mut done as &mut dyn RecordSink)?;
        Ok(())
    }

    fn replay_with(&self, real: &Run, exec: &dyn ExecModel) -> Result<Run> {
        replay_delayed(
            real,
            self.sim_config(),
            exec,
            self.step.arrival_delay_s,
            self.step.serving_delay_s,
            &self.name,
        )
    }
}

/// What a server served before the run being replayed, as `simfid check --history` names it.
#[derive(Debug, Clone)]
pub enum History {
    /// The runs listed in `RUN.meta.json` beside the run ([`session_history`]); else the
    /// warm-up its header declares; else [`History::Infer`].
    Auto,
    /// Estimated from the run itself ([`Served::InferredFrom`]).
    Infer,
    /// A server that starts with this run.
    None,
    /// A server that has met every step shape of this run.
    SelfShapes,
    /// A closed-loop warm-up with lengths cycled from the run.
    WarmUp(WarmUp),
    /// These recorded runs, in the order the server served them.
    Runs(Vec<Run>),
}

/// A replay with what it assumed.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The simulated run.
    pub sim: Run,
    /// Step shapes (CUDA graphs) the replay captured.
    pub captures: u64,
    /// The history used, in words.
    pub history: String,
}

impl Preset {
    /// Replays `real` after `history`, exactly as `simfid check` does (the library and the
    /// command give the same report). `path` is where `real` was read from: with
    /// [`History::Auto`] its `.meta.json` names the earlier runs of its server, read from the
    /// same folder (an error names a listed run that is missing).
    ///
    /// ```
    /// # fn main() -> simfid::Result<()> {
    /// use simfid::replay::{History, Preset};
    /// let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
    ///     .join("golden/h100/qwen3-0.6b/hf-cb/s3-fresh40/judge-poisson-2qps.jsonl");
    /// let (real, _) = simfid::fixture::read_run(&path)?;
    /// let replay = Preset::for_run(&real)?.replay_history(&real, Some(&path), &History::Auto)?;
    /// simfid::assert_fidelity!(replay.sim, real, { e2e: p50 10%; itl: p50 10%; });
    /// # Ok(())
    /// # }
    /// ```
    pub fn replay_history(
        &self,
        real: &Run,
        path: Option<&std::path::Path>,
        history: &History,
    ) -> Result<Replay> {
        let mut warmup: Option<WarmUp> = None;
        let mut infer = false;
        let mut runs: Vec<Run> = Vec::new();
        let what: String = match history {
            History::None => "none".into(),
            History::SelfShapes => {
                runs.push(real.clone());
                "every shape of this run".into()
            }
            History::Infer => {
                infer = true;
                "inferred from the run's own steps".into()
            }
            History::WarmUp(w) => {
                warmup = Some(*w);
                format!(
                    "{} warm-up requests, {} at a time",
                    w.requests, w.concurrency
                )
            }
            History::Runs(r) => {
                runs = r.clone();
                format!("{} runs given", r.len())
            }
            History::Auto => {
                let listed = match path {
                    Some(p) => session_history(p)?,
                    None => None,
                };
                match listed {
                    Some(paths) => {
                        for p in &paths {
                            runs.push(crate::fixture::read_any(p)?.0);
                        }
                        format!("{} runs from the run's metadata", paths.len())
                    }
                    None => match real
                        .meta
                        .warmup
                        .as_deref()
                        .and_then(WarmUp::from_description)
                    {
                        Some(w) => {
                            warmup = Some(w);
                            format!(
                                "{} warm-up requests, {} at a time, declared in the run's header",
                                w.requests, w.concurrency
                            )
                        }
                        None => {
                            infer = true;
                            "unknown (no metadata, no declared warm-up): inferred from the \
                             run's own steps"
                                .into()
                        }
                    },
                }
            }
        };
        let mut served: Vec<Served> = runs.iter().map(Served::Run).collect();
        if let Some(w) = warmup {
            served.push(Served::WarmUp {
                lengths_of: real,
                warmup: w,
            });
        }
        if infer {
            served.push(Served::InferredFrom(real));
        }
        let (sim, captures) = self.replay_served(real, &served)?;
        Ok(Replay {
            sim,
            captures,
            history: what,
        })
    }
}

/// Something a server served before the run being replayed.
#[derive(Debug, Clone, Copy)]
pub enum Served<'a> {
    /// A recorded run (its workload is simulated).
    Run(&'a Run),
    /// Unknown history, estimated from the replayed run itself
    /// ([`crate::exec::run_steps::infer_captured`]): the shapes whose first step stalled were
    /// new, those whose first step did not were captured; any other shape stalls the capture
    /// time times the fraction of the run's first steps that stalled.
    InferredFrom(&'a Run),
    /// A closed-loop warm-up with lengths cycled from a run's requests.
    WarmUp {
        /// The run whose request lengths the warm-up cycled through.
        lengths_of: &'a Run,
        /// How many requests, how many at a time.
        warmup: WarmUp,
    },
}

/// A warm-up sent before a run: `requests` requests, `concurrency` in flight at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmUp {
    /// Requests sent.
    pub requests: u64,
    /// Requests in flight at a time.
    pub concurrency: usize,
}

impl WarmUp {
    /// The warm-up of issue 5's configuration ("40 warm-up requests after start"), sent the
    /// way `simfid record --warmup 40` sends it (4 at a time).
    pub const ISSUE_DEFAULT: WarmUp = WarmUp {
        requests: 40,
        concurrency: 4,
    };

    /// Reads the warm-up from a run header's `warmup` line as `simfid record` writes it
    /// ("N warm-up requests before t = 0 (lengths cycled from the workload, C at a time, …").
    pub fn from_description(s: &str) -> Option<WarmUp> {
        let (n, rest) = s.trim().split_once(" warm-up requests")?;
        let requests: u64 = n.trim().parse().ok()?;
        let concurrency = rest
            .split(',')
            .find_map(|part| part.trim().strip_suffix(" at a time"))
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(1);
        Some(WarmUp {
            requests,
            concurrency,
        })
    }
}

/// The runs a recorded run's server served before it, from the run's metadata: `RUN.meta.json`
/// beside `RUN.jsonl` (written by `scripts/device/run_goldens.sh`) lists them in
/// `runs_before_on_server`, each recorded as `NAME.jsonl` in the same folder. Returns `None`
/// when there is no such metadata (the history is unknown), and an error naming the file when
/// the metadata is unreadable or a listed run is missing.
pub fn session_history(run_path: &std::path::Path) -> Result<Option<Vec<std::path::PathBuf>>> {
    let Some(name) = run_path.file_name().and_then(|s| s.to_str()) else {
        return Ok(None);
    };
    let stem = name
        .strip_suffix(".jsonl.gz")
        .or_else(|| name.strip_suffix(".jsonl"))
        .unwrap_or(name);
    let dir = run_path
        .parent()
        .unwrap_or_else(|| std::path::Path::new("."));
    let meta = dir.join(format!("{stem}.meta.json"));
    if !meta.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&meta).map_err(|e| Error::io(&meta, e))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: meta.clone(),
        message: e.to_string(),
    })?;
    let Some(list) = v.get("runs_before_on_server").and_then(|x| x.as_str()) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for name in list.split_whitespace() {
        let plain = dir.join(format!("{name}.jsonl"));
        let p = if plain.is_file() {
            plain
        } else {
            dir.join(format!("{name}.jsonl.gz"))
        };
        if !p.is_file() {
            return Err(Error::Config(format!(
                "{}: runs_before_on_server names {name}, but {} is missing",
                meta.display(),
                p.display()
            )));
        }
        out.push(p);
    }
    Ok(Some(out))
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
    replay_delayed(real, cfg, exec, 0.0, serving_delay_s, label)
}

/// [`replay`] where each request reaches the simulated server `arrival_delay_s` after its
/// send time and each token reaches the client `serving_delay_s − arrival_delay_s` after its
/// step (so an idle server's TTFT is one step plus `serving_delay_s`, as in [`replay`]).
pub fn replay_delayed(
    real: &Run,
    cfg: SimConfig,
    exec: &dyn ExecModel,
    arrival_delay_s: f64,
    serving_delay_s: f64,
    label: &str,
) -> Result<Run> {
    let mut workload = replay_workload(real);
    for w in &mut workload {
        w.arrival_s += arrival_delay_s;
    }
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
            *t += serving_delay_s - arrival_delay_s;
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
    // Keep the real run's scheduled and send times so workload checks compare like with like
    // and latencies count from the same instant.
    let by_id: std::collections::HashMap<u64, &crate::fixture::RequestRun> =
        real.requests.iter().map(|x| (x.id, x)).collect();
    for r in &mut run.requests {
        if let Some(orig) = by_id.get(&r.id) {
            r.scheduled = orig.scheduled;
            r.output_tokens = orig.output_tokens;
            if arrival_delay_s != 0.0 {
                r.sent = orig.sent.or(Some(orig.scheduled));
            }
        }
    }
    Ok(run)
}

/// Calibrates a step profile's client-visible delays on recorded runs: the arrival delay
/// ([`StepProfile::arrival_delay_s`], from `arrival_grid`) and the serving delay (from
/// `delay_grid`, both in seconds) that minimise the mean squared relative error of the TTFT,
/// ITL, TPOT and E2E medians over the runs (vLLM-bench definitions). Medians only: the p90s of
/// calibration-sized runs (72–100 requests) are too noisy to calibrate on (three real repeats
/// of one workload spread up to 2.3× at TTFT p90). Each run comes with the runs its server
/// served before it ([`Preset::replay_after`]). Returns `(arrival_delay_s, serving_delay_s,
/// score)`; a pair is only tried when the arrival delay does not exceed the serving delay.
pub fn calibrate(
    preset: &Preset,
    runs: &[(Run, Vec<Run>)],
    arrival_grid: &[f64],
    delay_grid: &[f64],
) -> Result<(f64, f64, f64)> {
    use crate::fidelity::{Metric, MetricOptions, RunMetrics};
    let q = |v: &[f64], p: f64| crate::fidelity::quantile::quantile(v, p).unwrap_or(f64::NAN);
    let opts = MetricOptions::default();
    let summary = |run: &Run| -> Vec<f64> {
        let m = RunMetrics::compute(run, &opts);
        let get = |k| m.samples(k).map(<[f64]>::to_vec).unwrap_or_default();
        let (ttft, itl, tpot, e2e) = (
            get(Metric::Ttft),
            get(Metric::Itl),
            get(Metric::Tpot),
            get(Metric::E2e),
        );
        vec![q(&ttft, 0.5), q(&itl, 0.5), q(&tpot, 0.5), q(&e2e, 0.5)]
    };
    let reals: Vec<Vec<f64>> = runs.iter().map(|(r, _)| summary(r)).collect();
    let mut best = (f64::NAN, f64::NAN, f64::INFINITY);
    for &a in arrival_grid {
        for &d in delay_grid.iter().filter(|&&d| d >= a) {
            let mut p = preset.clone();
            p.step.arrival_delay_s = a;
            p.step.serving_delay_s = d;
            let mut score = 0.0f64;
            let mut n = 0.0f64;
            for ((run, history), real) in runs.iter().zip(&reals) {
                let h: Vec<&Run> = history.iter().collect();
                let sim = summary(&p.replay_after(run, &h)?);
                for (s, r) in sim.iter().zip(real) {
                    if r.is_finite() && *r > 0.0 && s.is_finite() {
                        score += ((s - r) / r).powi(2);
                        n += 1.0;
                    }
                }
            }
            let score = score / n.max(1.0);
            if score < best.2 {
                best = (a, d, score);
            }
        }
    }
    Ok(best)
}
