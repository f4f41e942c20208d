//! Request-length generators: how many prompt (prefill) and output (decode) tokens each request
//! has.
//!
//! [`LengthSpec`] mirrors Vidur's four length generators (`fixed`, `uniform`, `zipf`, `trace`).
//! A spec draws lengths as Vidur does, before truncation: the synthetic generator
//! ([`super::generate`]) turns them into integers with Python's `int()` (truncation toward zero),
//! exactly where Vidur does.
//!
//! Where simfid cannot be bit-exact with Vidur:
//! * **zipf `scramble`**: Vidur scrambles with Python's `hash()` of a string, which is salted per
//!   process; simfid uses its own deterministic hash instead (see [`LengthSpec::Zipf`]).
//! * **zipf normalisation constant**: Vidur computes `zeta` with NumPy (`np.power` then `np.sum`).
//!   simfid reproduces `np.sum`'s pairwise summation (blocks of 8, 128-element leaves, 8192-element
//!   buffers) exactly, but takes `powf` from the platform libm. NumPy ≥ 1.22 on AVX-512 CPUs
//!   computes `np.power` with its own SIMD routine, which differs from libm in the last bit for
//!   about a quarter of the inputs; there `zeta`, `eta` and rarely a drawn length (when
//!   `items · (…)^α` lies within an ulp of an integer) can differ from Vidur's. On CPUs without
//!   AVX-512 NumPy uses libm and the result is bit-exact.

use serde::{Deserialize, Serialize};

use super::main_rng::MainRng;
use super::pyrandom::NumpyRandomState;
use super::rng::{PcgSource, RngKind, UnitSource};
use crate::{Error, Result};

/// How request lengths are drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LengthSpec {
    /// Every request has the same lengths (Vidur `fixed`).
    Fixed {
        /// Prompt tokens.
        prefill: u32,
        /// Output tokens.
        decode: u32,
    },
    /// Total length uniform in `[min_tokens, max_tokens)` (Vidur `uniform`): `total =
    /// uniform(min, max)` from the main random source, `decode = ceil(total / (1 + ratio))`,
    /// `prefill = total - decode`; both truncated to integers when the request is made.
    Uniform {
        /// Smallest total length.
        min_tokens: u32,
        /// Largest total length.
        max_tokens: u32,
        /// Prompt tokens per output token.
        prefill_to_decode_ratio: f64,
    },
    /// Zipf-distributed total length (Vidur `zipf`, a YCSB-style generator with its own random
    /// source seeded with `seed`): rank 1 is `min_tokens`; `decode = total / (1 + ratio)`,
    /// `prefill = total - decode`, both truncated when the request is made.
    ///
    /// With `scramble`, Vidur replaces the drawn length `x` by
    /// `min + hash(str(x) + str(seed)) % items` with Python's salted string hash, which is not
    /// reproducible; simfid uses `min + splitmix64(x ⊕ splitmix64(seed)) % items` instead (same
    /// intent: a fixed, seed-dependent pseudo-random relabelling of the ranks).
    Zipf {
        /// Smallest total length (the most frequent one).
        min_tokens: u32,
        /// Largest total length.
        max_tokens: u32,
        /// Skew, `>= 0` and `!= 1` (Vidur's default is 0.6).
        theta: f64,
        /// Relabel ranks pseudo-randomly so that the most frequent lengths are spread out.
        scramble: bool,
        /// Prompt tokens per output token.
        prefill_to_decode_ratio: f64,
        /// Seed of the generator's own random source (Vidur: `zipf_..._seed`, default 42).
        seed: u64,
    },
    /// Prompt and output lengths drawn independently and uniformly from inclusive integer
    /// ranges (not one of Vidur's generators; vLLM bench's `random` dataset with a range
    /// ratio draws lengths this way): `prompt = prompt_min + ⌊U₁ · (prompt_max − prompt_min +
    /// 1)⌋`, then `output` likewise from a second draw `U₂` of the main random source.
    UniformIndependent {
        /// Shortest prompt (≥ 1).
        prompt_min: u32,
        /// Longest prompt (inclusive).
        prompt_max: u32,
        /// Shortest output (≥ 1).
        output_min: u32,
        /// Longest output (inclusive).
        output_max: u32,
    },
    /// Lengths replayed from a table (Vidur `trace`): each row is scaled, truncated, reduced
    /// proportionally when `prefill + decode > max_tokens` (each part loses
    /// `ceil(excess × its share)`), clipped to at least 1, and the rows are served in the order
    /// of pandas' `df.sample(frac=1, random_state=seed)`. When the rows run out, no more
    /// requests can be made.
    Trace {
        /// `(num_prefill_tokens, num_decode_tokens)` as read from the file, before scaling.
        rows: Vec<(f64, f64)>,
        /// Factor applied to prompt lengths.
        prefill_scale: f64,
        /// Factor applied to output lengths.
        decode_scale: f64,
        /// Largest total length.
        max_tokens: u32,
        /// Shuffle seed.
        seed: u64,
    },
}

