//! `simfid record`: replay a workload against a real server and write a run fixture.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use simfid::fidelity::quantile::quantile;
use simfid::fidelity::{MetricDef, RequestSamples, gaps};
use simfid::fixture::{RequestRun, RunMeta, RunWriter, ServerInfo, Source};
use simfid::record::prompt::{PromptBuilder, PromptMode};
use simfid::record::{Progress, RecordOptions, StopSignals, probe};
use simfid::tokenize::TokenCounter;
use simfid::workload::{CsvWorkload, TraceReplayOptions, Workload};

use super::trace::{ArrivalArgs, attach_arrivals};

/// Flags of `simfid record`.
#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// Base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1.
    #[arg(long)]
    pub url: String,
    /// Workload CSV: `arrived_at,num_prefill_tokens,num_decode_tokens` (seconds from the
    /// start), or lengths only (`num_prefill_tokens,num_decode_tokens`, arrivals from
    /// --arrival/--qps).
    #[arg(long)]
    pub workload: PathBuf,
    /// Run fixture to write (JSON Lines, one request per line as it finishes).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Warm-up requests before t = 0 (lengths cycled from the workload; not recorded).
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
    /// Warm-up requests in flight at a time.
    #[arg(long, default_value_t = 4)]
    pub warmup_concurrency: usize,
    /// Model name to request (default: the first model of GET /v1/models).
    #[arg(long)]
    pub model: Option<String>,
    /// How prompts of exact lengths are built: words (`w1000 w1001 …`, for word-level
    /// tokenizers), token-ids (a list of ids), text (needs --tokenizer).
    #[arg(long, default_value = "words")]
    pub prompt_mode: String,
    /// tokenizer.json: builds text prompts, and counts the tokens of each streamed chunk.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Send `ignore_eos: true`: auto (probe the server once), on, off.
    #[arg(long, default_value = "auto")]
    pub ignore_eos: String,
    /// Server name for the fixture (e.g. "transformers serve").
    #[arg(long)]
    pub server_name: Option<String>,
    /// The server's command line or flags, for the fixture.
    #[arg(long, allow_hyphen_values = true)]
    pub server_flags: Option<String>,
    /// Server version, for the fixture (default: what the server reports, if anything).
    #[arg(long)]
    pub server_version: Option<String>,
    /// GPU name (default: nvidia-smi on this machine, if present).
    #[arg(long)]
    pub gpu: Option<String>,
    /// Weights precision (bf16, fp16, …).
    #[arg(long)]
    pub dtype: Option<String>,
    /// Per-request timeout in seconds, from its send to the end of its stream.
    #[arg(long, default_value_t = 300.0)]
    pub timeout: f64,
    /// At most this many requests in flight (default: no limit, open loop).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// After ctrl-C, seconds to wait for in-flight requests before cutting them off.
    #[arg(long, default_value_t = 5.0)]
    pub grace: f64,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Sleep to each send time without the final 0.3 ms spin (less CPU, ~0.1 ms later).
    #[arg(long)]
    pub coarse_send: bool,
    /// Fraction of requests (0 to 1) allowed to fail before the exit code says so: with more
    /// failures than this, `simfid record` exits with 4 (the fixture is written either way).
    #[arg(long, default_value_t = 0.0)]
    pub max_failed_fraction: f64,
    #[command(flatten)]
    pub arrivals: ArrivalArgs,
}

/// Reads a workload CSV; a lengths-only file gets arrivals from the flags.
pub fn load_workload(path: &Path, arrivals: &ArrivalArgs) -> Result<(Workload, Option<u64>)> {
    match simfid::workload::read_workload_csv(path, &TraceReplayOptions::exact())? {
        CsvWorkload::TraceReplay(w) => {
            let n = w.len();
            Ok((
                Workload::new(
                    w.requests,
                    format!("{} (trace replay, {n} requests)", path.display()),
                ),
                None,
            ))
        }
        CsvWorkload::Lengths(rows) => {
            let w = attach_arrivals(&rows, arrivals, path)?;
            Ok((w, Some(arrivals.seed)))
        }
    }
}

