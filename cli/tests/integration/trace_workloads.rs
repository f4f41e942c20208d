//! `simfid trace`: prompt lengths through a tokenizer (the committed tiny BPE, and Qwen3's real
//! one when `SIMFID_QWEN3_TOKENIZER` points at it), synthetic workloads, attached arrivals.

use std::path::{Path, PathBuf};

use simfid::tokenize::TokenCounter;
use simfid::workload::{CsvWorkload, TraceReplayOptions, read_workload_csv};

use super::loopback::{Scratch, simfid};

fn tiny() -> PathBuf {
    Path::new(super::shared::ROOT).join("fixtures/tokenizers/tiny-bpe.json")
}

/// The Qwen3 tokenizer, or `None` outside CI when it is missing (the test then returns
/// early). In CI (`CI=true`) a missing file fails the test: `.ci/run` fetches it.
fn qwen3() -> Option<PathBuf> {
    match std::env::var_os("SIMFID_QWEN3_TOKENIZER") {
        Some(p) if Path::new(&p).is_file() => Some(PathBuf::from(p)),
        other => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(
                !ci,
                "SIMFID_QWEN3_TOKENIZER is {other:?}: CI must fetch it (scripts/fetch_qwen3_tokenizer.sh)"
            );
            eprintln!(
                "note: SIMFID_QWEN3_TOKENIZER not set; skipping (run scripts/fetch_qwen3_tokenizer.sh)"
            );
            None
        }
    }
}

const PROMPTS: &[&str] = &[
    "Hello, world!",
    "The scheduler forms a batch of requests and runs one step.",
    "Überraschung: ünïcödé and emoji 🚀 are bytes too",
    "   leading spaces and trailing   ",
    "A fidelity test compares a simulated run with a real one of the same workload.",
];

fn read_lengths(path: &Path) -> Vec<(u32, u32)> {
    match read_workload_csv(path, &TraceReplayOptions::exact()).unwrap() {
        CsvWorkload::Lengths(rows) => rows.iter().map(|&(p, d)| (p as u32, d as u32)).collect(),
        other => panic!("expected a lengths file, got {other:?}"),
    }
}

