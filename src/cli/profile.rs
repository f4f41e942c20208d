//! `simfid profile`: step-time profiling through a server's API.
//!
//! `simfid profile plan -o DIR` writes the controlled experiments as workloads
//! (`DIR/<name>.csv`, plus `DIR/plan.json`); record each with `simfid record` against the
//! server into `RUNS/<name>.jsonl`; then `simfid profile fit --plan DIR/plan.json --runs RUNS
//! -o step_profile.json` extracts the engine steps from the streamed chunk times and fits the
//! step model (`simfid::exec::step`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use simfid::exec::step::{Experiment, Padding, StepModel, StepProfile, serving_delay};
use simfid::fixture::{Run, read_run};

/// `simfid profile` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Write the profiling experiments as workload CSVs and a plan.
    Plan {
        /// Output folder.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Fit a step profile from recorded experiment runs.
    Fit(FitArgs),
    /// Calibrate a step profile's per-prompt-token cost on recorded (calibration) runs.
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
    },
}

/// Flags of `simfid profile fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// The plan written by `simfid profile plan`.
    #[arg(long)]
    pub plan: PathBuf,
    /// Folder with one recorded run per experiment, `<name>.jsonl`.
    #[arg(long)]
    pub runs: PathBuf,
    /// Gap between chunk times that separates two engine steps, in ms.
    #[arg(long, default_value_t = 3.0)]
    pub gap_ms: f64,
    /// Output step profile (JSON).
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Runs `simfid profile …`.
pub fn main(cmd: ProfileCommand) -> Result<i32> {
    match cmd {
        ProfileCommand::Plan { output } => plan(&output),
        ProfileCommand::Fit(a) => fit(&a),
        ProfileCommand::Calibrate {
            profile,
            runs,
            output,
        } => calibrate(&profile, &runs, &output),
    }
}

fn calibrate(profile: &Path, runs: &[PathBuf], output: &Path) -> Result<i32> {
    let step = StepProfile::from_file(profile)?;
    let preset = simfid::replay::Preset::hf_cb_qwen3_h100(step)?;
    let runs: Vec<Run> = runs
        .iter()
        .map(|p| read_run(p).map(|(r, _)| r))
        .collect::<simfid::Result<_>>()?;
    // 0 to 40 µs per prompt token in steps of 1 µs; serving delay 0 to 40 ms in steps of 1 ms.
    let prefill: Vec<f64> = (0..=40).map(|i| i as f64 * 1e-6).collect();
    let delay: Vec<f64> = (0..=40).map(|i| i as f64 * 1e-3).collect();
    let (best, d, score) = simfid::replay::calibrate(&preset, &runs, &prefill, &delay)?;
    let mut out = preset.step.clone();
    out.step.prefill_token_s = best;
    out.serving_delay_s = d;
    std::fs::write(output, serde_json::to_string_pretty(&out)?)
        .with_context(|| output.display().to_string())?;
    println!(
        "calibrated: {:.1} µs per prompt token, serving delay {:.1} ms (RMS relative error of the calibration summary {:.1}%); wrote {}",
        best * 1e6,
        d * 1e3,
        score.sqrt() * 100.0,
        output.display()
    );
    Ok(0)
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

fn fit(a: &FitArgs) -> Result<i32> {
    let text = std::fs::read_to_string(&a.plan).with_context(|| a.plan.display().to_string())?;
    let plan: Vec<(String, Experiment)> = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a profile plan", a.plan.display()))?;
    let mut obs = Vec::new();
    let mut runs: Vec<Run> = Vec::new();
    println!("| experiment | requests ok | steps observed | median step ms |");
    println!("| --- | --- | --- | --- |");
    for (name, exp) in &plan {
        let path = a.runs.join(format!("{name}.jsonl"));
        if !path.is_file() {
            eprintln!("simfid profile: {} missing, skipped", path.display());
            continue;
        }
        let (run, _) = read_run(&path)?;
        let o = exp.observations(&run, a.gap_ms * 1e-3);
        let secs: Vec<f64> = o.iter().map(|x| x.seconds).collect();
        let med = simfid::fidelity::quantile::quantile(&secs, 0.5).map_or(f64::NAN, |x| x * 1e3);
        let ok = run.requests.iter().filter(|r| r.ok()).count();
        println!(
            "| {name} | {ok}/{} | {} | {med:.2} |",
            run.requests.len(),
            o.len()
        );
        obs.extend(o);
        runs.push(run);
    }
    if obs.is_empty() {
        bail!("no step could be observed in {}", a.runs.display());
    }
    let model = StepModel::fit(&obs, Padding::default())?;
    let (rms, max) = model.residuals(&obs);
    let refs: Vec<&Run> = runs.iter().collect();
    let delay = serving_delay(&model, &refs).unwrap_or(0.0);
    let meta = &runs[0].meta;
    let profile = StepProfile {
        format: "simfid-step-profile".into(),
        format_version: "1.0".into(),
        model: meta.model.clone(),
        gpu: meta.gpu.clone(),
        server: meta
            .server
            .as_ref()
            .map(|s| format!("{} {}", s.name, s.flags.join(" "))),
        step: model.clone(),
        serving_delay_s: delay,
        fit_rms_rel: rms,
        fit_max_rel: max,
        observations: obs.clone(),
    };
    std::fs::write(&a.output, serde_json::to_string_pretty(&profile)?)
        .with_context(|| a.output.display().to_string())?;
    let c = model.coef;
    println!(
        "step model: t = {:.3} ms + {:.4} ms/request + {:.3e} ms/padded q token + {:.3e} ms/padded kv token + {:.3e} ms/(q·kv/2^20)",
        c[0] * 1e3,
        c[1] * 1e3,
        c[2] * 1e3,
        c[3] * 1e3,
        c[4] * 1e3
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
