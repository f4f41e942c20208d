//! `simfid vidur`: Vidur's own command line, run by simfid's simulator.
//!
//! Users migrating from Vidur replace `python -m vidur.main` with `simfid vidur` and keep their
//! flags. Every flag that changes a simulation is honoured (Vidur's `vidur/config/config.py`); flags that only concern
//! Vidur's plotting, tracing, wandb or sklearn training are accepted and ignored (simfid has no
//! random forests: with operator profiles it interpolates, see `exec::profile`). Synthetic
//! workloads are generated with Vidur's random streams, so the same flags give the same
//! requests. `--simfid_prediction_tables DIR` uses Vidur's exported prediction tables instead of
//! the profiles, for bit-level parity.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use simfid::exec::ExecModel;
use simfid::exec::profile::{OpProfile, ProfileFiles};
use simfid::exec::tables::PredictionTables;
use simfid::exec::vidur::{VidurModel, VidurPredictorConfig};
use simfid::model::{DeviceSpec, ModelSpec, NodeSpec};
use simfid::sim::{
    GlobalSchedulerKind, ReplicaSchedulerKind, SchedulerConfig, SimConfig, Simulator,
    VidurCsvWriter,
};
use simfid::workload::{
    ArrivalSpec, LengthSpec, PyRandom, RequestSpec, RngKind, SyntheticSpec, TraceReplayOptions,
    Workload,
};

use super::output::{Tee, pandas_float_restarts, print_summary, run_dir};
use super::vidur_flags::VidurFlags;

/// Everything `simfid vidur` resolved from the flags.
pub struct VidurRun {
    pub cfg: SimConfig,
    pub workload: WorkloadSource,
    pub exec: Box<dyn ExecModel>,
    pub exec_description: String,
    pub output_dir: PathBuf,
    pub token_times: bool,
}

/// Where the requests come from.
pub enum WorkloadSource {
    /// Generated on the fly (memory independent of the number of requests).
    Synthetic(SyntheticSpec),
    /// Fully materialised (trace replay, or synthetic when the `random` router needs the
    /// generator's final random state).
    Fixed(Workload, Option<PyRandom>),
}

fn resolve_model(name: &str) -> Result<ModelSpec> {
    Ok(ModelSpec::resolve(name)?)
}

fn template(t: &str, device: &str, model: &str, network: &str) -> PathBuf {
    PathBuf::from(
        t.replace("{DEVICE}", device)
            .replace("{MODEL}", model)
            .replace("{NETWORK_DEVICE}", network),
    )
}

