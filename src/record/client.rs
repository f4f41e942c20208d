//! One streamed completion: send, read the SSE stream, time every content chunk.
//!
//! Whatever happens to the request — an HTTP error status, a refused connection, a stream that
//! breaks off, an event that is not JSON, a server that stalls past the timeout, an interrupt —
//! ends up in the returned [`RequestRun`] (`error`, plus what was received until then), never
//! as an error of the run.

use std::time::Duration;

use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::fixture::{Chunk, RequestRun};
use crate::tokenize::TokenCounter;
use crate::workload::RequestSpec;

/// One SSE event of a streamed completion (unknown fields ignored).
#[derive(serde::Deserialize)]
struct StreamEvent<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<StreamChoice<'a>>>,
    #[serde(default)]
    usage: Option<StreamUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct StreamChoice<'a> {
    #[serde(default, borrow)]
    text: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    finish_reason: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct StreamUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

/// Longest excerpt of an error body kept in the fixture.
const EXCERPT: usize = 300;

/// What the recorder asks of every request.
#[derive(Debug, Clone)]
pub struct RequestContext<'a> {
    /// HTTP client (shared connection pool).
    pub client: &'a reqwest::Client,
    /// `…/v1/completions`.
    pub url: &'a str,
    /// Start of the run (t = 0).
    pub t0: Instant,
    /// Per-request timeout, from the send.
    pub timeout: Duration,
    /// Counts the tokens of each chunk's text when given (else one per chunk).
    pub tokenizer: Option<&'a TokenCounter>,
}

/// Shortens `s` to at most 300 characters (`EXCERPT`), on one line.
pub fn excerpt(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let t = one_line.trim();
    if t.chars().count() <= EXCERPT {
        t.to_string()
    } else {
        let cut: String = t.chars().take(EXCERPT).collect();
        format!("{cut}…")
    }
}

fn secs(t0: Instant, t: Instant) -> f64 {
    t.saturating_duration_since(t0).as_secs_f64()
}