/// Runs `simfid record`; returns the exit code.
pub fn main(a: RecordArgs) -> Result<i32> {
    let (workload, seed) = load_workload(&a.workload, &a.arrivals)?;
    if workload.is_empty() {
        bail!("{}: the workload has no requests", a.workload.display());
    }
    if !(a.timeout.is_finite() && a.timeout > 0.0) {
        bail!("--timeout must be > 0 seconds");
    }
    if !(0.0..=1.0).contains(&a.max_failed_fraction) {
        bail!(
            "--max-failed-fraction must be between 0 and 1 (got {})",
            a.max_failed_fraction
        );
    }
    let mode = PromptMode::parse(&a.prompt_mode)?;
    let tokenizer = match &a.tokenizer {
        Some(p) => Some(Arc::new(TokenCounter::from_file(p)?)),
        None => None,
    };
    let prompts = PromptBuilder::new(mode, tokenizer.clone())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run(a, workload, seed, prompts, tokenizer))
}

async fn run(
    a: RecordArgs,
    workload: Workload,
    seed: Option<u64>,
    prompts: PromptBuilder,
    tokenizer: Option<Arc<TokenCounter>>,
) -> Result<i32> {
    let base = a.url.trim_end_matches('/').to_string();
    let mode = prompts.mode();
    let client = simfid::record::http_client()?;
    let facts = probe::server_facts(&client, &base).await?;
    let model = match a.model.clone().or_else(|| facts.models.first().cloned()) {
        Some(m) => m,
        None => bail!("{base}/models lists no model: pass --model"),
    };
    let (ignore_eos, ignore_eos_note) = match a.ignore_eos.as_str() {
        "on" => (true, "on (--ignore-eos on)".to_string()),
        "off" => (false, "off (--ignore-eos off)".to_string()),
        "auto" => {
            let prompt = prompts.prompt(2_000_000, 4)?;
            probe::accepts_ignore_eos(&client, &base, &model, prompt).await
        }
        other => bail!("--ignore-eos must be auto, on or off (got '{other}')"),
    };
    let opts = RecordOptions {
        base_url: base.clone(),
        model: model.clone(),
        prompts: prompts.clone(),
        ignore_eos,
        timeout: Duration::from_secs_f64(a.timeout),
        concurrency: a.concurrency,
        tokenizer: tokenizer.clone(),
        precise_send: !a.coarse_send,
    };

    let (stop, soft_tx, hard_tx) = StopSignals::new();
    let in_flight_progress = Arc::new(Progress::default());
    {
        let progress = in_flight_progress.clone();
        let grace = Duration::from_secs_f64(a.grace.max(0.0));
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            let p = &progress;
            let in_flight = p.sent.load(Ordering::Relaxed) - p.finished.load(Ordering::Relaxed);
            eprintln!(
                "\nsimfid record: interrupted: no more sends; waiting up to {:.1} s for {in_flight} \
                 requests in flight (ctrl-C again to stop now)",
                grace.as_secs_f64()
            );
            let _ = soft_tx.send(true);
            tokio::select! {
                _ = tokio::time::sleep(grace) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            let _ = hard_tx.send(true);
        });
    }

    let warmup = if a.warmup > 0 {
        eprintln!("simfid record: {} warm-up requests…", a.warmup);
        let conc = a.warmup_concurrency.max(1);
        let r = simfid::record::warm_up(&opts, &workload.requests, a.warmup, conc, stop.clone())
            .await?;
        Some(r.describe(conc))
    } else {
        Some("none".to_string())
    };

    let mut meta = RunMeta::new(Source::Real, model.clone());
    meta.dtype = a.dtype.clone();
    meta.gpu = a.gpu.clone().or_else(probe::local_gpu_name);
    meta.server = Some(ServerInfo {
        name: a
            .server_name
            .clone()
            .or_else(|| facts.server_header.clone())
            .unwrap_or_else(|| "unknown".into()),
        version: a.server_version.clone().or_else(|| facts.version.clone()),
        flags: a
            .server_flags
            .as_deref()
            .map(|f| f.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        url: Some(base.clone()),
    });
    meta.client_host = probe::host_name();
    meta.warmup = warmup;
    meta.seed = seed;
    meta.workload = workload.source.clone();
    meta.started_at = Some(probe::utc_now_rfc3339());
    let x = &mut meta.extra;
    x.insert("recorder".into(), "simfid record".into());
    x.insert(
        "clock".into(),
        "seconds on the client's monotonic clock; t = 0 when the run starts (after warm-up); \
         request i is due at t = arrival_s[i]; TTFT = first chunk - sent"
            .into(),
    );
    x.insert("prompt_mode".into(), mode.name().into());
    if let Some(t) = &tokenizer {
        x.insert("tokenizer".into(), t.name().into());
    }
    x.insert("ignore_eos".into(), ignore_eos_note.into());
    x.insert("timeout_s".into(), a.timeout.into());
    x.insert(
        "concurrency".into(),
        a.concurrency
            .map_or(serde_json::Value::from("unlimited (open loop)"), |c| {
                c.into()
            }),
    );
    x.insert(
        "chunk_tokens".into(),
        if tokenizer.is_some() {
            "counted from each chunk's text with the tokenizer"
        } else {
            "1 per content chunk (usage gives the totals)"
        }
        .into(),
    );
    if let Some(m) = &facts.models_response {
        x.insert("server_models".into(), m.clone());
    }
    if let Some(h) = &facts.server_header {
        x.insert("server_header".into(), h.clone().into());
    }

    let writer = RunWriter::create(&a.output, &meta)?;
    let (line_tx, line_rx) = std::sync::mpsc::channel::<RequestRun>();
    let out_path = a.output.clone();
    let writer_thread = std::thread::spawn(move || -> simfid::Result<u64> {
        let mut w = writer;
        let mut n = 0;
        for r in line_rx {
            w.append(&r)?;
            n += 1;
        }
        w.finish()?;
        Ok(n)
    });

    let n = workload.len() as u64;
    let bar = (!a.no_progress).then(|| {
        let bar = indicatif::ProgressBar::new(n);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} done  {msg}",
            )
            .expect("valid template"),
        );
        bar
    });
    let progress = in_flight_progress.clone();
    let ticker = bar.clone().map(|bar| {
        let p = progress.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                bar.set_position(p.finished.load(Ordering::Relaxed));
                bar.set_message(live_message(&p));
            }
        })
    });

    eprintln!(
        "simfid record: {n} requests to {base} (model {model}, {} prompts, ignore_eos {})",
        mode.name(),
        if ignore_eos { "on" } else { "off" }
    );
    let mut finished: Vec<RequestRun> = Vec::with_capacity(workload.len());
    let t0 = tokio::time::Instant::now();
    let outcome = simfid::record::record(&opts, &workload.requests, t0, &progress, stop, |r| {
        // The writer thread owns the file; it only stops on a write error, reported below.
        let _ = line_tx.send(r.clone());
        finished.push(r);
    })
    .await?;
    drop(line_tx);
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(bar) = &bar {
        bar.set_position(progress.finished.load(Ordering::Relaxed));
        bar.finish_and_clear();
    }
    let written = writer_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the fixture writer panicked"))?
        .with_context(|| format!("writing {}", out_path.display()))?;
    finished.sort_by_key(|r| r.id);
    let mut text = summary(&finished, outcome.duration_s);
    text.push_str(&format!(
        "simfid record: wrote {} ({written} requests)\n",
        out_path.display()
    ));
    // SIGPIPE is not fatal here (network writes): a closed stdout must not end the run
    // either, so the summary's write errors are ignored (broken pipe is success).
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    }
    if outcome.interrupted {
        eprintln!(
            "simfid record: interrupted: {} requests were not sent (kept in the fixture as errors)",
            outcome.unsent
        );
        return Ok(super::exit::INTERRUPTED);
    }
    let failed = finished.iter().filter(|r| !r.ok()).count();
    if let Some(line) = failure_verdict(failed, finished.len(), a.max_failed_fraction) {
        eprintln!("simfid record: {line}");
        return Ok(super::exit::REQUESTS_FAILED);
    }
    Ok(0)
}

