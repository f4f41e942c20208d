//! Synthetic workloads: a length generator plus an arrival process, seeded.
//!
//! [`SyntheticSpec`] is Vidur's `synthetic` request generator. With [`RngKind::Vidur`] it
//! reproduces Vidur's requests exactly (same arrival times to the bit, same token counts): one
//! Python `random` and one NumPy legacy state seeded with `seed` (Vidur's `set_seeds`), and for
//! each request the inter-arrival time is drawn **first**, then the lengths; `arrived_at = last +
//! dt`; token counts are truncated with Python's `int()`; ids count from 0 in creation order;
//! requests are stably sorted by arrival. With [`RngKind::Pcg`] the same algorithms draw from
//! simfid's own `Pcg64Mcg` instead.
//!
//! [`SyntheticSpec::iter`] streams requests in constant memory (for million-request runs);
//! [`SyntheticSpec::generate`] collects them into a [`Workload`].
//!
//! ```
//! use simfid::workload::arrival::ArrivalSpec;
//! use simfid::workload::generate::{RngKind, SyntheticSpec};
//! use simfid::workload::length::LengthSpec;
//!
//! let spec = SyntheticSpec {
//!     length: LengthSpec::Uniform { min_tokens: 136, max_tokens: 4096, prefill_to_decode_ratio: 16.0 },
//!     arrival: ArrivalSpec::Poisson { qps: 2.0, vidur_clip: true },
//!     num_requests: Some(2000),
//!     duration_s: None,
//!     seed: 42,
//!     rng: RngKind::Vidur,
//! };
//! let workload = spec.generate()?;
//! // The first request of Vidur's run with these flags:
//! assert_eq!(workload.requests[0].arrival_s, 0.5100301436374005);
//! assert_eq!((workload.requests[0].prefill_tokens, workload.requests[0].decode_tokens), (221, 14));
//! # Ok::<(), simfid::Error>(())
//! ```

// Kept here too, so that `simfid::workload::generate::RngKind` still names it.
pub use super::rng::RngKind;

use serde::{Deserialize, Serialize};

use super::arrival::{ArrivalSampler, ArrivalSpec};
use super::length::{LengthSampler, LengthSpec};
use super::main_rng::MainRng;
use super::pyrandom::{NumpyRandomState, PyRandom};
use super::{RequestSpec, Workload};
use crate::{Error, Result};

/// A synthetic workload: lengths, arrivals, how many requests, seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyntheticSpec {
    /// Request lengths.
    pub length: LengthSpec,
    /// Arrival process.
    pub arrival: ArrivalSpec,
    /// Number of requests (Vidur `synthetic_request_generator_config_num_requests`); ignored
    /// when `duration_s` is set, as in Vidur.
    pub num_requests: Option<u64>,
    /// Generate while the last arrival is before this time, then drop the requests arriving at
    /// or after it (Vidur `synthetic_request_generator_config_duration`; takes priority over
    /// `num_requests`).
    pub duration_s: Option<f64>,
    /// Seed of the main random source (Vidur `synthetic_request_generator_config_seed`, which
    /// overrides `--seed` for request generation).
    pub seed: u64,
    /// Random source.
    pub rng: RngKind,
}