impl LengthSpec {
    /// Checks the parameters (and, for a trace, every row) and reports the first problem.
    pub fn validate(&self) -> Result<()> {
        match self {
            LengthSpec::Fixed { prefill, decode } => {
                if *prefill == 0 || *decode == 0 {
                    return Err(Error::Workload(format!(
                        "fixed lengths must be at least 1 token each (got prefill {prefill}, decode {decode})"
                    )));
                }
            }
            LengthSpec::Uniform {
                min_tokens,
                max_tokens,
                prefill_to_decode_ratio: r,
            } => {
                check_range("uniform", *min_tokens, *max_tokens)?;
                check_ratio("uniform", *r)?;
                // decode = ceil(total / (1 + r)) < total / (1 + r) + 1, so prefill >= 1 when
                // total · r / (1 + r) >= 2.
                if f64::from(*min_tokens) * r / (1.0 + r) < 2.0 {
                    return Err(Error::Workload(format!(
                        "uniform lengths: min_tokens {min_tokens} with prefill_to_decode_ratio {r} can leave no prefill token"
                    )));
                }
            }
            LengthSpec::UniformIndependent {
                prompt_min,
                prompt_max,
                output_min,
                output_max,
            } => {
                check_range("uniform prompt", *prompt_min, *prompt_max)?;
                check_range("uniform output", *output_min, *output_max)?;
            }
            LengthSpec::Zipf {
                min_tokens,
                max_tokens,
                theta,
                prefill_to_decode_ratio: r,
                ..
            } => {
                check_range("zipf", *min_tokens, *max_tokens)?;
                check_ratio("zipf", *r)?;
                if !theta.is_finite() || *theta < 0.0 || *theta == 1.0 {
                    return Err(Error::Workload(format!(
                        "zipf lengths: theta must be finite, >= 0 and != 1 (got {theta})"
                    )));
                }
                let d = f64::from(*min_tokens) / (1.0 + r);
                if d < 1.0 || f64::from(*min_tokens) - d < 1.0 {
                    return Err(Error::Workload(format!(
                        "zipf lengths: min_tokens {min_tokens} with prefill_to_decode_ratio {r} gives less than 1 prefill or decode token"
                    )));
                }
            }
            LengthSpec::Trace {
                rows,
                prefill_scale,
                decode_scale,
                max_tokens,
                ..
            } => {
                trace_lengths(rows, *prefill_scale, *decode_scale, *max_tokens)?;
            }
        }
        Ok(())
    }

    /// The number of requests this spec can serve, if limited (a trace's row count).
    pub fn capacity(&self) -> Option<usize> {
        match self {
            LengthSpec::Trace { rows, .. } => Some(rows.len()),
            _ => None,
        }
    }

    /// A short description for provenance, e.g. `uniform(136..4096, p:d 16)`.
    pub fn describe(&self) -> String {
        match self {
            LengthSpec::Fixed { prefill, decode } => format!("fixed(p {prefill}, d {decode})"),
            LengthSpec::Uniform {
                min_tokens,
                max_tokens,
                prefill_to_decode_ratio,
            } => format!("uniform({min_tokens}..{max_tokens}, p:d {prefill_to_decode_ratio})"),
            LengthSpec::UniformIndependent {
                prompt_min,
                prompt_max,
                output_min,
                output_max,
            } => format!(
                "uniform independent(prompt {prompt_min}..={prompt_max}, output {output_min}..={output_max})"
            ),
            LengthSpec::Zipf {
                min_tokens,
                max_tokens,
                theta,
                scramble,
                prefill_to_decode_ratio,
                seed,
            } => format!(
                "zipf({min_tokens}..{max_tokens}, theta {theta}, p:d {prefill_to_decode_ratio}, seed {seed}{})",
                if *scramble { ", scrambled" } else { "" }
            ),
            LengthSpec::Trace {
                rows,
                prefill_scale,
                decode_scale,
                max_tokens,
                seed,
            } => format!(
                "trace lengths({} rows, scale p {prefill_scale} d {decode_scale}, max {max_tokens}, shuffle seed {seed})",
                rows.len()
            ),
        }
    }

