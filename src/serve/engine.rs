//! The engine thread: owns the [`Simulator`] and advances it to the wall clock.
//!
//! One OS thread, no async runtime: it waits for the earlier of "a request arrived" and "the
//! next simulated event is due" with `Receiver::recv_timeout`, whose timeout is recomputed
//! from an **absolute** deadline (`t0 + t_event · scale`) at every wait — so nothing
//! accumulates, unlike a chain of relative sleeps — and is served by the kernel's
//! high-resolution timer (≈0.05–0.1 ms late) rather than tokio's 1 ms timer wheel. When it
//! wakes it processes every event up to "now" and forwards each output token to its request's
//! stream at once; events are never processed before their wall-clock time, so a token is
//! never sent early.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::exec::ExecModel;
use crate::sim::{RecordSink, RequestRecord, SimConfig, Simulator};
use crate::workload::RequestSpec;

/// What the engine tells a request's stream.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenEvent {
    /// The request joined the simulation as `id`, arriving at simulated time `arrival_s`.
    Admitted {
        /// Engine-wide request number.
        id: u64,
        /// Simulated arrival time.
        arrival_s: f64,
    },
    /// The request can never be scheduled (too long for the KV cache, …).
    Rejected(String),
    /// Output token `index` (0-based) produced at simulated time `t`.
    Token {
        /// Token index.
        index: u32,
        /// Simulated time.
        t: f64,
    },
    /// The request finished (`completed`), or the simulation ended without finishing it.
    Done {
        /// Whether every output token was produced.
        completed: bool,
    },
    /// The simulation failed; the stream should end with this error.
    Failed(String),
}

/// What the HTTP side tells the engine.
#[derive(Debug)]
pub enum EngineMsg {
    /// A request to simulate.
    New(NewRequest),
    /// The client of request `id` went away: abort it, as vLLM does.
    Abort(u64),
}

/// A request for the engine.
#[derive(Debug)]
pub struct NewRequest {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Output tokens (`max_tokens`).
    pub max_tokens: u32,
    /// Where this request's events go.
    pub events: UnboundedSender<TokenEvent>,
}

/// Builds the execution-time model on the engine thread (models need not be `Send`).
pub type ExecFactory =
    Box<dyn FnOnce() -> std::result::Result<Box<dyn ExecModel>, String> + Send + 'static>;

struct Fanout<'m> {
    streams: &'m mut HashMap<u64, UnboundedSender<TokenEvent>>,
    /// Requests whose stream is gone (the client went away): to abort.
    gone: &'m mut Vec<u64>,
}

impl RecordSink for Fanout<'_> {
    fn record(&mut self, rec: &RequestRecord) -> crate::Result<()> {
        if let Some(s) = self.streams.remove(&rec.id) {
            let _ = s.send(TokenEvent::Done {
                completed: rec.completed,
            });
        }
        Ok(())
    }

    fn token(&mut self, id: u64, index: u32, t: f64) {
        if let Some(s) = self.streams.get(&id)
            && s.send(TokenEvent::Token { index, t }).is_err()
        {
            // The client went away: the request is aborted once this step is over.
            self.streams.remove(&id);
            self.gone.push(id);
        }
    }
}

/// Runs the engine until every sender of `rx` is gone. `ready` gets `Ok` once the simulator
/// is built (or the reason it could not be). Simulated time 0 is wall time `t0`; one
/// simulated second lasts `scale` wall seconds.
///
/// If the simulation fails (an execution-time model without a prediction for some batch),
/// the requests in flight end with the error and a fresh simulator takes over, its time 0
/// at the moment of the restart.
pub fn run(
    cfg: SimConfig,
    exec: ExecFactory,
    t0: Instant,
    scale: f64,
    rx: Receiver<EngineMsg>,
    ready: std::sync::mpsc::Sender<std::result::Result<(), String>>,
) {
    let exec = match exec() {
        Ok(e) => e,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut origin = t0;
    let mut next_id = 0u64;
    let mut ready = Some(ready);
    loop {
        let sim = match Simulator::new(cfg.clone(), exec.as_ref()) {
            Ok(s) => s,
            Err(e) => {
                if let Some(r) = ready.take() {
                    let _ = r.send(Err(e.to_string()));
                }
                return;
            }
        };
        if let Some(r) = ready.take() {
            let _ = r.send(Ok(()));
        }
        match serve_loop(sim, origin, scale, &rx, &mut next_id) {
            Ok(()) => return,
            Err(e) => {
                eprintln!("simfid serve: {e}; restarting the simulated engine");
                origin = Instant::now();
            }
        }
    }
}

/// The engine's loop: `Ok` when every sender is gone, `Err` when the simulation failed (the
/// requests in flight have been told).
fn serve_loop(
    mut sim: Simulator<'_>,
    origin: Instant,
    scale: f64,
    rx: &Receiver<EngineMsg>,
    next_id: &mut u64,
) -> std::result::Result<(), String> {
    let mut streams: HashMap<u64, UnboundedSender<TokenEvent>> = HashMap::new();
    let mut gone: Vec<u64> = Vec::new();
    let mut last_arrival = 0.0f64;
    loop {
        let msg = match sim.next_event_time() {
            Some(t) => {
                // An absolute deadline, turned into a timeout only now.
                let due = origin + Duration::from_secs_f64((t * scale).max(0.0));
                match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return Ok(()),
                }
            }
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return Ok(()),
            },
        };
        let now = origin.elapsed().as_secs_f64() / scale;
        let mut pending = msg;
        while let Some(msg) = pending.take() {
            pending = rx.try_recv().ok();
            let m = match msg {
                EngineMsg::New(m) => m,
                EngineMsg::Abort(id) => {
                    // A finished request's stream is already gone from the map.
                    if streams.remove(&id).is_some() {
                        sim.abort_request(id);
                    }
                    continue;
                }
            };
            let arrival_s = now.max(sim.now()).max(last_arrival);
            let spec = RequestSpec {
                id: *next_id,
                arrival_s,
                prefill_tokens: m.prompt_tokens,
                decode_tokens: m.max_tokens,
            };
            match sim
                .check_admissible(&spec)
                .and_then(|()| sim.add_request(spec))
            {
                Ok(()) => {
                    last_arrival = arrival_s;
                    let admitted = m.events.send(TokenEvent::Admitted {
                        id: *next_id,
                        arrival_s,
                    });
                    if admitted.is_ok() {
                        streams.insert(*next_id, m.events);
                    } else {
                        // The client left before its request was admitted.
                        sim.abort_request(*next_id);
                    }
                    *next_id += 1;
                }
                Err(e) => {
                    let _ = m.events.send(TokenEvent::Rejected(e.to_string()));
                }
            }
        }
        let mut sink = Fanout {
            streams: &mut streams,
            gone: &mut gone,
        };
        let advanced = sim.advance_until(now, &mut sink);
        for id in gone.drain(..) {
            sim.abort_request(id);
        }
        if let Err(e) = advanced {
            let msg = format!("simulation failed: {e}");
            for (_, s) in streams.drain() {
                let _ = s.send(TokenEvent::Failed(msg.clone()));
            }
            return Err(msg);
        }
    }
}