impl SyntheticSpec {
    /// Checks the whole spec and reports the first problem.
    pub fn validate(&self) -> Result<()> {
        self.length.validate()?;
        self.arrival.validate()?;
        if self.rng == RngKind::Vidur {
            // Vidur's set_seeds calls np.random.seed(seed), which rejects larger seeds.
            NumpyRandomState::from_seed(self.seed)?;
        }
        match (self.duration_s, self.num_requests) {
            (Some(d), _) if d.is_nan() => {
                return Err(Error::Workload("duration must be a number".to_string()));
            }
            (Some(_), _) => {}
            (None, Some(n)) => {
                // Vidur crashes when a finite source runs out before num_requests (bug B23).
                let cap = [self.length.capacity(), self.arrival.capacity()]
                    .into_iter()
                    .flatten()
                    .min();
                if let Some(cap) = cap
                    && n > cap as u64
                {
                    return Err(Error::Workload(format!(
                        "{n} requests asked for but the trace can only provide {cap}"
                    )));
                }
            }
            (None, None) => {
                if self.length.capacity().is_none() && self.arrival.capacity().is_none() {
                    return Err(Error::Workload(
                        "a synthetic workload needs num_requests, a duration, or a finite trace"
                            .to_string(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Streams the requests in creation order, in constant memory (apart from a trace's rows).
    /// Creation order is arrival order except with unsorted recorded or trace times;
    /// [`generate`](Self::generate) sorts.
    pub fn iter(&self) -> Result<SyntheticIter<'_>> {
        self.validate()?;
        Ok(SyntheticIter {
            rng: MainRng::new(self.rng, self.seed)?,
            lengths: self.length.sampler(self.rng)?,
            arrivals: self.arrival.sampler()?,
            limit: match (self.duration_s, self.num_requests) {
                (Some(d), _) => Limit::Duration(d),
                (None, Some(n)) => Limit::Count(n),
                (None, None) => Limit::Exhaustion,
            },
            current: 0.0,
            produced: 0,
            done: false,
        })
    }

    /// All requests, stably sorted by arrival time.
    pub fn generate(&self) -> Result<Workload> {
        Ok(self.generate_with_rng()?.0)
    }

    /// All requests, plus the state of Python's global `random` afterwards (with
    /// [`RngKind::Vidur`]; `None` otherwise). Vidur's `random` global scheduler keeps drawing
    /// from that state.
    pub fn generate_with_rng(&self) -> Result<(Workload, Option<PyRandom>)> {
        let mut it = self.iter()?;
        let requests: Vec<RequestSpec> = it.by_ref().collect();
        let py = it.into_py_random();
        Ok((Workload::new(requests, self.describe()), py))
    }

    /// One line for provenance, e.g. `synthetic (vidur rng, seed 42): uniform(136..4096, p:d 16)
    /// + poisson(2 qps, vidur clip 3/qps), 2000 requests`.
    pub fn describe(&self) -> String {
        let rng = match self.rng {
            RngKind::Vidur => "vidur rng",
            RngKind::Pcg => "pcg64mcg",
        };
        let count = match (self.duration_s, self.num_requests) {
            (Some(d), Some(_)) => format!("until {d} s (num_requests ignored, as in Vidur)"),
            (Some(d), None) => format!("until {d} s"),
            (None, Some(n)) => format!("{n} requests"),
            (None, None) => "until the trace runs out".to_string(),
        };
        format!(
            "synthetic ({rng}, seed {}): {} + {}, {count}",
            self.seed,
            self.length.describe(),
            self.arrival.describe()
        )
    }
}

#[derive(Debug, Clone, Copy)]
enum Limit {
    Duration(f64),
    Count(u64),
    Exhaustion,
}

/// The streaming generator returned by [`SyntheticSpec::iter`].
#[derive(Debug, Clone)]
pub struct SyntheticIter<'a> {
    rng: MainRng,
    lengths: LengthSampler,
    arrivals: ArrivalSampler<'a>,
    limit: Limit,
    current: f64,
    produced: u64,
    done: bool,
}

impl SyntheticIter<'_> {
    /// Python's global `random` in its current state (with [`RngKind::Vidur`]).
    pub fn py_random(&self) -> Option<&PyRandom> {
        match &self.rng {
            MainRng::Vidur { py, .. } => Some(py),
            MainRng::Pcg(_) => None,
        }
    }

    /// NumPy's global legacy state in its current state (with [`RngKind::Vidur`]).
    pub fn numpy_random(&self) -> Option<&NumpyRandomState> {
        match &self.rng {
            MainRng::Vidur { np, .. } => Some(np),
            MainRng::Pcg(_) => None,
        }
    }

    /// Consumes the iterator and returns Python's global `random` (with [`RngKind::Vidur`]).
    pub fn into_py_random(self) -> Option<PyRandom> {
        match self.rng {
            MainRng::Vidur { py, .. } => Some(py),
            MainRng::Pcg(_) => None,
        }
    }

    /// Number of requests created so far (including one dropped for arriving after the
    /// duration).
    pub fn created(&self) -> u64 {
        self.produced
    }
}

impl Iterator for SyntheticIter<'_> {
    type Item = RequestSpec;

    fn next(&mut self) -> Option<RequestSpec> {
        if self.done {
            return None;
        }
        let go_on = match self.limit {
            Limit::Duration(d) => is_before(self.current, d),
            Limit::Count(n) => self.produced < n,
            Limit::Exhaustion => true,
        };
        let request = go_on.then(|| self.make()).flatten();
        match request {
            // Vidur drops requests at or after the duration; only the last one created can be
            // such a request, since it ends the loop.
            Some(r) if matches!(self.limit, Limit::Duration(d) if !is_before(r.arrival_s, d)) => {
                self.done = true;
                None
            }
            Some(r) => Some(r),
            None => {
                self.done = true;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.limit {
            _ if self.done => (0, Some(0)),
            Limit::Count(n) => {
                let left = usize::try_from(n - self.produced).unwrap_or(usize::MAX);
                (left, Some(left))
            }
            _ => (0, None),
        }
    }
}

impl SyntheticIter<'_> {
    /// Creates one request as Vidur's `_generate_next_request` does: interval first, then
    /// lengths.
    fn make(&mut self) -> Option<RequestSpec> {
        let arrival_s = self.arrivals.next(self.current, &mut self.rng)?;
        let (prefill, decode) = self.lengths.next(&mut self.rng)?;
        self.current = arrival_s;
        let id = self.produced;
        self.produced += 1;
        Some(RequestSpec {
            id,
            arrival_s,
            prefill_tokens: py_int_tokens(prefill),
            decode_tokens: py_int_tokens(decode),
        })
    }
}

/// `t < d`: Vidur keeps a request when this holds (false for NaN, never produced by a valid
/// spec).
fn is_before(t: f64, d: f64) -> bool {
    t < d
}

/// Python's `int()` of a token count (truncation toward zero), clamped to `1..=u32::MAX`.
/// Validated specs never reach the clamp at the low end; Vidur would create a request with 0
/// tokens there.
fn py_int_tokens(x: f64) -> u32 {
    let t = x.trunc();
    if t >= f64::from(u32::MAX) {
        u32::MAX
    } else if t >= 1.0 {
        t as u32
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform_poisson(seed: u64, n: u64, rng: RngKind) -> SyntheticSpec {
        SyntheticSpec {
            length: LengthSpec::Uniform {
                min_tokens: 136,
                max_tokens: 4096,
                prefill_to_decode_ratio: 16.0,
            },
            arrival: ArrivalSpec::Poisson {
                qps: 2.0,
                vidur_clip: true,
            },
            num_requests: Some(n),
            duration_s: None,
            seed,
            rng,
        }
    }

    #[test]
    fn same_seed_same_requests_different_seed_different() {
        for rng in [RngKind::Vidur, RngKind::Pcg] {
            let a = uniform_poisson(7, 500, rng).generate().unwrap();
            let b = uniform_poisson(7, 500, rng).generate().unwrap();
            assert_eq!(a, b);
            let c = uniform_poisson(8, 500, rng).generate().unwrap();
            assert_ne!(a.requests, c.requests);
            assert_eq!(a.len(), 500);
            assert!(
                a.requests
                    .windows(2)
                    .all(|w| w[0].arrival_s <= w[1].arrival_s)
            );
            assert!(a.requests.iter().enumerate().all(|(i, r)| r.id == i as u64));
        }
    }

    #[test]
    fn streaming_equals_collecting() {
        let spec = uniform_poisson(3, 1000, RngKind::Pcg);
        let streamed: Vec<RequestSpec> = spec.iter().unwrap().collect();
        assert_eq!(streamed, spec.generate().unwrap().requests);
        assert_eq!(spec.iter().unwrap().size_hint(), (1000, Some(1000)));
    }

    #[test]
    fn vidur_first_requests_match_vidur_run_a() {
        // The first three rows of fixtures/vidur/runs/a (request_arrival_time_series.csv and
        // request_metrics.csv); the full comparison is in `vidur_reference`.
        let w = uniform_poisson(42, 3, RngKind::Vidur).generate().unwrap();
        let got: Vec<(f64, u32, u32)> = w
            .requests
            .iter()
            .map(|r| (r.arrival_s, r.prefill_tokens, r.decode_tokens))
            .collect();
        assert_eq!(got[0], (0.5100301436374005, 221, 14));
        assert_eq!(got[1].0, 0.6708421756748832);
        assert_eq!((got[1].1, got[1].2), (959, 60));
    }

    #[test]
    fn vidur_gamma_arrivals_match_scipy() {
        // Produced with Python 3.11.7 / NumPy 1.26.4 / SciPy 1.14.1 by re-stating Vidur's
        // synthetic generator: random.seed(s); np.random.seed(s); per request
        // dt = scipy.stats.gamma.rvs(1/cv**2, scale=1/(qps/cv**2)), then random.uniform lengths.
        let spec = SyntheticSpec {
            length: LengthSpec::Uniform {
                min_tokens: 100,
                max_tokens: 2000,
                prefill_to_decode_ratio: 4.0,
            },
            arrival: ArrivalSpec::gamma_from_cv(3.0, 0.5),
            num_requests: Some(6),
            duration_s: None,
            seed: 7,
            rng: RngKind::Vidur,
        };
        let expected = [
            (0.6624874801158003, 571, 144),
            (0.8995603043993462, 308, 78),
            (1.0957239045141256, 1068, 268),
            (1.4016091845158483, 189, 48),
            (1.9000198047970571, 894, 224),
            (2.311763267842646, 635, 159),
        ];
        assert_eq!(triples(&spec), expected);

        let spec = SyntheticSpec {
            arrival: ArrivalSpec::gamma_from_cv(1.5, 2.0),
            length: LengthSpec::Uniform {
                min_tokens: 136,
                max_tokens: 4096,
                prefill_to_decode_ratio: 16.0,
            },
            seed: 42,
            ..spec
        };
        let expected = [
            (0.052476167316736114, 2511, 157),
            (0.8180704458402052, 221, 14),
            (0.819650509878166, 1152, 73),
            (0.8196808615906762, 959, 60),
            (1.1678570186499249, 2872, 180),
            (1.1678574974228033, 2649, 166),
        ];
        assert_eq!(triples(&spec), expected);

        let spec = SyntheticSpec {
            arrival: ArrivalSpec::gamma_from_cv(2.0, 1.0),
            length: LengthSpec::Fixed {
                prefill: 100,
                decode: 10,
            },
            num_requests: Some(4),
            ..spec
        };
        let expected = [
            (0.23463404498842955, 100, 10),
            (1.7396947604471902, 100, 10),
            (2.398067607219915, 100, 10),
            (2.8545388841078916, 100, 10),
        ];
        assert_eq!(triples(&spec), expected);
    }

    #[test]
    fn vidur_zipf_lengths_match_numpy() {
        // Same re-statement as above with Vidur's ZipfGenerator(1024, 4096, 0.6, False, 42)
        // (its own RandomState(42)) and Poisson 2 QPS (the same with NumPy's and libm's pow).
        let spec = SyntheticSpec {
            length: LengthSpec::Zipf {
                min_tokens: 1024,
                max_tokens: 4096,
                theta: 0.6,
                scramble: false,
                prefill_to_decode_ratio: 20.0,
                seed: 42,
            },
            arrival: ArrivalSpec::Poisson {
                qps: 2.0,
                vidur_clip: true,
            },
            num_requests: Some(5),
            duration_s: None,
            seed: 42,
            rng: RngKind::Vidur,
        };
        let expected = [
            (0.5100301436374005, 1266, 63),
            (0.5226945631587699, 3566, 178),
            (0.6835065951962527, 2362, 118),
            (0.8097996880313094, 1838, 91),
            (1.4765960244353509, 1019, 50),
        ];
        assert_eq!(triples(&spec), expected);
    }

    #[test]
    fn duration_drops_the_request_that_crosses_it() {
        let mut spec = uniform_poisson(42, 10, RngKind::Vidur);
        spec.duration_s = Some(10.0);
        let w = spec.generate().unwrap();
        // num_requests is ignored when a duration is set, as in Vidur.
        assert!(w.len() > 10);
        assert!(w.requests.iter().all(|r| r.arrival_s < 10.0));
        // The same stream without a duration: the next request is at or after 10 s.
        let all = uniform_poisson(42, w.len() as u64 + 1, RngKind::Vidur)
            .generate()
            .unwrap();
        assert_eq!(&all.requests[..w.len()], &w.requests[..]);
        assert!(all.requests[w.len()].arrival_s >= 10.0);
        spec.duration_s = Some(0.0);
        assert!(spec.generate().unwrap().is_empty());
    }

    #[test]
    fn static_and_recorded_arrivals() {
        let spec = SyntheticSpec {
            length: LengthSpec::Fixed {
                prefill: 5,
                decode: 3,
            },
            arrival: ArrivalSpec::Static,
            num_requests: Some(4),
            duration_s: None,
            seed: 1,
            rng: RngKind::Pcg,
        };
        let w = spec.generate().unwrap();
        assert!(w.requests.iter().all(|r| r.arrival_s == 0.0));
        assert_eq!(
            w.requests.iter().map(|r| r.id).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );

        let spec = SyntheticSpec {
            arrival: ArrivalSpec::Recorded {
                times_s: vec![0.5, 0.25, 3.0],
            },
            num_requests: None,
            ..spec
        };
        let w = spec.generate().unwrap();
        let got: Vec<(u64, f64)> = w.requests.iter().map(|r| (r.id, r.arrival_s)).collect();
        assert_eq!(got, [(1, 0.25), (0, 0.5), (2, 3.0)]);

        let spec = SyntheticSpec {
            arrival: ArrivalSpec::Trace {
                times_s: vec![10.0, 10.0, 12.0, 17.0],
            },
            ..spec
        };
        let w = spec.generate().unwrap();
        let got: Vec<f64> = w.requests.iter().map(|r| r.arrival_s).collect();
        assert_eq!(got, [0.0, 2.0, 7.0]);
    }

    #[test]
    fn bad_specs_are_errors() {
        let mut spec = uniform_poisson(1, 10, RngKind::Vidur);
        spec.num_requests = None;
        assert!(spec.generate().is_err(), "unbounded");
        let mut spec = uniform_poisson(1 << 32, 10, RngKind::Vidur);
        assert!(spec.generate().is_err(), "numpy seed range");
        spec.rng = RngKind::Pcg;
        assert!(spec.generate().is_ok());
        spec.arrival = ArrivalSpec::Poisson {
            qps: 0.0,
            vidur_clip: false,
        };
        assert!(spec.generate().is_err(), "qps 0");
        let spec = SyntheticSpec {
            length: LengthSpec::Trace {
                rows: vec![(10.0, 2.0); 3],
                prefill_scale: 1.0,
                decode_scale: 1.0,
                max_tokens: 4096,
                seed: 1,
            },
            ..uniform_poisson(1, 4, RngKind::Vidur)
        };
        assert!(spec.generate().is_err(), "more requests than trace rows");
    }

    #[test]
    fn describe_is_one_line() {
        let d = uniform_poisson(42, 2000, RngKind::Vidur).describe();
        assert_eq!(
            d,
            "synthetic (vidur rng, seed 42): uniform(136..4096, p:d 16) + poisson(2 qps, vidur clip 3/qps), 2000 requests"
        );
    }

    #[test]
    fn py_random_state_is_exposed_after_generation() {
        let spec = uniform_poisson(42, 3, RngKind::Vidur);
        let (_, py) = spec.generate_with_rng().unwrap();
        // Three requests draw two doubles each (interval, length): 12 words.
        let mut expected = PyRandom::seed(42);
        for _ in 0..6 {
            expected.random();
        }
        assert_eq!(py.unwrap().random(), expected.random());
        assert!(
            uniform_poisson(42, 3, RngKind::Pcg)
                .generate_with_rng()
                .unwrap()
                .1
                .is_none()
        );
    }

    fn triples(spec: &SyntheticSpec) -> Vec<(f64, u32, u32)> {
        spec.generate()
            .unwrap()
            .requests
            .iter()
            .map(|r| (r.arrival_s, r.prefill_tokens, r.decode_tokens))
            .collect()
    }
}
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn arrival() -> impl Strategy<Value = ArrivalSpec> {
        prop_oneof![
            (0.01f64..100.0, any::<bool>())
                .prop_map(|(qps, vidur_clip)| ArrivalSpec::Poisson { qps, vidur_clip }),
            (0.01f64..100.0, 0.05f64..20.0)
                .prop_map(|(qps, burstiness)| ArrivalSpec::Gamma { qps, burstiness }),
            Just(ArrivalSpec::Static),
        ]
    }

    fn length() -> impl Strategy<Value = LengthSpec> {
        prop_oneof![
            (1u32..5000, 1u32..5000)
                .prop_map(|(prefill, decode)| LengthSpec::Fixed { prefill, decode }),
            (1u32..3000, 0u32..3000, 1u32..500, 0u32..500).prop_map(|(p, pe, o, oe)| {
                LengthSpec::UniformIndependent {
                    prompt_min: p,
                    prompt_max: p + pe,
                    output_min: o,
                    output_max: o + oe,
                }
            }),
            (20u32..2000, 0u32..5000, 0.5f64..30.0).prop_map(|(min, extra, r)| {
                LengthSpec::Uniform {
                    min_tokens: min.max((2.0 * (1.0 + r) / r).ceil() as u32),
                    max_tokens: min.max((2.0 * (1.0 + r) / r).ceil() as u32) + extra,
                    prefill_to_decode_ratio: r,
                }
            }),
            (0u32..3000, 0.0f64..0.99, any::<bool>(), 0u64..1000).prop_map(
                |(extra, theta, scramble, seed)| LengthSpec::Zipf {
                    min_tokens: 64,
                    max_tokens: 64 + extra,
                    theta,
                    scramble,
                    prefill_to_decode_ratio: 3.0,
                    seed,
                }
            ),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Same seed, same requests; arrivals never go back in time; ids count from 0; every
        /// request has at least one prompt and one output token.
        #[test]
        fn generation_is_deterministic_and_well_formed(
            length in length(),
            arrival in arrival(),
            seed in 0u64..u64::from(u32::MAX),
            n in 0u64..300,
            vidur in any::<bool>(),
        ) {
            let spec = SyntheticSpec {
                length,
                arrival,
                num_requests: Some(n),
                duration_s: None,
                seed,
                rng: if vidur { RngKind::Vidur } else { RngKind::Pcg },
            };
            let a = spec.generate().unwrap();
            let streamed: Vec<RequestSpec> = spec.iter().unwrap().collect();
            prop_assert_eq!(&a.requests, &streamed);
            prop_assert_eq!(a.len() as u64, n);
            let mut last = 0.0;
            for (i, r) in a.requests.iter().enumerate() {
                prop_assert_eq!(r.id, i as u64);
                prop_assert!(r.arrival_s >= last && r.arrival_s.is_finite());
                prop_assert!(r.prefill_tokens >= 1 && r.decode_tokens >= 1);
                last = r.arrival_s;
            }
        }
    }
}
