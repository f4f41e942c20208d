//! The simulator as a live OpenAI-compatible server, in real time (feature `record`).
//!
//! ```text
//!  client ──POST /v1/completions──▶ axum handler ──NewRequest──▶ engine thread (owns the
//!     ▲                              (prompt length,              Simulator; wakes at each
//!     │                               max_tokens)                 event's absolute deadline,
//!     └──── SSE chunk per token ◀── stream task ◀──TokenEvent──── advances to the wall clock)
//! ```
//!
//! Each request joins the simulated engine at its wall-clock arrival time, its prompt length
//! being the prompt's tokens (words of a string prompt, the length of a token-id list, or the
//! count of a given tokenizer; for chat, the messages rendered with a ChatML template) and its
//! output length `max_tokens` (default 16); its tokens are streamed at their simulated times,
//! each a whole token of the given tokenizer (else a word). Endpoints: `GET /v1/models`,
//! `POST /v1/completions` and `POST /v1/chat/completions` (streaming with `stream: true`,
//! `stream_options.include_usage` honoured, else one JSON answer at the end), `GET /health`.
//!
//! As vLLM: a request for another model than the served one gets HTTP 404, one longer than
//! the context (`max_model_len`) HTTP 400, both with OpenAI-shaped error bodies; a client
//! that goes away has its request aborted (it stops taking simulated resources at its next
//! step; not under the FasterTransformer scheduler, whose static batches run to their end). `stop` strings are honoured (the output text is known in advance: the request is
//! simulated up to the token that completes the first stop string, `finish_reason: stop`);
//! `n` other than 1 and `echo: true` are refused with HTTP 400. Other unknown fields are
//! accepted and ignored (`ignore_eos` among them: simulated outputs always run to
//! `max_tokens`).
//!
//! Principal items: [`ServeOptions`], [`Server::bind`], [`Server::run`].

pub mod engine;
mod http;

use std::sync::Arc;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::sim::SimConfig;
use crate::tokenize::TokenCounter;
pub use engine::{EngineMsg, ExecFactory, NewRequest, TokenEvent};

/// What the server simulates and how it presents itself.
pub struct ServeOptions {
    /// Cluster and scheduler.
    pub cfg: SimConfig,
    /// Builds the execution-time model (on the engine thread).
    pub exec: ExecFactory,
    /// Name served in `/v1/models` and in every answer.
    pub model_name: String,
    /// Wall seconds per simulated second (1 = real time; 2 = half speed).
    pub time_scale: f64,
    /// Counts string prompts with this tokenizer instead of counting words.
    pub tokenizer: Option<Arc<TokenCounter>>,
    /// Facts reported by `/v1/models` under `simfid` (engine description).
    pub description: serde_json::Value,
    /// Longest prompt + output a request may ask for (vLLM's `max_model_len`; the model's
    /// `max_position_embeddings` by default); longer requests get vLLM's HTTP 400.
    pub max_model_len: u32,
}

/// A bound server, ready to run.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: Arc<http::State>,
}

impl Server {
    /// Starts the engine thread and binds `addr` (port 0 picks a free port). Must be called
    /// inside a tokio runtime.
    pub async fn bind(addr: &str, opts: ServeOptions) -> Result<Server> {
        if !(opts.time_scale.is_finite() && opts.time_scale > 0.0) {
            return Err(Error::Config(format!(
                "time scale must be finite and > 0 (got {})",
                opts.time_scale
            )));
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Network {
                url: addr.to_string(),
                message: format!("cannot listen: {e}"),
            })?;
        let (tx, rx) = std::sync::mpsc::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let t0 = Instant::now();
        let (cfg, exec, scale) = (opts.cfg, opts.exec, opts.time_scale);
        std::thread::Builder::new()
            .name("simfid-engine".into())
            .spawn(move || engine::run(cfg, exec, t0, scale, rx, ready_tx))
            .map_err(|e| Error::Thread(format!("cannot start the engine thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Config(e)),
            Err(_) => return Err(Error::Thread("the engine thread died".into())),
        }
        if opts.max_model_len == 0 {
            return Err(Error::Config(
                "the maximum context length must be at least 1 token".into(),
            ));
        }
        // Output tokens as whole tokens of the tokenizer, so that a client counting the
        // streamed text with the same tokenizer counts what the usage says.
        let pieces = match &opts.tokenizer {
            Some(t) => Some(t.single_token_words()?.to_vec()),
            None => None,
        };
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let state = Arc::new(http::State {
            engine: tx,
            model_json: serde_json::to_string(&opts.model_name).expect("string"),
            model: opts.model_name,
            tokenizer: opts.tokenizer,
            created,
            description: opts.description,
            next: std::sync::atomic::AtomicU64::new(0),
            max_model_len: opts.max_model_len,
            pieces,
        });
        Ok(Server { listener, state })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<std::net::SocketAddr> {
        self.listener.local_addr().map_err(|e| Error::Network {
            url: String::new(),
            message: e.to_string(),
        })
    }

    /// Serves until the process ends (or the future is dropped).
    pub async fn run(self) -> Result<()> {
        use axum::serve::ListenerExt;
        let app = http::router(self.state);
        // Nagle's algorithm would hold each small SSE write until the previous one is acked,
        // and the client's delayed ACK makes that 40 ms.
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app)
            .await
            .map_err(|e| Error::Network {
                url: String::new(),
                message: format!("server failed: {e}"),
            })
    }
}