    /// The sampler that draws this spec's lengths with the given kind of random source.
    pub(crate) fn sampler(&self, kind: RngKind) -> Result<LengthSampler> {
        self.validate()?;
        Ok(match self {
            LengthSpec::Fixed { prefill, decode } => {
                LengthSampler::Fixed(f64::from(*prefill), f64::from(*decode))
            }
            LengthSpec::Uniform {
                min_tokens,
                max_tokens,
                prefill_to_decode_ratio,
            } => LengthSampler::Uniform {
                min: f64::from(*min_tokens),
                max: f64::from(*max_tokens),
                ratio: *prefill_to_decode_ratio,
            },
            LengthSpec::UniformIndependent {
                prompt_min,
                prompt_max,
                output_min,
                output_max,
            } => LengthSampler::UniformIndependent {
                prompt: (
                    f64::from(*prompt_min),
                    f64::from(*prompt_max - *prompt_min) + 1.0,
                ),
                output: (
                    f64::from(*output_min),
                    f64::from(*output_max - *output_min) + 1.0,
                ),
            },
            LengthSpec::Zipf {
                min_tokens,
                max_tokens,
                theta,
                scramble,
                prefill_to_decode_ratio,
                seed,
            } => LengthSampler::Zipf {
                zipf: Box::new(Zipf::new(
                    *min_tokens,
                    *max_tokens,
                    *theta,
                    *scramble,
                    *seed,
                    kind,
                )?),
                ratio: *prefill_to_decode_ratio,
            },
            LengthSpec::Trace {
                rows,
                prefill_scale,
                decode_scale,
                max_tokens,
                seed,
            } => {
                let lengths = trace_lengths(rows, *prefill_scale, *decode_scale, *max_tokens)?;
                let order = match kind {
                    RngKind::Vidur => NumpyRandomState::from_seed(*seed)?.permutation(rows.len()),
                    RngKind::Pcg => {
                        let mut src = PcgSource::new(*seed);
                        let mut order: Vec<usize> = (0..rows.len()).collect();
                        for i in (1..order.len()).rev() {
                            let j = src.below(i + 1);
                            order.swap(i, j);
                        }
                        order
                    }
                };
                LengthSampler::Trace {
                    lengths: order.into_iter().map(|i| lengths[i]).collect(),
                    next: 0,
                }
            }
        })
    }
}

fn check_range(what: &str, min: u32, max: u32) -> Result<()> {
    if min == 0 || min > max {
        return Err(Error::Workload(format!(
            "{what} lengths: need 1 <= min_tokens <= max_tokens (got {min}..{max})"
        )));
    }
    Ok(())
}

fn check_ratio(what: &str, r: f64) -> Result<()> {
    if !r.is_finite() || r <= 0.0 {
        return Err(Error::Workload(format!(
            "{what} lengths: prefill_to_decode_ratio must be finite and > 0 (got {r})"
        )));
    }
    Ok(())
}

