//! `simfid profile`: step-time profiling through a server's API.
//!
//! `simfid profile plan -o DIR` writes the controlled experiments as workloads
//! (`DIR/<name>.csv`, plus `DIR/plan.json`); record each with `simfid record` against the
//! server into `RUNS/<name>.jsonl`; then `simfid profile fit --plan DIR/plan.json --runs RUNS
//! -o step_profile.json` extracts the engine steps from the streamed chunk times and fits the
//! step model (`simfid::exec::step`, fitted by `simfid::replay::step_profile`). `fit` also takes ordinary recorded runs of the server
//! (`--session`, `--run`): their steps are reconstructed by `simfid::replay::reconstruct`, which
//! also measures the stall of CUDA-graph captures. `simfid profile steps RUN` prints a run's
//! reconstructed steps.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use simfid::exec::step::{Padding, StepModel};
use simfid::fixture::{Run, read_run};
use simfid::replay::reconstruct::{run_steps, session_observations};
use simfid::replay::{Experiment, StepProfile, serving_delay};

/// `simfid profile` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// The whole profile in one command: plan the experiments, record each against the
    /// server at `--url` (one after the other, with `simfid record`), and fit. Recorder flags
    /// (`--prompt-mode`, `--gpu`, `--server-name`, `--timeout`, …) go after `--`.
    Run {
        /// Base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1.
        #[arg(long)]
        url: String,
        /// Output folder: `plan/` (workloads), `runs/` (recordings), `step_profile.json`.
        #[arg(short, long)]
        output: PathBuf,
        /// Gap between chunk times that separates two engine steps, in ms.
        #[arg(long, default_value_t = 3.0)]
        gap_ms: f64,
        /// Only these experiments (comma-separated names of `simfid profile plan`).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Flags passed to every `simfid record` (after `--`).
        #[arg(last = true, allow_hyphen_values = true)]
        record_flags: Vec<String>,
    },
    /// Write the profiling experiments as workload CSVs and a plan.
    Plan {
        /// Output folder.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Fit a step profile from recorded experiment runs and/or recorded runs of the server.
    Fit(FitArgs),
    /// Print the engine steps reconstructed from a recorded run (CSV), and a summary.
    Steps {
        /// A recorded run (simfid fixture, vLLM bench JSON).
        run: PathBuf,
        /// Gap between chunk times that separates two engine steps, in ms.
        #[arg(long, default_value_t = 3.0)]
        gap_ms: f64,
        /// Token budget of one step (`--cb-max-batch-tokens`).
        #[arg(long, default_value_t = 2048)]
        token_budget: u32,
        /// Write the steps as CSV here (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Calibrate a step profile's arrival and serving delays on recorded (calibration) runs
    /// (each replayed after the runs its metadata says the server served before it).
    Calibrate {
        /// The step profile to calibrate (from `simfid profile fit`).
        #[arg(long)]
        profile: PathBuf,
        /// Recorded runs of the same server (not the ones you judge fidelity on).
        #[arg(long = "run", required = true)]
        runs: Vec<PathBuf>,
        /// Output step profile.
        #[arg(short, long)]
        output: PathBuf,
        /// Which server's scheduler replays the runs: `hfcb` (transformers serve) or `vllm`
        /// (vLLM 0.24).
        #[arg(long, default_value = "hfcb")]
        server: String,
        /// Also calibrate the frontend's extra way in per open response stream, over 0 to this
        /// many ms in steps of 0.1 ms (0: no such term). vLLM's API server admits a request
        /// later the more streams it feeds.
        #[arg(long, default_value_t = 0.0)]
        per_stream_max_ms: f64,
    },
}

/// Flags of `simfid profile fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// The plan written by `simfid profile plan` (with `--runs`).
    #[arg(long, requires = "runs")]
    pub plan: Option<PathBuf>,
    /// Folder with one recorded run per experiment, `<name>.jsonl` (with `--plan`).
    #[arg(long, requires = "plan")]
    pub runs: Option<PathBuf>,
    /// Recorded runs of one server process from its start, in the order they were recorded
    /// (any workload): their steps are reconstructed and fitted, and steps of shapes the
    /// server had not met before give the CUDA-graph capture stall.
    #[arg(long, value_delimiter = ',')]
    pub session: Vec<PathBuf>,
    /// Later runs of the same server process (others may have run in between): fitted, except
    /// steps of shapes not met before (they may carry a capture).
    #[arg(long = "run", value_delimiter = ',')]
    pub more_runs: Vec<PathBuf>,
    /// Token budget of one step (`--cb-max-batch-tokens`), for the reconstruction.
    #[arg(long, default_value_t = 2048)]
    pub token_budget: u32,
    /// Gap between chunk times that separates two engine steps, in ms.
    #[arg(long, default_value_t = 3.0)]
    pub gap_ms: f64,
    /// Output step profile (JSON).
    #[arg(short, long)]
    pub output: PathBuf,
    /// The server's step shapes: `hfcb` (transformers serve: queries padded to 64 tokens, KV
    /// to 16384, CUDA graphs captured per new shape) or `vllm` (vLLM 0.24: queries padded to
    /// its CUDA-graph sizes, multiples of 8, no KV padding, graphs captured at start; steps
    /// above 512 tokens run without a graph).
    #[arg(long, default_value = "hfcb")]
    pub server: String,
}

