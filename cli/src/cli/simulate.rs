//! `simfid simulate`: simfid's own flags (or a TOML file with the same keys).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use serde::Deserialize;
use simfid::exec::step::StepExec;
use simfid::exec::{ExecModel, ExecSpec};
use simfid::fixture::{RunMeta, RunWriter, Source};
use simfid::model::{DeviceSpec, ModelSpec};
use simfid::replay::Preset;
use simfid::sim::{
    GlobalSchedulerKind, ReplicaSchedulerKind, SimConfig, Simulator, VidurCsvWriter,
};
use simfid::workload::{
    ArrivalSpec, CsvWorkload, LengthSpec, RngKind, SyntheticSpec, TraceReplayOptions,
};

use super::args::EngineArgs;
use super::output::{Tee, print_summary, run_dir};

/// Flags of `simfid simulate`. Every flag can also be given as a key of the TOML file passed
/// with `--config` (same name, `-` written `_`); flags on the command line win.
#[derive(Debug, Default, Clone, Args, Deserialize)]
pub struct SimulateArgs {
    /// TOML file with any of these options as keys.
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Engine flags.
    #[command(flatten)]
    #[serde(flatten)]
    pub engine: EngineArgs,
    /// Global scheduler: round_robin, lor, random.
    #[arg(long)]
    pub global_scheduler: Option<String>,
    /// Replicas.
    #[arg(long)]
    pub replicas: Option<u32>,
    /// Pipeline stages.
    #[arg(long)]
    pub pp: Option<u32>,
    /// Fraction of KV blocks kept free at admission.
    #[arg(long)]
    pub watermark: Option<f64>,
    /// Longest request the memory planner sizes for.
    #[arg(long)]
    pub max_request_tokens: Option<u32>,
    /// Execution-time model: `preset:NAME` (a built-in preset's scheduler and measured step
    /// profile), `roofline`, `tables:DIR` (Vidur prediction tables) or
    /// `profile:MLP_CSV,ATTENTION_CSV` (Vidur operator profiles). Default: the measured
    /// preset of the model and GPU when there is one and no other scheduler is asked for
    /// (Qwen3-0.6B on h100: `h100-qwen3-0.6b-hfcb`; on h200: `h200-qwen3-0.6b-vllm`), else
    /// `roofline`.
    #[arg(long)]
    pub exec: Option<String>,
    /// Workload CSV: trace replay (`arrived_at,num_prefill_tokens,num_decode_tokens`), or
    /// lengths only (`num_prefill_tokens,num_decode_tokens`, arrivals from `--arrival`/`--qps`).
    #[arg(long)]
    pub workload: Option<PathBuf>,
    /// Synthetic workload: number of requests.
    #[arg(long)]
    pub num_requests: Option<u64>,
    /// Synthetic workload: arrival rate (requests/s).
    #[arg(long)]
    pub qps: Option<f64>,
    /// Synthetic workload: poisson, gamma or static.
    #[arg(long)]
    pub arrival: Option<String>,
    /// Gamma arrivals: shape (vLLM bench's burstiness; 1 = Poisson).
    #[arg(long)]
    pub burstiness: Option<f64>,
    /// Synthetic workload: uniform, fixed or zipf lengths.
    #[arg(long)]
    pub lengths: Option<String>,
    /// uniform/zipf: smallest prompt+output.
    #[arg(long)]
    pub min_tokens: Option<u32>,
    /// uniform/zipf: largest prompt+output.
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// uniform/zipf: prompt:output ratio.
    #[arg(long)]
    pub pd_ratio: Option<f64>,
    /// fixed: prompt tokens.
    #[arg(long)]
    pub prefill: Option<u32>,
    /// fixed: output tokens.
    #[arg(long)]
    pub decode: Option<u32>,
    /// Seed of the synthetic workload.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder (a timestamped run folder is created inside).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Also write token_times.csv.
    #[arg(long)]
    #[serde(default)]
    pub token_times: bool,
    /// Also write the simulation as a simfid run (JSON Lines, every output token's time), to
    /// compare with a real run by `simfid compare RUN REAL` (ITL and TBT included, which
    /// Vidur's request_metrics.csv cannot give).
    #[arg(long, value_name = "RUN.jsonl")]
    pub run: Option<PathBuf>,
}

