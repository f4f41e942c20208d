//! The fidelity report as `simfid compare` and `simfid check` print it: the report flags,
//! the comparison, plots, assertions and the exit code.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use simfid::fidelity::{
    AssertOptions, CompareOptions, Criterion, MetricDef, NoiseFloor, ReportFormat, Slo, Verdict,
    Window, compare,
};
use simfid::fixture::{Run, read_any_checked};

use super::exit;

/// Output format of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A Markdown table.
    Markdown,
    /// One JSON object.
    Json,
}

/// Report options shared by `simfid compare` and `simfid check`.
#[derive(Debug, Clone, Args)]
pub struct ReportOpts {
    /// Metric definitions: vllm-bench, vidur or aiperf.
    #[arg(long = "def", default_value = "vllm-bench", value_parser = parse_def)]
    pub def: MetricDef,
    /// A tolerance to check, e.g. 'ttft:p99<=10%' or 'itl:p50<=5% or 2ms' (repeatable); exit
    /// code 1 when one fails or cannot be decided.
    #[arg(long = "assert", value_name = "SPEC")]
    pub asserts: Vec<String>,
    /// Report format.
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: Format,
    /// Write SVG plots (CDF overlays, error by percentile) into this folder.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Drop the first N requests of each run (by scheduled time).
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,
    /// Keep requests scheduled in START:END seconds after the first (steady state).
    #[arg(long, value_name = "START:END", value_parser = parse_window)]
    pub window: Option<Window>,
    /// Compare runs of different workloads anyway (the differences become warnings).
    #[arg(long)]
    pub allow_mismatch: bool,
    /// Refuse (exit 1) assertions on quantiles that have too few samples beyond them (p99
    /// below 1000 samples). By default they are checked and the table marks them
    /// "(few samples)".
    #[arg(long)]
    pub strict_samples: bool,
    /// Check quantiles with too few samples (the default; kept for scripts that pass it).
    #[arg(long, hide = true)]
    pub allow_few_samples: bool,
    /// A service-level objective for goodput, vLLM bench style: ttft:MS, tpot:MS or e2el:MS
    /// (repeatable; a request is good when it meets all).
    #[arg(long = "goodput", value_name = "KEY:MS", value_parser = parse_slo)]
    pub goodput: Vec<(String, f64)>,
    /// Another real run of the same workload (repeatable): tolerances are never applied below
    /// the spread between the real runs.
    #[arg(long = "noise-floor", value_name = "REAL")]
    pub noise: Vec<PathBuf>,
    /// Bootstrap resamples for the confidence intervals.
    #[arg(long, default_value_t = 1000)]
    pub resamples: usize,
    /// Bootstrap seed.
    #[arg(long)]
    pub seed: Option<u64>,
}

fn parse_def(s: &str) -> Result<MetricDef, String> {
    MetricDef::parse(s)
        .ok_or_else(|| format!("unknown definition '{s}' (vllm-bench, vidur, aiperf)"))
}

fn parse_slo(s: &str) -> Result<(String, f64), String> {
    let (k, v) = s
        .split_once(':')
        .ok_or_else(|| "expected KEY:MS, e.g. ttft:500".to_string())?;
    if !["ttft", "tpot", "e2el", "e2e"].contains(&k) {
        return Err(format!("unknown objective '{k}' (ttft, tpot, e2el)"));
    }
    let ms: f64 = v.parse().map_err(|e| format!("{v}: {e}"))?;
    if ms.is_nan() || ms < 0.0 {
        return Err("an objective is a non-negative number of milliseconds".into());
    }
    Ok((k.to_string(), ms))
}

fn parse_window(s: &str) -> Result<Window, String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| "expected START:END in seconds".to_string())?;
    let (start_s, end_s) = (
        a.trim().parse::<f64>().map_err(|e| format!("{a}: {e}"))?,
        b.trim().parse::<f64>().map_err(|e| format!("{b}: {e}"))?,
    );
    if end_s <= start_s {
        return Err("END must be after START".into());
    }
    Ok(Window { start_s, end_s })
}

/// Reads a run for a report; a file cut off mid-line is read with a warning, or refused
/// when `strict`.
pub fn load(path: &Path, strict: bool) -> Result<Run> {
    let (run, _, info) = read_any_checked(path)?;
    if strict {
        info.refuse(path)?;
    } else if let Some(p) = info.problem(path, run.requests.len()) {
        eprintln!("simfid: warning: {p}; --strict refuses such a file");
    }
    Ok(run)
}

/// Compares `sim` with `real`, prints the report and returns the exit code.
pub fn report(
    sim: &Run,
    real: &Run,
    sim_label: &str,
    real_label: &str,
    a: &ReportOpts,
) -> Result<i32> {
    let criteria: Vec<Criterion> = a
        .asserts
        .iter()
        .map(|s| s.parse::<Criterion>())
        .collect::<Result<_, _>>()?;
    let mut opts = AssertOptions::default()
        .def(a.def)
        .warmup(a.warmup)
        .resamples(a.resamples)
        .allow_workload_mismatch(a.allow_mismatch);
    if let Some(w) = a.window {
        opts = opts.window(w.start_s, w.end_s);
    }
    if let Some(seed) = a.seed {
        opts = opts.seed(seed);
    }
    let slo = (!a.goodput.is_empty()).then(|| {
        let mut slo = Slo::default();
        for (k, ms) in &a.goodput {
            match k.as_str() {
                "ttft" => slo.ttft_ms = Some(*ms),
                "tpot" => slo.tpot_ms = Some(*ms),
                _ => slo.e2e_ms = Some(*ms),
            }
        }
        slo
    });
    let copts = CompareOptions {
        sim_label: sim_label.to_string(),
        real_label: real_label.to_string(),
        slo,
        ..opts.compare.clone()
    };
    let report = compare(sim, real, &copts).map_err(|e| match e {
        // The library's message names its own option; on the command line it is a flag.
        simfid::fidelity::FidelityError::WorkloadMismatch { sim, real, details } => {
            anyhow::anyhow!(
                "{sim} and {real} are not the same workload: {}; compare anyway with \
                 --allow-mismatch",
                details.join("; ")
            )
        }
        e => e.into(),
    })?;
    for w in &report.warnings {
        eprintln!("simfid: warning: {w}");
    }
    let noise = if a.noise.is_empty() {
        None
    } else {
        let mut repeats = vec![real.clone()];
        for p in &a.noise {
            repeats.push(load(p, false)?);
        }
        Some(NoiseFloor::from_repeats(&repeats, &copts.metrics)?)
    };
    if let Some(dir) = &a.plots {
        let files = simfid::fidelity::plot::write_plots(&report, dir)
            .with_context(|| format!("writing plots to {}", dir.display()))?;
        eprintln!("simfid: wrote {} plots to {}", files.len(), dir.display());
    }
    let verdict = (!criteria.is_empty()).then(|| {
        Verdict::evaluate_with(report.clone(), &criteria, noise.as_ref(), !a.strict_samples)
    });
    let format = match a.format {
        Format::Json => ReportFormat::Json,
        Format::Markdown => ReportFormat::Markdown,
    };
    print!("{}", report.render(verdict.as_ref(), format));
    match verdict {
        Some(v) if !v.passed() => {
            if let Some(d) = v.diagnosis() {
                eprintln!("simfid: assertion failed: {d}");
            }
            Ok(exit::ASSERT_FAILED)
        }
        _ => Ok(0),
    }
}
