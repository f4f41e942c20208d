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

use super::engine::{EngineMsg, NewRequest, TokenEvent};
use crate::tokenize::TokenCounter;

/// `max_tokens` when a request gives none (OpenAI's default for completions; simulated
/// outputs have no end-of-sequence token, so chat requests get the same).
const DEFAULT_MAX_TOKENS: u32 = 16;

pub(crate) struct State {
    pub(crate) engine: std::sync::mpsc::Sender<EngineMsg>,
    pub(crate) model: String,
    /// `model` as a JSON string literal.
    pub(crate) model_json: String,
    pub(crate) tokenizer: Option<Arc<TokenCounter>>,
    /// Server start (Unix seconds), for `/v1/models`.
    pub(crate) created: u64,
    pub(crate) description: Value,
    pub(crate) next: AtomicU64,
    /// Longest prompt + output (vLLM's `max_model_len`).
    pub(crate) max_model_len: u32,
    /// Texts of output tokens, cycled: whole single tokens of the tokenizer (so that a client
    /// counting the streamed text with it counts one token per chunk), or `None` for the
    /// word-level ` w1000`, ` w1001`, ….
    pub(crate) pieces: Option<Vec<String>>,
}

impl State {
    /// Appends the text of output token `index`.
    fn token_text(&self, out: &mut String, index: u32) {
        match &self.pieces {
            Some(p) => out.push_str(&p[index as usize % p.len()]),
            None => {
                use std::fmt::Write;
                let _ = write!(out, " w{}", 1000 + index % 150_000);
            }
        }
    }
}

pub(crate) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/health", get(health))
        .route("/version", get(version))
        .fallback(not_found)
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

/// An OpenAI-shaped error (`{"error": {message, type, param, code}}`) with vLLM's type names.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    error_param(status, message, None)
}

fn error_param(status: StatusCode, message: impl Into<String>, param: Option<&str>) -> Response {
    let kind = match status {
        StatusCode::NOT_FOUND => "NotFoundError",
        s if s.is_client_error() => "BadRequestError",
        StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailableError",
        _ => "InternalServerError",
    };
    json_response(
        status,
        &json!({"error": {
            "message": message.into(),
            "type": kind,
            "param": param,
            "code": status.as_u16(),
        }}),
    )
}

/// Why a request is refused, before it reaches the engine.
struct Refusal {
    status: StatusCode,
    message: String,
    param: Option<&'static str>,
}

impl Refusal {
    fn bad(message: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            param: None,
        }
    }

    fn param(mut self, param: &'static str) -> Refusal {
        self.param = Some(param);
        self
    }

    fn response(self) -> Response {
        error_param(self.status, self.message, self.param)
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

/// Which API a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Completions,
    Chat,
}

/// A parsed request, ready for the engine.
struct Params {
    prompt: u32,
    max_tokens: u32,
    stream: bool,
    include_usage: bool,
    /// Per-token texts when a stop string cut the output short (`finish_reason: stop`).
    stopped: Option<Vec<String>>,
}

/// The prompt of a chat request rendered with a ChatML template (Qwen's:
/// `<|im_start|>{role}\n{content}<|im_end|>\n` per message, then the assistant's header), and
/// its length: counted by the tokenizer when one is given, else the content's words plus the
/// template's tokens (5 per message, 3 for the header).
fn chat_prompt_tokens(st: &State, messages: Option<&Value>) -> Result<u32, String> {
    let Some(Value::Array(msgs)) = messages else {
        return Err("messages is required: a list of {\"role\", \"content\"} objects".into());
    };
    if msgs.is_empty() {
        return Err("messages must not be empty".into());
    }
    let mut rendered = String::new();
    let mut words = 0u64;
    for (i, m) in msgs.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("messages[{i}].role must be a string"))?;
        let content = match m.get("content") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => String::new(),
            Some(Value::Array(parts)) => {
                let mut text = String::new();
                for p in parts {
                    match (
                        p.get("type").and_then(Value::as_str),
                        p.get("text").and_then(Value::as_str),
                    ) {
                        (Some("text"), Some(t)) => text.push_str(t),
                        _ => {
                            return Err(format!(
                                "messages[{i}].content: only text parts are supported"
                            ));
                        }
                    }
                }
                text
            }
            Some(_) => return Err(format!("messages[{i}].content must be a string")),
        };
        words += content.split_whitespace().count() as u64 + 5;
        rendered.push_str("<|im_start|>");
        rendered.push_str(role);
        rendered.push('\n');
        rendered.push_str(&content);
        rendered.push_str("<|im_end|>\n");
    }
    rendered.push_str("<|im_start|>assistant\n");
    match &st.tokenizer {
        Some(t) => t.count(&rendered).map_err(|e| e.to_string()),
        None => Ok((words + 3).min(u64::from(u32::MAX)) as u32),
    }
}

