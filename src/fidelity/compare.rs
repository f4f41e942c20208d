//! `compare(sim, real)`: every metric's statistics side by side with their errors, bootstrap
//! intervals, sample counts and distribution distances.

use std::collections::BTreeMap;

use serde::Serialize;

use super::error::FidelityError;
use super::metric::{Metric, MetricDef, MetricOptions, RunMetrics, Slo};
use super::same_workload::check_workload;
use super::stats::{Bootstrap, Ks, Stat, guard, ks_sorted, rel_err, sorted, wasserstein1_sorted};
use crate::fixture::Run;

/// Settings of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareOptions {
    /// Metric definitions, warm-up and window.
    pub metrics: MetricOptions,
    /// Bootstrap settings.
    pub bootstrap: Bootstrap,
    /// Statistics to report (default: p50, p90, p95, p99, mean).
    pub stats: Vec<Stat>,
    /// Service-level objectives for goodput (reported per run when given).
    pub slo: Option<Slo>,
    /// Metrics to compare (`None`: all).
    pub only: Option<Vec<Metric>>,
    /// Compare runs of different workloads anyway (the differences become warnings).
    pub allow_workload_mismatch: bool,
    /// Name of the simulated run in messages (`sim`, or its file).
    pub sim_label: String,
    /// Name of the real run in messages.
    pub real_label: String,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            metrics: MetricOptions::default(),
            bootstrap: Bootstrap::default(),
            stats: Stat::ALL.to_vec(),
            slo: None,
            only: None,
            allow_workload_mismatch: false,
            sim_label: "sim".to_string(),
            real_label: "real".to_string(),
        }
    }
}

/// Counts and rates of one run in a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// Name (file or `sim`/`real`).
    pub label: String,
    /// Requests in the run.
    pub requests: usize,
    /// After warm-up and window.
    pub considered: usize,
    /// Successful.
    pub ok: usize,
    /// Failed (excluded from latencies).
    pub failed: usize,
    /// First failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// First send → last chunk, seconds.
    pub duration_s: f64,
    /// Successful requests per second.
    pub request_throughput: f64,
    /// Output tokens per second.
    pub output_throughput: f64,
    /// Requests per second meeting every SLO (when SLOs were given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goodput: Option<f64>,
}

impl RunSummary {
    fn new(label: &str, m: &RunMetrics, slo: Option<&Slo>) -> RunSummary {
        RunSummary {
            label: label.to_string(),
            requests: m.requests,
            considered: m.considered,
            ok: m.ok,
            failed: m.failed,
            first_error: m.first_error.clone(),
            duration_s: m.duration_s,
            request_throughput: m.request_throughput(),
            output_throughput: m.output_throughput(),
            goodput: slo.map(|s| m.goodput(s)),
        }
    }
}

/// One statistic of one metric, real against sim. Milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Real value.
    pub real_ms: f64,
    /// Simulated value.
    pub sim_ms: f64,
    /// `sim − real`.
    pub abs_err_ms: f64,
    /// `(sim − real)/real` (`None` when real is 0).
    pub rel_err: Option<f64>,
    /// Bootstrap interval of `rel_err`.
    pub ci95: Option<(f64, f64)>,
    /// Real samples.
    pub n_real: usize,
    /// Simulated samples.
    pub n_sim: usize,
    /// Why the sample-size guard refuses this statistic (`None`: enough samples).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// One metric in a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricReport {
    /// Per statistic.
    pub rows: BTreeMap<Stat, Row>,
    /// Kolmogorov–Smirnov.
    pub ks: Option<Ks>,
    /// Wasserstein-1 distance, milliseconds.
    pub w1_ms: Option<f64>,
    /// Real samples, ascending, seconds (for plots).
    #[serde(skip)]
    pub real_sorted_s: Vec<f64>,
    /// Simulated samples, ascending, seconds.
    #[serde(skip)]
    pub sim_sorted_s: Vec<f64>,
}

/// The result of [`compare`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Definitions used.
    pub def: MetricDef,
    /// The simulated run.
    pub sim: RunSummary,
    /// The real run.
    pub real: RunSummary,
    /// Metrics that both runs have samples of.
    pub metrics: BTreeMap<Metric, MetricReport>,
    /// Metrics that could not be compared, and why.
    pub unavailable: BTreeMap<Metric, String>,
    /// Workload differences let through by `allow_workload_mismatch`, and notes.
    pub warnings: Vec<String>,
}