/// Resolves Vidur's flags into a simulation.
pub fn resolve(f: &VidurFlags) -> Result<VidurRun> {
    // Replica.
    let model_name = f.str_or("replica_config_model_name", "meta-llama/Llama-2-7b-hf");
    let model = resolve_model(&model_name)?;
    let device_name = f.str_or("replica_config_device", "a100");
    let device = DeviceSpec::builtin(&device_name)?;
    let network = f.str_or("replica_config_network_device", "a100_pairwise_nvlink");
    let node = NodeSpec::builtin(&network)?;
    let tp: u32 = f.get("replica_config_tensor_parallel_size", 1)?;
    let pp: u32 = f.get("replica_config_num_pipeline_stages", 1)?;

    // Replica scheduler.
    let kind_name = f.str_or("replica_scheduler_config_type", "sarathi");
    let kind = ReplicaSchedulerKind::parse(&kind_name)?;
    let p = format!("{}_scheduler_config_", kind.name());
    let mut sched = SchedulerConfig::new(kind);
    sched.batch_size_cap = f.get(&format!("{p}batch_size_cap"), 128)?;
    sched.block_size = f.get(&format!("{p}block_size"), 16)?;
    sched.watermark_blocks_fraction = f.get(&format!("{p}watermark_blocks_fraction"), 0.01)?;
    sched.num_blocks = f.opt::<u64>(&format!("{p}num_blocks"))?.filter(|&n| n > 0);
    sched.chunk_size = f.get("sarathi_scheduler_config_chunk_size", 512)?;
    sched.max_tokens_in_batch = f.get(&format!("{p}max_tokens_in_batch"), 4096)?;
    sched.max_waiting_iters = f.get("lightllm_scheduler_config_max_waiting_iters", 10)?;
    for other in ["vllm", "lightllm", "orca", "faster_transformer", "sarathi"] {
        if other != kind.name()
            && [
                "batch_size_cap",
                "block_size",
                "num_blocks",
                "watermark_blocks_fraction",
            ]
            .iter()
            .any(|k| f.has(&format!("{other}_scheduler_config_{k}")))
        {
            eprintln!(
                "simfid: note: --{other}_scheduler_config_* flags are ignored: the replica \
                 scheduler is {} (as in Vidur)",
                kind.name()
            );
        }
    }

    // Request generator.
    let gen_type = f.str_or("request_generator_config_type", "synthetic");
    let seed: u64 = f.get("seed", 42)?;
    let (workload, max_request_tokens) = match gen_type.as_str() {
        "synthetic" => synthetic(f, seed)?,
        "trace_replay" => {
            let path = f.str_or(
                "trace_request_generator_config_trace_file",
                "data/processed_traces/splitwise_conv.csv",
            );
            let max_tokens: u32 = f.get("trace_request_generator_config_max_tokens", 4096)?;
            let opts = TraceReplayOptions {
                prefill_scale: f.get("trace_request_generator_config_prefill_scale_factor", 1.0)?,
                decode_scale: f.get("trace_request_generator_config_decode_scale_factor", 1.0)?,
                time_scale: f.get("trace_request_generator_config_time_scale_factor", 1.0)?,
                max_tokens,
            };
            let w = simfid::workload::read_trace_replay_csv(Path::new(&path), &opts)?;
            (
                WorkloadSource::Fixed(w, Some(PyRandom::seed(seed))),
                max_tokens,
            )
        }
        other => bail!(
            "unknown --request_generator_config_type '{other}'; known: synthetic, trace_replay"
        ),
    };

    // Cluster.
    let global =
        GlobalSchedulerKind::parse(&f.str_or("global_scheduler_config_type", "round_robin"))?;
    let mut cfg = SimConfig::new(model.clone(), device, kind);
    cfg.num_replicas = f.get("cluster_config_num_replicas", 1)?;
    cfg.tensor_parallel_size = tp;
    cfg.num_pipeline_stages = pp;
    cfg.memory_margin_fraction = f.get("replica_config_memory_margin_fraction", 0.1)?;
    cfg.max_request_tokens = max_request_tokens;
    cfg.global_scheduler = global;
    cfg.scheduler = sched;
    cfg.time_limit_s = f.opt::<f64>("time_limit")?.filter(|&t| t > 0.0);
    cfg.strict_admission = !f.flag("simfid_allow_stall", false);
    cfg.seed = seed;
    cfg.validate()?;

    // Execution-time model.
    let pred = f.str_or("execution_time_predictor_config_type", "random_forrest");
    if pred != "random_forrest" && pred != "linear_regression" {
        bail!(
            "unknown --execution_time_predictor_config_type '{pred}'; known: random_forrest, linear_regression"
        );
    }
    let q = format!("{pred}_execution_time_predictor_config_");
    if !f.flag(&format!("{q}skip_cpu_overhead_modeling"), true) {
        bail!(
            "--no-{q}skip_cpu_overhead_modeling: Vidur ships no CPU-overhead profile \
             (data/profiling/cpu_overhead does not exist upstream), so simfid \
             cannot model it either"
        );
    }
    let max_per_req: u32 = f.get(&format!("{q}prediction_max_tokens_per_request"), 4096)?;
    let max_batch: u32 = f.get(&format!("{q}prediction_max_batch_size"), 128)?;
    let pcfg = VidurPredictorConfig {
        kv_granularity: f.get(&format!("{q}kv_cache_prediction_granularity"), 64)?,
        max_tokens: if kind == ReplicaSchedulerKind::Orca {
            max_per_req * max_batch
        } else {
            max_per_req
        },
        max_batch_size: max_batch,
        max_kv: max_per_req,
        max_prefill_chunk: f.get(&format!("{q}prediction_max_prefill_chunk_size"), 4096)?,
        decode_overhead_fraction: f.get(
            &format!("{q}attention_decode_batching_overhead_fraction"),
            0.1,
        )?,
        prefill_overhead_fraction: f.get(
            &format!("{q}attention_prefill_batching_overhead_fraction"),
            0.1,
        )?,
        nccl_cpu_launch_overhead_ms: f.get(&format!("{q}nccl_cpu_launch_overhead_ms"), 0.02)?,
        nccl_cpu_skew_overhead_per_device_ms: f
            .get(&format!("{q}nccl_cpu_skew_overhead_per_device_ms"), 0.0)?,
    };
    let (exec, exec_description): (Box<dyn ExecModel>, String) = if let Some(dir) =
        f.raw("simfid_prediction_tables")
    {
        let tables = PredictionTables::load(Path::new(dir))?;
        (
            Box::new(VidurModel::new(&tables, &model, tp, pp, &pcfg)?),
            format!("Vidur prediction tables in {dir}"),
        )
    } else {
        let t = |name: &str, default: &str| {
            template(
                &f.str_or(&format!("{q}{name}"), default),
                &device_name,
                &model.name,
                &network,
            )
        };
        let files = ProfileFiles {
            mlp: t(
                "compute_input_file",
                "./data/profiling/compute/{DEVICE}/{MODEL}/mlp.csv",
            ),
            attention: t(
                "attention_input_file",
                "./data/profiling/compute/{DEVICE}/{MODEL}/attention.csv",
            ),
            all_reduce: (tp > 1).then(|| {
                t(
                    "all_reduce_input_file",
                    "./data/profiling/network/{NETWORK_DEVICE}/all_reduce.csv",
                )
            }),
            send_recv: (pp > 1).then(|| {
                t(
                    "send_recv_input_file",
                    "./data/profiling/network/{NETWORK_DEVICE}/send_recv.csv",
                )
            }),
        };
        let profile = OpProfile::load(&files, &model, tp, pp, cfg.scheduler.block_size, &node)
                .with_context(|| "loading Vidur operator profiles (give --simfid_prediction_tables DIR to use exported tables instead)")?;
        (
            Box::new(VidurModel::new(&profile, &model, tp, pp, &pcfg)?),
            format!(
                "Vidur operator profiles {} + {} (simfid interpolation)",
                files.mlp.display(),
                files.attention.display()
            ),
        )
    };

    // A `random` router continues CPython's stream where generation left it, as in Vidur.
    let workload = match (workload, global) {
        (WorkloadSource::Synthetic(spec), GlobalSchedulerKind::Random) => {
            let (w, rng) = spec.generate_with_rng()?;
            WorkloadSource::Fixed(w, rng)
        }
        (w, _) => w,
    };
    Ok(VidurRun {
        cfg,
        workload,
        exec,
        exec_description,
        output_dir: PathBuf::from(f.str_or("metrics_config_output_dir", "simulator_output")),
        token_times: f.flag("simfid_token_times", false),
    })
}

