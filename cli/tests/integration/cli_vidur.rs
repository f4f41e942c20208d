//! `simfid vidur` and `simfid simulate` from the command line: Vidur's flags reproduce Vidur's
//! `request_metrics.csv` byte for byte (Vidur's runs under `fixtures/vidur/`); bad input exits 2
//! with a message that names the problem.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::shared;

fn simfid(args: &[&str], cwd: &Path) -> Output {
    Command::new(super::shared::simfid_bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run simfid")
}

fn scratch(name: &str) -> shared::Scratch {
    shared::scratch(&format!("simfid-cli-{name}-"))
}

/// The flags of a reference run's `command.sh`, with the run's own files (run d's length
/// trace) pointing into `fixtures/vidur/runs/`. Its other paths (Vidur's operator profiles)
/// are not read: the runs use `--simfid_prediction_tables`.
fn vidur_flags(run: &str) -> Vec<String> {
    let command = shared::vidur_run(run).join("command.sh");
    let text =
        std::fs::read_to_string(&command).unwrap_or_else(|e| panic!("{}: {e}", command.display()));
    let runs = format!("{}/", shared::vidur("runs").display());
    let body = text.split("python -m vidur.main").nth(1).unwrap();
    let mut flags: Vec<String> = body
        .split_whitespace()
        .filter(|w| *w != "\\")
        .map(|w| w.replace("shared/vidur/runs/", &runs))
        .collect();
    // Drop Vidur's cache and output folders: simfid writes its own output folder.
    for name in ["--metrics_config_cache_dir", "--metrics_config_output_dir"] {
        if let Some(i) = flags.iter().position(|f| f == name) {
            flags.drain(i..i + 2);
        }
    }
    flags
}

fn only_file(dir: &Path, name: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().join(name))
        .filter(|p| p.is_file())
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one run folder in {}",
        dir.display()
    );
    found.pop().unwrap()
}

fn check_byte_identical(run: &str) {
    let dir = scratch(&format!("vidur-{run}"));
    let mut args: Vec<String> = vec!["vidur".into()];
    args.extend(vidur_flags(run));
    let tables = shared::vidur_tables();
    args.extend([
        "--metrics_config_output_dir".into(),
        "out".into(),
        "--simfid_prediction_tables".into(),
        tables.display().to_string(),
    ]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = simfid(&argv, &dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = std::fs::read(only_file(&dir.join("out"), "request_metrics.csv")).unwrap();
    let vidur = shared::read_bytes(&shared::vidur_run(run).join("request_metrics.csv.gz"));
    assert!(
        ours == vidur,
        "run {run}: request_metrics.csv differs from Vidur's"
    );
}

#[test]
fn vidur_flags_reproduce_run_a_byte_for_byte() {
    check_byte_identical("a");
}

#[test]
fn vidur_flags_reproduce_run_b_byte_for_byte() {
    check_byte_identical("b");
}

#[test]
fn vidur_flags_reproduce_run_c_overload_byte_for_byte() {
    check_byte_identical("c");
}

#[test]
fn vidur_flags_reproduce_run_d_trace_lengths_byte_for_byte() {
    check_byte_identical("d");
}

#[test]
fn vidur_flags_reproduce_run_e_20000_requests_byte_for_byte() {
    check_byte_identical("e");
}

#[test]
fn unknown_vidur_flag_is_refused_with_a_suggestion() {
    let dir = scratch("unknown-flag");
    let out = simfid(&["vidur", "--sarathi_scheduler_config_chunk", "512"], &dir);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown flag --sarathi_scheduler_config_chunk"),
        "{err}"
    );
    assert!(
        err.contains("--sarathi_scheduler_config_chunk_size"),
        "{err}"
    );
}

#[test]
fn unknown_model_lists_the_known_ones() {
    let dir = scratch("unknown-model");
    let out = simfid(
        &["simulate", "--model", "gpt-17", "--num-requests", "5"],
        &dir,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown model 'gpt-17'") && err.contains("Qwen/Qwen3-0.6B"),
        "{err}"
    );
}

#[test]
fn malformed_workload_names_the_line() {
    let dir = scratch("bad-csv");
    std::fs::write(
        dir.join("w.csv"),
        "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,100,10\n0.5,abc,10\n",
    )
    .unwrap();
    let out = simfid(&["simulate", "--workload", "w.csv"], &dir);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("w.csv") && err.contains(":3:"), "{err}");
}

