//! End to end over loopback: `simfid serve` (the simulator in real time) recorded by `simfid
//! record` gives the times the same workload gets when simulated offline, within the loopback
//! jitter.

use std::collections::BTreeMap;

use simfid::fidelity::quantile::quantile;
use simfid::fixture::read_run;

use super::loopback::{Scratch, ServeChild, simfid};

/// Reads `token_times.csv` of `simfid simulate --token-times`: request id → token times.
fn token_times(dir: &std::path::Path) -> BTreeMap<u64, Vec<f64>> {
    let run = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a run folder");
    let (header, rows) = super::shared::read_csv(&run.join("token_times.csv"));
    assert_eq!(header, ["request_id", "token_index", "time_s"]);
    let mut out: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for r in rows {
        out.entry(r[0].parse().unwrap())
            .or_default()
            .push(r[2].parse().unwrap());
    }
    out
}

fn q(v: &[f64], p: f64) -> f64 {
    quantile(v, p).unwrap()
}

/// The measured bound (see ARCHITECTURE.md, "The recorder's clock"): on this project's 2-core
/// VM, shared with other builds, a chunk's time relative to its request's send differs from
/// the offline simulation's token time relative to the arrival by +0.4 ms at the median
/// (HTTP, parsing, wake-ups: the recorded times are later, never earlier by more than the
/// ~0.2 ms the request takes to reach the engine), within ±1 ms for 90% of the chunks, and by
/// up to ~5 ms in the worst 1% (scheduling on a loaded machine). The assertions leave room
/// for a busier CI machine.
#[test]
fn serial_recorded_run_matches_offline_simulation_within_loopback_jitter() {
    let dir = Scratch::new("e2e");
    let serve = ServeChild::start(&[]);
    let w = dir.path("w.csv");
    // 200 Poisson requests at 50 req/s (about 4 s), short outputs.
    let synth = simfid()
        .args(["trace", "synth", "--num-requests", "200", "--qps", "50"])
        .args([
            "--arrival",
            "poisson",
            "--prompt-min",
            "16",
            "--prompt-max",
            "400",
        ])
        .args([
            "--output-min",
            "4",
            "--output-max",
            "24",
            "--seed",
            "3",
            "-o",
        ])
        .arg(&w)
        .output()
        .unwrap();
    assert!(synth.status.success(), "{synth:?}");
    let out = dir.path("run.jsonl");
    let rec = simfid()
        .args(["record", "--url", &serve.url, "--workload"])
        .arg(&w)
        .arg("-o")
        .arg(&out)
        .arg("--no-progress")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&rec.stdout);
    assert!(
        rec.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&rec.stderr)
    );
    let sim = simfid()
        .args(["simulate", "--workload"])
        .arg(&w)
        .arg("--output")
        .arg(dir.path("sim"))
        .arg("--token-times")
        .output()
        .unwrap();
    assert!(sim.status.success(), "{sim:?}");
    let sim_times = token_times(&dir.path("sim"));

    let (run, _) = read_run(&out).unwrap();
    assert_eq!(run.requests.len(), 200);
    let (mut chunk_diff, mut ttft_rec, mut ttft_sim, mut itl_rec, mut itl_sim, mut lag) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for r in &run.requests {
        assert!(r.ok(), "{r:?}");
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_eq!(r.usage_prompt_tokens, Some(r.prompt_tokens));
        assert_eq!(r.chunks.len() as u32, r.output_tokens);
        let sent = r.sent.unwrap();
        lag.push(sent - r.scheduled);
        let s = &sim_times[&r.id];
        assert_eq!(s.len(), r.chunks.len());
        for (c, &t) in r.chunks.iter().zip(s) {
            chunk_diff.push((c.t - sent) - (t - r.scheduled));
        }
        ttft_rec.push(r.chunks[0].t - sent);
        ttft_sim.push(s[0] - r.scheduled);
        itl_rec.extend(r.chunks.windows(2).map(|w| w[1].t - w[0].t));
        itl_sim.extend(s.windows(2).map(|w| w[1] - w[0]));
    }
    let ms = |x: f64| x * 1e3;
    let abs: Vec<f64> = chunk_diff.iter().map(|d| d.abs()).collect();
    eprintln!(
        "chunks {}: recorded - simulated (ms) p1 {:.3} p50 {:.3} p99 {:.3}; |diff| p90 {:.3} p99 {:.3} max {:.3}",
        chunk_diff.len(),
        ms(q(&chunk_diff, 0.01)),
        ms(q(&chunk_diff, 0.5)),
        ms(q(&chunk_diff, 0.99)),
        ms(q(&abs, 0.9)),
        ms(q(&abs, 0.99)),
        ms(q(&abs, 1.0)),
    );
    for (name, rec, sim) in [("TTFT", &ttft_rec, &ttft_sim), ("ITL", &itl_rec, &itl_sim)] {
        eprintln!(
            "{name} (ms): p50 {:.3} vs {:.3}, p90 {:.3} vs {:.3}, p99 {:.3} vs {:.3} (recorded vs simulated)",
            ms(q(rec, 0.5)),
            ms(q(sim, 0.5)),
            ms(q(rec, 0.9)),
            ms(q(sim, 0.9)),
            ms(q(rec, 0.99)),
            ms(q(sim, 0.99)),
        );
    }
    eprintln!(
        "send lag (ms): p50 {:.3} p99 {:.3} max {:.3}",
        ms(q(&lag, 0.5)),
        ms(q(&lag, 0.99)),
        ms(q(&lag, 1.0))
    );
    // Per chunk: the typical offset is a fraction of a millisecond, 90% within ±2 ms, and
    // nearly all within 10 ms (a loaded machine can delay a wake-up).
    let p50 = ms(q(&chunk_diff, 0.5));
    assert!((-0.5..=1.5).contains(&p50), "median chunk offset {p50} ms");
    assert!(ms(q(&abs, 0.9)) <= 2.0, "90% of chunks within 2 ms");
    assert!(ms(q(&abs, 0.98)) <= 10.0, "98% of chunks within 10 ms");
    // The distributions the fidelity tests compare: TTFT and ITL quantiles.
    for p in [0.5, 0.9] {
        let d = ms(q(&ttft_rec, p) - q(&ttft_sim, p));
        assert!(d.abs() <= 2.0, "TTFT p{}: {d} ms apart", p * 100.0);
    }
    let d = ms(q(&itl_rec, 0.5) - q(&itl_sim, 0.5));
    assert!(d.abs() <= 0.5, "ITL p50: {d} ms apart");
    // The dispatcher sends on time (it spins the last 0.3 ms).
    assert!(ms(q(&lag, 0.5)) <= 0.5, "median send lag");
}

