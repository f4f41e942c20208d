//! Calibration of a step profile's client-visible delays on recorded runs.

use super::preset::Preset;
use crate::error::Result;
use crate::fixture::Run;

/// Calibrates a step profile's client-visible delays on recorded runs: the arrival delay
/// ([`StepProfile::arrival_delay_s`](super::step_profile::StepProfile::arrival_delay_s), from
/// `arrival_grid`), the serving delay (from `delay_grid`) and the frontend's extra way in per
/// open response stream
/// ([`StepProfile::arrival_delay_per_stream_s`](super::step_profile::StepProfile::arrival_delay_per_stream_s),
/// from `per_stream_grid`; `&[0.0]` leaves the term out), all in seconds, that minimise the
/// mean squared relative error of the TTFT, ITL, TPOT and E2E medians over the runs
/// (vLLM-bench definitions). Medians only: the p90s of calibration-sized runs (72–100
/// requests) are too noisy to calibrate on (three real repeats of one workload spread up to
/// 2.3× at TTFT p90). Each run comes with the runs its server served before it
/// ([`Preset::replay_after`]). A combination is only tried when the arrival delay does not
/// exceed the serving delay; ties keep the first (smallest) values.
pub fn calibrate(
    preset: &Preset,
    runs: &[(Run, Vec<Run>)],
    arrival_grid: &[f64],
    delay_grid: &[f64],
    per_stream_grid: &[f64],
) -> Result<Calibration> {
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
    let mut best = Calibration {
        arrival_delay_s: f64::NAN,
        serving_delay_s: f64::NAN,
        arrival_delay_per_stream_s: f64::NAN,
        score: f64::INFINITY,
    };
    for &b in per_stream_grid {
        for &a in arrival_grid {
            for &d in delay_grid.iter().filter(|&&d| d >= a) {
                let mut p = preset.clone();
                p.step.arrival_delay_s = a;
                p.step.serving_delay_s = d;
                p.step.arrival_delay_per_stream_s = b;
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
                if score < best.score {
                    best = Calibration {
                        arrival_delay_s: a,
                        serving_delay_s: d,
                        arrival_delay_per_stream_s: b,
                        score,
                    };
                }
            }
        }
    }
    Ok(best)
}

/// What [`calibrate`] chose.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// Send → scheduler queue on an idle frontend, seconds.
    pub arrival_delay_s: f64,
    /// Step end → client, plus the way in, seconds.
    pub serving_delay_s: f64,
    /// Extra way in per open response stream, seconds.
    pub arrival_delay_per_stream_s: f64,
    /// Mean squared relative error of the calibration medians.
    pub score: f64,
}