#[test]
fn prompt_that_never_fits_is_an_error_not_a_hang() {
    let dir = scratch("never-fits");
    std::fs::write(
        dir.join("w.csv"),
        "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,100,10\n0.1,3000,10\n",
    )
    .unwrap();
    // 100 blocks of 16 tokens = 1600 tokens of KV cache: the 3000-token prompt can never run.
    let out = simfid(
        &[
            "simulate",
            "--workload",
            "w.csv",
            "--num-blocks",
            "100",
            "--scheduler",
            "vllm",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("request 1 can never be scheduled"), "{err}");
    assert!(err.contains("3000 tokens"), "{err}");
}

#[test]
fn simulate_runs_on_builtin_defaults_and_reads_toml() {
    let dir = scratch("defaults");
    let out = simfid(
        &["simulate", "--num-requests", "50", "--output", "o1"],
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Qwen/Qwen3-0.6B") && stdout.contains("50 completed"),
        "{stdout}"
    );
    // The built-in defaults (Qwen3-0.6B on an H100) have a measured preset: it is the default
    // execution model, with its scheduler; the roofline is the explicit what-if.
    assert!(
        stdout.contains("(hf_cb scheduler)")
            && stdout.contains("execution-time model: preset h100-qwen3-0.6b-hfcb"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(only_file(&dir.join("o1"), "request_metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 51);
    assert!(csv.starts_with("Request Id,request_e2e_time,"));
    for (args, expect) in [
        (&["--exec", "roofline"][..], "(sarathi scheduler), workload"),
        (
            &["--scheduler", "sarathi"][..],
            "execution-time model: roofline",
        ),
        (
            &["--device", "h200"][..],
            "execution-time model: preset h200-qwen3-0.6b-vllm",
        ),
        (&["--device", "a100"][..], "execution-time model: roofline"),
    ] {
        let mut full = vec!["simulate", "--num-requests", "20", "--output", "o3"];
        full.extend_from_slice(args);
        let out = simfid(&full, &dir);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(expect),
            "{args:?}: {stdout}"
        );
    }

    std::fs::write(
        dir.join("c.toml"),
        "model = \"meta-llama/Meta-Llama-3-8B\"\ndevice = \"a100\"\nscheduler = \"vllm\"\n\
         num_requests = 20\nqps = 1.0\n",
    )
    .unwrap();
    let out = simfid(&["simulate", "--config", "c.toml", "--output", "o2"], &dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Meta-Llama-3-8B on a100 (vllm scheduler)"),
        "{stdout}"
    );
    assert!(stdout.contains("20 completed"), "{stdout}");

    std::fs::write(dir.join("bad.toml"), "modle = \"x\"\n").unwrap();
    let out = simfid(&["simulate", "--config", "bad.toml"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml"));
}

/// `simfid simulate --run` writes the simulation as a run with every token's time, so that
/// "simulate, then compare" has ITL (Vidur's request_metrics.csv has first and last tokens only).
#[test]
fn simulate_writes_a_run_that_compare_reads_with_every_token() {
    let dir = scratch("run");
    let out = simfid(
        &[
            "simulate",
            "--num-requests",
            "40",
            "--qps",
            "4",
            "--output",
            "o",
            "--run",
            "sim.jsonl",
        ],
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (run, _) = simfid::fixture::read_run(&dir.join("sim.jsonl")).unwrap();
    assert_eq!(run.requests.len(), 40);
    assert!(run.requests.iter().all(|r| r.ok()));
    assert!(simfid::fidelity::metric::token_times_known(&run));
    // The run's chunks are the simulated token times: as many as the output tokens.
    for r in &run.requests {
        assert_eq!(r.chunks.len() as u32, r.output_tokens, "request {}", r.id);
    }
    // The same metrics as the simulation's own CSV: TTFT from the run = prefill_e2e_time.
    let csv = std::fs::read_to_string(only_file(&dir.join("o"), "request_metrics.csv")).unwrap();
    let first_row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    let r0 = &run.requests[0];
    let ttft = r0.chunks[0].t - r0.sent.unwrap();
    let csv_ttft: f64 = first_row[11].parse().unwrap();
    assert!((ttft - csv_ttft).abs() < 1e-9, "{ttft} vs {csv_ttft}");
    let out = simfid(
        &["compare", "sim.jsonl", "sim.jsonl", "--format", "json"],
        &dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.to_string().contains("\"itl\""), "the report has ITL: {v}");
}
