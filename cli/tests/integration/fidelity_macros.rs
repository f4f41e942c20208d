//! The assertion macros: every form compiles and passes on close runs, and a failure panics
//! with the table (real / sim / error / CI / n), KS and W1 and a one-line diagnosis.

use std::panic::{AssertUnwindSafe, catch_unwind};

use simfid::fidelity::{MetricDef, Outcome, Verdict};
use simfid::fixture::{Chunk, RequestRun, Run, RunMeta, Source};

/// `n` requests one second apart; request `i` has TTFT `ttft_ms · (1 + i/n)` and 8 tokens
/// `itl_ms` apart.
fn run(n: u64, ttft_ms: f64, itl_ms: f64) -> Run {
    Run {
        meta: RunMeta::new(Source::Real, "m"),
        requests: (0..n)
            .map(|i| {
                let sent = i as f64;
                let first = sent + ttft_ms * (1.0 + i as f64 / n as f64) / 1e3;
                RequestRun {
                    id: i,
                    scheduled: sent,
                    sent: Some(sent),
                    prompt_tokens: 128,
                    output_tokens: 8,
                    usage_prompt_tokens: None,
                    usage_completion_tokens: None,
                    chunks: (0..8)
                        .map(|k| Chunk {
                            t: first + k as f64 * itl_ms / 1e3,
                            n: 1,
                        })
                        .collect(),
                    finish_reason: None,
                    error: None,
                    warnings: Vec::new(),
                }
            })
            .collect(),
    }
}

fn panic_message(f: impl FnOnce()) -> String {
    let e = catch_unwind(AssertUnwindSafe(f)).expect_err("the assertion should have failed");
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn every_form_compiles_and_passes_on_close_runs() {
    let real = run(200, 100.0, 20.0);
    let sim = run(200, 104.0, 20.5);
    let v: Verdict = simfid::assert_ttft_within!(sim, real, p50, 5%);
    assert_eq!(v.checks[0].outcome, Outcome::Pass);
    simfid::assert_ttft_within!(&sim, &real, p90, 5%);
    simfid::assert_itl_within!(sim, real, p50, 1% or 1ms);
    simfid::assert_itl_within!(sim, real, p99, 1% or 500us);
    simfid::assert_tpot_within!(sim, real, mean, 3%);
    simfid::assert_e2e_within!(sim, real, p95, 5% or 0.01s,);
    simfid::assert_ttft_within!(sim, real, p50, 5%, resamples(50), seed(3));
    simfid::assert_ttft_within!(sim, real, p50, 5%, def(MetricDef::Vidur), warmup(10));
    simfid::assert_ttft_within!(sim, real, p50, 5%, window(20.0, 150.0));
    let v = simfid::assert_fidelity!(sim, real, {
        ttft: p50 5%, p90 5% or 5ms;
        itl: p50 2.5%, p99 3%;
        tpot: mean 3%;
        e2e: p50 5%;
    });
    assert_eq!(v.checks.len(), 6);
    assert!(v.passed());
    simfid::assert_fidelity!(sim, real, { e2e_norm: p50 5%; tbt: mean 3% }, resamples(20));
}

#[test]
fn failure_panics_with_the_table_and_a_diagnosis() {
    let real = run(200, 100.0, 20.0);
    let sim = run(200, 70.0, 20.0);
    let msg = panic_message(|| {
        simfid::assert_fidelity!(sim, real, { ttft: p50 10%, p90 10%; itl: p50 5% });
    });
    for want in [
        "fidelity FAILED: sim vs real",
        "| check | real ms | sim ms | abs err ms | rel err | 95% CI | limit | n real | n sim | result |",
        "| TTFT p50 | 149.750 | 104.825 | -44.925 | -30.0% | [-34.5%, -25.5%] | 10% | 200 | 200 | FAIL |",
        "| ITL p50 | 20.000 | 20.000 | +0.000 | +0.0% |",
        "TTFT: KS D = 0.600 (p = 0.000), W1 = 44.925 ms",
        "diagnosis: sim TTFT too low at the tail: queueing underestimated",
    ] {
        assert!(msg.contains(want), "missing {want:?} in\n{msg}");
    }
    // The absolute floor rescues a small absolute error.
    simfid::assert_ttft_within!(run(200, 1.0, 1.0), run(200, 1.3, 1.0), p50, 10% or 1ms);
}

#[test]
fn too_few_samples_and_unusable_runs_are_refused() {
    let (real, sim) = (run(200, 100.0, 20.0), run(200, 100.0, 20.0));
    let msg = panic_message(|| {
        simfid::assert_ttft_within!(sim, real, p99, 50%);
    });
    assert!(
        msg.contains("REFUSED: p99 needs at least 1000 samples"),
        "{msg}"
    );
    assert!(msg.contains("cannot decide ttft:p99<=50%"), "{msg}");
    // The refusal says what the data supports instead.
    assert!(
        msg.contains("assert p95 instead (200 samples support it)"),
        "{msg}"
    );
    let v = simfid::assert_ttft_within!(sim, real, p99, 50%, allow_few_samples(true));
    assert!(v.to_string().contains("pass (few samples)"));
    let empty = Run {
        meta: RunMeta::new(Source::Sim, "m"),
        requests: vec![],
    };
    let msg = panic_message(|| {
        simfid::assert_itl_within!(empty, real, p50, 5%);
    });
    assert!(msg.contains("sim: the run has no requests"), "{msg}");
    let msg = panic_message(|| {
        simfid::assert_itl_within!(run(150, 100.0, 20.0), real, p50, 5%);
    });
    assert!(
        msg.contains("request counts differ (sim 150, real 200)"),
        "{msg}"
    );
    simfid::assert_itl_within!(run(150, 100.0, 20.0), real, p50, 5%, allow_workload_mismatch(true));
}

#[test]
fn noise_floor_raises_the_tolerance_to_the_spread_of_real_repeats() {
    let real = run(200, 100.0, 20.0);
    let repeats = [run(200, 100.0, 20.0), run(200, 108.0, 20.0)];
    let sim = run(200, 107.0, 20.0);
    panic_message(|| {
        simfid::assert_ttft_within!(sim, real, p50, 5%);
    });
    let v = simfid::assert_ttft_within!(sim, real, p50, 5%, noise_floor(&repeats));
    let noise = v.checks[0].noise.unwrap();
    // (108 − 100)/median(100, 108): the floor the hardware reproduces.
    assert!((noise.rel - 8.0 / 104.0).abs() < 1e-9, "{noise:?}");
    assert!(v.to_string().contains("(noise 7.7%)"));
}