/// Applies Vidur's trace-length preprocessing to raw `(prefill, decode)` rows and returns the
/// integer lengths in row order: scale, truncate toward zero, reduce both parts proportionally
/// (`part -= ceil(excess × part / total)`) when `prefill + decode > max_tokens`, clip to at
/// least 1.
///
/// Errors (naming the 1-based row) for a negative or non-finite value or scale, and for a row
/// that still exceeds `max_tokens` after clipping (Vidur's assertion). Where Vidur would divide
/// by zero (a row that truncates to 0 + 0 tokens) simfid skips the reduction, which is a no-op
/// there anyway, and clips to 1 + 1.
pub fn trace_lengths(
    rows: &[(f64, f64)],
    prefill_scale: f64,
    decode_scale: f64,
    max_tokens: u32,
) -> Result<Vec<(u32, u32)>> {
    for (name, s) in [
        ("prefill_scale", prefill_scale),
        ("decode_scale", decode_scale),
    ] {
        if !s.is_finite() || s < 0.0 {
            return Err(Error::Workload(format!(
                "trace lengths: {name} must be finite and >= 0 (got {s})"
            )));
        }
    }
    if max_tokens < 2 {
        return Err(Error::Workload(format!(
            "trace lengths: max_tokens must be at least 2 (got {max_tokens})"
        )));
    }
    let max = i64::from(max_tokens);
    rows.iter()
        .enumerate()
        .map(|(i, &(p_raw, d_raw))| {
            if !(p_raw.is_finite() && d_raw.is_finite() && p_raw >= 0.0 && d_raw >= 0.0) {
                return Err(Error::Workload(format!(
                    "trace lengths: row {}: lengths must be finite and >= 0 (got {p_raw}, {d_raw})",
                    i + 1
                )));
            }
            // Truncation like pandas' astype(int); products of finite non-negative values are
            // non-negative, and the saturating cast caps absurdly large ones.
            let mut p = (p_raw * prefill_scale).trunc() as i64;
            let mut d = (d_raw * decode_scale).trunc() as i64;
            let total = p.saturating_add(d);
            let excess = (total - max).max(0);
            if excess > 0 {
                let ef = excess as f64;
                let tf = total as f64;
                p -= (ef * (p as f64 / tf)).ceil() as i64;
                d -= (ef * (d as f64 / tf)).ceil() as i64;
            }
            let p = p.max(1);
            let d = d.max(1);
            if p + d > max {
                return Err(Error::Workload(format!(
                    "trace lengths: row {}: {p} + {d} tokens exceed max_tokens {max_tokens} after clipping",
                    i + 1
                )));
            }
            // p + d <= max_tokens, so both fit in u32.
            Ok((p as u32, d as u32))
        })
        .collect()
}

/// Draws lengths for one generator run (crate-private; built by [`LengthSpec::sampler`]).
#[derive(Debug, Clone)]
pub(crate) enum LengthSampler {
    Fixed(f64, f64),
    Uniform {
        min: f64,
        max: f64,
        ratio: f64,
    },
    /// `(min, span)` of each inclusive range.
    UniformIndependent {
        prompt: (f64, f64),
        output: (f64, f64),
    },
    Zipf {
        zipf: Box<Zipf>,
        ratio: f64,
    },
    Trace {
        lengths: Vec<(u32, u32)>,
        next: usize,
    },
}

impl LengthSampler {
    /// The next `(prefill, decode)` before truncation, or `None` when a trace is exhausted.
    /// Uniform lengths draw from `main` (Python's global `random` in Vidur).
    pub(crate) fn next(&mut self, main: &mut MainRng) -> Option<(f64, f64)> {
        match self {
            LengthSampler::Fixed(p, d) => Some((*p, *d)),
            LengthSampler::Uniform { min, max, ratio } => {
                let total = *min + (*max - *min) * main.uniform();
                let decode = (total / (1.0 + *ratio)).ceil();
                Some((total - decode, decode))
            }
            LengthSampler::UniformIndependent { prompt, output } => {
                // min(…, span − 1) guards against U rounding up to 1 in `U · span`.
                let p = prompt.0 + (main.uniform() * prompt.1).floor().min(prompt.1 - 1.0);
                let d = output.0 + (main.uniform() * output.1).floor().min(output.1 - 1.0);
                Some((p, d))
            }
            LengthSampler::Zipf { zipf, ratio } => {
                let total = zipf.next() as f64;
                let decode = total / (1.0 + *ratio);
                Some((total - decode, decode))
            }
            LengthSampler::Trace { lengths, next } => {
                let row = lengths.get(*next)?;
                *next += 1;
                Some((f64::from(row.0), f64::from(row.1)))
            }
        }
    }
}

/// The unit source a zipf generator owns.
#[derive(Debug, Clone)]
enum ZipfSource {
    Numpy(NumpyRandomState),
    Pcg(PcgSource),
}

