//! Fidelity statistics against NumPy/SciPy values and their invariants: type-7 quantiles,
//! KS, Wasserstein-1, the bootstrap interval's coverage, the noise floor and the metric
//! definitions.

use proptest::prelude::*;
use rand::SeedableRng;
use rand_distr::{Distribution, Exp};
use rand_pcg::Pcg64Mcg;
use simfid::fidelity::quantile::{nearest_rank_sorted, quantile};
use simfid::fidelity::stats::{Bootstrap, Stat, ks_sorted, sorted, wasserstein1_sorted};
use simfid::fidelity::{Metric, MetricDef, MetricOptions, NoiseFloor, RunMetrics, Slo, Window};
use simfid::fixture::{Chunk, RequestRun, Run, RunMeta, Source};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn quantiles_equal_numpy() {
    // np.percentile(x, [0, 10, 25, 50, 90, 95, 99, 100]) with ties (2.2 three times, 0.3 twice)
    let x = [0.3, 7.1, 2.2, 2.2, 2.2, 9.9, 4.4, 0.3, 5.0, 1.0];
    let want = [
        0.3,
        0.3,
        1.3,
        2.2,
        7.379999999999999,
        8.639999999999997,
        9.648000000000001,
        9.9,
    ];
    for (p, w) in [0.0, 0.10, 0.25, 0.50, 0.90, 0.95, 0.99, 1.0]
        .iter()
        .zip(want)
    {
        let got = quantile(&x, *p).unwrap();
        assert!(close(got, w), "p{p}: {got} vs numpy {w}");
    }
    // n = 1: np.percentile([5.5], 99) = 5.5
    assert_eq!(quantile(&[5.5], 0.99), Some(5.5));
    // n = 2: np.percentile([2, 1], [0, 50, 90, 99]) = [1, 1.5, 1.9, 1.99]
    for (p, w) in [(0.0, 1.0), (0.5, 1.5), (0.9, 1.9), (0.99, 1.99)] {
        assert!(close(quantile(&[2.0, 1.0], p).unwrap(), w), "n=2 p{p}");
    }
    assert_eq!(quantile(&[], 0.5), None);
    assert_eq!(nearest_rank_sorted(&sorted(&x), 0.5), Some(2.2));
}

#[test]
fn ks_and_w1_equal_scipy() {
    // scipy.stats.ks_2samp(a, b).statistic and scipy.stats.wasserstein_distance(a, b)
    let a = sorted(&[0.1, 0.4, 0.4, 0.9, 1.3, 2.0]);
    let b = sorted(&[0.2, 0.4, 1.1, 1.3, 1.3, 3.0, 3.5]);
    let ks = ks_sorted(&a, &b).unwrap();
    assert!(close(ks.d, 0.38095238095238093), "{}", ks.d);
    // scipy.stats.kstwobign.sf(sqrt(6·7/13) · D)
    assert!(
        (ks.p_value - 0.736471209478631).abs() < 1e-9,
        "{}",
        ks.p_value
    );
    let w = wasserstein1_sorted(&a, &b).unwrap();
    assert!(close(w, 0.6928571428571428), "{w}");
}

fn sample() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        prop_oneof![0.0..100.0f64, (0..20u32).prop_map(|i| i as f64)],
        1..60,
    )
}

proptest! {
    #[test]
    fn w1_symmetric_zero_on_identical_and_equal_to_a_shift(a in sample(), b in sample(), c in -50.0..50.0f64) {
        let (sa, sb) = (sorted(&a), sorted(&b));
        let ab = wasserstein1_sorted(&sa, &sb).unwrap();
        let ba = wasserstein1_sorted(&sb, &sa).unwrap();
        prop_assert!((ab - ba).abs() <= 1e-9 * ab.max(1.0));
        prop_assert!(ab >= 0.0);
        prop_assert_eq!(wasserstein1_sorted(&sa, &sa).unwrap(), 0.0);
        let shifted: Vec<f64> = sa.iter().map(|x| x + c).collect();
        let w = wasserstein1_sorted(&sa, &shifted).unwrap();
        prop_assert!((w - c.abs()).abs() <= 1e-9 * (1.0 + c.abs()) * 100.0, "{} vs {}", w, c);
        // W1 is at least the difference of the means.
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        prop_assert!(ab + 1e-9 >= (mean(&sa) - mean(&sb)).abs());
    }

    #[test]
    fn ks_in_unit_interval_symmetric_and_zero_on_identical(a in sample(), b in sample()) {
        let (sa, sb) = (sorted(&a), sorted(&b));
        let k = ks_sorted(&sa, &sb).unwrap();
        prop_assert!((0.0..=1.0).contains(&k.d));
        prop_assert!((0.0..=1.0).contains(&k.p_value));
        prop_assert_eq!(k.d, ks_sorted(&sb, &sa).unwrap().d);
        prop_assert_eq!(ks_sorted(&sa, &sa).unwrap().d, 0.0);
        // Disjoint samples are at distance 1.
        let far: Vec<f64> = sb.iter().map(|x| x + 1000.0).collect();
        prop_assert_eq!(ks_sorted(&sa, &far).unwrap().d, 1.0);
    }

    #[test]
    fn quantiles_are_monotone_and_bounded(a in sample(), p in 0.0..1.0f64, q in 0.0..1.0f64) {
        let s = sorted(&a);
        let (lo, hi) = (p.min(q), p.max(q));
        let (x, y) = (quantile(&a, lo).unwrap(), quantile(&a, hi).unwrap());
        prop_assert!(x <= y);
        prop_assert!(s[0] <= x && y <= s[s.len() - 1]);
    }
}