/// Runs `simfid profile …`.
pub fn main(cmd: ProfileCommand) -> Result<i32> {
    match cmd {
        ProfileCommand::Plan { output } => plan(&output),
        ProfileCommand::Run {
            url,
            output,
            gap_ms,
            only,
            record_flags,
        } => run_all(&url, &output, gap_ms, &only, &record_flags),
        ProfileCommand::Fit(a) => fit(&a),
        ProfileCommand::Steps {
            run,
            gap_ms,
            token_budget,
            output,
        } => steps(&run, gap_ms, token_budget, output.as_deref()),
        ProfileCommand::Calibrate {
            profile,
            runs,
            output,
            server,
            per_stream_max_ms,
        } => calibrate(&profile, &runs, &output, &server, per_stream_max_ms),
    }
}

fn calibrate(
    profile: &Path,
    runs: &[PathBuf],
    output: &Path,
    server: &str,
    per_stream_max_ms: f64,
) -> Result<i32> {
    if !(0.0..=10.0).contains(&per_stream_max_ms) {
        bail!("--per-stream-max-ms: {per_stream_max_ms} is not between 0 and 10");
    }
    let step = StepProfile::from_file(profile)?;
    let preset = match server {
        "hfcb" => simfid::replay::Preset::hf_cb_qwen3_h100(step)?,
        "vllm" => simfid::replay::Preset::vllm_qwen3_h200(step)?,
        _ => bail!("--server: '{server}' is not a known server; known: hfcb, vllm"),
    };
    let mut with_history = Vec::new();
    for p in runs {
        let (run, _) = read_run(p).with_context(|| p.display().to_string())?;
        let history = match simfid::replay::session_history(p)? {
            Some(h) => read_all(&h)?,
            None => Vec::new(),
        };
        with_history.push((run, history));
    }
    // Arrival delay 0 to 20 ms in steps of 1 ms; serving delay 0 to 30 ms in steps of 0.5 ms.
    let arrival: Vec<f64> = (0..=20).map(|i| i as f64 * 1e-3).collect();
    let delay: Vec<f64> = (0..=60).map(|i| i as f64 * 0.5e-3).collect();
    let steps = (per_stream_max_ms * 10.0).round() as usize;
    let per_stream: Vec<f64> = (0..=steps).map(|i| i as f64 * 0.1e-3).collect();
    let c = simfid::replay::calibrate(&preset, &with_history, &arrival, &delay, &per_stream)?;
    let mut out = preset.step.clone();
    out.arrival_delay_s = c.arrival_delay_s;
    out.serving_delay_s = c.serving_delay_s;
    out.arrival_delay_per_stream_s = c.arrival_delay_per_stream_s;
    std::fs::write(output, serde_json::to_string_pretty(&out)?)
        .with_context(|| output.display().to_string())?;
    println!(
        "calibrated: arrival delay {:.1} ms, serving delay {:.1} ms, {:.1} ms more on the way in per open stream (RMS relative error of the calibration summary {:.1}%); wrote {}",
        c.arrival_delay_s * 1e3,
        c.serving_delay_s * 1e3,
        c.arrival_delay_per_stream_s * 1e3,
        c.score.sqrt() * 100.0,
        output.display()
    );
    Ok(0)
}

