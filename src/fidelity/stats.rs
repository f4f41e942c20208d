//! The statistics of a comparison: summary statistics ([`Stat`]), errors, the sample-size
//! guard, a bootstrap confidence interval of the relative error, the two-sample
//! Kolmogorov–Smirnov statistic and the Wasserstein-1 distance. ARCHITECTURE.md
//! ("Statistics") states each definition.

use std::fmt;

use rand::{RngExt, SeedableRng};
use rand_distr::{Beta, Distribution};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use super::quantile::{mean, quantile_sorted};

/// A summary statistic of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
    /// Arithmetic mean.
    Mean,
}

/// Samples a quantile needs beyond it, on its tail side, before simfid reports it as
/// trustworthy: `n · min(p, 1 − p) ≥ 10`, so p50 needs 20 samples, p90 100, p95 200 and p99
/// 1000. The mean needs 10.
pub const TAIL_SAMPLES: usize = 10;

impl Stat {
    /// Every statistic, in report order.
    pub const ALL: [Stat; 5] = [Stat::P50, Stat::P90, Stat::P95, Stat::P99, Stat::Mean];
    /// The statistics a report shows by default.
    pub const REPORT: [Stat; 4] = [Stat::P50, Stat::P90, Stat::P99, Stat::Mean];

    /// Key (`p50`, `p90`, `p95`, `p99`, `mean`).
    pub fn key(self) -> &'static str {
        match self {
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
            Stat::Mean => "mean",
        }
    }

    /// Parses a key (also `median`).
    pub fn parse(s: &str) -> Option<Stat> {
        if s == "median" {
            return Some(Stat::P50);
        }
        Stat::ALL.into_iter().find(|q| q.key() == s)
    }

    /// The probability of a quantile, in per mille (`None` for the mean).
    pub fn permille(self) -> Option<u32> {
        match self {
            Stat::P50 => Some(500),
            Stat::P90 => Some(900),
            Stat::P95 => Some(950),
            Stat::P99 => Some(990),
            Stat::Mean => None,
        }
    }

    /// The probability of a quantile (`None` for the mean).
    pub fn prob(self) -> Option<f64> {
        self.permille().map(|m| m as f64 / 1000.0)
    }

    /// Whether the statistic describes the tail (p90 and above).
    pub fn is_tail(self) -> bool {
        self.permille().is_some_and(|m| m >= 900)
    }

    /// The smallest sample size the guard accepts (see [`TAIL_SAMPLES`]).
    pub fn min_samples(self) -> usize {
        match self.permille() {
            None => TAIL_SAMPLES,
            Some(m) => {
                let tail = m.min(1000 - m) as usize;
                (TAIL_SAMPLES * 1000).div_ceil(tail)
            }
        }
    }

    /// The statistic of an ascending sample (type-7 quantile or mean); `None` when empty.
    pub fn of_sorted(self, sorted: &[f64]) -> Option<f64> {
        match self.prob() {
            Some(p) => quantile_sorted(sorted, p),
            None => mean(sorted),
        }
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Why the guard refuses a statistic: `None` when `n` samples are enough.
pub fn guard(stat: Stat, n: usize) -> Option<String> {
    let need = stat.min_samples();
    (n < need).then(|| {
        // The highest quantile these samples do support, to assert instead.
        let instead = [Stat::P95, Stat::P90, Stat::P50]
            .into_iter()
            .find(|s| s.permille() < stat.permille() && s.min_samples() <= n);
        let alt = match instead {
            Some(s) => format!("assert {s} instead ({n} samples support it), or "),
            None => String::new(),
        };
        format!(
            "{stat} needs at least {need} samples ({TAIL_SAMPLES} beyond the quantile), got {n}: \
             {alt}compare runs with at least {need} requests (per-request metrics) or chunks \
             (ITL, TBT), or pass allow_few_samples(true) to decide it anyway"
        )
    })
}

/// Relative error `(sim − real)/real`; `None` when `real` is zero.
pub fn rel_err(sim: f64, real: f64) -> Option<f64> {
    (real != 0.0).then(|| (sim - real) / real)
}

/// Sorts a copy of `x` without NaNs.
pub fn sorted(x: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Two-sample Kolmogorov–Smirnov test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ks {
    /// `D = sup_x |F_a(x) − F_b(x)|`, in `[0, 1]`.
    pub d: f64,
    /// Asymptotic p-value: the Kolmogorov distribution's tail at `√(nm/(n+m)) · D`.
    pub p_value: f64,
}

/// The two-sample KS statistic of two ascending samples; `None` if either is empty.
///
/// `D` is exact (ties handled by stepping both samples past equal values, as SciPy's
/// `ks_2samp` does); the p-value is the asymptotic one, `Q(λ) = 2 Σ_{k≥1} (−1)^{k−1}
/// e^{−2k²λ²}` with `λ = √(nm/(n+m)) · D`, which is accurate for `nm/(n+m) ≳ 40` (smaller
/// samples: read `D`, not the p-value).
pub fn ks_sorted(a: &[f64], b: &[f64]) -> Option<Ks> {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return None;
    }
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < n && j < m {
        let x = a[i].min(b[j]);
        while i < n && a[i] <= x {
            i += 1;
        }
        while j < m && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n as f64 - j as f64 / m as f64).abs());
    }
    let en = (n as f64 * m as f64 / (n + m) as f64).sqrt();
    Some(Ks {
        d,
        p_value: kolmogorov_q(en * d),
    })
}