/// Coverage study: real ~ Exp(mean 1), sim ~ Exp(mean 1.1), so every quantile's and the
/// mean's true relative error is +10%. Over 200 trials (n = 400 each side, 1000 resamples)
/// the 95% interval covered the truth 193/200 times (96.5%) for p50 and 196/200 (98%) for
/// p90; over 100 trials (n = 100, 200 resamples) 94/100 for the mean. Seeded: the same
/// numbers every run.
#[test]
fn bootstrap_interval_covers_the_true_error() {
    let mut rng = Pcg64Mcg::seed_from_u64(2024);
    let real_d = Exp::new(1.0).unwrap();
    let sim_d = Exp::new(1.0 / 1.1).unwrap();
    let mut covered = [0usize; 3];
    let mut width_p50 = 0.0;
    let draw = |d: &Exp<f64>, n: usize, rng: &mut Pcg64Mcg| -> Vec<f64> {
        sorted(&(0..n).map(|_| d.sample(rng)).collect::<Vec<_>>())
    };
    for trial in 0..200u64 {
        let real = draw(&real_d, 400, &mut rng);
        let sim = draw(&sim_d, 400, &mut rng);
        let b = Bootstrap {
            seed: trial,
            ..Bootstrap::default()
        };
        for (i, stat) in [Stat::P50, Stat::P90].into_iter().enumerate() {
            let (lo, hi) = b.rel_err_ci(&real, &sim, stat).unwrap();
            covered[i] += (lo <= 0.1 && 0.1 <= hi) as usize;
            if stat == Stat::P50 {
                width_p50 += (hi - lo) / 200.0;
            }
        }
        if trial < 100 {
            let real = draw(&real_d, 100, &mut rng);
            let sim = draw(&sim_d, 100, &mut rng);
            let b = Bootstrap {
                resamples: 200,
                seed: trial,
                ..Bootstrap::default()
            };
            let (lo, hi) = b.rel_err_ci(&real, &sim, Stat::Mean).unwrap();
            covered[2] += (lo <= 0.1 && 0.1 <= hi) as usize;
        }
    }
    eprintln!(
        "coverage: p50 {}/200, p90 {}/200, mean {}/100; mean p50 width {width_p50:.3}",
        covered[0], covered[1], covered[2]
    );
    // Nominal 95%; with 200 trials the standard error is 1.5 points.
    assert!(covered[0] >= 182 && covered[1] >= 182, "{covered:?}");
    assert!(covered[2] >= 88, "{covered:?}");
    // An interval that covers by being huge would be useless. Normal theory for the ratio of
    // two medians of n = 400 exponentials: each median has relative sd 1/(√n · ln 2) ≈ 0.072,
    // the ratio √2 times that, so a 95% interval is ≈ 2 · 1.96 · 0.102 ≈ 0.40 wide; seen: 0.447.
    assert!(width_p50 < 0.5, "{width_p50}");
}

#[test]
fn bootstrap_is_seeded() {
    let a = sorted(&(1..=50).map(f64::from).collect::<Vec<_>>());
    let b = sorted(&(1..=50).map(|x| x as f64 * 1.2).collect::<Vec<_>>());
    let bs = Bootstrap::default();
    assert_eq!(
        bs.rel_err_ci(&a, &b, Stat::P90),
        bs.rel_err_ci(&a, &b, Stat::P90)
    );
    let other = Bootstrap { seed: 1, ..bs };
    assert_ne!(
        bs.rel_err_ci(&a, &b, Stat::P90),
        other.rel_err_ci(&a, &b, Stat::P90)
    );
}

/// A request sent at `sent` whose chunks arrive at `sent + offsets`.
fn req(id: u64, sent: f64, offsets: &[(f64, u32)]) -> RequestRun {
    RequestRun {
        id,
        scheduled: sent - 0.001,
        sent: Some(sent),
        prompt_tokens: 10,
        output_tokens: offsets.iter().map(|c| c.1).sum(),
        usage_prompt_tokens: None,
        usage_completion_tokens: None,
        chunks: offsets
            .iter()
            .map(|&(t, n)| Chunk { t: sent + t, n })
            .collect(),
        finish_reason: None,
        error: None,
        warnings: Vec::new(),
    }
}