/// `simfid record`'s flags, parsed as the `record` subcommand parses them.
#[derive(Debug, clap::Parser)]
struct RecordCli {
    #[command(flatten)]
    args: super::record::RecordArgs,
}

fn run_all(url: &str, dir: &Path, gap_ms: f64, only: &[String], flags: &[String]) -> Result<i32> {
    use clap::Parser;
    plan(&dir.join("plan"))?;
    let runs = dir.join("runs");
    std::fs::create_dir_all(&runs).with_context(|| runs.display().to_string())?;
    let mut experiments = Experiment::default_plan();
    if !only.is_empty() {
        if let Some(bad) = only
            .iter()
            .find(|n| !experiments.iter().any(|(m, _)| m == *n))
        {
            let known: Vec<&str> = experiments.iter().map(|(m, _)| m.as_str()).collect();
            bail!("--only: no experiment '{bad}'; known: {}", known.join(", "));
        }
        experiments.retain(|(n, _)| only.contains(n));
    }
    for (i, (name, _)) in experiments.iter().enumerate() {
        let out = runs.join(format!("{name}.jsonl"));
        if out.is_file() {
            eprintln!("simfid profile: {} exists, kept", out.display());
            continue;
        }
        eprintln!(
            "simfid profile: experiment {}/{}: {name}",
            i + 1,
            experiments.len()
        );
        let mut argv: Vec<String> = vec![
            "record".into(),
            "--url".into(),
            url.into(),
            "--workload".into(),
            dir.join("plan")
                .join(format!("{name}.csv"))
                .display()
                .to_string(),
            "--output".into(),
            out.display().to_string(),
            "--no-progress".into(),
        ];
        argv.extend(flags.iter().cloned());
        let cli = RecordCli::try_parse_from(&argv)
            .map_err(|e| anyhow::anyhow!("recorder flags after --: {e}"))?;
        let code = super::record::main(cli.args)?;
        if code != 0 {
            bail!(
                "simfid record exited with {code} on experiment {name}; what was recorded is in {} (run again to resume)",
                runs.display()
            );
        }
    }
    fit(&FitArgs {
        plan: Some(dir.join("plan/plan.json")),
        runs: Some(runs),
        session: Vec::new(),
        more_runs: Vec::new(),
        token_budget: 2048,
        gap_ms,
        output: dir.join("step_profile.json"),
        server: "hfcb".into(),
    })
}

fn plan(dir: &Path) -> Result<i32> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let plan = Experiment::default_plan();
    for (name, exp) in &plan {
        let path = dir.join(format!("{name}.csv"));
        simfid::workload::write_workload_csv(&path, &exp.workload(name))?;
    }
    let text = serde_json::to_string_pretty(&plan)?;
    std::fs::write(dir.join("plan.json"), text)?;
    println!(
        "simfid profile: wrote {} experiment workloads and plan.json to {}",
        plan.len(),
        dir.display()
    );
    Ok(0)
}

