//! The recorder: replays a workload open-loop against an OpenAI-compatible server and keeps
//! the time of every streamed chunk (feature `record`).
//!
//! ```text
//!  workload ─▶ dispatcher ──(at t0 + arrival_s, never waiting on responses)──▶ one task per
//!             (monotonic clock,                                                request:
//!              t0 = start)                                                     POST /v1/completions
//!                                                                              stream: true
//!                                            RequestRun ◀── SSE chunks, timed ◀─┘
//!                                            (one per finished request, handed on at once)
//! ```
//!
//! Principal items: [`RecordOptions`] (server, model, prompts, timeout, concurrency),
//! [`record`] (the run), [`warm_up`], [`Progress`] (live counters for a progress bar),
//! [`probe`] (what the server says about itself), [`prompt`] (exact-length prompts),
//! [`client`] (one request).
//!
//! **The clock.** t = 0 is a `tokio::time::Instant` (the OS monotonic clock) taken just before
//! the first request is due (after any warm-up); request `i` is due at `t0 + arrival_s[i]`. A
//! dedicated dispatcher thread sleeps until 0.3 ms before that, spins the rest, and hands the
//! request to the runtime, so sends are usually within 0.1–0.2 ms of schedule; `scheduled`
//! and the actual `sent` (taken just before the request is written) are both kept. Every
//! content chunk is stamped when the SSE parser hands it over, on the same clock. TTFT is
//! first chunk − `sent` (not − `scheduled`), so a late send does not count as server latency.

pub mod client;
pub mod probe;
pub mod prompt;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::error::Result;
use crate::fixture::RequestRun;
use crate::tokenize::TokenCounter;
use crate::workload::RequestSpec;
use client::RequestContext;
use prompt::PromptBuilder;

/// How long before a send is due the dispatcher stops sleeping and starts spinning (a thread
/// sleep overshoots by ~0.05–0.1 ms on Linux).
const SPIN: Duration = Duration::from_micros(300);

/// What [`record`] sends and how.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// Base URL, e.g. `http://127.0.0.1:8000/v1` (no trailing slash).
    pub base_url: String,
    /// `model` field of every request.
    pub model: String,
    /// Builds each prompt.
    pub prompts: PromptBuilder,
    /// Send `ignore_eos: true` (only to servers that accept it).
    pub ignore_eos: bool,
    /// Per-request timeout, from the send to the end of the stream.
    pub timeout: Duration,
    /// At most this many requests in flight (a request waits for a slot; its `sent` is when
    /// it got one). `None`: open loop, no limit.
    pub concurrency: Option<usize>,
    /// Counts each chunk's tokens from its text when given (else one token per chunk).
    pub tokenizer: Option<Arc<TokenCounter>>,
    /// Spin the last 0.3 ms before each send for µs-precise sends (default on).
    pub precise_send: bool,
}

impl RecordOptions {
    /// `…/completions`.
    pub fn completions_url(&self) -> String {
        format!("{}/completions", self.base_url.trim_end_matches('/'))
    }

    /// The JSON body of the request for `spec`; `variant` picks the prompt's words.
    pub fn body(&self, spec: &RequestSpec, variant: u64) -> Result<Vec<u8>> {
        let mut body = serde_json::json!({
            "model": self.model,
            "prompt": self.prompts.prompt(variant, spec.prefill_tokens)?,
            "max_tokens": spec.decode_tokens,
            "temperature": 0,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if self.ignore_eos {
            body["ignore_eos"] = serde_json::Value::Bool(true);
        }
        Ok(serde_json::to_vec(&body).expect("JSON values serialise"))
    }
}

/// An HTTP client for recording: no proxy lookups, no idle-connection cap, Nagle off.
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::MAX)
        .build()
        .map_err(|e| crate::Error::Network {
            url: String::new(),
            message: format!("cannot build an HTTP client: {e}"),
        })
}