fn synthetic(f: &VidurFlags, seed: u64) -> Result<(WorkloadSource, u32)> {
    let gen_seed: u64 = f.get("synthetic_request_generator_config_seed", 42)?;
    let _ = seed;
    let length_type = f.str_or("length_generator_config_type", "fixed");
    let (length, max_tokens) = match length_type.as_str() {
        "fixed" => {
            let p = "fixed_request_length_generator_config_";
            (
                LengthSpec::Fixed {
                    prefill: f.get(&format!("{p}prefill_tokens"), 2048)?,
                    decode: f.get(&format!("{p}decode_tokens"), 512)?,
                },
                f.get(&format!("{p}max_tokens"), 4096)?,
            )
        }
        "uniform" => {
            let p = "uniform_request_length_generator_config_";
            let max_tokens = f.get(&format!("{p}max_tokens"), 4096)?;
            (
                LengthSpec::Uniform {
                    min_tokens: f.get(&format!("{p}min_tokens"), 1024)?,
                    max_tokens,
                    prefill_to_decode_ratio: f.get(&format!("{p}prefill_to_decode_ratio"), 20.0)?,
                },
                max_tokens,
            )
        }
        "zipf" => {
            let p = "zipf_request_length_generator_config_";
            let max_tokens = f.get(&format!("{p}max_tokens"), 4096)?;
            (
                LengthSpec::Zipf {
                    min_tokens: f.get(&format!("{p}min_tokens"), 1024)?,
                    max_tokens,
                    theta: f.get(&format!("{p}theta"), 0.6)?,
                    scramble: f.flag(&format!("{p}scramble"), false),
                    prefill_to_decode_ratio: f.get(&format!("{p}prefill_to_decode_ratio"), 20.0)?,
                    seed: f.get(&format!("{p}seed"), 42)?,
                },
                max_tokens,
            )
        }
        "trace" => {
            let p = "trace_request_length_generator_config_";
            let path = f.str_or(
                &format!("{p}trace_file"),
                "data/processed_traces/sharegpt_8k_filtered_stats_llama2_tokenizer.csv",
            );
            let max_tokens = f.get(&format!("{p}max_tokens"), 4096)?;
            let rows = simfid::workload::read_lengths_csv(Path::new(&path))?;
            (
                LengthSpec::Trace {
                    rows,
                    prefill_scale: f.get(&format!("{p}prefill_scale_factor"), 1.0)?,
                    decode_scale: f.get(&format!("{p}decode_scale_factor"), 1.0)?,
                    max_tokens,
                    seed: f.get(&format!("{p}seed"), 42)?,
                },
                max_tokens,
            )
        }
        other => bail!(
            "unknown --length_generator_config_type '{other}'; known: fixed, uniform, zipf, trace"
        ),
    };
    let interval_type = f.str_or("interval_generator_config_type", "poisson");
    let arrival = match interval_type.as_str() {
        "poisson" => ArrivalSpec::Poisson {
            qps: f.get("poisson_request_interval_generator_config_qps", 0.5)?,
            vidur_clip: true,
        },
        "gamma" => ArrivalSpec::gamma_from_cv(
            f.get("gamma_request_interval_generator_config_qps", 0.2)?,
            f.get("gamma_request_interval_generator_config_cv", 0.5)?,
        ),
        "static" => ArrivalSpec::Static,
        "trace" => {
            let path = f.str_or(
                "trace_request_interval_generator_config_trace_file",
                "data/processed_traces/AzureFunctionsInvocationTraceForTwoWeeksJan2021Processed.csv",
            );
            let times_s = simfid::workload::read_vidur_interval_trace(
                Path::new(&path),
                &f.str_or(
                    "trace_request_interval_generator_config_start_time",
                    "1970-01-04 12:00:00",
                ),
                &f.str_or(
                    "trace_request_interval_generator_config_end_time",
                    "1970-01-04 15:00:00",
                ),
                f.get(
                    "trace_request_interval_generator_config_time_scale_factor",
                    1.0,
                )?,
            )?;
            ArrivalSpec::Trace { times_s }
        }
        other => bail!(
            "unknown --interval_generator_config_type '{other}'; known: poisson, gamma, static, trace"
        ),
    };
    let num_requests: Option<u64> = f
        .opt("synthetic_request_generator_config_num_requests")?
        .or(
            if f.has("synthetic_request_generator_config_num_requests") {
                None
            } else {
                Some(128)
            },
        );
    let spec = SyntheticSpec {
        length,
        arrival,
        num_requests,
        duration_s: f.opt("synthetic_request_generator_config_duration")?,
        seed: gen_seed,
        rng: RngKind::Vidur,
    };
    spec.validate()?;
    Ok((WorkloadSource::Synthetic(spec), max_tokens))
}