fn run(requests: Vec<RequestRun>) -> Run {
    Run {
        meta: RunMeta::new(Source::Real, "m"),
        requests,
    }
}

#[test]
fn metric_definitions() {
    let mut failed = req(2, 3.0, &[]);
    failed.error = Some("HTTP 500".into());
    let r = run(vec![
        // 4 tokens in 3 chunks: gaps 10 ms and 30 ms (the last chunk carries 2 tokens).
        req(0, 1.0, &[(0.100, 1), (0.110, 1), (0.140, 2)]),
        req(1, 2.0, &[(0.050, 1)]),
        failed,
    ]);
    let m = RunMetrics::compute(&r, &MetricOptions::default());
    assert_eq!((m.ok, m.failed), (2, 1));
    assert!(m.first_error.as_deref().unwrap().contains("HTTP 500"));
    let ms = |m: &RunMetrics, k| -> Vec<f64> {
        m.samples(k)
            .unwrap()
            .iter()
            .map(|x| (x * 1e6).round() / 1e3)
            .collect()
    };
    assert_eq!(ms(&m, Metric::Ttft), [100.0, 50.0]);
    assert_eq!(ms(&m, Metric::Itl), [10.0, 30.0]);
    // (last − first)/(tokens − 1) = 40 ms / 3; the one-token request has no TPOT.
    assert_eq!(ms(&m, Metric::Tpot), [13.333]);
    assert_eq!(ms(&m, Metric::E2e), [140.0, 50.0]);
    assert_eq!(ms(&m, Metric::E2eNorm), [35.0, 50.0]);
    assert_eq!(ms(&m, Metric::Tbt), [10.0, 15.0, 15.0]);
    assert!(m.samples(Metric::SchedDelay).is_err());
    // Vidur: from arrival (1 ms earlier), TPOT divides by all tokens, ITL is per token.
    let v = RunMetrics::compute(
        &r,
        &MetricOptions {
            def: MetricDef::Vidur,
            ..MetricOptions::default()
        },
    );
    assert_eq!(ms(&v, Metric::Ttft), [101.0, 51.0]);
    assert_eq!(ms(&v, Metric::Tpot), [10.0, 0.0]);
    assert_eq!(ms(&v, Metric::Itl), [10.0, 15.0, 15.0]);
    // AIPerf: ITL is the per-request mean gap.
    let a = RunMetrics::compute(
        &r,
        &MetricOptions {
            def: MetricDef::Aiperf,
            ..MetricOptions::default()
        },
    );
    assert_eq!(ms(&a, Metric::Itl), [13.333]);
    // Goodput: request 0 misses a 60 ms TTFT objective, request 1 meets it.
    let slo = Slo {
        ttft_ms: Some(60.0),
        ..Slo::default()
    };
    assert!((m.goodput(&slo) * m.duration_s - 1.0).abs() < 1e-9);
    assert!((m.request_throughput() * m.duration_s - 2.0).abs() < 1e-9);
}

#[test]
fn warmup_and_window_select_requests() {
    let r = run((0..10)
        .map(|i| req(i, 1.0 + i as f64, &[(0.1, 1), (0.2, 1)]))
        .collect());
    let count = |o: MetricOptions| RunMetrics::compute(&r, &o).considered;
    assert_eq!(
        count(MetricOptions {
            warmup: 3,
            ..MetricOptions::default()
        }),
        7
    );
    let w = Some(Window {
        start_s: 2.0,
        end_s: 5.0,
    });
    assert_eq!(
        count(MetricOptions {
            window: w,
            ..MetricOptions::default()
        }),
        3
    );
    assert_eq!(
        count(MetricOptions {
            warmup: 3,
            window: w,
            ..MetricOptions::default()
        }),
        2
    );
}

#[test]
fn noise_floor_is_the_spread_between_repeats() {
    let rep = |ttft: f64| run((0..30).map(|i| req(i, i as f64, &[(ttft, 1)])).collect());
    let repeats = [rep(0.100), rep(0.110), rep(0.105)];
    let nf = NoiseFloor::from_repeats(&repeats, &MetricOptions::default()).unwrap();
    let s = nf.get(Metric::Ttft, Stat::P50).unwrap();
    // (110 − 100) / median(100, 105, 110)
    assert!((s.rel - 10.0 / 105.0).abs() < 1e-9, "{s:?}");
    assert!((s.abs_ms - 10.0).abs() < 1e-9);
    assert_eq!(s.repeats, 3);
    assert!(NoiseFloor::from_repeats(&repeats[..1], &MetricOptions::default()).is_err());
}
