//! Arrival processes: when requests arrive.
//!
//! [`ArrivalSpec`] covers Vidur's interval generators (`poisson`, `gamma`, `static`, `trace`)
//! plus recorded absolute arrival times. All but [`ArrivalSpec::Recorded`] produce an
//! inter-arrival time `dt` that is added to the previous arrival (`arrived_at = last + dt`, the
//! first request at `dt₁`, not at 0), exactly as Vidur accumulates them, so float rounding
//! matches too.

use serde::{Deserialize, Serialize};

use super::main_rng::MainRng;
use super::rng::standard_gamma;
use crate::{Error, Result};

/// How arrival times are produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ArrivalSpec {
    /// Exponential inter-arrival times `dt = -ln(1 - U) / qps` (`U` from the main random
    /// source: Python's `random.random()` in Vidur). With `vidur_clip`, `dt` is capped at
    /// `(1 / qps) · 3` as Vidur does (bug B10: the effective rate becomes ≈ 1.052 × qps and the
    /// arrivals are less bursty than Poisson).
    Poisson {
        /// Nominal requests per second.
        qps: f64,
        /// Cap each interval at three mean intervals, as Vidur does.
        vidur_clip: bool,
    },
    /// Gamma-distributed inter-arrival times with the semantics of vLLM's benchmark: shape
    /// `burstiness`, scale `1 / (qps · burstiness)`, so the mean rate is `qps` whatever the
    /// burstiness; burstiness 1 is a Poisson process, below 1 burstier, above 1 more regular.
    /// Vidur's `gamma` generator with coefficient of variation `cv` is burstiness `1 / cv²`
    /// ([`ArrivalSpec::gamma_from_cv`]); with [`super::RngKind::Vidur`] the deviates
    /// come from NumPy's global legacy state, as SciPy's `gamma.rvs` draws them in Vidur.
    Gamma {
        /// Mean requests per second.
        qps: f64,
        /// Gamma shape (`1 / cv²`).
        burstiness: f64,
    },
    /// Every request arrives at t = 0 (Vidur `static`).
    Static,
    /// Absolute arrival times in seconds, used in the order given; requests stop when they run
    /// out.
    Recorded {
        /// Arrival times in seconds from the start of the run.
        times_s: Vec<f64>,
    },
    /// Vidur's `trace` interval generator after its preprocessing (arrival timestamps filtered
    /// to the configured window, floored to whole seconds since the first one, multiplied by
    /// `time_scale_factor`): request `k` (from 0) arrives `times_s[k+1] - times_s[k]` after the
    /// previous one, so the first row only serves as the origin; requests stop when the rows run
    /// out.
    Trace {
        /// Preprocessed trace times in seconds.
        times_s: Vec<f64>,
    },
}

impl ArrivalSpec {
    /// Vidur's gamma generator (`--gamma_request_interval_generator_config_{qps,cv}`):
    /// burstiness `1 / cv²`, computed as Vidur computes its shape.
    pub fn gamma_from_cv(qps: f64, cv: f64) -> Self {
        ArrivalSpec::Gamma {
            qps,
            burstiness: 1.0 / (cv * cv),
        }
    }