#[test]
fn serial_serve_answers_models_non_streamed_and_refuses_bad_requests() {
    let serve = ServeChild::start(&["--num-blocks", "4", "--block-size", "16"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        let models: serde_json::Value = c
            .get(format!("{}/models", serve.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(models["data"][0]["id"], "Qwen/Qwen3-0.6B");
        let post = |body: serde_json::Value| {
            c.post(format!("{}/completions", serve.url))
                .json(&body)
                .send()
        };
        let r = post(serde_json::json!({"prompt": [5, 6, 7], "max_tokens": 3}))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["usage"]["prompt_tokens"], 3);
        assert_eq!(v["usage"]["completion_tokens"], 3);
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        // 4 blocks of 16 tokens: a 100-token prompt can never run.
        let words: Vec<String> = (0..100).map(|i| format!("w{i}")).collect();
        let r = post(serde_json::json!({"prompt": words.join(" "), "max_tokens": 3}))
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("KV blocks"),
            "{v}"
        );
        for bad in [
            serde_json::json!({"max_tokens": 3}),
            serde_json::json!({"prompt": "", "max_tokens": 3}),
            serde_json::json!({"prompt": "a b", "max_tokens": 0}),
            serde_json::json!({"prompt": ["a", "b"], "max_tokens": 3}),
        ] {
            let r = post(bad.clone()).await.unwrap();
            assert_eq!(r.status(), 400, "{bad}");
        }
    });
}
