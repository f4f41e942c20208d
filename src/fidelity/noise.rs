//! The noise floor: how far apart two real runs of the same workload are. A simulator cannot
//! be asked to be closer to one real run than another real run is, so a tolerance is never
//! applied below it.
//!
//! For every metric and statistic, with `v₁ … v_k` the statistic in each of `k ≥ 2` real
//! repeats: the relative floor is `(max v − min v) / median v` (the largest disagreement
//! between two repeats, relative to the typical value) and the absolute floor `max v − min v`.

use std::collections::BTreeMap;

use super::error::FidelityError;
use super::metric::{Metric, MetricOptions, RunMetrics};
use super::quantile::quantile;
use super::stats::{Stat, sorted};
use crate::fixture::Run;

/// The spread between real repeats of one statistic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// `(max − min) / median` over repeats.
    pub rel: f64,
    /// `max − min`, milliseconds.
    pub abs_ms: f64,
    /// Repeats that had samples.
    pub repeats: usize,
}

/// Noise floors per metric and statistic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NoiseFloor {
    /// The spreads.
    pub spreads: BTreeMap<(Metric, Stat), Spread>,
}

impl NoiseFloor {
    /// The floor from real repeats of one workload (at least two).
    pub fn from_repeats<R: AsRef<Run>>(
        repeats: &[R],
        opts: &MetricOptions,
    ) -> Result<NoiseFloor, FidelityError> {
        if repeats.len() < 2 {
            return Err(FidelityError::TooFewRepeats(repeats.len()));
        }
        let ms: Vec<RunMetrics> = repeats
            .iter()
            .map(|r| RunMetrics::compute(r.as_ref(), opts))
            .collect();
        let mut spreads = BTreeMap::new();
        for metric in Metric::ALL {
            for stat in Stat::ALL {
                let vals: Vec<f64> = ms
                    .iter()
                    .filter_map(|m| stat.of_sorted(&sorted(m.samples(metric).ok()?)))
                    .collect();
                if vals.len() < 2 {
                    continue;
                }
                let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let med = quantile(&vals, 0.5).unwrap_or(0.0);
                let rel = if med != 0.0 {
                    (hi - lo) / med.abs()
                } else {
                    0.0
                };
                spreads.insert(
                    (metric, stat),
                    Spread {
                        rel,
                        abs_ms: (hi - lo) * 1e3,
                        repeats: vals.len(),
                    },
                );
            }
        }
        Ok(NoiseFloor { spreads })
    }

    /// The spread of one statistic, if known.
    pub fn get(&self, metric: Metric, stat: Stat) -> Option<Spread> {
        self.spreads.get(&(metric, stat)).copied()
    }
}