impl SimulateArgs {
    /// Fills unset options from the TOML file named by `--config`.
    fn merged(mut self) -> Result<SimulateArgs> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        // Every key must name a flag (serde cannot deny unknown fields through the flattened
        // engine flags, so the keys are checked against the flags themselves).
        let table: toml::Table = toml::from_str(&text)
            .with_context(|| format!("{}: invalid configuration", path.display()))?;
        let flags = <SimulateArgs as clap::Args>::augment_args(clap::Command::new("simulate"));
        if let Some(key) = table
            .keys()
            .find(|k| *k == "config" || flags.get_arguments().all(|f| f.get_id() != k.as_str()))
        {
            let known: Vec<String> = flags
                .get_arguments()
                .map(|f| format!("`{}`", f.get_id()))
                .filter(|f| f != "`config`")
                .collect();
            bail!(
                "{}: invalid configuration: unknown field `{key}`, expected one of {}",
                path.display(),
                known.join(", ")
            );
        }
        let file: SimulateArgs = table
            .try_into()
            .with_context(|| format!("{}: invalid configuration", path.display()))?;
        macro_rules! fill {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = file.$f; } )* };
        }
        macro_rules! fill_engine {
            ($($f:ident),*) => {
                $( if self.engine.$f.is_none() { self.engine.$f = file.engine.$f; } )*
            };
        }
        fill_engine!(
            model,
            device,
            scheduler,
            tp,
            chunk_size,
            batch_size_cap,
            block_size,
            num_blocks,
            max_tokens_in_batch
        );
        fill!(
            global_scheduler,
            replicas,
            pp,
            watermark,
            max_request_tokens,
            exec,
            workload,
            num_requests,
            qps,
            arrival,
            burstiness,
            lengths,
            min_tokens,
            max_tokens,
            pd_ratio,
            prefill,
            decode,
            seed,
            output,
            run
        );
        self.token_times |= file.token_times;
        Ok(self)
    }
}

/// Builds the execution-time model named by `--exec` ([`ExecSpec`]), with its description.
pub fn exec_model(
    spec: &str,
    model: &ModelSpec,
    cfg: &SimConfig,
) -> Result<(Box<dyn ExecModel>, String)> {
    let parsed: ExecSpec = spec.parse().map_err(|e| match e {
        simfid::Error::InvalidExecSpec { expected, .. } if expected.starts_with("profile:") => {
            anyhow!("--exec {expected}")
        }
        _ => anyhow!(
            "--exec must be roofline, tables:DIR or profile:MLP_CSV,ATTENTION_CSV (got '{spec}')"
        ),
    })?;
    Ok(parsed.build(
        model,
        &cfg.device,
        cfg.tensor_parallel_size,
        cfg.num_pipeline_stages,
        cfg.scheduler.block_size,
    )?)
}

/// The model and the simulation configuration that the engine flags of `a` describe
/// (defaults: Qwen3-0.6B on an H100, sarathi). Shared with `simfid serve`.
pub fn engine_config(a: &SimulateArgs) -> Result<(ModelSpec, ReplicaSchedulerKind, SimConfig)> {
    let e = &a.engine;
    let model = ModelSpec::resolve(e.model.as_deref().unwrap_or("Qwen/Qwen3-0.6B"))?;
    let device = DeviceSpec::builtin(e.device.as_deref().unwrap_or("h100"))?;
    let kind = ReplicaSchedulerKind::parse(e.scheduler.as_deref().unwrap_or("sarathi"))?;
    let mut cfg = SimConfig::new(model.clone(), device, kind);
    cfg.global_scheduler =
        GlobalSchedulerKind::parse(a.global_scheduler.as_deref().unwrap_or("round_robin"))?;
    cfg.num_replicas = a.replicas.unwrap_or(1);
    cfg.tensor_parallel_size = e.tp.unwrap_or(1);
    cfg.num_pipeline_stages = a.pp.unwrap_or(1);
    cfg.max_request_tokens = a.max_request_tokens.unwrap_or(4096);
    let s = &mut cfg.scheduler;
    s.chunk_size = e.chunk_size.unwrap_or(s.chunk_size);
    s.batch_size_cap = e.batch_size_cap.unwrap_or(s.batch_size_cap);
    s.block_size = e.block_size.unwrap_or(s.block_size);
    s.num_blocks = e.num_blocks;
    s.watermark_blocks_fraction = a.watermark.unwrap_or(s.watermark_blocks_fraction);
    s.max_tokens_in_batch = e.max_tokens_in_batch.unwrap_or(s.max_tokens_in_batch);
    cfg.seed = a.seed.unwrap_or(42);
    cfg.validate()?;
    Ok((model, kind, cfg))
}