/// The line explaining a non-zero exit when more than `max_fraction` of `total` requests
/// failed, or `None` when the run is within the tolerance.
pub fn failure_verdict(failed: usize, total: usize, max_fraction: f64) -> Option<String> {
    let fraction = failed as f64 / total.max(1) as f64;
    (failed > 0 && fraction > max_fraction).then(|| {
        format!(
            "{failed} of {total} requests failed ({:.1}%), more than --max-failed-fraction {max_fraction} \
             allows; exit code {}",
            fraction * 100.0,
            super::exit::REQUESTS_FAILED
        )
    })
}

fn ms(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.2}", v * 1e3))
}

fn live_message(p: &Progress) -> String {
    let sent = p.sent.load(Ordering::Relaxed);
    let fin = p.finished.load(Ordering::Relaxed);
    let (ttft, itl) = p.latency();
    format!(
        "sent {sent}, in flight {}, failed {}, TTFT p50 {} ms, ITL {} ms",
        sent.saturating_sub(fin),
        p.failed.load(Ordering::Relaxed),
        ms(ttft),
        ms(itl)
    )
}

/// Per-request latencies of a run, in seconds, under vLLM bench's definitions
/// ([`RequestSamples`]), in the run's order.
#[derive(Debug, Default)]
pub struct RunLatencies {
    /// First chunk − sent.
    pub ttft: Vec<f64>,
    /// Gaps between consecutive chunks, pooled.
    pub itl: Vec<f64>,
    /// (last − first) / (output tokens − 1).
    pub tpot: Vec<f64>,
    /// Last chunk − sent.
    pub e2e: Vec<f64>,
    /// Sent − scheduled.
    pub send_lag: Vec<f64>,
}

