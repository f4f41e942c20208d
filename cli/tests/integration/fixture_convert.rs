//! Run fixtures to and from other tools' formats: the JSON Lines codec and the vLLM bench
//! round trip keep every number exactly; vLLM bench results and Vidur request_metrics.csv are
//! imported with what they know and nothing more; `simfid import`/`export` on the command line.

use std::path::Path;
use std::process::Command;

use proptest::prelude::*;
use serde_json::{Value, json};
use simfid::fidelity::metric::{arrivals_known, token_times_known};
use simfid::fidelity::{Metric, MetricOptions, RunMetrics, to_vllm_bench, write_vllm_bench};
use simfid::fixture::{
    Chunk, InputFormat, RequestRun, Run, RunMeta, Source, read_any, read_run, write_run,
};

/// A fresh scratch folder for one test, removed when dropped.
pub fn scratch(name: &str) -> super::shared::Scratch {
    super::shared::scratch(&format!("simfid-it-{name}-"))
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        0.0..1e4f64,
        any::<f64>().prop_filter("finite", |x| x.is_finite()),
        Just(0.1 + 0.2),
    ]
}

fn request() -> impl Strategy<Value = RequestRun> {
    (
        any::<u32>(),
        finite(),
        prop::option::of(finite()),
        (1..5000u32, 0..5000u32),
        prop::option::of(0..5000u32),
        prop::collection::vec((finite(), 1..4u32), 0..12),
        prop::option::of("[a-z \"\\\\é]{0,12}"),
    )
        .prop_map(
            |(id, scheduled, sent, (p, d), usage, chunks, error)| RequestRun {
                id: id as u64,
                scheduled,
                sent,
                prompt_tokens: p,
                output_tokens: d,
                usage_prompt_tokens: usage,
                usage_completion_tokens: usage.map(|u| u / 2),
                chunks: chunks.into_iter().map(|(t, n)| Chunk { t, n }).collect(),
                finish_reason: Some("length".into()),
                error,
                warnings: Vec::new(),
            },
        )
}