/// Runs `simfid trace` on the prompts (as text lines and as JSONL) and checks the counts
/// against the tokenizers crate directly.
fn trace_matches_tokenizer(tokenizer: &Path, name: &str) {
    let dir = Scratch::new(name);
    let direct = tokenizers::Tokenizer::from_file(tokenizer).unwrap();
    let count = |s: &str| direct.encode(s, true).unwrap().len() as u32;

    let txt = dir.path("prompts.txt");
    std::fs::write(&txt, PROMPTS.join("\n") + "\n").unwrap();
    let out = dir.path("lengths.csv");
    let res = simfid()
        .arg("trace")
        .arg(&txt)
        .arg("--tokenizer")
        .arg(tokenizer)
        .args(["--output-tokens", "7", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(res.status.success(), "{res:?}");
    let expected: Vec<(u32, u32)> = PROMPTS.iter().map(|p| (count(p), 7)).collect();
    assert_eq!(read_lengths(&out), expected);

    // JSONL with per-prompt output lengths, and a chat template around each prompt.
    let jsonl = dir.path("prompts.jsonl");
    let lines: Vec<String> = PROMPTS
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 0 {
                serde_json::json!({"prompt": p, "max_tokens": 10 + i}).to_string()
            } else {
                serde_json::json!({"prompt": p, "output_tokens": 20 + i}).to_string()
            }
        })
        .collect();
    std::fs::write(&jsonl, lines.join("\n")).unwrap();
    let template = "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n";
    let res = simfid()
        .args(["trace", "prompts"])
        .arg(&jsonl)
        .arg("--tokenizer")
        .arg(tokenizer)
        .args(["--chat-template", template, "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(res.status.success(), "{res:?}");
    let expected: Vec<(u32, u32)> = PROMPTS
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let d = if i % 2 == 0 { 10 + i } else { 20 + i };
            (count(&template.replace("{prompt}", p)), d as u32)
        })
        .collect();
    assert_eq!(read_lengths(&out), expected);

    // A fixed overhead is added as is; --fixed-output overrides per-prompt lengths.
    let res = simfid()
        .args(["trace", "prompts"])
        .arg(&jsonl)
        .arg("--tokenizer")
        .arg(tokenizer)
        .args([
            "--chat-overhead",
            "9",
            "--output-tokens",
            "3",
            "--fixed-output",
            "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(res.status.success(), "{res:?}");
    let expected: Vec<(u32, u32)> = PROMPTS.iter().map(|p| (count(p) + 9, 3)).collect();
    assert_eq!(read_lengths(&out), expected);

    // A prompt without an output length and no default: an error naming the line.
    std::fs::write(
        &jsonl,
        "{\"prompt\": \"a\", \"max_tokens\": 2}\n{\"prompt\": \"b\"}\n",
    )
    .unwrap();
    let res = simfid()
        .arg("trace")
        .arg(&jsonl)
        .arg("--tokenizer")
        .arg(tokenizer)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("prompts.jsonl:2:"), "{err}");
}

/// Text built for `record --prompt-mode text` has exactly the length asked for, and two
/// variants do not start alike.
fn exact_text_is_exact(tokenizer: &Path) {
    let t = TokenCounter::from_file(tokenizer).unwrap();
    for n in [1, 2, 3, 10, 57, 300] {
        for variant in [0, 1, 999] {
            let text = t.exact_text(n, variant).unwrap();
            assert_eq!(
                t.count(&text).unwrap(),
                n,
                "n {n} variant {variant}: {text:?}"
            );
        }
        if n >= 3 {
            let a = t.exact_text(n, 0).unwrap();
            let b = t.exact_text(n, 1).unwrap();
            assert_ne!(a.split_whitespace().next(), b.split_whitespace().next());
        }
    }
}

#[test]
fn trace_counts_match_the_tiny_tokenizer() {
    trace_matches_tokenizer(&tiny(), "trace-tiny");
    exact_text_is_exact(&tiny());
}

#[test]
fn trace_counts_match_the_qwen3_tokenizer() {
    let Some(q) = qwen3() else { return };
    // Known Qwen2/3 ids: "Hello", ",", " world", "!".
    let t = tokenizers::Tokenizer::from_file(&q).unwrap();
    assert_eq!(
        t.encode("Hello, world!", true).unwrap().get_ids(),
        [9707, 11, 1879, 0]
    );
    trace_matches_tokenizer(&q, "trace-qwen3");
    exact_text_is_exact(&q);
}

#[test]
fn trace_synth_writes_a_seeded_workload_with_arrivals() {
    let dir = Scratch::new("synth");
    let run = |out: &Path, seed: &str, arrival: &[&str]| {
        let res = simfid()
            .args(["trace", "synth", "--num-requests", "300", "--qps", "20"])
            .args(arrival)
            .args([
                "--prompt-min",
                "10",
                "--prompt-max",
                "50",
                "--output-min",
                "2",
            ])
            .args(["--output-max", "4", "--seed", seed, "-o"])
            .arg(out)
            .output()
            .unwrap();
        assert!(res.status.success(), "{res:?}");
        std::fs::read(out).unwrap()
    };
    let (a, b) = (dir.path("a.csv"), dir.path("b.csv"));
    assert_eq!(
        run(&a, "5", &[]),
        run(&b, "5", &[]),
        "same seed, same bytes"
    );
    assert_ne!(run(&a, "5", &[]), run(&b, "6", &[]));
    let CsvWorkload::TraceReplay(w) = read_workload_csv(&a, &TraceReplayOptions::exact()).unwrap()
    else {
        panic!("expected arrivals")
    };
    assert_eq!(w.len(), 300);
    assert!(
        w.requests
            .iter()
            .all(|r| (10..=50).contains(&r.prefill_tokens) && (2..=4).contains(&r.decode_tokens))
    );
    let span = w.requests.last().unwrap().arrival_s;
    // 300 Poisson arrivals at 20/s take about 15 s.
    assert!((11.0..19.0).contains(&span), "{span}");
    // Gamma with burstiness 0.25 has the same mean rate.
    run(&a, "5", &["--arrival", "gamma", "--burstiness", "0.25"]);
    let CsvWorkload::TraceReplay(g) = read_workload_csv(&a, &TraceReplayOptions::exact()).unwrap()
    else {
        panic!("expected arrivals")
    };
    assert!((8.0..25.0).contains(&g.requests.last().unwrap().arrival_s));
}

#[test]
fn trace_arrivals_keeps_the_row_order() {
    let dir = Scratch::new("attach");
    let lengths = dir.path("l.csv");
    std::fs::write(
        &lengths,
        "num_prefill_tokens,num_decode_tokens\n5,1\n6,2\n7,3\n8,4\n",
    )
    .unwrap();
    let out = dir.path("w.csv");
    let res = simfid()
        .args(["trace", "arrivals"])
        .arg(&lengths)
        .args(["--qps", "4", "--seed", "1", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(res.status.success(), "{res:?}");
    let CsvWorkload::TraceReplay(w) =
        read_workload_csv(&out, &TraceReplayOptions::exact()).unwrap()
    else {
        panic!("expected arrivals")
    };
    let lens: Vec<(u32, u32)> = w
        .requests
        .iter()
        .map(|r| (r.prefill_tokens, r.decode_tokens))
        .collect();
    assert_eq!(lens, [(5, 1), (6, 2), (7, 3), (8, 4)]);
    assert!(
        w.requests
            .windows(2)
            .all(|p| p[0].arrival_s < p[1].arrival_s)
    );
    // Recorded arrivals: times from a file, in order.
    let times = dir.path("t.txt");
    std::fs::write(&times, "0.5\n1.25\n2\n3.5\n").unwrap();
    let res = simfid()
        .args(["trace", "arrivals"])
        .arg(&lengths)
        .args(["--arrival", "recorded", "--arrival-times"])
        .arg(&times)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(res.status.success(), "{res:?}");
    let CsvWorkload::TraceReplay(w) =
        read_workload_csv(&out, &TraceReplayOptions::exact()).unwrap()
    else {
        panic!("expected arrivals")
    };
    let got: Vec<f64> = w.requests.iter().map(|r| r.arrival_s).collect();
    assert_eq!(got, [0.5, 1.25, 2.0, 3.5]);
}
