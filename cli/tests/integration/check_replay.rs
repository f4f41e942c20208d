//! `simfid check`: replaying a run under the preset that produced it reproduces it exactly,
//! and the JSON report has `simfid compare`'s shape.

use simfid::exec::step::StepModel;
use simfid::fixture::{Run, RunMeta, Source, write_run};
use simfid::model::{DeviceSpec, ModelSpec};
use simfid::replay::Preset;
use simfid::replay::StepProfile;
use simfid::sim::{ReplicaSchedulerKind, SchedulerConfig};
use simfid::workload::{ArrivalSpec, LengthSpec, RngKind, SyntheticSpec};

use crate::loopback::{json_ok, run_ok, simfid};

fn preset() -> Preset {
    let step = StepModel::new(&[0.0225, 0.00045, 3e-6, 4e-8, 2e-6, 1.5e-7, 0.003, 0.5]);
    Preset {
        name: "test-preset".into(),
        description: "a known step model".into(),
        model: ModelSpec::qwen3_0_6b(),
        device: DeviceSpec::builtin("h100").unwrap(),
        scheduler: SchedulerConfig::new(ReplicaSchedulerKind::HfCb),
        step: StepProfile {
            format: "simfid-step-profile".into(),
            format_version: "1.0".into(),
            model: "Qwen/Qwen3-0.6B".into(),
            gpu: None,
            server: None,
            step,
            serving_delay_s: 0.004,
            arrival_delay_s: 0.0,
            arrival_delay_per_stream_s: 0.0,
            fit_rms_rel: 0.0,
            fit_max_rel: 0.0,
            observations: vec![],
        },
    }
}

fn workload_run(p: &Preset) -> Run {
    let spec = SyntheticSpec {
        length: LengthSpec::Uniform {
            min_tokens: 100,
            max_tokens: 2000,
            prefill_to_decode_ratio: 8.0,
        },
        arrival: ArrivalSpec::Poisson {
            qps: 3.0,
            vidur_clip: false,
        },
        num_requests: Some(150),
        duration_s: None,
        seed: 11,
        rng: RngKind::Pcg,
    };
    let w = spec.generate().unwrap();
    // The run as a client would record it: the workload's requests, no chunks yet.
    let mut meta = RunMeta::new(Source::Real, "Qwen/Qwen3-0.6B");
    meta.workload = w.source.clone();
    let blank = Run {
        meta,
        requests: w
            .requests
            .iter()
            .map(|r| simfid::fixture::RequestRun {
                id: r.id,
                scheduled: r.arrival_s,
                sent: Some(r.arrival_s),
                prompt_tokens: r.prefill_tokens,
                output_tokens: r.decode_tokens,
                usage_prompt_tokens: Some(r.prefill_tokens),
                usage_completion_tokens: Some(r.decode_tokens),
                chunks: vec![simfid::fixture::Chunk {
                    t: r.arrival_s + 1.0,
                    n: 1,
                }],
                finish_reason: Some("length".into()),
                error: None,
                warnings: Vec::new(),
            })
            .collect(),
    };
    // A "real" run that is exactly what the preset's server would do.
    let mut real = p.replay(&blank).unwrap();
    real.meta.source = Source::Real;
    real
}

#[test]
fn replay_under_the_generating_preset_is_exact() {
    let p = preset();
    let real = workload_run(&p);
    let sim = p.replay(&real).unwrap();
    assert_eq!(sim.requests.len(), real.requests.len());
    for (a, b) in sim.requests.iter().zip(&real.requests) {
        assert_eq!(a.chunks, b.chunks, "request {}", a.id);
    }
}