fn a_run() -> impl Strategy<Value = Run> {
    prop::collection::vec(request(), 0..20).prop_map(|mut requests| {
        requests.sort_by_key(|r| r.id);
        requests.dedup_by_key(|r| r.id);
        let mut meta = RunMeta::new(Source::Real, "Qwen/Qwen3-0.6B");
        meta.extra.insert("note".into(), json!(0.1 + 0.2));
        Run { meta, requests }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn codec_and_vllm_round_trips_are_exact(run in a_run()) {
        let dir = scratch("rt");
        let p = dir.join("run.jsonl");
        write_run(&p, &run).unwrap();
        let (back, info) = read_run(&p).unwrap();
        prop_assert!(!info.truncated_last_line);
        prop_assert_eq!(&back, &run);
        let j = dir.join("run.json");
        write_vllm_bench(&j, &back).unwrap();
        let (again, fmt) = read_any(&j).unwrap();
        prop_assert_eq!(fmt, InputFormat::VllmBench);
        prop_assert_eq!(&again, &run);
        // Bit for bit, not just ==: -0.0 and 0.0 compare equal.
        for (a, b) in again.requests.iter().zip(&run.requests) {
            for (x, y) in a.chunks.iter().zip(&b.chunks) {
                prop_assert_eq!(x.t.to_bits(), y.t.to_bits());
            }
        }
    }
}

/// 3 requests: two streamed, one failed.
fn small_run() -> Run {
    let mut meta = RunMeta::new(Source::Real, "m");
    meta.workload = "test".into();
    let ok = |id: u64, sent: f64, ts: &[f64]| RequestRun {
        id,
        scheduled: sent,
        sent: Some(sent),
        prompt_tokens: 100 + id as u32,
        output_tokens: ts.len() as u32,
        usage_prompt_tokens: None,
        usage_completion_tokens: None,
        chunks: ts.iter().map(|&t| Chunk { t, n: 1 }).collect(),
        finish_reason: Some("length".into()),
        error: None,
        warnings: Vec::new(),
    };
    let mut failed = ok(2, 0.7, &[]);
    failed.error = Some("HTTP 503".into());
    Run {
        meta,
        requests: vec![ok(0, 0.1, &[0.3, 0.31, 0.33]), ok(1, 0.4, &[0.45]), failed],
    }
}

#[test]
fn vllm_export_has_the_arrays_and_summaries_vllm_writes() {
    let v = to_vllm_bench(&small_run());
    assert_eq!(v["completed"], 2);
    assert_eq!(v["failed"], 1);
    assert_eq!(v["input_lens"], json!([100, 101, 102]));
    assert_eq!(v["output_lens"], json!([3, 1, 0]));
    assert_eq!(v["errors"], json!(["", "", "HTTP 503"]));
    let ttfts: Vec<f64> = serde_json::from_value(v["ttfts"].clone()).unwrap();
    assert!((ttfts[0] - 0.2).abs() < 1e-12 && (ttfts[1] - 0.05).abs() < 1e-12);
    assert_eq!(v["itls"][1], json!([]));
    // TTFTs 200 and 50 ms: mean 125, median 125; TPOT only for request 0: 15 ms.
    let f = |k: &str| v[k].as_f64().unwrap();
    assert!((f("mean_ttft_ms") - 125.0).abs() < 1e-9);
    assert!((f("median_ttft_ms") - 125.0).abs() < 1e-9);
    assert!((f("p99_tpot_ms") - 15.0).abs() < 1e-9);
    assert!((f("std_ttft_ms") - 75.0).abs() < 1e-9);
    // duration: first send (0.1) to last chunk (0.45)
    assert!((f("duration") - 0.35).abs() < 1e-12);
    for k in [
        "mean_itl_ms",
        "p99_e2el_ms",
        "total_output_tokens",
        "request_throughput",
    ] {
        assert!(v.get(k).is_some(), "{k}");
    }
}

#[test]
fn vllm_import_without_the_simfid_object_rebuilds_the_chunks() {
    let mut v = to_vllm_bench(&small_run());
    v.as_object_mut().unwrap().remove("simfid");
    let dir = scratch("vllm-plain");
    let p = dir.join("bench.json");
    std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
    let (run, fmt) = read_any(&p).unwrap();
    assert_eq!(fmt, InputFormat::VllmBench);
    assert!(arrivals_known(&run) && token_times_known(&run));
    assert_eq!(run.requests.len(), 3);
    assert!(!run.requests[2].ok());
    assert_eq!(run.requests[2].error.as_deref(), Some("HTTP 503"));
    // start_times are relative to the first send.
    assert_eq!(run.requests[0].sent, Some(0.0));
    let want = small_run();
    for (a, b) in run.requests[0].chunks.iter().zip(&want.requests[0].chunks) {
        assert!((a.t - (b.t - 0.1)).abs() < 1e-12);
    }
    // Older vLLM: no start_times → arrivals unknown, latencies still right.
    v.as_object_mut().unwrap().remove("start_times");
    std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
    let (old, _) = read_any(&p).unwrap();
    assert!(!arrivals_known(&old));
    let m = RunMetrics::compute(&old, &MetricOptions::default());
    let ttft = m.samples(Metric::Ttft).unwrap();
    assert!((ttft[0] - 0.2).abs() < 1e-12 && (ttft[1] - 0.05).abs() < 1e-12);
}

#[test]
fn vllm_import_errors_name_the_file_and_the_field() {
    let dir = scratch("vllm-bad");
    let p = dir.join("bad.json");
    std::fs::write(
        &p,
        r#"{"ttfts": [0.1], "itls": [[]], "input_lens": [1, 2], "output_lens": [1]}"#,
    )
    .unwrap();
    let e = read_any(&p).unwrap_err().to_string();
    assert!(e.contains("bad.json") && e.contains("input_lens"), "{e}");
    std::fs::write(&p, r#"{"duration": 3.0, "completed": 1}"#).unwrap();
    let e = read_any(&p).unwrap_err().to_string();
    assert!(
        e.contains("bad.json") && e.contains("--save-detailed"),
        "{e}"
    );
}

const VIDUR_HEADER: &str = "Request Id,request_e2e_time,request_e2e_time_normalized,request_execution_time,request_execution_time_normalized,request_model_execution_time,request_model_execution_time_normalized,request_preemption_time,request_scheduling_delay,request_execution_plus_preemption_time,request_execution_plus_preemption_time_normalized,prefill_e2e_time,prefill_time_execution_plus_preemption,prefill_time_execution_plus_preemption_normalized,decode_time_execution_plus_preemption_normalized,request_inter_arrival_delay,request_num_tokens,request_num_prefill_tokens,request_num_decode_tokens,request_pd_ratio,request_num_restarts";

#[test]
fn vidur_import_keeps_first_and_last_token_and_says_itl_is_unknown() {
    let dir = scratch("vidur");
    let p = dir.join("request_metrics.csv");
    // Request 0: TTFT 20 ms, E2E 156 ms, 14 tokens. Request 1 arrives 0.5 s later and is
    // unfinished (empty latency cells).
    let text = format!(
        "{VIDUR_HEADER}\n\
         0,0.156,0.0111,0.15,0.01,0.15,0.01,0.0,0.002,0.15,0.01,0.020,0.02,9e-05,0.0097,,235,221,14,15.8,0\n\
         1,,,,,,,,,,,,,,,0.5,1019,959,60,15.98,\n"
    );
    std::fs::write(&p, text).unwrap();
    let (run, fmt) = read_any(&p).unwrap();
    assert_eq!(fmt, InputFormat::VidurCsv);
    assert!(!token_times_known(&run));
    assert_eq!(run.requests[1].scheduled, 0.5);
    assert!(!run.requests[1].ok());
    let r0 = &run.requests[0];
    assert_eq!(
        r0.chunks,
        [Chunk { t: 0.020, n: 1 }, Chunk { t: 0.156, n: 13 }]
    );
    let m = RunMetrics::compute(&run, &MetricOptions::default());
    assert!(
        m.samples(Metric::Itl)
            .unwrap_err()
            .contains("first- and last-token")
    );
    let tpot = m.samples(Metric::Tpot).unwrap()[0];
    assert!((tpot - 0.136 / 13.0).abs() < 1e-12);
    assert_eq!(m.samples(Metric::SchedDelay).unwrap(), [0.002]);
    // A broken cell names the file and the line.
    std::fs::write(
        &p,
        format!("{VIDUR_HEADER}\n0,x,,,,,,,,,,0.1,,,,,2,1,1,1,0\n"),
    )
    .unwrap();
    let e = read_any(&p).unwrap_err().to_string();
    assert!(e.contains("request_metrics.csv:2"), "{e}");
}

#[test]
fn unrecognised_input_is_refused_with_the_file_name() {
    let dir = scratch("unknown");
    for (name, text) in [
        ("empty.json", ""),
        ("x.txt", "hello\n"),
        ("o.json", "{\"a\": 1}"),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let e = read_any(&p).unwrap_err().to_string();
        assert!(e.contains(name), "{e}");
    }
}

fn simfid(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(super::shared::simfid_bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

#[test]
fn cli_export_then_import_round_trips() {
    let dir = scratch("cli-convert");
    write_run(&dir.join("run.jsonl"), &small_run()).unwrap();
    let out = simfid(
        &["export", "run.jsonl", "--to", "vllm-bench", "-o", "b.json"],
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("b.json")).unwrap()).unwrap();
    assert_eq!(v["completed"], 2);
    let out = simfid(&["import", "b.json", "-o", "back.jsonl"], &dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read_run(&dir.join("back.jsonl")).unwrap().0, small_run());
    let out = simfid(&["import", "missing.json", "-o", "x.jsonl"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.json"));
}