/// The stop strings of a request (`stop`: a string or a list of strings).
fn stop_strings(v: &Value) -> Result<Vec<String>, String> {
    let bad = || "stop must be a string or a list of strings".to_string();
    let list = match v.get("stop") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad()),
    };
    Ok(list.into_iter().filter(|s| !s.is_empty()).collect())
}

/// Honours `stop`: the output text is known in advance, so the request is simulated with as
/// many tokens as it takes to produce the first stop string, and each token's text is cut so
/// that the stop string itself is not returned (OpenAI's behaviour). `None` when no stop
/// string occurs within `max_tokens`.
fn apply_stop(st: &State, stops: &[String], max_tokens: u32) -> Option<(u32, Vec<String>)> {
    let mut text = String::new();
    let mut ends = Vec::with_capacity(max_tokens as usize);
    for i in 0..max_tokens {
        st.token_text(&mut text, i);
        ends.push(text.len());
    }
    let (at, len) = stops
        .iter()
        .filter_map(|s| text.find(s.as_str()).map(|at| (at, s.len())))
        .min()?;
    let last = ends.iter().position(|&e| e >= at + len)?;
    let mut start = 0;
    let texts = ends[..=last]
        .iter()
        .map(|&end| {
            let piece = text[start.min(at)..end.min(at)].to_string();
            start = end;
            piece
        })
        .collect();
    Some((last as u32 + 1, texts))
}

/// Checks what both APIs share; the prompt's length is already known.
fn params(st: &State, v: &Value, api: Api, prompt: u32) -> Result<Params, Refusal> {
    match v.get("n") {
        None | Some(Value::Null) => {}
        Some(n) if n.as_u64() == Some(1) => {}
        Some(n) => {
            return Err(Refusal::bad(format!(
                "n = {n} is not supported: simfid serve simulates one output per request"
            ))
            .param("n"));
        }
    }
    if api == Api::Completions && v.get("echo").and_then(Value::as_bool) == Some(true) {
        return Err(
            Refusal::bad("echo is not supported: simfid serve returns no prompt text")
                .param("echo"),
        );
    }
    let field = match api {
        Api::Chat if v.get("max_completion_tokens").is_some_and(|x| !x.is_null()) => {
            "max_completion_tokens"
        }
        _ => "max_tokens",
    };
    let max_tokens = match v.get(field) {
        None | Some(Value::Null) => DEFAULT_MAX_TOKENS,
        Some(x) => match x.as_u64() {
            Some(n) if n >= 1 && n <= u64::from(u32::MAX) => n as u32,
            _ => return Err(Refusal::bad(format!("{field} must be an integer >= 1")).param(field)),
        },
    };
    // vLLM's checks and statuses: the prompt alone, then prompt + output, against the
    // model's context length.
    let len = st.max_model_len;
    if prompt >= len {
        return Err(Refusal::bad(format!(
            "This model's maximum context length is {len} tokens. However, your request has \
             {prompt} input tokens. Please reduce the length of the input messages."
        )));
    }
    if u64::from(prompt) + u64::from(max_tokens) > u64::from(len) {
        return Err(Refusal::bad(format!(
            "'{field}' is too large: {max_tokens}. This model's maximum context length is \
             {len} tokens and your request has {prompt} input tokens ({max_tokens} > {len} \
             - {prompt})."
        ))
        .param(field));
    }
    let stops = stop_strings(v).map_err(|m| Refusal::bad(m).param("stop"))?;
    let (max_tokens, stopped) = match apply_stop(st, &stops, max_tokens) {
        Some((n, texts)) => (n, Some(texts)),
        None => (max_tokens, None),
    };
    Ok(Params {
        prompt,
        max_tokens,
        stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: v
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        stopped,
    })
}

