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
    PathBuf::from(super::shared::ROOT).join("golden/h100/qwen3-0.6b/hf-cb")
}

fn golden(name: &str) -> Run {
    let p = dir().join(format!("{}.jsonl", name.trim_start_matches('/')));
    let (run, info) = read_run(&p).unwrap_or_else(|e| panic!("{e}"));
    assert!(!info.truncated_last_line, "{name}: truncated");
    run
}

fn preset() -> Preset {
    Preset::builtin("h100-qwen3-0.6b-hfcb").unwrap()
}

/// A recording session in the server's order (from its last run's metadata), each real run
/// with its replay and the number of step shapes the replay captured. `sub` is the session's
/// folder under the goldens ("" for session 1, "s2" for session 2).
fn session_of(sub: &str, last: &str) -> Vec<Replayed> {
    let d = dir().join(sub);
    let history = simfid::replay::session_history(&d.join(format!("{last}.jsonl")))
        .unwrap()
        .expect("the goldens carry their server history");
    let mut names: Vec<String> = history
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.push(last.into());
    let reals: Vec<Run> = names
        .iter()
        .map(|n| golden(&format!("{sub}/{n}")))
        .collect();
    let refs: Vec<&Run> = reals.iter().collect();
    let sims = preset().replay_session(&refs).unwrap();
    names
        .into_iter()
        .zip(reals)
        .zip(sims)
        .map(|((n, r), (s, c))| (n, r, s, c))
        .collect()
}

/// (name, real run, its replay, shapes the replay captured).
type Replayed = (String, Run, Run, u64);

/// (rate, golden) of a Poisson sweep.
type Sweep<'a> = Vec<(f64, &'a str)>;

/// (rate, real TTFT p50, sim TTFT p50) along a sweep.
type Curve = Vec<(f64, f64, f64)>;

/// Session 1 (`golden/h100/qwen3-0.6b/hf-cb/`).
fn session() -> Vec<Replayed> {
    session_of("", "calib-poisson-3.5qps")
}

fn find<'a>(s: &'a [Replayed], name: &str) -> (&'a Run, &'a Run) {
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
    // 4 and 6 req/s (past the knee), the 64-request static burst: medians within 20%, TTFT
    // within 25% (4 req/s: +21%).
    let s = session();
    for name in ["judge-poisson-4qps", "judge-poisson-6qps", "judge-burst-64"] {
        let (sim, real) = find(&s, name);
        simfid::assert_fidelity!(sim, real, {
            ttft: p50 25%;
            itl: p50 20%;
            tpot: p50 20%;
            e2e: p50 20%;
        });
    }
}

/// The knee of a Poisson sweep: the lowest rate whose TTFT median exceeds twice the one at the
/// lowest rate. Returns (knee, [(rate, real TTFT p50, sim TTFT p50)]).
fn knee(s: &[(String, Run, Run, u64)], sweep: &[(f64, &str)]) -> (Option<f64>, Option<f64>, Curve) {
    let ttft_p50 = |run: &Run| {
        let m = simfid::fidelity::RunMetrics::compute(run, &Default::default());
        simfid::fidelity::quantile::quantile(
            m.samples(simfid::fidelity::Metric::Ttft).unwrap(),
            0.5,
        )
        .unwrap()
    };
    let curve: Curve = sweep
        .iter()
        .map(|(rate, name)| {
            let (sim, real) = find(s, name);
            (*rate, ttft_p50(real), ttft_p50(sim))
        })
        .collect();
    let k = |i: usize| {
        let pick = |c: &(f64, f64, f64)| if i == 0 { c.1 } else { c.2 };
        let base = pick(&curve[0]);
        curve.iter().find(|c| pick(c) > 2.0 * base).map(|c| c.0)
    };
    (k(0), k(1), curve)
}