    /// Checks the parameters and reports the first problem.
    pub fn validate(&self) -> Result<()> {
        match self {
            ArrivalSpec::Poisson { qps, .. } | ArrivalSpec::Gamma { qps, .. }
                if !(qps.is_finite() && *qps > 0.0) =>
            {
                Err(Error::Workload(format!(
                    "arrival rate must be finite and > 0 qps (got {qps})"
                )))
            }
            ArrivalSpec::Gamma { burstiness, .. }
                if !(burstiness.is_finite() && *burstiness > 0.0) =>
            {
                Err(Error::Workload(format!(
                    "gamma arrivals: burstiness must be finite and > 0 (got {burstiness})"
                )))
            }
            ArrivalSpec::Recorded { times_s } | ArrivalSpec::Trace { times_s } => {
                match times_s.iter().position(|t| !t.is_finite()) {
                    Some(i) => Err(Error::Workload(format!(
                        "arrival time #{} is not a finite number ({})",
                        i + 1,
                        times_s[i]
                    ))),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// The number of arrivals this spec can produce, if limited.
    pub fn capacity(&self) -> Option<usize> {
        match self {
            ArrivalSpec::Recorded { times_s } => Some(times_s.len()),
            ArrivalSpec::Trace { times_s } => Some(times_s.len().saturating_sub(1)),
            _ => None,
        }
    }

    /// A short description for provenance, e.g. `poisson(2 qps, vidur clip 3/qps)`.
    pub fn describe(&self) -> String {
        match self {
            ArrivalSpec::Poisson { qps, vidur_clip } => format!(
                "poisson({qps} qps{})",
                if *vidur_clip {
                    ", vidur clip 3/qps"
                } else {
                    ""
                }
            ),
            ArrivalSpec::Gamma { qps, burstiness } => {
                format!("gamma({qps} qps, burstiness {burstiness})")
            }
            ArrivalSpec::Static => "static(all at t=0)".to_string(),
            ArrivalSpec::Recorded { times_s } => format!("recorded({} arrivals)", times_s.len()),
            ArrivalSpec::Trace { times_s } => format!("trace intervals({} rows)", times_s.len()),
        }
    }

    /// The sampler that produces this spec's arrivals (borrows recorded times).
    pub(crate) fn sampler(&self) -> Result<ArrivalSampler<'_>> {
        self.validate()?;
        Ok(match self {
            ArrivalSpec::Poisson { qps, vidur_clip } => ArrivalSampler::Poisson {
                qps: *qps,
                cap: vidur_clip.then(|| (1.0 / qps) * 3.0),
            },
            ArrivalSpec::Gamma { qps, burstiness } => ArrivalSampler::Gamma {
                shape: *burstiness,
                scale: 1.0 / (qps * burstiness),
            },
            ArrivalSpec::Static => ArrivalSampler::Static,
            ArrivalSpec::Recorded { times_s } => ArrivalSampler::Recorded {
                times: times_s,
                next: 0,
            },
            ArrivalSpec::Trace { times_s } => ArrivalSampler::Trace {
                times: times_s,
                next: 1,
            },
        })
    }
}

/// Produces arrival times for one generator run (crate-private).
#[derive(Debug, Clone)]
pub(crate) enum ArrivalSampler<'a> {
    Poisson { qps: f64, cap: Option<f64> },
    Gamma { shape: f64, scale: f64 },
    Static,
    Recorded { times: &'a [f64], next: usize },
    Trace { times: &'a [f64], next: usize },
}

impl ArrivalSampler<'_> {
    /// The arrival time of the next request, given the previous one (`last`, 0 before the
    /// first), or `None` when recorded or trace times are exhausted.
    pub(crate) fn next(&mut self, last: f64, rng: &mut MainRng) -> Option<f64> {
        match self {
            ArrivalSampler::Poisson { qps, cap } => {
                let dt = -(1.0 - rng.uniform()).ln() / *qps;
                // Python's min(dt, cap) keeps dt unless cap is strictly smaller.
                let dt = match cap {
                    Some(c) if *c < dt => *c,
                    _ => dt,
                };
                Some(last + dt)
            }
            ArrivalSampler::Gamma { shape, scale } => {
                Some(last + standard_gamma(rng.gamma_source(), *shape) * *scale)
            }
            ArrivalSampler::Static => Some(last + 0.0),
            ArrivalSampler::Recorded { times, next } => {
                let t = *times.get(*next)?;
                *next += 1;
                Some(t)
            }
            ArrivalSampler::Trace { times, next } => {
                let t = *times.get(*next)?;
                let dt = t - times[*next - 1];
                *next += 1;
                Some(last + dt)
            }
        }
    }
}
