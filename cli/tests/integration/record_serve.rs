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

/// The measured bound (see ARCHITECTURE.md, "The recorder's clock"), on this project's 2-core
/// VM: a chunk's time relative to its request's send is later than the offline simulation's
/// token time relative to the arrival by +0.4 ms (release build) / +0.7 ms (this debug test
/// build) at the median — the HTTP round trip and wake-ups; it is never earlier by more than
/// ~0.3 ms — with |difference| ≤ 1.0-1.2 ms for 90% of the chunks and ≤ 3-4.5 ms for 99% on a
/// quiet machine; ITL p50 agrees within 0.01 ms. With the rest of the test suite running on
/// the same 2 cores the 90th percentile grows to ~3 ms; the assertions allow for that.
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
        .args(["simulate", "--exec", "roofline", "--workload"])
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
    // Per chunk: the typical offset is a fraction of a millisecond; the bounds on the spread
    // leave room for a CI machine running the rest of the suite on the same 2 cores (measured
    // there: |diff| p90 1.2-3.0 ms, p99 4-5 ms, max 5-9 ms).
    let p50 = ms(q(&chunk_diff, 0.5));
    assert!((-0.5..=1.5).contains(&p50), "median chunk offset {p50} ms");
    assert!(ms(q(&abs, 0.9)) <= 5.0, "90% of chunks within 5 ms");
    assert!(ms(q(&abs, 0.98)) <= 15.0, "98% of chunks within 15 ms");
    // The distributions the fidelity tests compare: TTFT and ITL quantiles.
    let d = ms(q(&ttft_rec, 0.5) - q(&ttft_sim, 0.5));
    assert!((-0.5..=2.0).contains(&d), "TTFT p50: {d} ms apart");
    let d = ms(q(&ttft_rec, 0.9) - q(&ttft_sim, 0.9));
    assert!((-0.5..=5.0).contains(&d), "TTFT p90: {d} ms apart");
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

/// Prompts of exact lengths in every mode, checked by the server's own count: `simfid serve
/// --tokenizer` counts string prompts with the tiny BPE, so text prompts built for it match,
/// token-id lists match, and `w1000 …` words (one token each only under a word-level
/// tokenizer) are caught as mismatches. Warm-up requests are not recorded.
#[test]
fn serial_prompt_modes_are_exact_and_verified_against_usage() {
    let dir = Scratch::new("modes");
    let tiny = std::path::Path::new(super::shared::ROOT).join("fixtures/tokenizers/tiny-bpe.json");
    let serve = ServeChild::start(&["--tokenizer", tiny.to_str().unwrap()]);
    let w = dir.path("w.csv");
    super::loopback::write_workload(
        &w,
        &[(0.0, 1, 2), (0.01, 7, 2), (0.02, 64, 3), (0.03, 200, 2)],
    );
    let record = |mode: &str, extra: &[&str]| {
        let out = dir.path(&format!("{mode}.jsonl"));
        let res = simfid()
            .args(["record", "--url", &serve.url, "--workload"])
            .arg(&w)
            .arg("-o")
            .arg(&out)
            .args(["--no-progress", "--prompt-mode", mode])
            .args(extra)
            .output()
            .unwrap();
        assert!(res.status.success(), "{res:?}");
        read_run(&out).unwrap().0
    };
    let tok = tiny.to_str().unwrap();
    let text = record("text", &["--tokenizer", tok, "--warmup", "3"]);
    assert!(
        text.meta
            .warmup
            .as_deref()
            .unwrap()
            .starts_with("3 warm-up requests")
    );
    assert_eq!(text.meta.extra["prompt_mode"], "text");
    assert_eq!(text.requests.len(), 4);
    for r in &text.requests {
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.usage_prompt_tokens, Some(r.prompt_tokens), "{r:?}");
        // Issue 13: `serve --tokenizer` streams whole tokens of the tokenizer, so the recorder
        // counting each chunk with the same tokenizer counts one token per chunk, as usage
        // says (it used to stream " w1000"-style words of several tokens each, and warn).
        assert!(r.chunks.iter().all(|c| c.n == 1), "{r:?}");
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }
    // Token ids, one request in flight at a time: each is sent after the previous one ended.
    let mut ids = record("token-ids", &["--concurrency", "1"]).requests;
    for r in &ids {
        assert!(r.ok() && r.warnings.is_empty(), "{r:?}");
        assert_eq!(r.usage_prompt_tokens, Some(r.prompt_tokens));
    }
    ids.sort_by(|a, b| a.sent.unwrap().total_cmp(&b.sent.unwrap()));
    for w in ids.windows(2) {
        assert!(w[1].sent.unwrap() >= w[0].chunks.last().unwrap().t, "{w:?}");
    }
    let words = record("words", &[]);
    let mismatched = words
        .requests
        .iter()
        .filter(|r| {
            r.warnings
                .iter()
                .any(|w| w.starts_with("prompt length mismatch"))
        })
        .count();
    assert!(mismatched >= 3, "{:?}", words.requests);
}