/// Live counters of a recording, for a progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    /// Requests sent.
    pub sent: AtomicU64,
    /// Requests finished (successfully or not).
    pub finished: AtomicU64,
    /// Requests that ended with an error.
    pub failed: AtomicU64,
    /// Content chunks received by finished requests.
    pub chunks: AtomicU64,
    live: Mutex<LiveLatency>,
}

#[derive(Debug, Default)]
struct LiveLatency {
    ttft: Vec<f64>,
    itl_sum: f64,
    itl_n: u64,
}

impl Progress {
    fn add(&self, r: &RequestRun) {
        self.finished.fetch_add(1, Ordering::Relaxed);
        if r.error.is_some() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.chunks
            .fetch_add(r.chunks.len() as u64, Ordering::Relaxed);
        let (Some(sent), Some(first)) = (r.sent, r.chunks.first()) else {
            return;
        };
        let mut live = self.live.lock().expect("progress lock");
        live.ttft.push(first.t - sent);
        if let Some(last) = r.chunks.last()
            && r.chunks.len() > 1
        {
            live.itl_sum += last.t - first.t;
            live.itl_n += r.chunks.len() as u64 - 1;
        }
    }

    /// Median TTFT and mean ITL (seconds) of the requests finished so far.
    pub fn latency(&self) -> (Option<f64>, Option<f64>) {
        let live = self.live.lock().expect("progress lock");
        let ttft = crate::fidelity::quantile::quantile(&live.ttft, 0.5);
        let itl = (live.itl_n > 0).then(|| live.itl_sum / live.itl_n as f64);
        (ttft, itl)
    }
}

/// Stop signals of a recording (ctrl-C): `soft` stops sending, `hard` ends in-flight
/// requests (they are recorded as interrupted with what they received).
#[derive(Debug, Clone)]
pub struct StopSignals {
    /// No more sends.
    pub soft: watch::Receiver<bool>,
    /// End in-flight requests now.
    pub hard: watch::Receiver<bool>,
}

impl StopSignals {
    /// Signals that never fire, and their senders.
    pub fn new() -> (StopSignals, watch::Sender<bool>, watch::Sender<bool>) {
        let (soft_tx, soft) = watch::channel(false);
        let (hard_tx, hard) = watch::channel(false);
        (StopSignals { soft, hard }, soft_tx, hard_tx)
    }
}

/// What [`record`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordOutcome {
    /// Requests sent.
    pub sent: u64,
    /// Requests never sent (stopped early, or no prompt could be built).
    pub unsent: u64,
    /// Whether the run was stopped before every request was sent.
    pub interrupted: bool,
    /// Seconds from t = 0 to the end of the last request.
    pub duration_s: f64,
}

/// Replays `requests` (sorted by arrival) against the server, open loop, and hands every
/// request to `on_done` as soon as it ends, in completion order. Requests left unsent by a
/// stop are handed on at the end with `sent: None` and an error. `t0` is the run's t = 0.
///
/// Sends are timed by a dedicated dispatcher thread (not a task of the runtime, whose timer
/// wakes would queue behind the request tasks under load): it sleeps until shortly before each
/// due time, spins the rest, and spawns the request's task onto the runtime.
pub async fn record(
    opts: &RecordOptions,
    requests: &[RequestSpec],
    t0: Instant,
    progress: &Progress,
    stop: StopSignals,
    mut on_done: impl FnMut(RequestRun),
) -> Result<RecordOutcome> {
    let client = http_client()?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Dispatch>();
    let dispatcher = Dispatcher {
        opts: opts.clone(),
        requests: requests.to_vec(),
        t0: t0.into_std(),
        client,
        url: opts.completions_url().into(),
        semaphore: opts.concurrency.map(|c| Arc::new(Semaphore::new(c.max(1)))),
        stop: stop.clone(),
        runtime: tokio::runtime::Handle::current(),
        tx,
    };
    let thread = std::thread::Builder::new()
        .name("simfid-dispatch".into())
        .spawn(move || dispatcher.run())
        .map_err(|e| crate::Error::Thread(format!("cannot start the dispatcher thread: {e}")))?;
    let mut handed = 0usize;
    let mut dispatched: Option<usize> = None;
    while dispatched != Some(handed) {
        match rx.recv().await {
            Some(Dispatch::Sent) => {
                progress.sent.fetch_add(1, Ordering::Relaxed);
            }
            Some(Dispatch::Done(r)) => {
                handed += 1;
                progress.add(&r);
                on_done(r);
            }
            Some(Dispatch::Finished(next)) => dispatched = Some(next),
            None => break,
        }
    }
    let _ = thread.join();
    let next = dispatched.unwrap_or(handed);
    let duration_s = t0.elapsed().as_secs_f64();
    for spec in &requests[next..] {
        let r = unsent(spec, "not sent: the run was interrupted".into());
        progress.add(&r);
        on_done(r);
    }
    Ok(RecordOutcome {
        sent: progress.sent.load(Ordering::Relaxed),
        unsent: (requests.len() - next) as u64,
        interrupted: next < requests.len(),
        duration_s,
    })
}

