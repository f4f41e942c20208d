//! `simfid bench record`: the recorder against `simfid serve` (in this process, on its own
//! runtime) at many concurrent streams. Reports the sustained chunk rate, the recorder's CPU
//! per chunk (its runtime's threads only), how late chunks were stamped compared with the
//! server's schedule, and the cost of one timestamp.
//!
//! ```text
//!  recorder runtime (measured)                serve runtime + engine thread
//!  dispatcher ─▶ N request tasks ──HTTP/SSE──▶ axum ─▶ engine (roofline + fixed step overhead)
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use simfid::fidelity::quantile::quantile;
use simfid::fixture::RequestRun;
use simfid::record::prompt::{PromptBuilder, PromptMode};
use simfid::record::{Progress, RecordOptions, StopSignals};
use simfid::sim::{RequestRecord, Simulator};
use simfid::workload::RequestSpec;

use super::args::EngineArgs;
use super::serve::{ServeArgs, options};

/// Flags of `simfid bench record`.
#[derive(Debug, Clone, Args)]
pub struct BenchRecordArgs {
    /// Concurrent streams (requests, all sent at t = 0).
    #[arg(long, default_value_t = 1000)]
    pub streams: u32,
    /// Output tokens per request (one chunk each).
    #[arg(long, default_value_t = 100)]
    pub output_tokens: u32,
    /// Prompt tokens per request.
    #[arg(long, default_value_t = 32)]
    pub prompt_tokens: u32,
    /// Simulated per-step overhead in ms (sets the chunk rate: streams / step time).
    #[arg(long, default_value_t = 20.0)]
    pub step_overhead_ms: f64,
    /// Worker threads of the recorder's runtime.
    #[arg(long, default_value_t = 1)]
    pub recorder_threads: usize,
}

/// CPU time of the calling thread in nanoseconds (Linux `CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_ns() -> u64 {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc == 0 {
        ts.sec as u64 * 1_000_000_000 + ts.nsec as u64
    } else {
        0
    }
}

/// A runtime whose worker threads add their CPU time to `cpu` when they stop.
fn measured_runtime(threads: usize, cpu: Arc<AtomicU64>) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .on_thread_stop(move || {
            cpu.fetch_add(thread_cpu_ns(), Ordering::Relaxed);
        })
        .build()
        .context("cannot start a runtime")
}

fn ms(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.3}", v * 1e3))
}

