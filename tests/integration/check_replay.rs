//! `simfid check`: replaying a run under the preset that produced it reproduces it exactly,
//! and the JSON report has `simfid compare`'s shape.

use simfid::exec::step::{Padding, StepModel, StepProfile};
use simfid::fixture::{Run, RunMeta, Source, write_run};
use simfid::model::{DeviceSpec, ModelSpec};
use simfid::replay::Preset;
use simfid::sim::{ReplicaSchedulerKind, SchedulerConfig};
use simfid::workload::{ArrivalSpec, LengthSpec, RngKind, SyntheticSpec};

fn preset() -> Preset {
    let step = StepModel {
        coef: [0.0225, 0.00045, 3e-6, 4e-8, 2e-6],
        padding: Padding::default(),
        min_step_s: 0.0,
        prefill_token_s: 0.0,
    };
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
    let dir = std::env::temp_dir().join(format!("simfid-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_run(&dir.join("real.jsonl"), &real).unwrap();
    std::fs::write(dir.join("preset.json"), serde_json::to_string(&p).unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_simfid"))
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
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for m in ["ttft", "itl", "tpot", "e2e"] {
        for q in ["p50", "p90", "mean"] {
            let e = v["metrics"][m][q]["rel_err"].as_f64().unwrap();
            assert!(e.abs() < 1e-9, "{m} {q}: {e}");
        }
    }
    let unknown = std::process::Command::new(env!("CARGO_BIN_EXE_simfid"))
        .arg("check")
        .arg(dir.join("real.jsonl"))
        .args(["--preset", "no-such-preset"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown preset 'no-such-preset'"));
    std::fs::remove_dir_all(&dir).ok();
}
