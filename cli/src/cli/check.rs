//! `simfid check REAL --preset NAME`: replays one real run in the simulator and prints the
//! fidelity report (the same report as `simfid compare`, real = the given run, sim = its
//! replay).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use simfid::fixture::read_any;
use simfid::replay::{History, Preset};

use super::report::{ReportOpts, report};

/// Flags of `simfid check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The real run: a simfid recording or a vLLM bench result JSON with per-request
    /// `start_times`, `ttfts`, `itls`, `input_lens`, `output_lens`. Without it: the bundled
    /// golden (H100, transformers serve, a fresh server warmed with 40 requests, then 200
    /// requests at 2 req/s: `golden/h100/qwen3-0.6b/hf-cb/s3-fresh40/judge-poisson-2qps`),
    /// compiled into the binary.
    pub real: Option<PathBuf>,
    /// A built-in preset (model, step profile, scheduler, KV capacity).
    #[arg(long, conflicts_with = "preset_file")]
    pub preset: Option<String>,
    /// A preset from a JSON file.
    #[arg(long)]
    pub preset_file: Option<PathBuf>,
    /// A step profile (`simfid profile fit`) for Qwen3-0.6B served by transformers'
    /// continuous batching with the goldens' settings (512 blocks of 256 tokens, 2048 tokens
    /// per step) on an H100.
    #[arg(long, conflicts_with_all = ["preset", "preset_file"])]
    pub step_profile: Option<PathBuf>,
    /// Replace the preset's step profile by Vidur-style composition over operator profiles
    /// (`MLP_CSV,ATTENTION_CSV`, Vidur's formats), with no serving delay: what an operator-level
    /// simulator predicts under the same scheduler.
    #[arg(long, value_name = "MLP_CSV,ATTENTION_CSV")]
    pub op_profiles: Option<String>,
    /// What the server served before this run, which decides the step shapes (CUDA graphs) it
    /// had captured already. `auto` (default): the runs listed in `RUN.meta.json` beside the
    /// run (`runs_before_on_server`, as written by scripts/device/run_goldens.sh); else the
    /// warm-up the run's header declares (`simfid record --warmup`), simulated closed-loop;
    /// else `infer`. `infer`: estimated from the run itself (shapes whose first step stalled
    /// were new, the others captured; other shapes stall in proportion). `none`: a server
    /// that starts with this run. `self`: a server that has met every shape of this run.
    /// `warmup40`: issue 5's configuration, 40 warm-up requests (4 at a time, lengths cycled
    /// from the run). Or a comma-separated list of recorded runs, in the order the server
    /// served them.
    #[arg(
        long,
        default_value = "auto",
        value_name = "auto|infer|none|self|warmup40|RUN,RUN,..."
    )]
    pub history: String,
    /// Override the step token budget the run's header gives (vLLM's
    /// `--max-num-batched-tokens`; transformers' `--cb-max-batch-tokens`).
    #[arg(long)]
    pub max_num_batched_tokens: Option<u32>,
    /// Override the most requests running at once (vLLM's `--max-num-seqs`).
    #[arg(long)]
    pub max_num_seqs: Option<u32>,
    /// Override the KV block size (tokens).
    #[arg(long)]
    pub block_size: Option<u32>,
    /// Override the KV capacity in blocks (vLLM's `--num-gpu-blocks-override`).
    #[arg(long)]
    pub num_gpu_blocks: Option<u64>,
    /// Also write the simulated replay as a run fixture.
    #[arg(long)]
    pub save_sim: Option<PathBuf>,
    /// Report options.
    #[command(flatten)]
    pub opts: ReportOpts,
}

/// The golden `simfid check` replays when given no run.
const BUNDLED: &[u8] =
    include_bytes!("../../../golden/h100/qwen3-0.6b/hf-cb/s3-fresh40/judge-poisson-2qps.jsonl");
const BUNDLED_NAME: &str = "golden/h100/qwen3-0.6b/hf-cb/s3-fresh40/judge-poisson-2qps.jsonl";

/// Reads the run to check: the given file, or the bundled golden (through a temporary file,
/// removed at once).
fn read_real(path: Option<&PathBuf>) -> Result<(simfid::fixture::Run, PathBuf)> {
    if let Some(p) = path {
        return Ok((read_any(p)?.0, p.clone()));
    }
    let dir = std::env::temp_dir().join(format!("simfid-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let tmp = dir.join("judge-poisson-2qps.jsonl");
    std::fs::write(&tmp, BUNDLED)?;
    let read = read_any(&tmp);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("simfid check: no run given: the bundled golden {BUNDLED_NAME}");
    Ok((read?.0, PathBuf::from(BUNDLED_NAME)))
}

/// Runs `simfid check`.
pub fn main(a: CheckArgs) -> Result<i32> {
    let (real, real_path) = read_real(a.real.as_ref())?;
    let mut preset = match (&a.preset, &a.preset_file) {
        (Some(name), _) => Preset::builtin(name)?,
        (None, Some(path)) => Preset::from_file(path)?,
        // The server, GPU and model the run's header names pick the preset; `--step-profile`
        // replaces its step profile (a run with no such header: the H100 hf_cb preset's
        // scheduler, as before headers named the server).
        (None, None) => match &a.step_profile {
            Some(p) => {
                let step = simfid::replay::StepProfile::from_file(p)?;
                match Preset::for_run(&real) {
                    Ok(mut preset) => {
                        preset.step = step;
                        preset
                    }
                    Err(_) => Preset::hf_cb_qwen3_h100(step)?,
                }
            }
            None => Preset::for_run(&real)?,
        },
    };
    // The scheduler settings the run's server was started with, then the flags given here.
    preset.fit_to_run(&real)?;
    preset.with_knobs(&simfid::replay::SchedulerKnobs {
        max_num_batched_tokens: a.max_num_batched_tokens,
        max_num_seqs: a.max_num_seqs,
        block_size: a.block_size,
        num_gpu_blocks: a.num_gpu_blocks,
    });
    let sim = match &a.op_profiles {
        None => {
            let history = History::parse(&a.history)?;
            let r = preset.replay_history(&real, a.real.as_deref(), &history)?;
            eprintln!(
                "simfid check: server history: {}; {} new step shapes captured in the replay",
                r.history, r.captures
            );
            r.sim
        }
        Some(files) => {
            let Some((mlp, attention)) = files.split_once(',') else {
                bail!("--op-profiles takes MLP_CSV,ATTENTION_CSV");
            };
            let exec = preset.op_profile_model(mlp.as_ref(), attention.as_ref())?;
            let cfg = preset.sim_config();
            simfid::replay::replay(&real, cfg, &exec, 0.0, "operator profiles")?
        }
    };
    if let Some(p) = &a.save_sim {
        simfid::fixture::write_run(p, &sim)?;
    }
    report(
        &sim,
        &real,
        &format!("simfid replay ({})", preset.name),
        &real_path.display().to_string(),
        &a.opts,
    )
}
