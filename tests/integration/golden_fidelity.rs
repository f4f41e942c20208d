//! Fidelity against the H100 goldens: every recorded run of `transformers serve
//! --continuous-batching` (Qwen3-0.6B, `golden/h100/qwen3-0.6b/hf-cb/`) is replayed on the CPU
//! with the built-in preset `h100-qwen3-0.6b-hfcb` (hf_cb scheduler, 512 blocks of 256 tokens,
//! step profile fitted on the warm-up and `calib-*` runs and the step experiments, delays
//! calibrated on the `calib-*` runs only), in the order the server served them, so that every
//! replay starts with the step shapes (CUDA graphs) the earlier runs captured, as on the real
//! server.
//!
//! Every report is pinned by an insta snapshot, so a change that moves fidelity is a reviewable
//! diff. The assertions hold the simulator to what it achieves today (README's table), never
//! tighter than the spread of the three real repeats of the 2 req/s workload allows.

use std::path::PathBuf;

use simfid::fidelity::{CompareOptions, compare};
use simfid::fixture::{Run, read_run};
use simfid::replay::Preset;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/h100/qwen3-0.6b/hf-cb")
}

fn golden(name: &str) -> Run {
    let p = dir().join(format!("{name}.jsonl"));
    let (run, info) = read_run(&p).unwrap_or_else(|e| panic!("{e}"));
    assert!(!info.truncated_last_line, "{name}: truncated");
    run
}

fn preset() -> Preset {
    Preset::builtin("h100-qwen3-0.6b-hfcb").unwrap()
}

/// The session in the server's order (from the last run's metadata), each real run with its
/// replay and the number of step shapes the replay captured.
fn session() -> Vec<(String, Run, Run, u64)> {
    let last = "calib-poisson-3.5qps";
    let history = simfid::replay::session_history(&dir().join(format!("{last}.jsonl")))
        .unwrap()
        .expect("the goldens carry their server history");
    let mut names: Vec<String> = history
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.push(last.into());
    let reals: Vec<Run> = names.iter().map(|n| golden(n)).collect();
    let refs: Vec<&Run> = reals.iter().collect();
    let sims = preset().replay_session(&refs).unwrap();
    names
        .into_iter()
        .zip(reals)
        .zip(sims)
        .map(|((n, r), (s, c))| (n, r, s, c))
        .collect()
}

fn find<'a>(s: &'a [(String, Run, Run, u64)], name: &str) -> (&'a Run, &'a Run) {
    let (_, real, sim, _) = s.iter().find(|x| x.0 == name).expect(name);
    (sim, real)
}

const ALL: [&str; 16] = [
    "cold40-poisson-2qps",
    "warmup-ladder",
    "overload-poisson-8qps",
    "calib-poisson-1.5qps",
    "calib-poisson-3.5qps",
    "judge-poisson-0.5qps",
    "judge-poisson-1qps",
    "judge-poisson-2qps-rep1",
    "judge-poisson-2qps-rep2",
    "judge-poisson-2qps-rep3",
    "judge-poisson-3qps",
    "judge-poisson-4qps",
    "judge-poisson-6qps",
    "judge-gamma-2qps-b0.25",
    "judge-burst-64",
    "judge-long-0.4qps",
];

/// Below the knee (~3.5 req/s on this server), never used for calibration.
const BELOW_KNEE: [&str; 8] = [
    "judge-poisson-0.5qps",
    "judge-poisson-1qps",
    "judge-poisson-2qps-rep1",
    "judge-poisson-2qps-rep2",
    "judge-poisson-2qps-rep3",
    "judge-poisson-3qps",
    "judge-gamma-2qps-b0.25",
    "judge-long-0.4qps",
];

fn repeats() -> Vec<Run> {
    [
        "judge-poisson-2qps-rep1",
        "judge-poisson-2qps-rep2",
        "judge-poisson-2qps-rep3",
    ]
    .iter()
    .map(|n| golden(n))
    .collect()
}

#[test]
fn goldens_are_h100_runs_of_the_pinned_server() {
    for name in ALL {
        let run = golden(name);
        let gpu = run.meta.gpu.clone().unwrap_or_default();
        assert!(gpu.contains("H100"), "{name}: recorded on {gpu}");
        let server = run.meta.server.as_ref().expect("server recorded");
        let flags = server.flags.join(" ");
        assert!(
            flags.contains("--cb-num-blocks 512") && flags.contains("--cb-max-batch-tokens 2048"),
            "{name}: {flags}"
        );
        assert!(
            run.requests.iter().all(|r| r.ok()),
            "{name}: failed requests"
        );
    }
}