#[test]
fn the_knee_is_where_the_server_has_it() {
    // Real and simulated must put the knee at the same rate of the sweep (4 req/s in both
    // sessions; the sweeps' neighbouring rates are 3.5 and 3 req/s), and TTFT growth past it
    // must be of the same order (within a factor of 2).
    let s1 = session();
    let s2 = session_of("s2", S2_LAST);
    let sweeps: [(&[Replayed], Sweep); 2] = [
        (
            &s1,
            vec![
                (0.5, "judge-poisson-0.5qps"),
                (1.0, "judge-poisson-1qps"),
                (1.5, "calib-poisson-1.5qps"),
                (2.0, "judge-poisson-2qps-rep1"),
                (3.0, "judge-poisson-3qps"),
                (3.5, "calib-poisson-3.5qps"),
                (4.0, "judge-poisson-4qps"),
                (6.0, "judge-poisson-6qps"),
            ],
        ),
        (
            &s2,
            vec![
                (0.5, "judge-poisson-0.5qps"),
                (1.0, "judge-poisson-1qps"),
                (2.0, "judge-poisson-2qps-rep1"),
                (3.0, "judge-poisson-3qps"),
                (4.0, "judge-poisson-4qps"),
                (5.0, "judge-poisson-5qps"),
                (6.0, "judge-poisson-6qps"),
            ],
        ),
    ];
    for (s, sweep) in sweeps {
        let (real_knee, sim_knee, curve) = knee(s, &sweep);
        assert_eq!(real_knee, Some(4.0), "{curve:?}");
        assert_eq!(sim_knee, real_knee, "(rate, real, sim) {curve:?}");
        for (rate, r, m) in &curve {
            if *rate >= 4.0 {
                assert!(
                    (0.5..=2.0).contains(&(m / r)),
                    "{rate} req/s: TTFT p50 sim {m} vs real {r}"
                );
            }
        }
    }
}

