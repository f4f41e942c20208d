//! Random sources shared by the length and arrival generators, a leaf of the workload module:
//! [`RngKind`] (re-exported as `simfid::workload::RngKind`), the crate-private [`UnitSource`]
//! trait, simfid's own [`PcgSource`], and the polar-normal and gamma samplers written on top
//! of any unit source. [`pyrandom`](super::pyrandom) implements [`UnitSource`] for NumPy's
//! generator; `main_rng` picks the streams of one run by kind.

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

/// Which random source a synthetic workload draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RngKind {
    /// Vidur's: CPython's `random` and NumPy's legacy `RandomState`, bit-exact (seeds must fit
    /// in 32 bits, as NumPy requires).
    Vidur,
    /// simfid's own `Pcg64Mcg` (any 64-bit seed).
    Pcg,
}

/// A source of uniform doubles in `[0, 1)` and of standard normal deviates, which the gamma
/// sampler and the zipf generator draw from (NumPy's legacy `RandomState`, or simfid's
/// `Pcg64Mcg`).
pub(crate) trait UnitSource {
    /// A double in `[0, 1)`.
    fn next_f64(&mut self) -> f64;
    /// A standard normal deviate.
    fn gauss(&mut self) -> f64;
}

/// simfid's own generator: `Pcg64Mcg` seeded with `seed_from_u64`, doubles from the top 53 bits
/// of a 64-bit output (rand's `StandardUniform`), normals by the polar method with a cache.
#[derive(Debug, Clone)]
pub(crate) struct PcgSource {
    rng: Pcg64Mcg,
    gauss: Option<f64>,
}

impl PcgSource {
    /// A generator seeded from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        PcgSource {
            rng: Pcg64Mcg::seed_from_u64(seed),
            gauss: None,
        }
    }

    /// A uniform integer in `[0, n)` (`n > 0`; 0 for `n == 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        self.rng.random_range(0..n)
    }
}

impl UnitSource for PcgSource {
    fn next_f64(&mut self) -> f64 {
        self.rng.random::<f64>()
    }
    fn gauss(&mut self) -> f64 {
        let PcgSource { rng, gauss } = self;
        polar_gauss(|| rng.random::<f64>(), gauss)
    }
}

/// The polar (Marsaglia) method as NumPy's legacy generator runs it: two uniforms in `(-1, 1)`
/// until they fall strictly inside the unit circle (and not at its centre); the deviate from the
/// second coordinate is returned and the one from the first is cached for the next call.
pub(crate) fn polar_gauss(mut next_f64: impl FnMut() -> f64, cache: &mut Option<f64>) -> f64 {
    if let Some(g) = cache.take() {
        return g;
    }
    loop {
        let x1 = 2.0 * next_f64() - 1.0;
        let x2 = 2.0 * next_f64() - 1.0;
        let r2 = x1 * x1 + x2 * x2;
        if r2 < 1.0 && r2 != 0.0 {
            let f = (-2.0 * r2.ln() / r2).sqrt();
            *cache = Some(f * x1);
            return f * x2;
        }
    }
}

/// A standard gamma deviate with the given shape, by the algorithm of NumPy's legacy generator
/// (written from its description): shape 1 is an exponential `-ln(1 - U)`; shape below 1 uses a
/// rejection scheme on a uniform and an exponential; shape above 1 is Marsaglia and Tsang's
/// method with the squeeze `1 - 0.0331 x^4`. Shape 0 gives 0; a negative or NaN shape gives NaN.
pub(crate) fn standard_gamma<S: UnitSource + ?Sized>(src: &mut S, shape: f64) -> f64 {
    if shape.is_nan() || shape < 0.0 {
        return f64::NAN;
    }
    if shape == 1.0 {
        return -(1.0 - src.next_f64()).ln();
    }
    if shape == 0.0 {
        return 0.0;
    }
    if shape < 1.0 {
        loop {
            let u = src.next_f64();
            let v = -(1.0 - src.next_f64()).ln();
            if u <= 1.0 - shape {
                let x = u.powf(1.0 / shape);
                if x <= v {
                    return x;
                }
            } else {
                let y = -((1.0 - u) / shape).ln();
                let x = (1.0 - shape + shape * y).powf(1.0 / shape);
                if x <= v + y {
                    return x;
                }
            }
        }
    }
    let b = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * b).sqrt();
    loop {
        let (x, v) = loop {
            let x = src.gauss();
            let v = 1.0 + c * x;
            if v > 0.0 {
                break (x, v);
            }
        };
        let v = v * v * v;
        let u = src.next_f64();
        if u < 1.0 - 0.0331 * (x * x) * (x * x) {
            return b * v;
        }
        if u.ln() < 0.5 * x * x + b * (1.0 - v + v.ln()) {
            return b * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcg_source_is_deterministic_and_in_range() {
        let mut a = PcgSource::new(3);
        let mut b = PcgSource::new(3);
        for _ in 0..1000 {
            let x = a.next_f64();
            assert_eq!(x.to_bits(), b.next_f64().to_bits());
            assert!((0.0..1.0).contains(&x));
        }
        assert_ne!(PcgSource::new(4).next_f64(), PcgSource::new(3).next_f64());
    }

    #[test]
    fn gamma_mean_and_variance_are_right() {
        // Mean shape, variance shape for a standard gamma; 200k draws, loose 4-sigma bounds.
        for shape in [0.25, 1.0, 4.0] {
            let mut src = PcgSource::new(11);
            let n = 200_000;
            let xs: Vec<f64> = (0..n).map(|_| standard_gamma(&mut src, shape)).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            let se = (shape / n as f64).sqrt();
            assert!(
                (mean - shape).abs() < 4.0 * se,
                "shape {shape}: mean {mean}"
            );
            assert!((var / shape - 1.0).abs() < 0.05, "shape {shape}: var {var}");
        }
    }
}