/// What the dispatcher and the request tasks report.
enum Dispatch {
    /// A request was handed to the runtime.
    Sent,
    /// A request ended (or could not be sent).
    Done(RequestRun),
    /// The dispatcher stopped after this many requests (all of them, or fewer on a stop).
    Finished(usize),
}

struct Dispatcher {
    opts: RecordOptions,
    requests: Vec<RequestSpec>,
    t0: std::time::Instant,
    client: reqwest::Client,
    url: Arc<str>,
    semaphore: Option<Arc<Semaphore>>,
    stop: StopSignals,
    runtime: tokio::runtime::Handle,
    tx: tokio::sync::mpsc::UnboundedSender<Dispatch>,
}

impl Dispatcher {
    /// Sleeps at most this long at a time, to notice a stop.
    const SLICE: Duration = Duration::from_millis(20);

    fn stopped(&self) -> bool {
        *self.stop.soft.borrow()
    }

    /// Waits until `due`: sleeps until `SPIN` before it, then spins. False if stopped.
    fn wait_until(&self, due: std::time::Instant) -> bool {
        loop {
            if self.stopped() {
                return false;
            }
            let now = std::time::Instant::now();
            if now >= due {
                return true;
            }
            let left = due - now;
            if !self.opts.precise_send {
                std::thread::sleep(left.min(Self::SLICE));
            } else if left > SPIN {
                std::thread::sleep((left - SPIN).min(Self::SLICE));
            } else {
                std::hint::spin_loop();
            }
        }
    }

    fn run(self) {
        let mut next = 0usize;
        let mut body = self
            .requests
            .first()
            .map(|s| self.opts.body(s, s.id).map_err(|e| e.to_string()));
        while let Some(spec) = self.requests.get(next).copied() {
            let due = self.t0 + Duration::from_secs_f64(spec.arrival_s.max(0.0));
            if !self.wait_until(due) {
                break;
            }
            let this = body.take().expect("prepared");
            match this {
                Ok(b) => {
                    let task = RequestTask {
                        client: self.client.clone(),
                        url: self.url.clone(),
                        t0: self.t0.into(),
                        timeout: self.opts.timeout,
                        tokenizer: self.opts.tokenizer.clone(),
                        semaphore: self.semaphore.clone(),
                        stop: self.stop.clone(),
                    };
                    let tx = self.tx.clone();
                    self.runtime.spawn(async move {
                        let r = task.run(spec, b).await;
                        let _ = tx.send(Dispatch::Done(r));
                    });
                    let _ = self.tx.send(Dispatch::Sent);
                }
                Err(e) => {
                    let _ = self
                        .tx
                        .send(Dispatch::Done(unsent(&spec, format!("not sent: {e}"))));
                }
            }
            next += 1;
            // Build the next body while waiting for its send time, not at it.
            body = self
                .requests
                .get(next)
                .map(|s| self.opts.body(s, s.id).map_err(|e| e.to_string()));
        }
        let _ = self.tx.send(Dispatch::Finished(next));
    }
}