#[test]
fn operator_profiles_under_the_same_scheduler() {
    // `simfid check --op-profiles`: Vidur-style composition over the H100 operator profiles
    // instead of the step profile. At 1 req/s it matches E2E (−5%); at 3 req/s it is 35% fast,
    // like Vidur itself (see README): the step profile is what closes that gap.
    let dir = PathBuf::from(super::shared::ROOT);
    let ops = dir.join("fixtures/profiles/h100/Qwen/Qwen3-0.6B/bf16");
    let e2e_p50 = |name: &str| -> f64 {
        let out = std::process::Command::new(super::shared::simfid_bin())
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

// Session 2 (`golden/h100/qwen3-0.6b/hf-cb/s2/`): recorded after the preset was fitted, on
// a new server process, 200 requests per run at 2 req/s and above; nothing of it was used to
// fit or calibrate anything, so it is the simulator's test on workloads it has never seen.

const S2_LAST: &str = "judge-poisson-0.5qps";

const S2_ALL: [&str; 15] = [
    "cold40-poisson-2qps",
    "warmup-ladder",
    "overload-poisson-8qps",
    "judge-poisson-0.5qps",
    "judge-poisson-1qps",
    "judge-poisson-2qps-rep1",
    "judge-poisson-2qps-rep2",
    "judge-poisson-2qps-rep3",
    "judge-gamma-2qps-b0.25",
    "judge-poisson-3qps",
    "judge-poisson-4qps",
    "judge-poisson-5qps",
    "judge-poisson-6qps",
    "judge-burst-200",
    "judge-long-0.4qps",
];

const S2_BELOW_KNEE: [&str; 8] = [
    "judge-poisson-0.5qps",
    "judge-poisson-1qps",
    "judge-poisson-2qps-rep1",
    "judge-poisson-2qps-rep2",
    "judge-poisson-2qps-rep3",
    "judge-gamma-2qps-b0.25",
    "judge-poisson-3qps",
    "judge-long-0.4qps",
];

fn s2_repeats() -> Vec<Run> {
    [
        "judge-poisson-2qps-rep1",
        "judge-poisson-2qps-rep2",
        "judge-poisson-2qps-rep3",
    ]
    .iter()
    .map(|n| golden(&format!("s2/{n}")))
    .collect()
}

#[test]
fn session_2_is_complete_and_pinned() {
    let s = session_of("s2", S2_LAST);
    let mut names: Vec<&str> = s.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        names[0], "cold40-poisson-2qps",
        "the cold start comes first"
    );
    names.sort_unstable();
    let mut all = S2_ALL.to_vec();
    all.sort_unstable();
    assert_eq!(names, all);
    for (name, real, sim, captures) in &s {
        let gpu = real.meta.gpu.clone().unwrap_or_default();
        assert!(gpu.contains("H100"), "{name}: recorded on {gpu}");
        assert!(
            real.requests.iter().all(|r| r.ok()),
            "{name}: failed requests"
        );
        let report = compare(sim, real, &CompareOptions::default()).unwrap();
        insta::assert_yaml_snapshot!(format!("golden_s2_{name}"), report.view());
        insta::assert_snapshot!(format!("golden_s2_{name}_captures"), captures.to_string());
    }
}

#[test]
fn session_2_below_the_knee_holds() {
    let s = session_of("s2", S2_LAST);
    let repeats = s2_repeats();
    for name in S2_BELOW_KNEE {
        let (sim, real) = find(&s, name);
        simfid::assert_fidelity!(sim, real, {
            ttft: p50 25%;
            itl: p50 5%;
            tpot: p50 5%;
            e2e: p50 12%;
        }, noise_floor(&repeats));
    }
}

#[test]
fn session_2_past_the_knee_holds() {
    // 4, 5, 6 req/s and a static burst of 200: every median within 15%, E2E p90 within 10%.
    let s = session_of("s2", S2_LAST);
    for name in [
        "judge-poisson-4qps",
        "judge-poisson-5qps",
        "judge-poisson-6qps",
        "judge-burst-200",
    ] {
        let (sim, real) = find(&s, name);
        simfid::assert_fidelity!(sim, real, {
            ttft: p50 15%;
            itl: p50 5%;
            tpot: p50 5%;
            e2e: p50 5%, p90 10%;
        });
    }
}

#[test]
fn a_fresh_server_after_the_declared_warm_up_holds() {
    // Session 3: issue 5's configuration to the letter, a freshly started server and
    // `simfid record --warmup 40`, no metadata: `simfid check`'s default history simulates the
    // warm-up the header declares. Medians within 10%, p90s within 25%.
    let real = golden("s3-fresh40/judge-poisson-2qps");
    assert!(real.meta.gpu.as_deref().unwrap_or("").contains("H100"));
    let declared = simfid::replay::WarmUp::from_description(real.meta.warmup.as_deref().unwrap())
        .expect("the header declares its warm-up");
    assert_eq!(declared, simfid::replay::WarmUp::ISSUE_DEFAULT);
    assert!(
        simfid::replay::session_history(&dir().join("s3-fresh40/judge-poisson-2qps.jsonl"))
            .unwrap()
            .is_none()
    );
    let (sim, captures) = preset()
        .replay_served(
            &real,
            &[simfid::replay::Served::WarmUp {
                lengths_of: &real,
                warmup: declared,
            }],
        )
        .unwrap();
    let report = compare(&sim, &real, &CompareOptions::default()).unwrap();
    insta::assert_yaml_snapshot!("golden_s3_fresh40_judge-poisson-2qps", report.view());
    insta::assert_snapshot!(
        "golden_s3_fresh40_judge-poisson-2qps_captures",
        captures.to_string()
    );
    simfid::assert_fidelity!(sim, real, {
        ttft: p50 10%, p90 25%;
        itl: p50 10%, p90 10%;
        tpot: p50 10%, p90 10%;
        e2e: p50 10%, p90 10%;
    });
}