/// Vidur's YCSB-style zipf generator (Gray et al., "Quickly generating billion-record synthetic
/// databases"), with Vidur's conventions: `zeta(n)` sums `1 / i^θ` for `i` in `1..n` (so it
/// stops at `n - 1`), and `eta` adds `1e-8` to `zeta(n)`.
#[derive(Debug, Clone)]
pub(crate) struct Zipf {
    min: i64,
    items: i64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
    scramble: bool,
    seed: u64,
    source: ZipfSource,
}

impl Zipf {
    fn new(
        min: u32,
        max: u32,
        theta: f64,
        scramble: bool,
        seed: u64,
        kind: RngKind,
    ) -> Result<Self> {
        let items = i64::from(max) - i64::from(min) + 1;
        let zeta2 = zeta(2, theta);
        let zetan = zeta(items as u64, theta);
        let eta = (1.0 - (2.0 / items as f64).powf(1.0 - theta)) / (1.0 - zeta2 / (zetan + 1e-8));
        let source = match kind {
            RngKind::Vidur => ZipfSource::Numpy(NumpyRandomState::from_seed(seed)?),
            RngKind::Pcg => ZipfSource::Pcg(PcgSource::new(seed)),
        };
        Ok(Zipf {
            min: i64::from(min),
            items,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zetan,
            eta,
            scramble,
            seed,
            source,
        })
    }

    fn next(&mut self) -> i64 {
        let u = match &mut self.source {
            ZipfSource::Numpy(s) => s.next_f64(),
            ZipfSource::Pcg(s) => s.next_f64(),
        };
        let rank = if u * self.zetan < 1.0 {
            0
        } else if u * self.zetan < 1.0 + 0.5f64.powf(self.theta) {
            1
        } else {
            // Python's int() truncates toward zero; `as` does too (and maps NaN to 0).
            (self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as i64
        };
        let value = self.min + rank;
        if self.scramble {
            let h = splitmix64(value as u64 ^ splitmix64(self.seed));
            self.min + (h % self.items as u64) as i64
        } else {
            value
        }
    }
}

/// `np.sum(1 / np.power(np.arange(1, count), theta))`, summed in NumPy's order.
fn zeta(count: u64, theta: f64) -> f64 {
    let mut acc = 0.0;
    let mut buf = Vec::with_capacity(NUMPY_BUFSIZE);
    let mut i = 1u64;
    while i < count {
        buf.clear();
        while i < count && buf.len() < NUMPY_BUFSIZE {
            buf.push(1.0 / (i as f64).powf(theta));
            i += 1;
        }
        acc += numpy_pairwise_sum(&buf);
    }
    acc
}

/// NumPy's reduction buffer size: `np.sum` over a long array adds the pairwise sums of
/// consecutive chunks of this many elements.
const NUMPY_BUFSIZE: usize = 8192;

/// NumPy's pairwise summation of one chunk: below 8 elements a plain loop; up to 128 elements
/// eight interleaved accumulators combined as `((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))` and then
/// the remainder; above, the two halves (split at a multiple of 8) summed recursively.
pub(crate) fn numpy_pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let full = n - n % 8;
        let mut i = 8;
        while i < full {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[full..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        numpy_pairwise_sum(&a[..n2]) + numpy_pairwise_sum(&a[n2..])
    }
}

/// The SplitMix64 finaliser (Steele et al.), a fixed bijective mixer of 64-bit words.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    //! Expected values come from Python 3.11.7 with NumPy 1.26.4 / pandas 2.2.3, running Vidur's
    //! zipf and trace-length semantics with `math.pow` (libm, as simfid uses) for the powers and
    //! `np.sum` for `zeta`; hard-coded so that the tests need no Python.
    use super::*;

    fn zipf(min: u32, max: u32, theta: f64, seed: u64) -> Zipf {
        Zipf::new(min, max, theta, false, seed, RngKind::Vidur).unwrap()
    }