/// Parses the body and checks the model: the common start of both endpoints.
fn body_and_model(st: &State, body: &Bytes) -> Result<Value, Refusal> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Refusal::bad(format!("invalid JSON body: {e}")))?;
    if !v.is_object() {
        return Err(Refusal::bad("the body must be a JSON object"));
    }
    match v.get("model") {
        None | Some(Value::Null) => {}
        Some(Value::String(m)) if *m == st.model => {}
        Some(m) => {
            let name = m.as_str().map_or_else(|| m.to_string(), str::to_string);
            return Err(Refusal {
                status: StatusCode::NOT_FOUND,
                message: format!("The model `{name}` does not exist."),
                param: Some("model"),
            });
        }
    }
    Ok(v)
}

async fn completions(AxState(st): AxState<Arc<State>>, body: Bytes) -> Response {
    let v = match body_and_model(&st, &body) {
        Ok(v) => v,
        Err(r) => return r.response(),
    };
    let prompt = match prompt_tokens(&st, v.get("prompt")) {
        Ok(0) => return error(StatusCode::BAD_REQUEST, "the prompt has no tokens"),
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match params(&st, &v, Api::Completions, prompt) {
        Ok(p) => run(st, p, Api::Completions).await,
        Err(r) => r.response(),
    }
}

async fn chat_completions(AxState(st): AxState<Arc<State>>, body: Bytes) -> Response {
    let v = match body_and_model(&st, &body) {
        Ok(v) => v,
        Err(r) => return r.response(),
    };
    let prompt = match chat_prompt_tokens(&st, v.get("messages")) {
        Ok(n) => n,
        Err(e) => return error_param(StatusCode::BAD_REQUEST, e, Some("messages")),
    };
    match params(&st, &v, Api::Chat, prompt) {
        Ok(p) => run(st, p, Api::Chat).await,
        Err(r) => r.response(),
    }
}

/// Hands the request to the engine and answers, streamed or whole.
async fn run(st: Arc<State>, p: Params, api: Api) -> Response {
    let created = now_secs();
    let (tx, mut rx) = unbounded_channel();
    let sent = st.engine.send(EngineMsg::New(NewRequest {
        prompt_tokens: p.prompt,
        max_tokens: p.max_tokens,
        events: tx,
    }));
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
        guard: AbortOnDrop {
            engine: st.engine.clone(),
            id,
            armed: true,
        },
        st,
        api,
        id,
        created,
        prompt: p.prompt,
        max_tokens: p.max_tokens,
        stopped: p.stopped,
    };
    if p.stream {
        sse(req, rx, !p.include_usage)
    } else {
        whole(req, rx).await
    }
}

/// Tells the engine to abort the request when its answer is dropped before the end: the
/// client went away (hyper drops the body stream, or the handler's future).
struct AbortOnDrop {
    engine: std::sync::mpsc::Sender<EngineMsg>,
    id: u64,
    armed: bool,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.engine.send(EngineMsg::Abort(self.id));
        }
    }
}

struct Req {
    st: Arc<State>,
    guard: AbortOnDrop,
    api: Api,
    id: u64,
    /// When the request came (Unix seconds), as OpenAI's `created`.
    created: u64,
    prompt: u32,
    max_tokens: u32,
    stopped: Option<Vec<String>>,
}

impl Req {
    fn finish_reason(&self) -> &'static str {
        if self.stopped.is_some() {
            "stop"
        } else {
            "length"
        }
    }

    fn id_string(&self) -> String {
        match self.api {
            Api::Completions => format!("cmpl-{}", self.id),
            Api::Chat => format!("chatcmpl-{}", self.id),
        }
    }

    /// Appends output token `index`'s text.
    fn text(&self, out: &mut String, index: u32) {
        match &self.stopped {
            Some(t) => out.push_str(t.get(index as usize).map_or("", String::as_str)),
            None => self.st.token_text(out, index),
        }
    }

    /// The opening of an SSE event of this request, up to the choice's content.
    fn event_head(&self, out: &mut String) {
        use std::fmt::Write;
        let object = match self.api {
            Api::Completions => "text_completion",
            Api::Chat => "chat.completion.chunk",
        };
        let _ = write!(
            out,
            "data: {{\"id\":\"{}\",\"object\":\"{object}\",\"created\":{},\"model\":{},\"choices\":[{{\"index\":0,",
            self.id_string(),
            self.created,
            self.st.model_json
        );
    }

    /// Chat streams open with the assistant's role, as vLLM and OpenAI send it.
    fn role_event(&self, out: &mut String) {
        self.event_head(out);
        out.push_str(
            "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
        );
    }

    fn chunk(&self, out: &mut String, index: u32) {
        use std::fmt::Write;
        let last = index + 1 >= self.max_tokens;
        let mut text = String::new();
        self.text(&mut text, index);
        let text = serde_json::to_string(&text).expect("strings serialise");
        self.event_head(out);
        let _ = match self.api {
            Api::Completions => write!(out, "\"text\":{text},"),
            Api::Chat => write!(out, "\"delta\":{{\"content\":{text}}},"),
        };
        let _ = write!(
            out,
            "\"logprobs\":null,\"finish_reason\":{}}}]}}\n\n",
            if last {
                format!("\"{}\"", self.finish_reason())
            } else {
                "null".into()
            }
        );
    }

    fn usage(&self, completion: u32) -> Value {
        json!({
            "prompt_tokens": self.prompt,
            "completion_tokens": completion,
            "total_tokens": self.prompt + completion,
        })
    }

    fn usage_event(&self, completion: u32) -> String {
        let object = match self.api {
            Api::Completions => "text_completion",
            Api::Chat => "chat.completion.chunk",
        };
        let u = json!({
            "id": self.id_string(),
            "object": object,
            "created": self.created,
            "model": self.st.model,
            "choices": [],
            "usage": self.usage(completion),
        });
        format!("data: {u}\n\n")
    }
}