/// The built-in preset measured for this model and GPU, if any (`None` for other models,
/// GPUs, or more than one GPU).
fn measured_preset(
    model: &ModelSpec,
    device: &str,
    tp: u32,
    pp: u32,
    replicas: u32,
) -> Option<&'static str> {
    if model.name != "Qwen/Qwen3-0.6B" || (tp, pp, replicas) != (1, 1, 1) {
        return None;
    }
    match device {
        "h100" => Some("h100-qwen3-0.6b-hfcb"),
        "h200" => Some("h200-qwen3-0.6b-vllm"),
        _ => None,
    }
}

/// The preset `simulate` runs with: `--exec preset:NAME`, or by default the measured one of
/// the model and GPU unless `--scheduler` asks for another scheduler than the preset's.
fn chosen_preset(a: &SimulateArgs, model: &ModelSpec) -> Result<Option<Preset>> {
    let name = match a.exec.as_deref() {
        Some(spec) => match spec.strip_prefix("preset:") {
            Some(name) => name.to_string(),
            None => return Ok(None),
        },
        None => {
            let e = &a.engine;
            let Some(name) = measured_preset(
                model,
                &sim_device(a),
                e.tp.unwrap_or(1),
                a.pp.unwrap_or(1),
                a.replicas.unwrap_or(1),
            ) else {
                return Ok(None);
            };
            let preset = Preset::builtin(name)?;
            match &e.scheduler {
                Some(s) if ReplicaSchedulerKind::parse(s)? != preset.scheduler.kind => {
                    return Ok(None);
                }
                _ => return Ok(Some(preset)),
            }
        }
    };
    Ok(Some(Preset::builtin(&name)?))
}