/// `Q(λ) = P(K > λ)` of the Kolmogorov distribution.
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for k in 1..=100 {
        let term = (-2.0 * (k * k) as f64 * lambda * lambda).exp();
        sum += sign * term;
        if term < 1e-16 {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// Wasserstein-1 distance between the empirical distributions of two ascending samples,
/// `∫ |F_a(x) − F_b(x)| dx`, in the samples' unit; `None` if either is empty.
///
/// Computed exactly by sweeping the merged sample: between consecutive distinct values the
/// two step functions are constant.
pub fn wasserstein1_sorted(a: &[f64], b: &[f64]) -> Option<f64> {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return None;
    }
    let (mut i, mut j) = (0usize, 0usize);
    let mut x = a[0].min(b[0]);
    let mut w = 0.0;
    while i < n || j < m {
        while i < n && a[i] <= x {
            i += 1;
        }
        while j < m && b[j] <= x {
            j += 1;
        }
        let next = match (a.get(i), b.get(j)) {
            (Some(&p), Some(&q)) => p.min(q),
            (Some(&p), None) => p,
            (None, Some(&q)) => q,
            (None, None) => break,
        };
        w += (i as f64 / n as f64 - j as f64 / m as f64).abs() * (next - x);
        x = next;
    }
    Some(w)
}

/// Settings of the bootstrap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bootstrap {
    /// Resamples (1000 by default).
    pub resamples: usize,
    /// Seed of the `Pcg64Mcg` stream.
    pub seed: u64,
    /// Coverage of the interval (0.95).
    pub confidence: f64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            resamples: 1000,
            seed: 0x5eed_f1de,
            confidence: 0.95,
        }
    }
}

/// Above this many `resamples × n` draws the mean's bootstrap uses its normal limit.
const MEAN_DIRECT_DRAWS: usize = 2_000_000;

impl Bootstrap {
    /// Percentile-bootstrap interval of the relative error `(s − r)/r` of `stat`, resampling
    /// both ascending samples independently with replacement; `None` if either is empty or
    /// every resampled real value is zero.
    ///
    /// A resampled quantile is drawn exactly without materialising the resample: the k-th
    /// order statistic of n draws with replacement from `x₍₁₎ ≤ … ≤ x₍ₙ₎` is `x₍⌈nU⌉₎` with
    /// `U ~ Beta(k, n − k + 1)` (the k-th order statistic of n uniforms), and the (k+1)-th is
    /// `x₍⌈nU'⌉₎` with `U' = U + (1 − U)·B`, `B ~ Beta(1, n − k)`; type-7 interpolation then
    /// uses the two. So a quantile resample costs O(1) whatever n. The mean is resampled
    /// directly while `resamples × n ≤ 2·10⁶`, and from its normal limit
    /// `N(x̄, s²/n)` beyond (n is then ≥ 2000 with the default 1000 resamples, where the
    /// limit is tight for latency data).
    pub fn rel_err_ci(&self, real: &[f64], sim: &[f64], stat: Stat) -> Option<(f64, f64)> {
        if real.is_empty() || sim.is_empty() || self.resamples == 0 {
            return None;
        }
        let mut rng = Pcg64Mcg::seed_from_u64(self.seed);
        let mut errs = Vec::with_capacity(self.resamples);
        for _ in 0..self.resamples {
            let r = resample_stat(real, stat, self.resamples, &mut rng);
            let s = resample_stat(sim, stat, self.resamples, &mut rng);
            if let Some(e) = rel_err(s, r) {
                errs.push(e);
            }
        }
        if errs.is_empty() {
            return None;
        }
        errs.sort_by(f64::total_cmp);
        let alpha = (1.0 - self.confidence) / 2.0;
        Some((
            quantile_sorted(&errs, alpha)?,
            quantile_sorted(&errs, 1.0 - alpha)?,
        ))
    }
}