/// Runs `simfid bench record`.
pub fn main(a: BenchRecordArgs) -> Result<i32> {
    let serve_args = ServeArgs {
        host: "127.0.0.1".into(),
        port: 0,
        served_model_name: None,
        engine: EngineArgs {
            // Every prompt in the first step, so that the run is all decode steps of all
            // streams.
            chunk_size: Some(a.streams * a.prompt_tokens),
            batch_size_cap: Some(a.streams.max(1)),
            block_size: Some(16),
            // Room for every stream at once (Vidur's planner would cap the batch by
            // max_request_tokens): all streams decode in every step.
            num_blocks: Some(
                u64::from(a.streams)
                    * u64::from((a.prompt_tokens + a.output_tokens).div_ceil(16) + 1),
            ),
            ..EngineArgs::default()
        },
        exec: "roofline".into(),
        step_overhead_ms: Some(a.step_overhead_ms),
        time_scale: 1.0,
        tokenizer: None,
        max_model_len: None,
    };
    let (opts, summary) = options(&serve_args)?;
    let sim_cfg = opts.cfg.clone();
    let server_cpu = Arc::new(AtomicU64::new(0));
    let server_rt = measured_runtime(1, server_cpu.clone())?;
    let server = server_rt.block_on(simfid::serve::Server::bind("127.0.0.1:0", opts))?;
    let addr = server.local_addr()?;
    server_rt.spawn(server.run());
    let url = format!("http://{addr}/v1");
    println!("simfid bench record: simfid serve in-process at {url}: {summary}");

    let requests: Vec<RequestSpec> = (0..u64::from(a.streams))
        .map(|id| RequestSpec {
            id,
            arrival_s: 0.0,
            prefill_tokens: a.prompt_tokens,
            decode_tokens: a.output_tokens,
        })
        .collect();
    let rec_opts = RecordOptions {
        base_url: url,
        model: "Qwen/Qwen3-0.6B".into(),
        prompts: PromptBuilder::new(PromptMode::Words, None)?,
        ignore_eos: false,
        timeout: Duration::from_secs(600),
        concurrency: None,
        tokenizer: None,
        precise_send: true,
    };
    let rec_cpu = Arc::new(AtomicU64::new(0));
    let rec_rt = measured_runtime(a.recorder_threads, rec_cpu.clone())?;
    let progress = Progress::default();
    let (stop, _soft, _hard) = StopSignals::new();
    let mut runs: Vec<RequestRun> = Vec::with_capacity(requests.len());
    let wall = Instant::now();
    let outcome = rec_rt.block_on(async {
        let t0 = tokio::time::Instant::now();
        simfid::record::record(&rec_opts, &requests, t0, &progress, stop, |r| runs.push(r)).await
    })?;
    let wall_s = wall.elapsed().as_secs_f64();
    rec_rt.shutdown_timeout(Duration::from_secs(5));
    let rec_cpu_s = rec_cpu.load(Ordering::Relaxed) as f64 * 1e-9;
    server_rt.shutdown_timeout(Duration::from_secs(1));
    let server_cpu_s = server_cpu.load(Ordering::Relaxed) as f64 * 1e-9;

    let failed: Vec<&RequestRun> = runs.iter().filter(|r| !r.ok()).collect();
    let chunks: u64 = runs.iter().map(|r| r.chunks.len() as u64).sum();
    let first = runs
        .iter()
        .filter_map(|r| r.chunks.first().map(|c| c.t))
        .fold(f64::INFINITY, f64::min);
    let last = runs
        .iter()
        .filter_map(|r| r.chunks.last().map(|c| c.t))
        .fold(0.0, f64::max);
    let span = (last - first).max(1e-9);

    // The server's schedule: the same requests simulated offline at their actual send times.
    let mut offline: Vec<RequestRecord> = Vec::new();
    let mut arrivals: Vec<RequestSpec> = runs
        .iter()
        .filter_map(|r| {
            Some(RequestSpec {
                arrival_s: r.sent?,
                ..r.spec()
            })
        })
        .collect();
    arrivals.sort_by(|x, y| x.arrival_s.total_cmp(&y.arrival_s));
    let roofline = {
        let mut r = simfid::exec::roofline::Roofline::new(
            &sim_cfg.model,
            &sim_cfg.device,
            sim_cfg.tensor_parallel_size,
            sim_cfg.num_pipeline_stages,
        )?;
        r.overhead_s = a.step_overhead_ms / 1e3;
        r
    };
    let mut sim = Simulator::new(sim_cfg, &roofline)?;
    sim.run(arrivals, &mut offline)?;
    let sim_span = {
        let f = offline
            .iter()
            .filter_map(|r| r.token_times.first())
            .fold(f64::INFINITY, |m, &x| m.min(x));
        let l = offline
            .iter()
            .filter_map(|r| r.token_times.last())
            .fold(0.0, |m: f64, &x| m.max(x));
        (l - f).max(1e-9)
    };
    // Steps as the client sees them: every chunk of one engine step is due at the same time,
    // so sorted chunk times form clusters separated by the step period. A chunk's offset from
    // the first chunk of its step is the time the server and the recorder took to deliver and
    // stamp the step's chunks before it; were the recorder the bottleneck, these offsets would
    // grow to the step period and the rate would fall behind the schedule.
    let mut times: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.chunks.iter().map(|c| c.t))
        .collect();
    times.sort_by(f64::total_cmp);
    let gap = (a.step_overhead_ms / 1e3 / 4.0).max(0.002);
    let mut spread = Vec::with_capacity(times.len());
    let mut step_starts = Vec::new();
    let mut start = f64::NEG_INFINITY;
    let mut prev = f64::NEG_INFINITY;
    for &t in &times {
        if t - prev > gap {
            start = t;
            step_starts.push(t);
        }
        spread.push(t - start);
        prev = t;
    }
    let periods: Vec<f64> = step_starts.windows(2).map(|w| w[1] - w[0]).collect();
    let late = spread;

    // The cost of one timestamp as the recorder takes it.
    let n = 1_000_000;
    let start = tokio::time::Instant::now();
    let mut acc = Duration::ZERO;
    for _ in 0..n {
        acc += tokio::time::Instant::now().duration_since(start);
    }
    let stamp_ns = start.elapsed().as_secs_f64() * 1e9 / f64::from(n);
    std::hint::black_box(acc);

    println!(
        "streams {}, {} output tokens each, step overhead {} ms; {} requests ok, {} failed, {} sent",
        a.streams,
        a.output_tokens,
        a.step_overhead_ms,
        runs.len() - failed.len(),
        failed.len(),
        outcome.sent
    );
    if let Some(f) = failed.first() {
        println!("first failure: {:?}", f.error);
    }
    println!("| figure | value |");
    println!("| --- | --- |");
    println!("| chunks received | {chunks} |");
    println!(
        "| sustained rate (first to last chunk) | {:.0} chunks/s over {span:.2} s |",
        chunks as f64 / span
    );
    println!(
        "| server's scheduled rate (offline simulation) | {:.0} chunks/s over {sim_span:.2} s |",
        chunks as f64 / sim_span
    );
    println!(
        "| recorder CPU (its runtime's {} worker thread(s)) | {rec_cpu_s:.2} s = {:.2} µs per chunk, {:.0}% of one core |",
        a.recorder_threads,
        rec_cpu_s * 1e6 / chunks.max(1) as f64,
        100.0 * rec_cpu_s / wall_s
    );
    println!(
        "| recorder capacity at that cost | {:.0} chunks/s per core |",
        chunks as f64 / rec_cpu_s.max(1e-9)
    );
    println!(
        "| server CPU (HTTP runtime, engine thread not counted) | {server_cpu_s:.2} s = {:.2} µs per chunk |",
        server_cpu_s * 1e6 / chunks.max(1) as f64
    );
    println!(
        "| steps seen by the client; period p50 / p99 (ms) | {}; {} / {} |",
        step_starts.len(),
        ms(quantile(&periods, 0.5)),
        ms(quantile(&periods, 0.99))
    );
    println!(
        "| chunk stamped after the first chunk of its step (p50 / p90 / p99 / max, ms) | {} / {} / {} / {} |",
        ms(quantile(&late, 0.5)),
        ms(quantile(&late, 0.9)),
        ms(quantile(&late, 0.99)),
        ms(quantile(&late, 1.0))
    );
    println!("| one timestamp (Instant::now) | {stamp_ns:.1} ns |");
    println!("| wall time | {wall_s:.2} s |");
    Ok(0)
}
