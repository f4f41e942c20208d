//! Step-time profiling through the API: running the profiling experiments against a
//! simulated server with a known step model, the observations extracted from the streamed
//! chunk times fit that model back.

use simfid::exec::step::{Experiment, Padding, StepModel, StepObservation};
use simfid::fixture::{Run, RunMeta, Source};
use simfid::model::{DeviceSpec, ModelSpec};
use simfid::sim::{ReplicaSchedulerKind, RequestRecord, SimConfig, Simulator};

fn truth() -> StepModel {
    StepModel {
        coef: [0.0225, 0.00045, 3e-6, 4e-8, 2e-6],
        padding: Padding::default(),
        min_step_s: 0.0,
        prefill_token_s: 0.0,
    }
}

/// Runs an experiment on the hf_cb simulator and returns the run as a client would see it.
fn simulate(exp: &Experiment, name: &str) -> Run {
    let cfg = SimConfig::new(
        ModelSpec::qwen3_0_6b(),
        DeviceSpec::builtin("h100").unwrap(),
        ReplicaSchedulerKind::HfCb,
    );
    let model = truth();
    let mut out: Vec<RequestRecord> = Vec::new();
    Simulator::new(cfg, &model)
        .unwrap()
        .run(exp.workload(name).requests, &mut out)
        .unwrap();
    Run::from_records(RunMeta::new(Source::Sim, "Qwen/Qwen3-0.6B"), &out)
}

#[test]
fn experiments_recover_the_step_model() {
    let mut obs: Vec<StepObservation> = Vec::new();
    for (name, exp) in Experiment::default_plan() {
        let run = simulate(&exp, &name);
        let o = exp.observations(&run, 0.003);
        assert!(!o.is_empty(), "{name}: no step observed");
        if let Experiment::Decode { output, .. } = exp {
            // Most decode steps are observed (prompts chunked over several steps start their
            // outputs a step apart, and those steps are not "full").
            assert!(
                o.len() as u32 >= 35 && o.len() as u32 <= output,
                "{name}: {} steps",
                o.len()
            );
        }
        obs.extend(o);
    }
    let t = truth();
    for o in &obs {
        let want = t.predict(o.requests, o.q_tokens, o.kv_tokens);
        assert!((o.seconds - want).abs() < 1e-9, "{o:?}: model says {want}");
    }
    let fitted = StepModel::fit(&obs, Padding::default()).unwrap();
    let (rms, max) = fitted.residuals(&obs);
    assert!(
        rms < 1e-6 && max < 1e-5,
        "rms {rms}, max {max}, coef {:?}",
        fitted.coef
    );
}

#[test]
fn profile_cli_plans_and_fits() {
    let dir = std::env::temp_dir().join(format!("simfid-profile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bin = env!("CARGO_BIN_EXE_simfid");
    let out = std::process::Command::new(bin)
        .args(["profile", "plan", "-o"])
        .arg(dir.join("plan"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "Record" every experiment against the simulated server.
    let text = std::fs::read_to_string(dir.join("plan/plan.json")).unwrap();
    let plan: Vec<(String, Experiment)> = serde_json::from_str(&text).unwrap();
    std::fs::create_dir_all(dir.join("runs")).unwrap();
    for (name, exp) in &plan {
        let run = simulate(exp, name);
        simfid::fixture::write_run(&dir.join("runs").join(format!("{name}.jsonl")), &run).unwrap();
    }
    let out = std::process::Command::new(bin)
        .args(["profile", "fit", "--plan"])
        .arg(dir.join("plan/plan.json"))
        .arg("--runs")
        .arg(dir.join("runs"))
        .arg("-o")
        .arg(dir.join("step.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: simfid::exec::step::StepProfile =
        serde_json::from_str(&std::fs::read_to_string(dir.join("step.json")).unwrap()).unwrap();
    assert!(p.fit_max_rel < 1e-5, "{}", p.fit_max_rel);
    // The plan identifies every coefficient.
    for (got, want) in p.step.coef.iter().zip(truth().coef) {
        assert!((got - want).abs() <= 1e-4 * want.abs(), "{:?}", p.step.coef);
    }
    std::fs::remove_dir_all(&dir).ok();
}