fn steps(path: &Path, gap_ms: f64, budget: u32, output: Option<&Path>) -> Result<i32> {
    let (run, _) = read_run(path)?;
    let steps = run_steps(&run, gap_ms * 1e-3, budget);
    let mut csv = String::from(
        "t,seconds,decodes,prefills,prefill_tokens,kv_tokens,max_seqlen_k,consistent\n",
    );
    for s in &steps {
        csv.push_str(&format!(
            "{:.6},{},{},{},{},{},{},{}\n",
            s.t,
            s.seconds.map(|x| format!("{x:.6}")).unwrap_or_default(),
            s.decodes,
            s.prefills,
            s.prefill_tokens,
            s.kv_tokens,
            s.max_seqlen_k,
            s.consistent
        ));
    }
    match output {
        Some(p) => std::fs::write(p, csv).with_context(|| p.display().to_string())?,
        None => print!("{csv}"),
    }
    let consistent = steps.iter().filter(|s| s.consistent).count();
    let med = |f: &dyn Fn(&simfid::replay::reconstruct::RunStep) -> bool| {
        let v: Vec<f64> = steps
            .iter()
            .filter(|s| s.consistent && f(s))
            .filter_map(|s| s.seconds)
            .collect();
        simfid::fidelity::quantile::quantile(&v, 0.5).map_or(f64::NAN, |x| x * 1e3)
    };
    eprintln!(
        "{}: {} steps, {} consistent ({:.1}%); median step {:.1} ms decode-only, {:.1} ms with a prompt chunk",
        path.display(),
        steps.len(),
        consistent,
        100.0 * consistent as f64 / steps.len().max(1) as f64,
        med(&|s| s.prefills == 0),
        med(&|s| s.prefills > 0)
    );
    Ok(0)
}

fn read_all(paths: &[PathBuf]) -> Result<Vec<Run>> {
    paths
        .iter()
        .map(|p| {
            read_run(p)
                .map(|(r, _)| r)
                .with_context(|| p.display().to_string())
        })
        .collect()
}