fn usable(label: &str, m: &RunMetrics) -> Result<(), FidelityError> {
    if m.requests == 0 {
        return Err(FidelityError::EmptyRun {
            label: label.to_string(),
        });
    }
    if m.considered == 0 {
        return Err(FidelityError::NoneConsidered {
            label: label.to_string(),
            requests: m.requests,
        });
    }
    if m.ok == 0 {
        return Err(FidelityError::AllFailed {
            label: label.to_string(),
            failed: m.failed,
            first_error: m.first_error.clone().unwrap_or_default(),
        });
    }
    Ok(())
}

/// Sorted copy of `x` rounded to whole nanoseconds: times rebuilt as `arrival + ttft − arrival`
/// carry float noise of a few ulps, which would otherwise show as KS distance between
/// identical distributions; no recorder resolves a nanosecond.
fn to_ns_sorted(x: &[f64]) -> Vec<f64> {
    let v: Vec<f64> = x.iter().map(|s| (s * 1e9).round() / 1e9).collect();
    sorted(&v)
}

/// Compares a simulated run with a real one under `opts`.
///
/// Refuses empty runs, runs whose requests all failed, and runs of different workloads
/// (unless `allow_workload_mismatch`; see [`check_workload`]).
pub fn compare(sim: &Run, real: &Run, opts: &CompareOptions) -> Result<Report, FidelityError> {
    let ms = RunMetrics::compute(sim, &opts.metrics);
    let mr = RunMetrics::compute(real, &opts.metrics);
    usable(&opts.sim_label, &ms)?;
    usable(&opts.real_label, &mr)?;
    let wl = check_workload(sim, real);
    let mut warnings = wl.notes;
    if !wl.mismatches.is_empty() {
        if !opts.allow_workload_mismatch {
            return Err(FidelityError::WorkloadMismatch {
                sim: opts.sim_label.clone(),
                real: opts.real_label.clone(),
                details: wl.mismatches,
            });
        }
        warnings.extend(
            wl.mismatches
                .into_iter()
                .map(|m| format!("not the same workload: {m}")),
        );
    }
    if ms.failed > 0 || mr.failed > 0 {
        warnings.push(format!(
            "failed requests excluded from latencies: sim {}, real {}",
            ms.failed, mr.failed
        ));
    }
    let mut metrics = BTreeMap::new();
    let mut unavailable = BTreeMap::new();
    for metric in Metric::ALL {
        if opts.only.as_ref().is_some_and(|o| !o.contains(&metric)) {
            continue;
        }
        let (s, r) = match (ms.samples(metric), mr.samples(metric)) {
            (Ok(s), Ok(r)) if !s.is_empty() && !r.is_empty() => (to_ns_sorted(s), to_ns_sorted(r)),
            (Err(why), _) => {
                unavailable.insert(metric, format!("sim: {why}"));
                continue;
            }
            (_, Err(why)) => {
                unavailable.insert(metric, format!("real: {why}"));
                continue;
            }
            _ => {
                unavailable.insert(metric, "no samples".to_string());
                continue;
            }
        };
        let mut rows = BTreeMap::new();
        for &stat in &opts.stats {
            let (Some(rv), Some(sv)) = (stat.of_sorted(&r), stat.of_sorted(&s)) else {
                continue;
            };
            let refused = guard(stat, r.len().min(s.len()));
            rows.insert(
                stat,
                Row {
                    real_ms: rv * 1e3,
                    sim_ms: sv * 1e3,
                    abs_err_ms: (sv - rv) * 1e3,
                    rel_err: rel_err(sv, rv),
                    ci95: opts.bootstrap.rel_err_ci(&r, &s, stat),
                    n_real: r.len(),
                    n_sim: s.len(),
                    refused,
                },
            );
        }
        metrics.insert(
            metric,
            MetricReport {
                rows,
                ks: ks_sorted(&r, &s),
                w1_ms: wasserstein1_sorted(&r, &s).map(|w| w * 1e3),
                real_sorted_s: r,
                sim_sorted_s: s,
            },
        );
    }
    Ok(Report {
        def: opts.metrics.def,
        sim: RunSummary::new(&opts.sim_label, &ms, opts.slo.as_ref()),
        real: RunSummary::new(&opts.real_label, &mr, opts.slo.as_ref()),
        metrics,
        unavailable,
        warnings,
    })
}