fn unsent(spec: &RequestSpec, error: String) -> RequestRun {
    RequestRun {
        id: spec.id,
        scheduled: spec.arrival_s,
        prompt_tokens: spec.prefill_tokens,
        output_tokens: spec.decode_tokens,
        error: Some(error),
        ..RequestRun::default()
    }
}

fn join_result(r: std::result::Result<RequestRun, tokio::task::JoinError>) -> RequestRun {
    r.unwrap_or_else(|e| RequestRun {
        error: Some(format!("recorder task failed: {e}")),
        ..RequestRun::default()
    })
}

struct RequestTask {
    client: reqwest::Client,
    url: Arc<str>,
    t0: Instant,
    timeout: Duration,
    tokenizer: Option<Arc<TokenCounter>>,
    semaphore: Option<Arc<Semaphore>>,
    stop: StopSignals,
}

impl RequestTask {
    async fn run(self, spec: RequestSpec, body: Vec<u8>) -> RequestRun {
        let mut soft = self.stop.soft.clone();
        let _permit = match &self.semaphore {
            None => None,
            Some(s) => tokio::select! {
                p = s.clone().acquire_owned() => p.ok(),
                _ = client::stopped(&mut soft) => {
                    return unsent(&spec, "not sent: interrupted while waiting for a concurrency slot".into());
                }
            },
        };
        let ctx = RequestContext {
            client: &self.client,
            url: &self.url,
            t0: self.t0,
            timeout: self.timeout,
            tokenizer: self.tokenizer.as_deref(),
        };
        client::stream_completion(&ctx, &spec, body, self.stop.hard.clone()).await
    }
}

/// What [`warm_up`] did, for the fixture's provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmupReport {
    /// Requests sent.
    pub requests: u64,
    /// Of which failed.
    pub failed: u64,
    /// Wall time taken.
    pub seconds: f64,
    /// First error, if any.
    pub first_error: Option<String>,
}

impl WarmupReport {
    /// One line for `RunMeta::warmup`.
    pub fn describe(&self, concurrency: usize) -> String {
        format!(
            "{} warm-up requests before t = 0 (lengths cycled from the workload, {} at a time, \
             own prompts), {} failed, {:.1} s{}",
            self.requests,
            concurrency,
            self.failed,
            self.seconds,
            self.first_error
                .as_ref()
                .map(|e| format!("; first error: {e}"))
                .unwrap_or_default()
        )
    }
}

/// Sends `n` warm-up requests (lengths cycled from `lengths`, prompts distinct from the
/// recorded ones), `concurrency` at a time, and waits for all of them. Nothing is recorded.
pub async fn warm_up(
    opts: &RecordOptions,
    lengths: &[RequestSpec],
    n: u64,
    concurrency: usize,
    stop: StopSignals,
) -> Result<WarmupReport> {
    let start = Instant::now();
    let mut report = WarmupReport {
        requests: 0,
        failed: 0,
        seconds: 0.0,
        first_error: None,
    };
    if n == 0 || lengths.is_empty() {
        return Ok(report);
    }
    let client = http_client()?;
    let url: Arc<str> = opts.completions_url().into();
    let mut set = JoinSet::new();
    for i in 0..n {
        if *stop.soft.borrow() {
            break;
        }
        while set.len() >= concurrency.max(1) {
            if let Some(r) = set.join_next().await {
                tally(&mut report, join_result(r));
            }
        }
        let mut spec = lengths[(i % lengths.len() as u64) as usize];
        spec.arrival_s = 0.0;
        // Prompts of the warm-up never share a prefix with the recorded requests.
        let body = opts.body(&spec, 1_000_000 + i)?;
        let task = RequestTask {
            client: client.clone(),
            url: url.clone(),
            t0: start,
            timeout: opts.timeout,
            tokenizer: None,
            semaphore: None,
            stop: stop.clone(),
        };
        report.requests += 1;
        set.spawn(task.run(spec, body));
    }
    while let Some(r) = set.join_next().await {
        tally(&mut report, join_result(r));
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

fn tally(report: &mut WarmupReport, r: RequestRun) {
    if let Some(e) = r.error {
        report.failed += 1;
        report.first_error.get_or_insert(e);
    }
}