#[test]
fn the_session_order_covers_every_golden() {
    let s = session();
    let names: Vec<&str> = s.iter().map(|x| x.0.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    let mut all = ALL.to_vec();
    all.sort_unstable();
    assert_eq!(sorted, all, "session order {names:?}");
    assert_eq!(
        names[0], "cold40-poisson-2qps",
        "the cold start comes first"
    );
}

#[test]
fn every_golden_report_is_pinned() {
    for (name, real, sim, captures) in session() {
        let report = compare(&sim, &real, &CompareOptions::default()).unwrap();
        insta::assert_yaml_snapshot!(format!("golden_{name}"), report.view());
        insta::assert_snapshot!(format!("golden_{name}_captures"), captures.to_string());
    }
}

#[test]
fn below_the_knee_medians_and_p90_hold() {
    let s = session();
    let repeats = repeats();
    for name in BELOW_KNEE {
        let (sim, real) = find(&s, name);
        simfid::assert_fidelity!(sim, real, {
            itl: p50 5%, p90 10%;
            tpot: p50 15%;
            e2e: p50 5%;
        }, noise_floor(&repeats));
        // Per-request p90s where the run has the samples for them (100).
        if real.requests.len() >= 100 {
            simfid::assert_fidelity!(sim, real, {
                tpot: p90 10%;
                e2e: p90 12%;
            }, noise_floor(&repeats));
        }
    }
}

#[test]
fn below_the_knee_ttft_medians_hold() {
    // Within 15% everywhere below the knee except 1 req/s, where the simulator is 35% high:
    // half of that run's long-prompt steps were fast (~26 ms, as a decode step) on the real
    // server while the fitted model follows the slower mode (~46 ms) the calibration runs
    // show for the same shapes (README, "What is not modelled").
    let s = session();
    for name in BELOW_KNEE {
        let (sim, real) = find(&s, name);
        if name == "judge-poisson-1qps" {
            simfid::assert_ttft_within!(sim, real, p50, 40%);
        } else {
            simfid::assert_ttft_within!(sim, real, p50, 15%);
        }
    }
}

#[test]
fn past_the_knee_and_bursts_hold() {
    // 4 and 6 req/s (past the knee), the 64-request static burst: medians within 20%.
    let s = session();
    for name in ["judge-poisson-4qps", "judge-poisson-6qps", "judge-burst-64"] {
        let (sim, real) = find(&s, name);
        simfid::assert_fidelity!(sim, real, {
            ttft: p50 20%;
            itl: p50 20%;
            tpot: p50 20%;
            e2e: p50 20%;
        });
    }
}

#[test]
fn the_knee_is_where_the_server_has_it() {
    // The knee: the lowest rate of the Poisson sweep whose TTFT median exceeds twice the
    // light-load one (0.5 req/s). Real and simulated must put it at the same rate, and TTFT
    // growth past it must be of the same order (within a factor of 2).
    let s = session();
    let sweep = [
        (0.5, "judge-poisson-0.5qps"),
        (1.0, "judge-poisson-1qps"),
        (1.5, "calib-poisson-1.5qps"),
        (2.0, "judge-poisson-2qps-rep1"),
        (3.0, "judge-poisson-3qps"),
        (3.5, "calib-poisson-3.5qps"),
        (4.0, "judge-poisson-4qps"),
        (6.0, "judge-poisson-6qps"),
    ];
    let ttft_p50 = |run: &Run| {
        let m = simfid::fidelity::RunMetrics::compute(run, &Default::default());
        simfid::fidelity::quantile::quantile(
            m.samples(simfid::fidelity::Metric::Ttft).unwrap(),
            0.5,
        )
        .unwrap()
    };
    let knee = |pick: fn(&(Run, Run)) -> &Run| {
        let runs: Vec<(f64, f64)> = sweep
            .iter()
            .map(|(rate, name)| {
                let (sim, real) = find(&s, name);
                (*rate, ttft_p50(pick(&(sim.clone(), real.clone()))))
            })
            .collect();
        let base = runs[0].1;
        let k = runs.iter().find(|(_, t)| *t > 2.0 * base).map(|(r, _)| *r);
        (k, runs)
    };
    let (real_knee, real_curve) = knee(|p| &p.1);
    let (sim_knee, sim_curve) = knee(|p| &p.0);
    assert_eq!(real_knee, Some(4.0), "real curve {real_curve:?}");
    assert_eq!(
        sim_knee, real_knee,
        "sim {sim_curve:?} vs real {real_curve:?}"
    );
    for ((rate, r), (_, m)) in real_curve.iter().zip(&sim_curve) {
        if *rate >= 4.0 {
            assert!(
                (0.5..=2.0).contains(&(m / r)),
                "{rate} req/s: TTFT p50 sim {m} vs real {r}"
            );
        }
    }
}

#[test]
fn operator_profiles_under_the_same_scheduler() {
    // `simfid check --op-profiles`: Vidur-style composition over the H100 operator profiles
    // instead of the step profile. At 1 req/s it matches E2E (−5%); at 3 req/s it is 35% fast,
    // like Vidur itself (see README): the step profile is what closes that gap.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let ops = dir.join("fixtures/profiles/h100/Qwen/Qwen3-0.6B/bf16");
    let e2e_p50 = |name: &str| -> f64 {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_simfid"))
            .arg("check")
            .arg(
                dir.join("golden/h100/qwen3-0.6b/hf-cb")
                    .join(format!("{name}.jsonl")),
            )
            .args([
                "--preset",
                "h100-qwen3-0.6b-hfcb",
                "--format",
                "json",
                "--op-profiles",
            ])
            .arg(format!(
                "{},{}",
                ops.join("mlp.csv").display(),
                ops.join("attention.csv").display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["metrics"]["e2e"]["p50"]["rel_err"].as_f64().unwrap()
    };
    assert!(e2e_p50("judge-poisson-1qps").abs() < 0.10);
    let ops_3qps = e2e_p50("judge-poisson-3qps");
    let s = session();
    let (sim, real) = find(&s, "judge-poisson-3qps");
    let report = compare(sim, real, &CompareOptions::default()).unwrap();
    let v = report.to_json(None);
    let step_3qps = v["metrics"]["e2e"]["p50"]["rel_err"].as_f64().unwrap();
    assert!(
        step_3qps.abs() < ops_3qps.abs(),
        "step {step_3qps} vs ops {ops_3qps}"
    );
}
