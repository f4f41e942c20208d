//! Step-time profiling through the API: running the profiling experiments against a
//! simulated server with a known step model, the observations extracted from the streamed
//! chunk times fit that model back.

use simfid::exec::step::{Padding, StepModel};
use simfid::fixture::{Run, RunMeta, Source};
use simfid::model::{DeviceSpec, ModelSpec};
use simfid::replay::{Experiment, StepObservation};
use simfid::sim::{ReplicaSchedulerKind, RequestRecord, SimConfig, Simulator};

fn truth() -> StepModel {
    StepModel::new(&[0.0225, 0.00045, 3e-6, 4e-8, 2e-6, 1.5e-7, 0.003, 0.5])
}

/// Runs `simfid profile fit …` with `-o out`, checks it succeeded and reads the profile.
fn fit_cli(cmd: &mut std::process::Command, out: &std::path::Path) -> simfid::replay::StepProfile {
    crate::loopback::run_ok(cmd.arg("-o").arg(out));
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
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
    let dir = super::shared::scratch("simfid-profile-");
    let bin = super::shared::simfid_bin();
    let out = std::process::Command::new(&bin)
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
    let p = fit_cli(
        std::process::Command::new(&bin)
            .args(["profile", "fit", "--plan"])
            .arg(dir.join("plan/plan.json"))
            .arg("--runs")
            .arg(dir.join("runs")),
        &dir.join("step.json"),
    );
    assert!(p.fit_max_rel < 1e-5, "{}", p.fit_max_rel);
    // The plan identifies every coefficient.
    for (got, want) in p.step.coef.iter().zip(&truth().coef) {
        assert!((got - want).abs() <= 1e-4 * want.abs(), "{:?}", p.step.coef);
    }
}

/// A Poisson workload of the goldens' length mix, run on the hf_cb simulator with `exec`.
fn poisson_run(exec: &dyn simfid::exec::ExecModel, qps: f64, seed: u64) -> Run {
    use simfid::workload::{ArrivalSpec, LengthSpec, RngKind, SyntheticSpec};
    let spec = SyntheticSpec {
        length: LengthSpec::UniformIndependent {
            prompt_min: 50,
            prompt_max: 2000,
            output_min: 16,
            output_max: 256,
        },
        arrival: ArrivalSpec::Poisson {
            qps,
            vidur_clip: false,
        },
        num_requests: Some(150),
        duration_s: None,
        seed,
        rng: RngKind::Pcg,
    };
    let cfg = SimConfig::new(
        ModelSpec::qwen3_0_6b(),
        DeviceSpec::builtin("h100").unwrap(),
        ReplicaSchedulerKind::HfCb,
    );
    let mut out: Vec<RequestRecord> = Vec::new();
    Simulator::new(cfg, exec)
        .unwrap()
        .run(spec.generate().unwrap().requests, &mut out)
        .unwrap();
    Run::from_records(RunMeta::new(Source::Sim, "Qwen/Qwen3-0.6B"), &out)
}

#[test]
fn steps_of_any_recorded_run_are_reconstructed() {
    // The FIFO reconstruction recovers the composition of (nearly) every step of an ordinary
    // run: the time of each consistent step is exactly what the model says for it.
    let t = truth();
    for (qps, seed) in [(1.0, 1), (3.0, 2), (6.0, 3)] {
        let run = poisson_run(&t, qps, seed);
        let steps = simfid::replay::reconstruct::run_steps(&run, 0.003, 2048);
        let consistent = steps.iter().filter(|s| s.consistent).count();
        assert!(
            consistent as f64 >= 0.98 * steps.len() as f64,
            "{qps} req/s: {consistent} of {} steps consistent",
            steps.len()
        );
        let mut checked = 0;
        for o in steps.iter().filter_map(|s| s.observation()) {
            let want = t.predict(o.requests, o.q_tokens, o.kv_tokens);
            assert!(
                (o.seconds - want).abs() < 1e-9,
                "{qps} req/s: {o:?}: model says {want}"
            );
            checked += 1;
        }
        assert!(
            checked > steps.len() / 2,
            "{qps} req/s: {checked} steps checked"
        );
        assert!(
            steps.iter().any(|s| s.prefills > 1),
            "{qps} req/s: no shared step"
        );
    }
}

#[test]
fn profile_fit_on_a_session_measures_the_capture_stall() {
    // Three runs served one after the other by a server whose new step shapes stall 90 ms:
    // `simfid profile fit --session` recovers the step model and the stall.
    let mut t = truth();
    t.capture_s = 0.09;
    let exec = simfid::exec::step::StepExec::new(&t);
    let dir = super::shared::scratch("simfid-session-fit-");
    let mut names = Vec::new();
    for (i, qps) in [1.0, 3.0, 5.0].into_iter().enumerate() {
        let run = poisson_run(&exec, qps, 10 + i as u64);
        let p = dir.join(format!("run{i}.jsonl"));
        simfid::fixture::write_run(&p, &run).unwrap();
        names.push(p.display().to_string());
    }
    assert!(!exec.keys().is_empty());
    let p = fit_cli(
        std::process::Command::new(super::shared::simfid_bin()).args([
            "profile",
            "fit",
            "--session",
            &names.join(","),
        ]),
        &dir.join("step.json"),
    );
    assert!(p.fit_max_rel < 1e-6, "{}", p.fit_max_rel);
    assert!(
        (p.step.capture_s - 0.09).abs() < 1e-6,
        "capture stall {}",
        p.step.capture_s
    );
}

#[test]
fn serial_profile_run_records_and_fits_in_one_command() {
    // `simfid profile run --url`: plan, record every experiment through the API, fit. Against
    // `simfid serve` (sarathi, roofline plus a 20 ms step overhead), two experiments.
    use crate::loopback::{Scratch, ServeChild, run_ok, simfid};
    let server = ServeChild::start(&["--step-overhead-ms", "20"]);
    let dir = Scratch::new("profile-run");
    run_ok(
        simfid()
            .args(["profile", "run", "--url", &server.url, "-o"])
            .arg(dir.path("prof"))
            .args([
                "--only",
                "decode-b4-p256,mixed-b1-p256",
                "--",
                "--timeout",
                "60",
                "--server-name",
                "simfid serve",
            ]),
    );
    for f in [
        "plan/plan.json",
        "runs/decode-b4-p256.jsonl",
        "runs/mixed-b1-p256.jsonl",
        "step_profile.json",
    ] {
        assert!(dir.path("prof").join(f).is_file(), "{f} missing");
    }
    let p: simfid::replay::StepProfile = serde_json::from_str(
        &std::fs::read_to_string(dir.path("prof").join("step_profile.json")).unwrap(),
    )
    .unwrap();
    // ~50 steps are observable; on a busy machine the loopback's jitter splits a few.
    assert!(p.observations.len() >= 20, "{} steps", p.observations.len());
    assert_eq!(
        p.server.as_deref().map(|s| s.starts_with("simfid serve")),
        Some(true)
    );
    // The server's steps are 20 ms plus a little: the profile says so.
    let t = p.step.predict(4, 4, 1100);
    assert!((0.019..0.03).contains(&t), "decode step of 4: {t}");
    // A wrong experiment name is refused with the known ones.
    let bad = simfid()
        .args(["profile", "run", "--url", &server.url, "-o"])
        .arg(dir.path("bad"))
        .args(["--only", "nope"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("decode-b1-p256"));
}