    #[test]
    fn uniform_independent_covers_both_inclusive_ranges() {
        use crate::workload::{ArrivalSpec, SyntheticSpec};
        let spec = SyntheticSpec {
            length: LengthSpec::UniformIndependent {
                prompt_min: 3,
                prompt_max: 6,
                output_min: 1,
                output_max: 2,
            },
            arrival: ArrivalSpec::Static,
            num_requests: Some(2000),
            duration_s: None,
            seed: 7,
            rng: RngKind::Pcg,
        };
        let w = spec.generate().unwrap();
        let mut prompts = [0u32; 7];
        let mut outputs = [0u32; 3];
        for r in &w.requests {
            prompts[r.prefill_tokens as usize] += 1;
            outputs[r.decode_tokens as usize] += 1;
        }
        // Every value of each inclusive range occurs, roughly equally often; nothing outside.
        assert_eq!(prompts[..3], [0, 0, 0]);
        assert!(
            prompts[3..].iter().all(|&c| (400..600).contains(&c)),
            "{prompts:?}"
        );
        assert_eq!(outputs[0], 0);
        assert!(
            outputs[1..].iter().all(|&c| (900..1100).contains(&c)),
            "{outputs:?}"
        );
        // Same seed, same lengths; a degenerate range is a constant.
        assert_eq!(spec.generate().unwrap(), w);
        let fixed = SyntheticSpec {
            length: LengthSpec::UniformIndependent {
                prompt_min: 5,
                prompt_max: 5,
                output_min: 9,
                output_max: 9,
            },
            ..spec.clone()
        };
        let w = fixed.generate().unwrap();
        assert!(
            w.requests
                .iter()
                .all(|r| (r.prefill_tokens, r.decode_tokens) == (5, 9))
        );
        let bad = SyntheticSpec {
            length: LengthSpec::UniformIndependent {
                prompt_min: 0,
                prompt_max: 5,
                output_min: 1,
                output_max: 9,
            },
            ..spec.clone()
        };
        assert!(bad.generate().is_err(), "prompt_min 0");
        let bad = SyntheticSpec {
            length: LengthSpec::UniformIndependent {
                prompt_min: 1,
                prompt_max: 5,
                output_min: 10,
                output_max: 9,
            },
            ..spec
        };
        assert!(bad.generate().is_err(), "output_min > output_max");
    }

    #[test]
    fn pairwise_sum_matches_numpy() {
        // np.sum(1 / np.arange(1, 1001, dtype=np.float64))
        let v: Vec<f64> = (1..=1000).map(|i| 1.0 / f64::from(i)).collect();
        assert_eq!(numpy_pairwise_sum(&v), 7.485470860550345);
        // np.sum([math.sin(i) * 1e6 for i in range(30000)]): several 8192-element buffers.
        let v: Vec<f64> = (0..30000).map(|i| f64::from(i).sin() * 1e6).collect();
        let mut acc = 0.0;
        for chunk in v.chunks(NUMPY_BUFSIZE) {
            acc += numpy_pairwise_sum(chunk);
        }
        assert_eq!(acc, 1862455.0507597718);
    }

    #[test]
    fn zipf_constants_and_draws_match_vidur() {
        // (min, max, theta, seed, zetan, eta, first draws)
        type Case = (u32, u32, f64, u64, f64, f64, [i64; 20]);
        let cases: [Case; 4] = [
            (
                1024,
                4096,
                0.6,
                42,
                60.12520264135422,
                0.9628787926349996,
                [
                    1330, 3745, 2481, 1930, 1070, 1070, 1032, 3200, 1938, 2370, 1025, 3879, 3003,
                    1112, 1087, 1088, 1216, 1689, 1448, 1198,
                ],
            ),
            (
                10,
                100_000,
                0.99,
                3,
                12.778225855706836,
                0.11125578257647946,
                [
                    603, 3694, 36, 381, 30181, 31339, 13, 19, 10, 172, 10, 206, 1875, 33, 2561,
                    957, 10, 662, 28, 129,
                ],
            ),
            (
                1,
                50,
                0.0,
                1,
                49.0,
                0.9799999999958332,
                [
                    22, 37, 1, 16, 9, 6, 11, 18, 21, 28, 22, 35, 12, 45, 2, 34, 22, 29, 8, 11,
                ],
            ),
            (
                100,
                200,
                1.5,
                9,
                2.4128740987037163,
                -10.42825968475652,
                [
                    100, 101, 101, 100, 100, 100, 101, 100, 100, 100, 100, 119, 144, 100, 105, 103,
                    123, 105, 101, 105,
                ],
            ),
        ];
        for (min, max, theta, seed, zetan, eta, draws) in cases {
            let mut z = zipf(min, max, theta, seed);
            assert_eq!(
                (z.zetan, z.eta),
                (zetan, eta),
                "zipf({min}, {max}, {theta})"
            );
            let got: Vec<i64> = (0..20).map(|_| z.next()).collect();
            assert_eq!(got, draws, "zipf({min}, {max}, {theta})");
        }
    }

