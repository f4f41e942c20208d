//! vLLM 0.24 on the H200 (issue 10): the `vllm_v1` scheduler's rules on small, hand-checked
//! cases, the preset picked from a run's header with the scheduler its server flags give, and
//! fidelity against the 22 recorded goldens (`golden/h200/qwen3-0.6b/vllm-0.24/`), every report
//! pinned by an insta snapshot. The assertions hold the simulator to what it achieves today
//! (README, "vLLM on the H200"): far from the targets, and said so there.

use std::path::PathBuf;

use simfid::exec::step::StepExec;
use simfid::fidelity::{CompareOptions, Metric, MetricOptions, RunMetrics, compare, quantile};
use simfid::fixture::{Run, read_run};
use simfid::replay::Preset;
use simfid::replay::StepProfile;
use simfid::sim::{RequestRecord, SchedulerConfig, SimConfig, Simulator};
use simfid::workload::RequestSpec;

fn dir() -> PathBuf {
    PathBuf::from(super::shared::ROOT).join("golden/h200/qwen3-0.6b/vllm-0.24")
}

fn golden(name: &str) -> Run {
    let p = dir().join(format!("{name}.jsonl.gz"));
    let (run, info) = read_run(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(!info.truncated_last_line, "{name}: truncated");
    run
}

const MBT512: [&str; 17] = [
    "cold40-poisson-8qps",
    "overload-poisson-64qps",
    "calib-poisson-12qps",
    "calib-poisson-36qps",
    "judge-poisson-8qps",
    "judge-poisson-16qps",
    "judge-poisson-24qps-rep1",
    "judge-poisson-24qps-rep2",
    "judge-poisson-24qps-rep3",
    "judge-poisson-32qps",
    "judge-poisson-40qps",
    "judge-poisson-48qps",
    "judge-poisson-56qps",
    "judge-gamma-24qps-b0.25",
    "judge-long-4qps",
    "judge-shortlong-8qps",
    "judge-burst-500",
];

const MBT2048: [&str; 5] = [
    "mbt2048/mbt2048-overload-poisson-64qps",
    "mbt2048/mbt2048-judge-poisson-16qps",
    "mbt2048/mbt2048-judge-poisson-32qps",
    "mbt2048/mbt2048-judge-poisson-48qps",
    "mbt2048/mbt2048-judge-long-4qps",
];

/// A second H200 (another GPU and host, a freshly started server of the first configuration),
/// three runs of 1,000 requests each: enough samples for TTFT/TPOT/E2E p99.
const P99: [&str; 5] = [
    "p99/p99-cold40-poisson-8qps",
    "p99/p99-overload-poisson-64qps",
    "p99/judge-poisson-16qps-n1000",
    "p99/judge-poisson-24qps-n1000",
    "p99/judge-poisson-32qps-n1000",
];

/// The replay of a golden under the preset its header picks.
fn replay(real: &Run) -> Run {
    Preset::for_run(real).unwrap().replay(real).unwrap()
}

fn p50(run: &Run, m: Metric) -> f64 {
    let rm = RunMetrics::compute(run, &MetricOptions::default());
    quantile::quantile(rm.samples(m).unwrap(), 0.5).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The scheduler

/// A vllm_v1 simulation of `reqs` with a constant 1 ms step, `blocks` KV blocks of 16 tokens,
/// `budget` tokens per step; returns the records and the summary.
fn simulate(reqs: &[(f64, u32, u32)], blocks: u64, budget: u32) -> (Vec<RequestRecord>, u64) {
    let p = Preset::builtin("h200-qwen3-0.6b-vllm").unwrap();
    let mut cfg = SimConfig::new(p.model.clone(), p.device.clone(), p.scheduler.kind);
    cfg.scheduler = SchedulerConfig::new(simfid::sim::ReplicaSchedulerKind::VllmV1);
    cfg.scheduler.num_blocks = Some(blocks);
    cfg.scheduler.max_tokens_in_batch = budget;
    let mut step = p.step.step.clone();
    step.coef = vec![1e-3];
    step.prefill_token_s = 0.0;
    step.mixed_step_s = 0.0;
    step.continued_prefill_s = 0.0;
    step.min_step_s = 0.0;
    let exec = StepExec::new(&step);
    let mut sim = Simulator::new(cfg, &exec).unwrap();
    let work: Vec<RequestSpec> = reqs
        .iter()
        .enumerate()
        .map(|(i, &(t, p, d))| RequestSpec {
            id: i as u64,
            arrival_s: t,
            prefill_tokens: p,
            decode_tokens: d,
        })
        .collect();
    let mut out: Vec<RequestRecord> = Vec::new();
    let summary = sim
        .run(work, &mut out as &mut dyn simfid::sim::RecordSink)
        .unwrap();
    assert!(!summary.stalled, "stalled");
    (out, summary.leaked_kv_blocks)
}

#[test]
fn vllm_v1_chunks_prompts_to_the_token_budget() {
    // One 1200-token prompt alone, budget 512: chunks of 512, 512, 176; the first token comes
    // with the third step (1 ms each), then one token per step.
    let (recs, leaked) = simulate(&[(0.0, 1200, 4)], 1000, 512);
    let t = &recs[0].token_times;
    assert_eq!(t.len(), 4);
    assert!((t[0] - 0.003).abs() < 1e-9, "first token at {}", t[0]);
    assert!((t[3] - 0.006).abs() < 1e-9, "last token at {}", t[3]);
    assert_eq!(leaked, 0);
}

#[test]
fn vllm_v1_runs_decodes_first_and_shares_the_budget() {
    // A request decoding when a 600-token prompt arrives: every step still gives it a token
    // (running requests first), the prompt gets the 511 tokens left, then 89.
    let (recs, _) = simulate(&[(0.0, 10, 6), (0.0015, 600, 2)], 1000, 512);
    let decoder = recs.iter().find(|r| r.id == 0).unwrap();
    let gaps: Vec<f64> = decoder
        .token_times
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect();
    assert!(
        gaps.iter().all(|g| (g - 0.001).abs() < 1e-9),
        "decode gaps {gaps:?}"
    );
    let prompt = recs.iter().find(|r| r.id == 1).unwrap();
    // Arrives at 1.5 ms, joins the step starting at 2 ms (511 tokens) and 3 ms (89): first
    // token at 4 ms.
    assert!(
        (prompt.token_times[0] - 0.004).abs() < 1e-9,
        "{:?}",
        prompt.token_times
    );
}

#[test]
fn vllm_v1_preempts_the_newest_and_recomputes_with_prefix_hits() {
    // 12 usable blocks (13 with the null block) of 16 tokens: two requests of 80-token
    // prompts (5 blocks each) growing by 40 tokens cannot both finish; the later one is
    // preempted, recomputed (its cached blocks still free-but-cached are hit), and both end
    // with every block returned.
    let (recs, leaked) = simulate(&[(0.0, 80, 40), (0.0, 80, 40)], 13, 512);
    assert_eq!(leaked, 0);
    assert!(recs.iter().all(|r| r.token_times.len() == 40));
    let restarted: Vec<u32> = recs.iter().map(|r| r.restarts).collect();
    assert_eq!(restarted.iter().sum::<u32>(), 1, "restarts {restarted:?}");
    let victim = recs.iter().find(|r| r.restarts == 1).unwrap();
    assert_eq!(victim.id, 1, "the newest running request is preempted");
}

#[test]
fn vllm_v1_never_runs_more_than_max_num_seqs() {
    let p = Preset::builtin("h200-qwen3-0.6b-vllm").unwrap();
    let mut cfg = p.sim_config();
    cfg.scheduler.batch_size_cap = 3;
    let exec = StepExec::new(&p.step.step);
    let mut sim = Simulator::new(cfg, &exec).unwrap();
    let work: Vec<RequestSpec> = (0..8)
        .map(|i| RequestSpec {
            id: i,
            arrival_s: 0.0,
            prefill_tokens: 20,
            decode_tokens: 10,
        })
        .collect();
    let mut out: Vec<RequestRecord> = Vec::new();
    sim.run(work, &mut out as &mut dyn simfid::sim::RecordSink)
        .unwrap();
    // With 3 slots, requests 3.. start only after earlier ones finish: at most 3 first tokens
    // before the first request's last token.
    let first_done = out
        .iter()
        .map(|r| *r.token_times.last().unwrap())
        .fold(f64::INFINITY, f64::min);
    let started = out
        .iter()
        .filter(|r| r.token_times[0] <= first_done + 1e-12)
        .count();
    assert_eq!(started, 3);
}

// ---------------------------------------------------------------------------------------------
// The preset

#[test]
fn the_header_picks_the_preset_and_the_flags_the_scheduler() {
    let real = golden("judge-poisson-16qps");
    let p = Preset::for_run(&real).unwrap();
    assert_eq!(p.name, "h200-qwen3-0.6b-vllm");
    assert_eq!(p.scheduler.max_tokens_in_batch, 512);
    assert_eq!(p.scheduler.batch_size_cap, 256);
    let real2 = golden("mbt2048/mbt2048-judge-poisson-16qps");
    let p2 = Preset::for_run(&real2).unwrap();
    assert_eq!(p2.scheduler.max_tokens_in_batch, 2048);
    assert_eq!(p2.step.step.padding.q_cap, 2048);
    // The transformers goldens pick the H100 preset.
    let hf = PathBuf::from(super::shared::ROOT)
        .join("golden/h100/qwen3-0.6b/hf-cb/judge-poisson-1qps.jsonl");
    let (hf, _) = read_run(&hf).unwrap();
    assert_eq!(Preset::for_run(&hf).unwrap().name, "h100-qwen3-0.6b-hfcb");
    // A server simfid has no preset for is refused, naming it and the presets there are.
    let mut other = real.clone();
    other.meta.server.as_mut().unwrap().name = "sglang 0.5".into();
    let e = Preset::for_run(&other).unwrap_err().to_string();
    assert!(
        e.contains("sglang 0.5") && e.contains("h200-qwen3-0.6b-vllm"),
        "{e}"
    );
    // A flag value that is not a number names the flag.
    let mut p3 = Preset::builtin("h200-qwen3-0.6b-vllm").unwrap();
    let e = p3
        .with_server_flags(&["--max-num-seqs".into(), "many".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("--max-num-seqs"), "{e}");
}

fn check_json(args: &[&str]) -> (bool, serde_json::Value, String) {
    let out = std::process::Command::new(super::shared::simfid_bin())
        .arg("check")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.success(), v, stderr)
}

#[test]
fn simfid_check_needs_no_flag_and_takes_vllm_named_overrides() {
    let run = dir().join("judge-poisson-32qps.jsonl.gz");
    let run = run.to_str().unwrap();
    let (ok, auto, err) = check_json(&[run]);
    assert!(ok, "{err}");
    let (ok, named, err) = check_json(&[run, "--preset", "h200-qwen3-0.6b-vllm"]);
    assert!(ok, "{err}");
    assert_eq!(auto["metrics"], named["metrics"]);
    // The same run replayed as if the server had 2048 tokens per step: a different replay.
    let (ok, wide, err) = check_json(&[run, "--max-num-batched-tokens", "2048"]);
    assert!(ok, "{err}");
    assert_ne!(auto["metrics"]["ttft"], wide["metrics"]["ttft"]);
    // The H100 transformers preset on a vLLM run is refused.
    let (ok, _, err) = check_json(&[run, "--preset", "h100-qwen3-0.6b-hfcb"]);
    assert!(!ok && err.contains("another server"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// The goldens

#[test]
fn goldens_are_h200_runs_of_the_pinned_vllm_server() {
    for (names, mbt) in [
        (&MBT512[..], "512"),
        (&MBT2048[..], "2048"),
        (&P99[..], "512"),
    ] {
        for name in names {
            let run = golden(name);
            assert!(run.meta.gpu.as_deref().unwrap_or("").contains("H200"));
            let s = run.meta.server.as_ref().unwrap();
            assert_eq!(s.name, "vllm 0.24.0");
            let flags = s.flags.join(" ");
            for f in [
                "--seed 0",
                "--dtype bfloat16",
                "--max-num-seqs 256",
                "--gpu-memory-utilization 0.5",
            ] {
                assert!(flags.contains(f), "{name}: {flags}");
            }
            assert!(flags.contains(&format!("--max-num-batched-tokens {mbt}")));
            assert!(run.requests.len() >= 40 && run.requests.iter().all(|r| r.ok()));
            // Chunk token counts add up to what the server reported (counted with the
            // word-level tokenizer: vLLM coalesces tokens into one SSE chunk under load), but
            // for a few requests (1 of the 6,840 of the first H200, 4 of the 3,640 of the second:
            // 1-2 tokens that decode to no word), each flagged by the recorder with both counts.
            let mut off = 0;
            for r in &run.requests {
                let n: u32 = r.chunks.iter().map(|c| c.n).sum();
                let usage = r.usage_completion_tokens.unwrap();
                if n != usage {
                    off += 1;
                    assert!(usage > n && usage - n <= 2, "{name} request {}", r.id);
                    let expect = format!("is {usage} but the chunks carry {n} tokens");
                    assert!(
                        r.warnings.iter().any(|w| w.contains(&expect)),
                        "{:?}",
                        r.warnings
                    );
                }
            }
            assert!(
                off * 200 <= run.requests.len(),
                "{name}: {off} requests miscounted"
            );
        }
    }
}

#[test]
fn every_vllm_golden_report_is_pinned() {
    for name in MBT512.iter().chain(&MBT2048) {
        pin_report(name);
    }
}

#[test]
fn every_p99_golden_report_is_pinned() {
    for name in &P99 {
        pin_report(name);
    }
}

fn pin_report(name: &str) {
    let real = golden(name);
    let sim = replay(&real);
    let report = compare(&sim, &real, &CompareOptions::default()).unwrap();
    let snap = format!("vllm_{}", name.rsplit('/').next().unwrap());
    insta::assert_yaml_snapshot!(snap, report.view());
}

#[test]
fn what_holds_below_the_knee() {
    // Judging runs below the knee (8-40 req/s; calibration used 12 and 36 only): E2E and
    // TPOT medians within 30%, TTFT medians within 35% (low on all but 40 req/s, even with the
    // frontend's per-stream term: the three repeats of 24 req/s alone spread 35-57 ms at TTFT
    // p50, and 8 req/s is slower than 12 req/s on the real server).
    for name in [
        "judge-poisson-8qps",
        "judge-poisson-16qps",
        "judge-poisson-24qps-rep1",
        "judge-poisson-24qps-rep2",
        "judge-poisson-24qps-rep3",
        "judge-poisson-32qps",
        "judge-poisson-40qps",
        "judge-gamma-24qps-b0.25",
        "judge-long-4qps",
    ] {
        let real = golden(name);
        let sim = replay(&real);
        if name.ends_with("rep1") {
            // The first run after the warm-up is the slowest of the three repeats by far.
            simfid::assert_fidelity!(sim, real, { e2e: p50 45%; tpot: p50 45%; ttft: p50 60%; });
        } else {
            simfid::assert_fidelity!(sim, real, { e2e: p50 30%; tpot: p50 30%; ttft: p50 35%; });
        }
    }
}

#[test]
fn p99_is_decided_on_the_1000_request_goldens() {
    // TTFT, TPOT and E2E p99 need 1,000 requests (the sample guard's minimum): the three
    // `p99/` runs have them, and the assertions below are decided, not refused. They were
    // recorded on another H200 than the preset's profile: that server is slower at every rate
    // (TTFT p50 41-65 ms against 29-37 ms for the same rates on the first one), so what holds
    // is wide; the bounds pin today's errors (sim low everywhere) so a regression shows.
    for name in &P99[2..] {
        let real = golden(name);
        assert_eq!(real.requests.len(), 1000);
        let sim = replay(&real);
        let opts = CompareOptions {
            only: Some(vec![Metric::Ttft, Metric::Tpot, Metric::E2e]),
            ..CompareOptions::default()
        };
        let report = compare(&sim, &real, &opts).unwrap();
        for m in [Metric::Ttft, Metric::Tpot, Metric::E2e] {
            let row = &report.metrics[&m].rows[&simfid::fidelity::Stat::P99];
            assert_eq!(row.refused, None, "{name}: {m:?} p99 refused");
            let err = row.rel_err.unwrap();
            assert!(err < 0.0, "{name}: {m:?} p99: sim is not low ({err})");
        }
        simfid::assert_fidelity!(sim, real, {
            ttft: p99 65%;
            tpot: p99 50%;
            e2e: p50 40%, p99 45%;
        });
    }
}

#[test]
fn the_knee_is_where_the_real_one_is() {
    // The knee: the lowest rate whose TTFT median exceeds twice the one at 8 req/s. Real:
    // 48 req/s; simulated: 48 req/s too (56 before the frontend term: the TTFT of a server
    // feeding more streams grows faster than its engine's queue alone makes it).
    let rates = [8, 16, 24, 32, 40, 48, 56];
    let curve: Vec<(u32, f64, f64)> = rates
        .iter()
        .map(|r| {
            let name = if *r == 24 {
                "judge-poisson-24qps-rep3".to_string()
            } else {
                format!("judge-poisson-{r}qps")
            };
            let real = golden(&name);
            let sim = replay(&real);
            (*r, p50(&real, Metric::Ttft), p50(&sim, Metric::Ttft))
        })
        .collect();
    let knee = |pick: fn(&(u32, f64, f64)) -> f64| {
        let base = pick(&curve[0]);
        curve.iter().find(|c| pick(c) > 2.0 * base).map(|c| c.0)
    };
    assert_eq!(knee(|c| c.1), Some(48), "{curve:?}");
    assert_eq!(knee(|c| c.2), Some(48), "{curve:?}");
}

#[test]
fn the_second_configuration_is_not_carried_today() {
    // --max-num-batched-tokens 2048 without refitting: the simulator is 40-55% fast on E2E
    // medians below the knee (steps above vLLM's 512-token CUDA-graph sizes run without a
    // graph and cost more than the 512-token fit extrapolates). Pinned so that a model that
    // closes the gap shows here.
    for name in [
        "mbt2048/mbt2048-judge-poisson-16qps",
        "mbt2048/mbt2048-judge-poisson-32qps",
    ] {
        let real = golden(name);
        let sim = replay(&real);
        let rel = p50(&sim, Metric::E2e) / p50(&real, Metric::E2e) - 1.0;
        assert!((-0.65..-0.30).contains(&rel), "{name}: E2E p50 {rel:+.2}");
    }
}

#[test]
fn the_prefill_step_fit_recovers_a_known_model() {
    // Simulate a light-load run with known prefill costs, then read them back from its chunk
    // times as `simfid profile fit --server vllm --run` does.
    let p = Preset::builtin("h200-qwen3-0.6b-vllm").unwrap();
    let mut truth = p.clone();
    truth.step.step.mixed_step_s = 0.8e-3;
    truth.step.step.prefill_token_s = 2.0e-6;
    truth.step.step.continued_prefill_s = 2.5e-3;
    truth.step.arrival_delay_s = 0.0;
    truth.step.serving_delay_s = 0.0;
    let real = golden("calib-poisson-12qps");
    let sim = truth.replay(&real).unwrap();
    let steps = simfid::replay::prefill_steps(&sim, 0.0007, 512);
    let (m, c, k, n) = simfid::replay::fit_prefill_steps(&truth.step.step, &steps).unwrap();
    assert!(n > 100, "{n} steps");
    assert!((m - 0.8e-3).abs() < 0.3e-3, "mixed {m}");
    assert!((c - 2.0e-6).abs() < 0.6e-6, "per token {c}");
    assert!((k - 2.5e-3).abs() < 0.6e-3, "continued {k}");
}

#[test]
fn the_shipped_profile_is_what_the_commands_make() {
    // fixtures/profiles/h200/qwen3-0.6b/vllm-0.24: `simfid profile fit --server vllm` on the
    // step experiments and calib-12qps gives the built-in preset's step model, and the
    // calibration (`simfid profile calibrate --server vllm`: the delays on the calib-* runs'
    // medians) picks the shipped delays among their neighbours on its grid.
    let root = PathBuf::from(super::shared::ROOT);
    let d = root.join("fixtures/profiles/h200/qwen3-0.6b/vllm-0.24");
    let tmp = tempfile::tempdir().unwrap();
    let fitted = tmp.path().join("fit.json");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    super::loopback::run_ok(
        std::process::Command::new(super::shared::simfid_bin())
            .args(["profile", "fit", "--server", "vllm", "--plan"])
            .arg(s(&d.join("step-experiments/plan/plan.json")))
            .arg("--runs")
            .arg(s(&d.join("step-experiments/runs")))
            .arg("--run")
            .arg(s(&dir().join("calib-poisson-12qps.jsonl.gz")))
            .args(["--token-budget", "512", "--gap-ms", "0.7", "-o"])
            .arg(s(&fitted)),
    );
    let made = StepProfile::from_file(&fitted).unwrap();
    let shipped = Preset::builtin("h200-qwen3-0.6b-vllm").unwrap();
    assert_eq!(made.step, shipped.step.step);
    let runs: Vec<(Run, Vec<Run>)> = ["calib-poisson-12qps", "calib-poisson-36qps"]
        .iter()
        .map(|n| (golden(n), Vec::new()))
        .collect();
    let (a, dl, b) = (
        shipped.step.arrival_delay_s,
        shipped.step.serving_delay_s,
        shipped.step.arrival_delay_per_stream_s,
    );
    assert!(b > 0.0, "the shipped profile has a frontend term");
    let grid = |x: f64, step: f64| vec![x - step, x, x + step];
    let c = simfid::replay::calibrate(
        &shipped,
        &runs,
        &grid(a, 1e-3),
        &grid(dl, 0.5e-3),
        &grid(b, 0.1e-3),
    )
    .unwrap();
    let near = |x: f64, y: f64| (x - y).abs() < 1e-9;
    assert!(
        near(c.arrival_delay_s, a)
            && near(c.serving_delay_s, dl)
            && near(c.arrival_delay_per_stream_s, b),
        "{c:?} vs {a} {dl} {b}"
    );
}

#[test]
fn simfid_check_without_a_run_replays_the_bundled_golden() {
    // The README's first command: the bundled H100 golden, replayed with its declared warm-up;
    // the same report as checking the file in the repository.
    let (ok, bundled, err) = check_json(&[]);
    assert!(ok, "{err}");
    assert!(err.contains("bundled golden"), "{err}");
    let file = PathBuf::from(super::shared::ROOT)
        .join("golden/h100/qwen3-0.6b/hf-cb/s3-fresh40/judge-poisson-2qps.jsonl");
    let (ok, named, err) = check_json(&[file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(bundled["metrics"], named["metrics"]);
    let ttft = bundled["metrics"]["ttft"]["p50"]["rel_err"]
        .as_f64()
        .unwrap();
    assert!(ttft.abs() < 0.10, "TTFT p50 {ttft}");
}

#[test]
fn library_and_cli_give_the_same_report() {
    // `Preset::for_run` + `replay_history(.., History::Auto)` is what `simfid check RUN` runs:
    // server history from the metadata (s2), from the declared warm-up (s3), none (vLLM).
    let root = PathBuf::from(super::shared::ROOT);
    for rel in [
        "golden/h100/qwen3-0.6b/hf-cb/s2/judge-poisson-2qps-rep3.jsonl",
        "golden/h100/qwen3-0.6b/hf-cb/s3-fresh40/judge-poisson-2qps.jsonl",
        "golden/h200/qwen3-0.6b/vllm-0.24/judge-poisson-16qps.jsonl.gz",
    ] {
        let path = root.join(rel);
        let (real, _) = read_run(&path).unwrap();
        let lib = Preset::for_run(&real)
            .unwrap()
            .replay_history(&real, Some(&path), &simfid::replay::History::Auto)
            .unwrap();
        let v = compare(&lib.sim, &real, &CompareOptions::default())
            .unwrap()
            .to_json(None);
        let (ok, cli, err) = check_json(&[path.to_str().unwrap()]);
        assert!(ok, "{err}");
        for m in ["ttft", "itl", "tpot", "e2e"] {
            for q in ["p50", "p90"] {
                assert_eq!(
                    v["metrics"][m][q]["sim_ms"], cli["metrics"][m][q]["sim_ms"],
                    "{rel} {m} {q}"
                );
            }
        }
    }
}

#[test]
fn the_frontend_term_counts_open_streams_from_the_simulation() {
    // `open_streams` counts, per request, the requests sent before it whose last chunk reaches
    // the client after its send: the same as counting by brute force.
    let real = golden("calib-poisson-36qps");
    let preset = Preset::for_run(&real).unwrap();
    let b = preset.step.arrival_delay_per_stream_s;
    assert!(b > 0.0);
    let sim = preset.replay(&real).unwrap();
    let counted = simfid::replay::open_streams(&sim, 1.0);
    let span = |r: &simfid::fixture::RequestRun| {
        let sent = r.sent.unwrap_or(r.scheduled);
        (sent, r.chunks.last().map_or(sent, |c| c.t))
    };
    for r in &sim.requests {
        let (sent, _) = span(r);
        let open = sim
            .requests
            .iter()
            .filter(|o| {
                let (s, e) = span(o);
                o.id != r.id && s < sent && e > sent
            })
            .count();
        assert_eq!(counted[&r.id], open as f64, "request {}", r.id);
    }
    // Without the term the replay is the plain delayed one; with it, every request waits at
    // least as long for its first token and the median wait grows by about b per open stream.
    let mut plain = preset.clone();
    plain.step.arrival_delay_per_stream_s = 0.0;
    let base = plain.replay(&real).unwrap();
    let (with, without) = (p50(&sim, Metric::Ttft), p50(&base, Metric::Ttft));
    let mut streams: Vec<f64> = counted.values().copied().collect();
    streams.sort_by(f64::total_cmp);
    let median_open = streams[streams.len() / 2];
    assert!(with > without, "{with} <= {without}");
    assert!(
        with - without > 0.3 * b * median_open && with - without < 3.0 * b * median_open,
        "TTFT p50 {without} -> {with} s with {median_open} streams open at the median"
    );
}
