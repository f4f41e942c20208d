//! Fidelity against the H100 goldens: every recorded run of `transformers serve
//! --continuous-batching` (Qwen3-0.6B, `golden/h100/qwen3-0.6b/hf-cb/`) is replayed on the CPU
//! with the built-in preset `h100-qwen3-0.6b-hfcb` (hf_cb scheduler, 512 blocks of 256 tokens,
//! step profile measured through the API and calibrated on the `calib-*` runs only).
//!
//! Every report is pinned by an insta snapshot, so a change that moves fidelity is a reviewable
//! diff. The assertions hold the simulator to what it achieves today below the knee (see the
//! README's table): medians of ITL and E2E within 15%, TPOT within 30%; the tolerance is never
//! below the spread of the three real repeats of the 2 req/s workload. Above the knee (4 and
//! 6 req/s) the simulator is known to be 30–60% too fast; only the snapshots pin those.

use std::path::PathBuf;

use simfid::fidelity::{CompareOptions, compare};
use simfid::fixture::{Run, read_run};
use simfid::replay::Preset;

fn golden(name: &str) -> Run {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden/h100/qwen3-0.6b/hf-cb")
        .join(format!("{name}.jsonl"));
    let (run, info) = read_run(&p).unwrap_or_else(|e| panic!("{e}"));
    assert!(!info.truncated_last_line, "{name}: truncated");
    run
}

fn preset() -> Preset {
    Preset::builtin("h100-qwen3-0.6b-hfcb").unwrap()
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

/// Below the knee (~3.5 req/s on this server): the runs the assertions hold.
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
fn every_golden_report_is_pinned() {
    let p = preset();
    for name in ALL {
        let real = golden(name);
        let sim = p.replay(&real).unwrap();
        let report = compare(&sim, &real, &CompareOptions::default()).unwrap();
        insta::assert_yaml_snapshot!(format!("golden_{name}"), report.view());
    }
}

#[test]
fn below_the_knee_medians_hold() {
    let p = preset();
    let repeats: Vec<Run> = [
        "judge-poisson-2qps-rep1",
        "judge-poisson-2qps-rep2",
        "judge-poisson-2qps-rep3",
    ]
    .iter()
    .map(|n| golden(n))
    .collect();
    for name in BELOW_KNEE {
        let real = golden(name);
        let sim = p.replay(&real).unwrap();
        simfid::assert_fidelity!(sim, real, {
            itl: p50 15%;
            tpot: p50 30%;
            e2e: p50 15%;
        }, noise_floor(&repeats));
    }
}

#[test]
fn long_prompts_and_bursts_keep_ttft() {
    // Chunked prefill of 3–8k-token prompts and a 64-request burst: TTFT medians within 40%
    // (the burst's simulated TTFT is 35% high; the long prompts' within 2%).
    let p = preset();
    for name in ["judge-long-0.4qps", "judge-burst-64"] {
        let real = golden(name);
        let sim = p.replay(&real).unwrap();
        simfid::assert_ttft_within!(sim, real, p50, 40%);
        simfid::assert_e2e_within!(sim, real, p50, 10%);
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
    let p = preset();
    let real = golden("judge-poisson-3qps");
    let sim = p.replay(&real).unwrap();
    let report = compare(&sim, &real, &CompareOptions::default()).unwrap();
    let v = report.to_json(None);
    let step_3qps = v["metrics"]["e2e"]["p50"]["rel_err"].as_f64().unwrap();
    assert!(
        step_3qps.abs() < ops_3qps.abs(),
        "step {step_3qps} vs ops {ops_3qps}"
    );
}