    #[test]
    fn zipf_scramble_is_deterministic_and_in_range() {
        let spec = |seed| LengthSpec::Zipf {
            min_tokens: 100,
            max_tokens: 1000,
            theta: 0.9,
            scramble: true,
            prefill_to_decode_ratio: 3.0,
            seed,
        };
        let draw = |seed, kind| {
            let mut s = spec(seed).sampler(kind).unwrap();
            let mut main = MainRng::new(RngKind::Pcg, 0).unwrap();
            (0..500)
                .map(|_| s.next(&mut main).unwrap())
                .collect::<Vec<_>>()
        };
        for kind in [RngKind::Vidur, RngKind::Pcg] {
            let a = draw(5, kind);
            assert_eq!(a, draw(5, kind));
            assert_ne!(a, draw(6, kind));
            assert!(a.iter().all(|(p, d)| (100.0..=1000.0).contains(&(p + d))));
        }
    }

    #[test]
    fn trace_lengths_match_vidur_preprocessing() {
        let rows = [
            (5000.0, 300.0),
            (4000.7, 200.0),
            (100.0, 50.0),
            (1.0, 5000.0),
            (3.0, 4095.0),
        ];
        // Prefill scale 1.5, max_tokens 4096: pandas gives these.
        let got = trace_lengths(&rows, 1.5, 1.0, 4096).unwrap();
        assert_eq!(
            got,
            [(3938, 157), (3963, 132), (150, 50), (1, 4095), (3, 4092)]
        );
        // Rows that truncate to nothing are clipped to 1 + 1 (Vidur crashes on them).
        assert_eq!(
            trace_lengths(&[(0.2, 0.9)], 1.0, 1.0, 4096).unwrap(),
            [(1, 1)]
        );
        let e = trace_lengths(&[(1.0, 2.0), (f64::NAN, 1.0)], 1.0, 1.0, 4096).unwrap_err();
        assert!(e.to_string().contains("row 2"), "{e}");
    }

    #[test]
    fn trace_order_is_pandas_sample_order() {
        let rows: Vec<(f64, f64)> = (0..50).map(|i| (f64::from(i) + 1.0, 1.0)).collect();
        let spec = LengthSpec::Trace {
            rows,
            prefill_scale: 1.0,
            decode_scale: 1.0,
            max_tokens: 4096,
            seed: 42,
        };
        let mut s = spec.sampler(RngKind::Vidur).unwrap();
        let mut main = MainRng::new(RngKind::Vidur, 42).unwrap();
        let order: Vec<usize> = std::iter::from_fn(|| s.next(&mut main))
            .map(|(p, _)| p as usize - 1)
            .collect();
        // pd.DataFrame({"a": range(50)}).sample(frac=1, random_state=42).index, first ten.
        assert_eq!(order.len(), 50);
        assert_eq!(&order[..10], [13, 39, 30, 45, 17, 48, 26, 25, 32, 19]);
    }

    #[test]
    fn invalid_specs_are_rejected() {
        let bad = [
            LengthSpec::Fixed {
                prefill: 0,
                decode: 1,
            },
            LengthSpec::Uniform {
                min_tokens: 10,
                max_tokens: 5,
                prefill_to_decode_ratio: 1.0,
            },
            LengthSpec::Uniform {
                min_tokens: 2,
                max_tokens: 5,
                prefill_to_decode_ratio: 1.0,
            },
            LengthSpec::Uniform {
                min_tokens: 100,
                max_tokens: 500,
                prefill_to_decode_ratio: f64::NAN,
            },
            LengthSpec::Zipf {
                min_tokens: 100,
                max_tokens: 500,
                theta: 1.0,
                scramble: false,
                prefill_to_decode_ratio: 1.0,
                seed: 1,
            },
            LengthSpec::Zipf {
                min_tokens: 100,
                max_tokens: 500,
                theta: 0.5,
                scramble: false,
                prefill_to_decode_ratio: 1.0,
                seed: 1 << 40,
            },
        ];
        for spec in bad {
            assert!(spec.sampler(RngKind::Vidur).is_err(), "{spec:?}");
        }
    }
}