impl RunLatencies {
    /// From the successful requests of a run.
    pub fn of(runs: &[RequestRun]) -> RunLatencies {
        let mut l = RunLatencies::default();
        for r in runs {
            if let Some(sent) = r.sent {
                l.send_lag.push(sent - r.scheduled);
            }
            let (Some(sent), Some(first), Some(last)) = (r.sent, r.chunks.first(), r.chunks.last())
            else {
                continue;
            };
            if r.error.is_some() {
                continue;
            }
            let s = RequestSamples::new(
                MetricDef::VllmBench,
                sent,
                first.t,
                last.t,
                r.received_tokens(),
            );
            l.ttft.push(s.ttft);
            l.e2e.push(s.e2e);
            l.itl.extend(gaps(r.chunks.iter().map(|c| c.t)));
            l.tpot.extend(s.tpot);
        }
        l
    }
}

/// The end-of-run table, as text for stdout.
pub fn summary(runs: &[RequestRun], duration_s: f64) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let ok = runs.iter().filter(|r| r.ok()).count();
    let unsent = runs.iter().filter(|r| r.sent.is_none()).count();
    let failed = runs.len() - ok - unsent;
    let tokens: u64 = runs
        .iter()
        .filter(|r| r.ok())
        .map(|r| u64::from(r.received_tokens()))
        .sum();
    let chunks: usize = runs.iter().map(|r| r.chunks.len()).sum();
    let _ = writeln!(
        out,
        "simfid record: {} requests: {ok} ok, {failed} failed, {unsent} not sent; {chunks} chunks, \
         {tokens} output tokens in {duration_s:.2} s ({:.1} tokens/s)",
        runs.len(),
        tokens as f64 / duration_s.max(1e-9)
    );
    let l = RunLatencies::of(runs);
    let _ = writeln!(
        out,
        "{:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "metric (ms)", "mean", "p50", "p90", "p99", "max", "n"
    );
    for (name, v) in [
        ("TTFT", &l.ttft),
        ("ITL", &l.itl),
        ("TPOT", &l.tpot),
        ("E2E", &l.e2e),
        ("send lag (sent-sched)", &l.send_lag),
    ] {
        let mean = simfid::fidelity::quantile::mean(v);
        let max = v
            .iter()
            .copied()
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
        let _ = writeln!(
            out,
            "{name:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
            ms(mean),
            ms(quantile(v, 0.5)),
            ms(quantile(v, 0.9)),
            ms(quantile(v, 0.99)),
            ms(max),
            v.len()
        );
    }
    let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
    for r in runs {
        if let Some(e) = &r.error {
            let kind = e.split([':', '(']).next().unwrap_or(e).trim().to_string();
            *errors.entry(kind).or_default() += 1;
        }
    }
    for (kind, n) in &errors {
        let _ = writeln!(out, "error: {n} × {kind}");
    }
    if let Some(r) = runs.iter().find(|r| r.error.is_some()) {
        let _ = writeln!(
            out,
            "first error (request {}): {}",
            r.id,
            r.error.as_deref().unwrap_or_default()
        );
    }
    let mut warnings: std::collections::BTreeMap<String, usize> = Default::default();
    for r in runs {
        for w in &r.warnings {
            let kind = w.split(':').next().unwrap_or(w).to_string();
            *warnings.entry(kind).or_default() += 1;
        }
    }
    for (kind, n) in &warnings {
        let _ = writeln!(out, "warning: {n} requests: {kind}");
    }
    out
}