/// Runs `simfid simulate`; returns the exit code.
pub fn main(args: SimulateArgs) -> Result<i32> {
    let a = args.merged()?;
    let (model, kind, cfg) = engine_config(&a)?;
    let preset = chosen_preset(&a, &model)?;
    let (kind, cfg) = match &preset {
        Some(p) => {
            // The preset's scheduler and KV capacity; the flags given here still apply.
            let mut c = p.sim_config();
            let e = &a.engine;
            let s = &mut c.scheduler;
            s.chunk_size = e.chunk_size.unwrap_or(s.chunk_size);
            s.batch_size_cap = e.batch_size_cap.unwrap_or(s.batch_size_cap);
            s.block_size = e.block_size.unwrap_or(s.block_size);
            s.num_blocks = e.num_blocks.or(s.num_blocks);
            s.max_tokens_in_batch = e.max_tokens_in_batch.unwrap_or(s.max_tokens_in_batch);
            c.max_request_tokens = a.max_request_tokens.unwrap_or(c.max_request_tokens);
            c.seed = cfg.seed;
            c.validate()?;
            (p.scheduler.kind, c)
        }
        None => (kind, cfg),
    };
    let step_exec = preset.as_ref().map(|p| StepExec::new(&p.step.step));
    let (owned, exec_desc) = match &preset {
        Some(p) => (
            None,
            format!(
                "preset {} (step profile measured on {}; engine times: a client sees each token \
                 {:.1} ms later)",
                p.name,
                p.step.gpu.as_deref().unwrap_or("the server's GPU"),
                p.step.serving_delay_s * 1e3
            ),
        ),
        None => {
            let (e, d) = exec_model(a.exec.as_deref().unwrap_or("roofline"), &model, &cfg)?;
            (Some(e), d)
        }
    };
    let exec: &dyn ExecModel = match (&step_exec, &owned) {
        (Some(s), _) => s,
        (None, Some(e)) => e.as_ref(),
        (None, None) => unreachable!("an execution-time model is always built"),
    };

    let qps = a.qps.unwrap_or(8.0);
    let arrival = match a.arrival.as_deref().unwrap_or("poisson") {
        "poisson" => ArrivalSpec::Poisson {
            qps,
            vidur_clip: false,
        },
        "gamma" => ArrivalSpec::Gamma {
            qps,
            burstiness: a.burstiness.unwrap_or(1.0),
        },
        "static" => ArrivalSpec::Static,
        other => bail!("--arrival must be poisson, gamma or static (got '{other}')"),
    };
    let csv = match &a.workload {
        Some(path) => Some(simfid::workload::read_workload_csv(
            path,
            &TraceReplayOptions::exact(),
        )?),
        None => None,
    };
    let workload = match csv {
        // A trace-replay file fixes arrivals and lengths.
        Some(CsvWorkload::TraceReplay(w)) => w,
        // A lengths file gives the lengths; arrivals come from --arrival/--qps.
        Some(CsvWorkload::Lengths(rows)) => {
            let n = rows.len() as u64;
            SyntheticSpec {
                length: LengthSpec::Trace {
                    rows,
                    prefill_scale: 1.0,
                    decode_scale: 1.0,
                    max_tokens: u32::MAX,
                    seed: a.seed.unwrap_or(42),
                },
                arrival,
                num_requests: Some(a.num_requests.unwrap_or(n).min(n)),
                duration_s: None,
                seed: a.seed.unwrap_or(42),
                rng: RngKind::Pcg,
            }
            .generate()?
        }
        None => {
            let length = match a.lengths.as_deref().unwrap_or("uniform") {
                "uniform" => LengthSpec::Uniform {
                    min_tokens: a.min_tokens.unwrap_or(64),
                    max_tokens: a.max_tokens.unwrap_or(2048),
                    prefill_to_decode_ratio: a.pd_ratio.unwrap_or(8.0),
                },
                "fixed" => LengthSpec::Fixed {
                    prefill: a.prefill.unwrap_or(512),
                    decode: a.decode.unwrap_or(128),
                },
                "zipf" => LengthSpec::Zipf {
                    min_tokens: a.min_tokens.unwrap_or(64),
                    max_tokens: a.max_tokens.unwrap_or(2048),
                    theta: 0.6,
                    scramble: false,
                    prefill_to_decode_ratio: a.pd_ratio.unwrap_or(8.0),
                    seed: a.seed.unwrap_or(42),
                },
                other => bail!("--lengths must be uniform, fixed or zipf (got '{other}')"),
            };
            SyntheticSpec {
                length,
                arrival,
                num_requests: Some(a.num_requests.unwrap_or(1000)),
                duration_s: None,
                seed: a.seed.unwrap_or(42),
                rng: RngKind::Pcg,
            }
            .generate()?
        }
    };

    let dir = run_dir(a.output.as_deref().unwrap_or(Path::new("simfid_output")))?;
    simfid::workload::write_workload_csv(dir.join("workload.csv"), &workload)?;
    let csv_path = dir.join("request_metrics.csv");
    let file = std::fs::File::create(&csv_path)
        .with_context(|| format!("cannot create {}", csv_path.display()))?;
    let tokens = if a.token_times {
        let p = dir.join("token_times.csv");
        let mut f = std::fs::File::create(&p)?;
        use std::io::Write;
        writeln!(f, "request_id,token_index,time_s")?;
        Some(f)
    } else {
        None
    };
    std::fs::write(
        dir.join("simfid_config.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "simfid_version": env!("CARGO_PKG_VERSION"),
            "sim_config": cfg,
            "execution_time_model": exec_desc,
            "workload": workload.source,
        }))?,
    )?;
    let mut tee = Tee::new(VidurCsvWriter::new(std::io::BufWriter::new(file))?, tokens);
    if let Some(path) = &a.run {
        let mut meta = RunMeta::new(Source::Sim, model.name.clone());
        meta.gpu = Some(cfg.device.name.clone());
        meta.workload = workload.source.clone();
        meta.seed = a.seed.or(Some(42));
        meta.engine.insert("scheduler".into(), kind.name().into());
        meta.engine.insert(
            "scheduler_config".into(),
            serde_json::to_value(&cfg.scheduler)?,
        );
        meta.engine
            .insert("execution_time_model".into(), exec_desc.clone().into());
        tee = tee.with_run(RunWriter::create(path, &meta)?);
    }
    let mut sim = Simulator::new(cfg, exec)?;
    let start = Instant::now();
    let summary = sim.run(workload.requests.iter().copied(), &mut tee)?;
    let wall = start.elapsed().as_secs_f64();
    if let Some(t) = &mut tee.tokens {
        use std::io::Write;
        t.flush()?;
    }
    println!(
        "simfid: {} on {} ({} scheduler), workload: {}",
        model.name,
        sim_device(&a),
        kind.name(),
        workload.source
    );
    println!("simfid: execution-time model: {exec_desc}");
    print_summary(&tee.stats, &summary, wall);
    tee.csv
        .finish()
        .with_context(|| csv_path.display().to_string())?;
    if let Some(w) = tee.run.take() {
        w.finish()?;
        if let Some(p) = &a.run {
            println!("simfid: wrote the run {}", p.display());
        }
    }
    println!(
        "simfid: wrote {} (and workload.csv, simfid_config.json)",
        csv_path.display()
    );
    if summary.stalled {
        eprintln!(
            "simfid: error: the simulation stalled with {} unfinished requests",
            summary.unfinished
        );
        return Ok(super::exit::STALLED);
    }
    Ok(0)
}

fn sim_device(a: &SimulateArgs) -> String {
    a.engine.device.clone().unwrap_or_else(|| "h100".into())
}