/// One bootstrap replicate of `stat` on the ascending sample `x`.
fn resample_stat(x: &[f64], stat: Stat, resamples: usize, rng: &mut Pcg64Mcg) -> f64 {
    let n = x.len();
    if n == 1 {
        return x[0];
    }
    let Some(p) = stat.prob() else {
        return resample_mean(x, resamples, rng);
    };
    let h = (n - 1) as f64 * p;
    let lo = h.floor() as usize; // 0-based: the (lo+1)-th order statistic
    let frac = h - lo as f64;
    let k = lo + 1;
    let u = Beta::new(k as f64, (n - k + 1) as f64)
        .map(|b| b.sample(rng))
        .unwrap_or(0.5);
    let at = |u: f64| x[((n as f64 * u).ceil() as usize).clamp(1, n) - 1];
    let a = at(u);
    if frac == 0.0 || k >= n {
        return a;
    }
    let v = Beta::new(1.0, (n - k) as f64)
        .map(|b| b.sample(rng))
        .unwrap_or(0.5);
    let b = at(u + (1.0 - u) * v);
    let d = b - a;
    if frac >= 0.5 {
        b - d * (1.0 - frac)
    } else {
        a + d * frac
    }
}

fn resample_mean(x: &[f64], resamples: usize, rng: &mut Pcg64Mcg) -> f64 {
    let n = x.len();
    if n.saturating_mul(resamples) <= MEAN_DIRECT_DRAWS {
        let mut s = 0.0;
        for _ in 0..n {
            s += x[rng.random_range(0..n)];
        }
        return s / n as f64;
    }
    let m = x.iter().sum::<f64>() / n as f64;
    let var = x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1) as f64;
    let z: f64 = rand_distr::StandardNormal.sample(rng);
    m + z * (var / n as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_sizes() {
        assert_eq!(Stat::P50.min_samples(), 20);
        assert_eq!(Stat::P90.min_samples(), 100);
        assert_eq!(Stat::P95.min_samples(), 200);
        assert_eq!(Stat::P99.min_samples(), 1000);
        assert!(guard(Stat::P99, 999).is_some());
        assert!(guard(Stat::P99, 1000).is_none());
    }

    #[test]
    fn ks_known_values() {
        // scipy.stats.ks_2samp([1,2,3,4], [3,4,5,6]).statistic == 0.5
        let k = ks_sorted(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0]).unwrap();
        assert_eq!(k.d, 0.5);
        assert_eq!(ks_sorted(&[1.0, 2.0], &[3.0, 4.0]).unwrap().d, 1.0);
        assert_eq!(
            ks_sorted(&[1.0, 1.0, 2.0], &[1.0, 1.0, 2.0]).unwrap().d,
            0.0
        );
        assert!(ks_sorted(&[], &[1.0]).is_none());
    }

    #[test]
    fn kolmogorov_tail_matches_scipy() {
        // scipy.stats.kstwobign.sf(λ) for λ = 0.5, 1.0, 2.0
        for (lam, want) in [
            (0.5, 0.9639452436648751),
            (1.0, 0.26999967167735456),
            (2.0, 0.0006709252557796953),
        ] {
            assert!((kolmogorov_q(lam) - want).abs() < 1e-12, "{lam}");
        }
    }

    #[test]
    fn w1_known_values() {
        // scipy.stats.wasserstein_distance([0, 1, 3], [5, 6, 8]) == 5.0
        assert_eq!(
            wasserstein1_sorted(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]),
            Some(5.0)
        );
        // scipy.stats.wasserstein_distance([0, 1], [0, 0, 1, 1, 1]) == 0.1 (|0.5 − 0.4| · 1)
        let w = wasserstein1_sorted(&[0.0, 1.0], &[0.0, 0.0, 1.0, 1.0, 1.0]).unwrap();
        assert!((w - 0.1).abs() < 1e-12);
    }

    #[test]
    fn resampled_order_statistic_is_exact_for_n2() {
        // With n = 2 the resampled p50 is x1 (1/4), mean (1/2) or x2 (1/4).
        let x = [0.0, 1.0];
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let draws: Vec<f64> = (0..40_000)
            .map(|_| resample_stat(&x, Stat::P50, 1, &mut rng))
            .collect();
        let frac = |v: f64| draws.iter().filter(|&&d| d == v).count() as f64 / 40_000.0;
        assert!((frac(0.0) - 0.25).abs() < 0.01, "{}", frac(0.0));
        assert!((frac(0.5) - 0.5).abs() < 0.01, "{}", frac(0.5));
        assert!((frac(1.0) - 0.25).abs() < 0.01, "{}", frac(1.0));
    }
}