/// Runs `simfid vidur ARGS…`; returns the process exit code.
pub fn main(args: &[String]) -> Result<i32> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "simfid vidur [VIDUR FLAGS…]\n\nRuns simfid's simulator with Vidur 7d47513's command-line \
             flags (python -m vidur.main …) and writes request_metrics.csv with Vidur's header into \
             <--metrics_config_output_dir>/<timestamp>/.\nsimfid's extra flags:\n  \
             --simfid_prediction_tables DIR  use Vidur's exported prediction tables (bit-level parity)\n  \
             --simfid_token_times            also write token_times.csv (request_id,token_index,time_s)\n  \
             --simfid_allow_stall            let impossible requests stall the replica, as Vidur does"
        );
        return Ok(0);
    }
    let flags = VidurFlags::parse(args)?;
    let run = resolve(&flags)?;
    let dir = run_dir(&run.output_dir)?;
    let csv_path = dir.join("request_metrics.csv");
    let file = std::fs::File::create(&csv_path)
        .with_context(|| format!("cannot create {}", csv_path.display()))?;
    let tokens = if run.token_times {
        let p = dir.join("token_times.csv");
        let mut f =
            std::fs::File::create(&p).with_context(|| format!("cannot create {}", p.display()))?;
        use std::io::Write;
        writeln!(f, "request_id,token_index,time_s")?;
        Some(f)
    } else {
        None
    };
    let mut tee = Tee::new(VidurCsvWriter::new(std::io::BufWriter::new(file))?, tokens);
    let config_json = serde_json::json!({
        "simfid_version": env!("CARGO_PKG_VERSION"),
        "sim_config": run.cfg,
        "execution_time_model": run.exec_description,
        "vidur_flags": args,
    });
    std::fs::write(
        dir.join("simfid_config.json"),
        serde_json::to_string_pretty(&config_json)?,
    )?;

    let mut sim = Simulator::new(run.cfg.clone(), run.exec.as_ref())?;
    let start = Instant::now();
    let result = match run.workload {
        WorkloadSource::Synthetic(spec) => {
            let iter = spec.iter()?;
            sim.run(iter, &mut tee)
        }
        WorkloadSource::Fixed(w, rng) => {
            if let Some(mut rng) = rng {
                sim = sim.with_random_router(Box::new(move |n| {
                    rng.randint(1, n as i64).map_or(0, |r| r as u32 - 1)
                }));
            }
            let reqs: Vec<RequestSpec> = w.requests;
            sim.run(reqs, &mut tee)
        }
    };
    let wall = start.elapsed().as_secs_f64();
    if let Some(t) = &mut tee.tokens {
        use std::io::Write;
        t.flush()?;
    }
    let Tee { csv, stats, .. } = tee;
    let rows_unfinished = match &result {
        Ok(s) => s.unfinished > 0,
        Err(_) => true,
    };
    csv.finish()
        .map_err(|e| anyhow!("{}: {e}", csv_path.display()))?;
    if rows_unfinished {
        // pandas writes an integer column holding empty cells as floats: match Vidur's file.
        pandas_float_restarts(&csv_path)?;
    }
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "simfid: wrote {} (requests finished before the error, and the arrival columns \
                 of the others, as Vidur does)",
                csv_path.display()
            );
            return Err(e.into());
        }
    };
    print_summary(&stats, &summary, wall);
    println!("simfid: execution-time model: {}", run.exec_description);
    println!("simfid: wrote {}", csv_path.display());
    if summary.stalled {
        eprintln!(
            "simfid: error: the simulation stalled with {} unfinished requests and {} KV blocks \
             still allocated (Vidur ends such runs with an AssertionError); outputs were written",
            summary.unfinished, summary.leaked_kv_blocks
        );
        return Ok(super::exit::STALLED);
    }
    Ok(0)
}