fn fit(a: &FitArgs) -> Result<i32> {
    let gap_s = a.gap_ms * 1e-3;
    let vllm = match a.server.as_str() {
        "hfcb" => false,
        "vllm" => true,
        s => bail!("--server: '{s}' is not a known server; known: hfcb, vllm"),
    };
    let padding = if vllm {
        Padding::vllm(a.token_budget)
    } else {
        Padding::default()
    };
    let mut obs = Vec::new();
    let mut runs: Vec<Run> = Vec::new();
    if let (Some(plan_path), Some(dir)) = (&a.plan, &a.runs) {
        let text =
            std::fs::read_to_string(plan_path).with_context(|| plan_path.display().to_string())?;
        let plan: Vec<(String, Experiment)> = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a profile plan", plan_path.display()))?;
        println!("| experiment | requests ok | steps observed | median step ms |");
        println!("| --- | --- | --- | --- |");
        for (name, exp) in &plan {
            let path = dir.join(format!("{name}.jsonl"));
            if !path.is_file() {
                eprintln!("simfid profile: {} missing, skipped", path.display());
                continue;
            }
            if vllm && matches!(exp, Experiment::Mixed { .. }) {
                // vLLM prefills a probe in chunks of its token budget over several steps, which
                // this experiment reads as one: its prefill cost is calibrated instead
                // (`simfid profile calibrate --server vllm`).
                println!("| {name} | (not used for vLLM: probes span several chunked steps) | | |");
                continue;
            }
            let (run, _) = read_run(&path)?;
            let o = exp.observations(&run, gap_s);
            let secs: Vec<f64> = o.iter().map(|x| x.seconds).collect();
            let med =
                simfid::fidelity::quantile::quantile(&secs, 0.5).map_or(f64::NAN, |x| x * 1e3);
            let ok = run.requests.iter().filter(|r| r.ok()).count();
            println!(
                "| {name} | {ok}/{} | {} | {med:.2} |",
                run.requests.len(),
                o.len()
            );
            obs.extend(o);
            runs.push(run);
        }
    }
    let session = read_all(&a.session)?;
    let later = read_all(&a.more_runs)?;
    let srefs: Vec<&Run> = session.iter().collect();
    let lrefs: Vec<&Run> = later.iter().collect();
    let (run_obs, _) = session_observations(&srefs, &lrefs, gap_s, a.token_budget, &padding, None);
    if !run_obs.is_empty() {
        println!(
            "recorded runs: {} steps of known composition and seen shape ({} session runs, {} later runs)",
            run_obs.len(),
            session.len(),
            later.len()
        );
    }
    // vLLM: the decode-step model comes from the controlled experiments alone; recorded runs
    // give the prefill steps (below).
    if !vllm {
        obs.extend(run_obs);
    }
    if obs.is_empty() {
        bail!("no step could be observed: give --plan/--runs, --session or --run");
    }
    // vLLM: a step cost, a cost per request and per KV token read; the query-token terms are
    // the request count in decode steps (not identifiable here) and the prefill cost per
    // prompt token is calibrated on recorded runs.
    let mut model = if vllm {
        StepModel::fit_terms(&obs, padding, &[0, 1, 3])?
    } else {
        StepModel::fit(&obs, padding)?
    };
    if vllm {
        model.split_q = 512;
        // Steps carrying a prefill, from the recorded runs' steps that finished a prompt.
        let mut steps = Vec::new();
        for r in session.iter().chain(&later) {
            steps.extend(simfid::replay::prefill_steps(r, gap_s, a.token_budget));
        }
        match simfid::replay::fit_prefill_steps(&model, &steps) {
            Some((m, c, k, n)) => {
                model.mixed_step_s = m.max(0.0);
                model.prefill_token_s = c.max(0.0);
                model.continued_prefill_s = k.max(0.0);
                println!(
                    "prefill steps: {n} of {} used: {:.2} ms per step with a prefill, {:.2} µs per prompt token, {:.2} ms more for a continued prefill",
                    steps.len(),
                    m * 1e3,
                    c * 1e6,
                    k * 1e3
                );
            }
            None => println!(
                "prefill steps: too few in the runs given ({}); give light-load runs with --run",
                steps.len()
            ),
        }
    }
    let (rms, max) = model.residuals(&obs);
    // Capture stalls: the excess of the steps that met a new shape, in the session runs.
    let (_, stalls) = session_observations(
        &srefs,
        &lrefs,
        gap_s,
        a.token_budget,
        &padding,
        Some(&model),
    );
    if stalls.len() >= 3 && !vllm {
        model.capture_s = simfid::fidelity::quantile::quantile(&stalls, 0.5)
            .unwrap_or(0.0)
            .max(0.0);
    }
    runs.extend(session);
    runs.extend(later);
    let refs: Vec<&Run> = runs.iter().collect();
    let delay = serving_delay(&model, &refs).unwrap_or(0.0);
    let meta = &runs[0].meta;
    let profile = StepProfile {
        format: "simfid-step-profile".into(),
        format_version: "1.1".into(),
        model: meta.model.clone(),
        gpu: meta.gpu.clone(),
        server: meta
            .server
            .as_ref()
            .map(|s| format!("{} {}", s.name, s.flags.join(" "))),
        step: model.clone(),
        serving_delay_s: delay,
        arrival_delay_s: 0.0,
        arrival_delay_per_stream_s: 0.0,
        fit_rms_rel: rms,
        fit_max_rel: max,
        observations: obs.clone(),
    };
    std::fs::write(&a.output, serde_json::to_string_pretty(&profile)?)
        .with_context(|| a.output.display().to_string())?;
    println!("step model (seconds):");
    for (name, c) in StepModel::TERMS.iter().zip(&model.coef) {
        println!("  {c:>12.4e}  {name}");
    }
    println!(
        "  capture stall {:.1} ms (median of {} steps that met a new shape)",
        model.capture_s * 1e3,
        stalls.len()
    );
    println!(
        "fit on {} steps: RMS relative residual {:.2}%, largest {:.1}%; serving delay {:.2} ms",
        obs.len(),
        rms * 100.0,
        max * 100.0,
        delay * 1e3
    );
    println!("simfid profile: wrote {}", a.output.display());
    Ok(0)
}