/// Sends `body` (a complete JSON request) for `spec` and records the stream.
///
/// `stop` turns true when in-flight requests must end now (a second ctrl-C, or the grace
/// period after the first ran out): the request is then recorded as interrupted with what it
/// received so far.
pub async fn stream_completion(
    ctx: &RequestContext<'_>,
    spec: &RequestSpec,
    body: Vec<u8>,
    mut stop: watch::Receiver<bool>,
) -> RequestRun {
    let mut run = RequestRun {
        id: spec.id,
        scheduled: spec.arrival_s,
        prompt_tokens: spec.prefill_tokens,
        output_tokens: spec.decode_tokens,
        ..RequestRun::default()
    };
    let sent = Instant::now();
    run.sent = Some(secs(ctx.t0, sent));
    let deadline = sent + ctx.timeout;
    let timeout_msg = |chunks: usize| {
        format!(
            "timeout: no end of stream within {} s of the send ({chunks} chunks received)",
            ctx.timeout.as_secs_f64()
        )
    };
    let request = ctx
        .client
        .post(ctx.url)
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(body)
        .send();
    let response = tokio::select! {
        r = tokio::time::timeout_at(deadline, request) => match r {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                run.error = Some(format!("connection error: {}", error_chain(&e)));
                return run;
            }
            Err(_) => {
                run.error = Some(timeout_msg(0));
                return run;
            }
        },
        _ = stopped(&mut stop) => {
            run.error = Some("interrupted before the response headers".into());
            return run;
        }
    };
    let status = response.status();
    if !status.is_success() {
        let body = tokio::time::timeout_at(deadline, response.text()).await;
        let text = match body {
            Ok(Ok(t)) => excerpt(&t),
            Ok(Err(e)) => format!("(body unreadable: {e})"),
            Err(_) => "(body timed out)".into(),
        };
        run.error = Some(format!("HTTP {}: {text}", status.as_u16()));
        return run;
    }
    let mut events = response.bytes_stream().eventsource();
    let mut done = false;
    loop {
        let next = tokio::select! {
            n = tokio::time::timeout_at(deadline, events.next()) => n,
            _ = stopped(&mut stop) => {
                run.error = Some(format!(
                    "interrupted mid-stream ({} chunks received)", run.chunks.len()
                ));
                break;
            }
        };
        let now = Instant::now();
        let event = match next {
            Err(_) => {
                run.error = Some(timeout_msg(run.chunks.len()));
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(EventStreamError::Transport(e)))) => {
                run.error = Some(format!(
                    "disconnected mid-stream after {} chunks: {}",
                    run.chunks.len(),
                    error_chain(&e)
                ));
                break;
            }
            Ok(Some(Err(e))) => {
                run.error = Some(format!("malformed SSE stream: {e}"));
                break;
            }
            Ok(Some(Ok(ev))) => ev,
        };
        let data = event.data.trim();
        if data.is_empty() {
            continue;
        }
        if data == "[DONE]" {
            done = true;
            break;
        }
        // A typed, borrowing parse: no map per event (the hot path at thousands of streams).
        let v: StreamEvent<'_> = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(e) => {
                run.error = Some(format!("malformed SSE event ({e}): {}", excerpt(data)));
                break;
            }
        };
        if let Some(err) = v.error.filter(|e| !e.is_null()) {
            run.error = Some(format!(
                "server error in stream: {}",
                excerpt(&err.to_string())
            ));
            break;
        }
        if let Some(choice) = v.choices.as_deref().and_then(|c| c.first()) {
            let finish = choice.finish_reason.as_deref();
            let text = choice.text.as_deref();
            // A chunk is content when it carries text, or is a token whose text is still
            // empty (an incomplete UTF-8 sequence); the closing chunk with only a finish
            // reason is not.
            let content = match text {
                Some(t) if !t.is_empty() => true,
                Some(_) => finish.is_none(),
                None => false,
            };
            if content {
                let n = match (ctx.tokenizer, text) {
                    (Some(tok), Some(t)) if !t.is_empty() => {
                        tok.count_output(t).unwrap_or(1).max(1)
                    }
                    _ => 1,
                };
                run.chunks.push(Chunk {
                    t: secs(ctx.t0, now),
                    n,
                });
            }
            if let Some(f) = finish {
                run.finish_reason = Some(f.to_string());
            }
        }
        if let Some(u) = v.usage {
            let clamp = |x: Option<u64>| x.map(|x| x.min(u64::from(u32::MAX)) as u32);
            run.usage_prompt_tokens = clamp(u.prompt_tokens).or(run.usage_prompt_tokens);
            run.usage_completion_tokens =
                clamp(u.completion_tokens).or(run.usage_completion_tokens);
        }
    }
    if run.error.is_none() && !done && run.finish_reason.is_none() {
        run.error = Some(format!(
            "disconnected: the stream ended without a finish_reason after {} chunks",
            run.chunks.len()
        ));
    }
    check_counts(&mut run, ctx.tokenizer.is_some());
    run
}

/// Compares what the server reported with what was asked for and received.
pub fn check_counts(run: &mut RequestRun, tokenized_chunks: bool) {
    if let Some(p) = run.usage_prompt_tokens
        && p != run.prompt_tokens
    {
        run.warnings.push(format!(
            "prompt length mismatch: the server counted {p} prompt tokens, {} were sent",
            run.prompt_tokens
        ));
    }
    if run.error.is_some() {
        return;
    }
    let counted: u32 = run.chunks.iter().map(|c| c.n).sum();
    match run.usage_completion_tokens {
        None => run
            .warnings
            .push("no usage reported: output length counted from the chunks".into()),
        Some(c) if c != counted => run.warnings.push(format!(
            "usage.completion_tokens is {c} but the chunks carry {counted} tokens ({})",
            if tokenized_chunks {
                "counted with the tokenizer"
            } else {
                "one per chunk"
            }
        )),
        Some(_) => {}
    }
    let received = run.received_tokens();
    if received != run.output_tokens {
        run.warnings.push(format!(
            "output length mismatch: {received} tokens received, {} asked for (finish_reason {})",
            run.output_tokens,
            run.finish_reason.as_deref().unwrap_or("none")
        ));
    }
}

/// Resolves when `stop` is (or becomes) true; never if the sender is gone.
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|&s| s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// An error and its sources, `: `-separated (reqwest's own message is terse).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let m = inner.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = inner.source();
    }
    s
}
