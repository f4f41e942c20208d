//! The HTTP side of `simfid serve`: axum handlers and the SSE stream of each request.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::engine::{NewRequest, TokenEvent};
use crate::tokenize::TokenCounter;

/// `max_tokens` when a request gives none (OpenAI's default).
const DEFAULT_MAX_TOKENS: u32 = 16;

pub(crate) struct State {
    pub(crate) engine: std::sync::mpsc::Sender<NewRequest>,
    pub(crate) model: String,
    /// `model` as a JSON string literal.
    pub(crate) model_json: String,
    pub(crate) tokenizer: Option<Arc<TokenCounter>>,
    pub(crate) created: u64,
    pub(crate) description: Value,
    pub(crate) next: AtomicU64,
}

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/completions", post(completions))
        .route("/health", get(health))
        .route("/version", get(version))
        .with_state(state)
}

fn server_header() -> HeaderValue {
    HeaderValue::from_static(concat!("simfid-serve/", env!("CARGO_PKG_VERSION")))
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::SERVER, server_header());
    r
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let kind = if status.is_client_error() {
        "invalid_request_error"
    } else {
        "server_error"
    };
    json_response(
        status,
        &json!({"error": {"message": message.into(), "type": kind, "code": status.as_u16()}}),
    )
}

async fn health() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

async fn version() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"version": concat!("simfid-serve ", env!("CARGO_PKG_VERSION"))}),
    )
}

async fn models(AxState(st): AxState<Arc<State>>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "object": "list",
            "data": [{
                "id": st.model,
                "object": "model",
                "created": st.created,
                "owned_by": "simfid",
                "simfid": st.description,
            }],
        }),
    )
}

/// The prompt's length in tokens, or why the prompt is unusable.
fn prompt_tokens(st: &State, prompt: Option<&Value>) -> Result<u32, String> {
    let count_text = |s: &str| -> Result<u32, String> {
        match &st.tokenizer {
            Some(t) => t.count(s).map_err(|e| e.to_string()),
            None => Ok(s.split_whitespace().count() as u32),
        }
    };
    match prompt {
        Some(Value::String(s)) => count_text(s),
        Some(Value::Array(a)) if a.iter().all(Value::is_u64) => Ok(a.len() as u32),
        Some(Value::Array(a)) if a.len() == 1 => match &a[0] {
            Value::String(s) => count_text(s),
            Value::Array(ids) if ids.iter().all(Value::is_u64) => Ok(ids.len() as u32),
            _ => {
                Err("prompt must be a string, a list of token ids, or a list of one of them".into())
            }
        },
        Some(Value::Array(_)) => {
            Err("batched prompts (several per request) are not supported".into())
        }
        Some(_) => Err("prompt must be a string or a list of token ids".into()),
        None => Err("prompt is required".into()),
    }
}

async fn completions(AxState(st): AxState<Arc<State>>, body: Bytes) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")),
    };
    let prompt = match prompt_tokens(&st, v.get("prompt")) {
        Ok(0) => return error(StatusCode::BAD_REQUEST, "the prompt has no tokens"),
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let max_tokens = match v.get("max_tokens") {
        None | Some(Value::Null) => DEFAULT_MAX_TOKENS,
        Some(x) => match x.as_u64() {
            Some(n) if n >= 1 && n <= u64::from(u32::MAX) => n as u32,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "max_tokens must be an integer >= 1",
                );
            }
        },
    };
    let stream = v.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = v
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (tx, mut rx) = unbounded_channel();
    let sent = st.engine.send(NewRequest {
        prompt_tokens: prompt,
        max_tokens,
        events: tx,
    });
    if sent.is_err() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the simulated engine stopped",
        );
    }
    let id = match rx.recv().await {
        Some(TokenEvent::Admitted { id, .. }) => id,
        Some(TokenEvent::Rejected(m)) => return error(StatusCode::BAD_REQUEST, m),
        _ => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the simulated engine stopped",
            );
        }
    };
    st.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let req = Req {
        st,
        id,
        prompt,
        max_tokens,
    };
    if stream {
        sse(req, rx, !include_usage)
    } else {
        whole(req, rx).await
    }
}