fn stream_error(message: &str) -> String {
    let e = json!({"error": {"message": message, "type": "InternalServerError", "param": null, "code": 500}});
    format!("data: {e}\n\n")
}

fn sse(req: Req, rx: UnboundedReceiver<TokenEvent>, no_usage: bool) -> Response {
    struct S {
        req: Req,
        rx: UnboundedReceiver<TokenEvent>,
        tokens: u32,
        no_usage: bool,
        started: bool,
        over: bool,
    }
    let state = S {
        req,
        rx,
        tokens: 0,
        no_usage,
        started: false,
        over: false,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        if s.over {
            return None;
        }
        let mut out = String::new();
        if !s.started && s.req.api == Api::Chat {
            s.req.role_event(&mut out);
        }
        s.started = true;
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
                        out.push_str(&stream_error(
                            "the simulation ended before the request finished",
                        ));
                    } else if !s.no_usage {
                        out.push_str(&s.req.usage_event(s.tokens));
                    }
                    out.push_str("data: [DONE]\n\n");
                    s.over = true;
                    s.req.guard.armed = false;
                    break;
                }
                TokenEvent::Failed(m) => {
                    out.push_str(&stream_error(&m));
                    s.over = true;
                    s.req.guard.armed = false;
                    break;
                }
                TokenEvent::Admitted { .. } | TokenEvent::Rejected(_) => {}
            }
            first = s.rx.try_recv().ok();
        }
        if out.is_empty() {
            // The engine is gone (an abort sent to it goes nowhere).
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

async fn whole(mut req: Req, mut rx: UnboundedReceiver<TokenEvent>) -> Response {
    let mut text = String::new();
    let mut tokens = 0u32;
    while let Some(ev) = rx.recv().await {
        match ev {
            TokenEvent::Token { index, .. } => {
                tokens += 1;
                req.text(&mut text, index);
            }
            TokenEvent::Done { completed: true } => {
                req.guard.armed = false;
                let choice = match req.api {
                    Api::Completions => json!({
                        "index": 0,
                        "text": text,
                        "logprobs": null,
                        "finish_reason": req.finish_reason(),
                    }),
                    Api::Chat => json!({
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": null,
                        "finish_reason": req.finish_reason(),
                    }),
                };
                let object = match req.api {
                    Api::Completions => "text_completion",
                    Api::Chat => "chat.completion",
                };
                return json_response(
                    StatusCode::OK,
                    &json!({
                        "id": req.id_string(),
                        "object": object,
                        "created": req.created,
                        "model": req.st.model,
                        "choices": [choice],
                        "usage": req.usage(tokens),
                    }),
                );
            }
            TokenEvent::Done { completed: false } => {
                req.guard.armed = false;
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the simulation ended before the request finished",
                );
            }
            TokenEvent::Failed(m) => {
                req.guard.armed = false;
                return error(StatusCode::INTERNAL_SERVER_ERROR, m);
            }
            TokenEvent::Admitted { .. } | TokenEvent::Rejected(_) => {}
        }
    }
    req.guard.armed = false;
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the simulated engine stopped",
    )
}