#[test]
fn check_cli_prints_the_compare_json() {
    let p = preset();
    let real = workload_run(&p);
    let dir = super::shared::scratch("simfid-check-");
    write_run(&dir.join("real.jsonl"), &real).unwrap();
    std::fs::write(dir.join("preset.json"), serde_json::to_string(&p).unwrap()).unwrap();
    let v = json_ok(
        simfid()
            .arg("check")
            .arg(dir.join("real.jsonl"))
            .arg("--preset-file")
            .arg(dir.join("preset.json"))
            .args([
                "--format",
                "json",
                "--assert",
                "ttft:p50<=1%",
                "--assert",
                "itl:p90<=1%",
            ]),
    );
    for m in ["ttft", "itl", "tpot", "e2e"] {
        for q in ["p50", "p90", "mean"] {
            let e = v["metrics"][m][q]["rel_err"].as_f64().unwrap();
            assert!(e.abs() < 1e-9, "{m} {q}: {e}");
        }
    }
    let unknown = std::process::Command::new(super::shared::simfid_bin())
        .arg("check")
        .arg(dir.join("real.jsonl"))
        .args(["--preset", "no-such-preset"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown preset 'no-such-preset'"));
}

/// The preset with a CUDA-graph capture stall: the first step of every new shape costs 80 ms.
fn capturing_preset() -> Preset {
    let mut p = preset();
    p.step.step.capture_s = 0.08;
    p
}

fn check_json(dir: &std::path::Path, real: &str, history: Option<&str>) -> serde_json::Value {
    let mut cmd = simfid();
    cmd.arg("check")
        .arg(dir.join(real))
        .arg("--preset-file")
        .arg(dir.join("preset.json"))
        .args(["--format", "json"]);
    if let Some(h) = history {
        cmd.args(["--history", h]);
    }
    json_ok(&mut cmd)
}

fn max_abs_rel_err(v: &serde_json::Value) -> f64 {
    let mut worst: f64 = 0.0;
    for m in ["ttft", "itl", "tpot", "e2e"] {
        for q in ["p50", "p90", "p99", "mean"] {
            worst = worst.max(v["metrics"][m][q]["rel_err"].as_f64().unwrap().abs());
        }
    }
    worst
}

#[test]
fn server_history_decides_the_capture_stalls() {
    // A "real" session made by the capturing preset: a warm-up run, then the judged run.
    let p = capturing_preset();
    // A recorded warm-up run, then the judged workload replayed on the capturing server after
    // it: the shapes the warm-up's recorded steps show are warm.
    let warm = workload_run(&preset());
    let mut judged = workload_run(&preset());
    judged.meta.workload = "judged".into();
    let session = p.replay_session(&[&warm, &judged]).unwrap();
    let (warm_replay, warm_caps) = &session[0];
    let (real, caps) = &session[1];
    assert!(*warm_caps > 5, "a cold server captures shapes: {warm_caps}");
    assert!(
        caps < warm_caps,
        "after the warm-up, fewer new shapes: {caps} vs {warm_caps}"
    );
    assert_eq!(
        p.recorded_keys(warm_replay).len() as u64,
        *warm_caps,
        "a run's recorded steps show the shapes its server captured"
    );
    // Replaying after the same history gives the same run; cold, it does not.
    let after = p.replay_after(&judged, &[&warm]).unwrap();
    for (a, b) in after.requests.iter().zip(&real.requests) {
        assert_eq!(a.chunks, b.chunks, "request {}", a.id);
    }
    let (_, cold_caps) = p.replay_served(&judged, &[]).unwrap();
    assert!(cold_caps > *caps, "{cold_caps} vs {caps}");

    let dir = super::shared::scratch("simfid-history-");
    write_run(&dir.join("warm.jsonl"), &warm).unwrap();
    write_run(&dir.join("judged.jsonl"), real).unwrap();
    std::fs::write(dir.join("preset.json"), serde_json::to_string(&p).unwrap()).unwrap();
    let given = check_json(
        &dir,
        "judged.jsonl",
        Some(dir.join("warm.jsonl").to_str().unwrap()),
    );
    assert!(
        max_abs_rel_err(&given) < 1e-9,
        "{}",
        max_abs_rel_err(&given)
    );
    let none = check_json(&dir, "judged.jsonl", Some("none"));
    assert!(
        none["metrics"]["ttft"]["p99"]["rel_err"].as_f64().unwrap() > 0.05,
        "a cold server stalls more"
    );
    // `auto` reads the history from the run's metadata, as scripts/device writes it.
    std::fs::write(
        dir.join("judged.meta.json"),
        r#"{"run": "judged", "runs_before_on_server": "warm"}"#,
    )
    .unwrap();
    let auto = check_json(&dir, "judged.jsonl", None);
    assert!(max_abs_rel_err(&auto) < 1e-9, "{}", max_abs_rel_err(&auto));
    // A history that names a missing run is an error naming it.
    std::fs::write(
        dir.join("judged.meta.json"),
        r#"{"runs_before_on_server": "warm gone"}"#,
    )
    .unwrap();
    let out = std::process::Command::new(super::shared::simfid_bin())
        .arg("check")
        .arg(dir.join("judged.jsonl"))
        .arg("--preset-file")
        .arg(dir.join("preset.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gone.jsonl"));
}

#[test]
fn a_declared_warm_up_is_simulated() {
    use simfid::replay::{Served, WarmUp};
    // The header line `simfid record --warmup 12 --warmup-concurrency 3` writes.
    let line = simfid::record::WarmupReport {
        requests: 12,
        failed: 0,
        seconds: 3.5,
        first_error: None,
    }
    .describe(3);
    let w = WarmUp::from_description(&line).expect(&line);
    assert_eq!(
        w,
        WarmUp {
            requests: 12,
            concurrency: 3
        }
    );
    assert_eq!(WarmUp::from_description("none"), None);

    let p = capturing_preset();
    let blank = workload_run(&preset());
    let (mut real, _) = p
        .replay_served(
            &blank,
            &[Served::WarmUp {
                lengths_of: &blank,
                warmup: w,
            }],
        )
        .unwrap();
    real.meta.source = simfid::fixture::Source::Real;
    real.meta.warmup = Some(line);
    let dir = super::shared::scratch("simfid-warmup-");
    write_run(&dir.join("real.jsonl"), &real).unwrap();
    std::fs::write(dir.join("preset.json"), serde_json::to_string(&p).unwrap()).unwrap();
    let auto = check_json(&dir, "real.jsonl", None);
    assert!(max_abs_rel_err(&auto) < 1e-9, "{}", max_abs_rel_err(&auto));
    let none = check_json(&dir, "real.jsonl", Some("none"));
    assert!(max_abs_rel_err(&none) > 0.01);
}

#[test]
fn an_unknown_history_is_inferred_from_the_run() {
    use simfid::replay::Served;
    // A server that had served one run before the judged one; the judged run's file carries no
    // metadata and declares no warm-up, so `auto` infers the capture state from the run itself:
    // shapes whose first step stalled were new, the others captured.
    let p = capturing_preset();
    // The run before: the first 40 requests of the same mix (it covers some shapes only).
    let mut warm = workload_run(&preset());
    warm.requests.truncate(40);
    let mut blank = workload_run(&preset());
    blank.meta.workload = "judged".into();
    let (mut real, caps) = p.replay_served(&blank, &[Served::Run(&warm)]).unwrap();
    real.meta.source = simfid::fixture::Source::Real;
    assert!(caps > 0, "the judged run met new shapes");
    let (captured, new) = simfid::replay::reconstruct::infer_captured(
        &real,
        0.003,
        2048,
        &p.step.step,
        p.step.serving_delay_s,
    );
    assert_eq!(new.len() as u64, caps, "every stalled first step is found");
    assert!(captured.len() > new.len());
    let dir = super::shared::scratch("simfid-infer-");
    write_run(&dir.join("real.jsonl"), &real).unwrap();
    std::fs::write(dir.join("preset.json"), serde_json::to_string(&p).unwrap()).unwrap();
    // `auto` falls back to `infer`; the inferred capture state is the true one, so the replay
    // is exact, where a fresh server's is not.
    let auto = check_json(&dir, "real.jsonl", None);
    let infer = check_json(&dir, "real.jsonl", Some("infer"));
    assert_eq!(auto["metrics"], infer["metrics"]);
    let none = check_json(&dir, "real.jsonl", Some("none"));
    let (e_infer, e_none) = (max_abs_rel_err(&infer), max_abs_rel_err(&none));
    assert!(
        e_infer < 1e-9 && e_none > 0.05,
        "infer {e_infer} vs none {e_none}"
    );
}

#[test]
fn check_reads_a_plain_vllm_bench_json_like_the_fixture() {
    // A golden exported to vLLM `bench serve --save-detailed` JSON, without simfid's embedded
    // copy: `simfid check` rebuilds the chunk times from `start_times`/`ttfts`/`itls` and gives
    // the same report as on the fixture itself.
    let golden = std::path::PathBuf::from(super::shared::ROOT)
        .join("golden/h100/qwen3-0.6b/hf-cb/s2/judge-poisson-3qps.jsonl");
    let dir = super::shared::scratch("simfid-check-bench-");
    let bench = dir.join("bench.json");
    run_ok(
        simfid()
            .args(["export", "--to", "vllm-bench", "-o"])
            .arg(&bench)
            .arg(&golden),
    );
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bench).unwrap()).unwrap();
    assert!(v.as_object_mut().unwrap().remove("simfid").is_some());
    assert!(v["start_times"].is_array() && v["itls"].is_array());
    std::fs::write(&bench, serde_json::to_string(&v).unwrap()).unwrap();
    let report = |run: &std::path::Path| -> serde_json::Value {
        json_ok(simfid().arg("check").arg(run).args([
            "--preset",
            "h100-qwen3-0.6b-hfcb",
            "--format",
            "json",
            "--history",
            "infer",
        ]))
    };
    let (a, b) = (report(&bench), report(&golden));
    for m in ["ttft", "itl", "tpot", "e2e"] {
        for q in ["p50", "p90", "p99"] {
            let (x, y) = (
                a["metrics"][m][q]["rel_err"].as_f64().unwrap(),
                b["metrics"][m][q]["rel_err"].as_f64().unwrap(),
            );
            assert!((x - y).abs() < 1e-6, "{m} {q}: bench {x} vs fixture {y}");
        }
    }
}