struct Req {
    st: Arc<State>,
    id: u64,
    prompt: u32,
    max_tokens: u32,
}

/// The text of output token `index`: a word of the word-level vocabulary.
fn token_text(out: &mut String, index: u32) {
    use std::fmt::Write;
    let _ = write!(out, " w{}", 1000 + index % 150_000);
}

impl Req {
    fn chunk(&self, out: &mut String, index: u32) {
        use std::fmt::Write;
        let last = index + 1 >= self.max_tokens;
        let _ = write!(
            out,
            "data: {{\"id\":\"cmpl-{}\",\"object\":\"text_completion\",\"created\":{},\"model\":{},\"choices\":[{{\"index\":0,\"text\":\"",
            self.id, self.st.created, self.st.model_json
        );
        token_text(out, index);
        let _ = write!(
            out,
            "\",\"logprobs\":null,\"finish_reason\":{}}}]}}\n\n",
            if last { "\"length\"" } else { "null" }
        );
    }

    fn usage(&self, completion: u32) -> Value {
        json!({
            "prompt_tokens": self.prompt,
            "completion_tokens": completion,
            "total_tokens": self.prompt + completion,
        })
    }
}

fn sse(req: Req, rx: UnboundedReceiver<TokenEvent>, no_usage: bool) -> Response {
    struct S {
        req: Req,
        rx: UnboundedReceiver<TokenEvent>,
        tokens: u32,
        no_usage: bool,
        over: bool,
    }
    let state = S {
        req,
        rx,
        tokens: 0,
        no_usage,
        over: false,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        if s.over {
            return None;
        }
        let mut out = String::new();
        // Everything already queued goes out in one write, as servers do.
        let mut first = s.rx.recv().await;
        while let Some(ev) = first.take() {
            match ev {
                TokenEvent::Token { index, .. } => {
                    s.tokens += 1;
                    s.req.chunk(&mut out, index);
                }
                TokenEvent::Done { completed } => {
                    if !completed {
                        let e = json!({"error": {"message": "the simulation ended before the request finished", "type": "server_error"}});
                        out.push_str(&format!("data: {e}\n\n"));
                    } else if !s.no_usage {
                        let u = json!({
                            "id": format!("cmpl-{}", s.req.id),
                            "object": "text_completion",
                            "created": s.req.st.created,
                            "model": s.req.st.model,
                            "choices": [],
                            "usage": s.req.usage(s.tokens),
                        });
                        out.push_str(&format!("data: {u}\n\n"));
                    }
                    out.push_str("data: [DONE]\n\n");
                    s.over = true;
                    break;
                }
                TokenEvent::Failed(m) => {
                    let e = json!({"error": {"message": m, "type": "server_error"}});
                    out.push_str(&format!("data: {e}\n\n"));
                    s.over = true;
                    break;
                }
                TokenEvent::Admitted { .. } | TokenEvent::Rejected(_) => {}
            }
            first = s.rx.try_recv().ok();
        }
        if out.is_empty() {
            // The engine is gone.
            return None;
        }
        Some((Ok::<_, Infallible>(Bytes::from(out)), s))
    });
    let mut r = Response::new(Body::from_stream(stream));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::SERVER, server_header());
    r
}

async fn whole(req: Req, mut rx: UnboundedReceiver<TokenEvent>) -> Response {
    let mut text = String::new();
    let mut tokens = 0u32;
    while let Some(ev) = rx.recv().await {
        match ev {
            TokenEvent::Token { index, .. } => {
                tokens += 1;
                token_text(&mut text, index);
            }
            TokenEvent::Done { completed: true } => {
                return json_response(
                    StatusCode::OK,
                    &json!({
                        "id": format!("cmpl-{}", req.id),
                        "object": "text_completion",
                        "created": req.st.created,
                        "model": req.st.model,
                        "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": "length"}],
                        "usage": req.usage(tokens),
                    }),
                );
            }
            TokenEvent::Done { completed: false } => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the simulation ended before the request finished",
                );
            }
            TokenEvent::Failed(m) => return error(StatusCode::INTERNAL_SERVER_ERROR, m),
            TokenEvent::Admitted { .. } | TokenEvent::Rejected(_) => {}
        }
    }
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the simulated engine stopped",
    )
}
