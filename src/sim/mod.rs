//! The discrete-event simulator of LLM serving, with Vidur's semantics (`vidur/simulator.py`,
//! `vidur/scheduler/`, `vidur/entities/`, `vidur/metrics/metrics_store.py` of microsoft/vidur).
//!
//! ```text
//!  arrivals ─▶ global scheduler ─▶ replica scheduler ─▶ stage 0 ─▶ … ─▶ stage PP−1 ─▶ batch end
//!             (round_robin|lor|     (vllm|sarathi|orca|  FIFO, one batch at a time,
//!              random)               faster_transformer|  time from an ExecModel
//!                                    lightllm|hf_cb|
//!                                    vllm_v1; KV blocks)
//! ```
//!
//! Key types: [`SimConfig`] (cluster and scheduler knobs), [`Simulator`] (the event loop),
//! [`RequestRecord`] (per-request metrics and every output token's time) and [`SimSummary`].

mod config;
mod engine;
mod metrics;
mod registry;
mod replica;
mod request;
mod scheduler;
mod to_run;

pub use config::{GlobalSchedulerKind, ReplicaSchedulerKind, SchedulerConfig, SimConfig};
pub use engine::Simulator;
pub use metrics::{
    RecordSink, RequestRecord, SimSummary, VIDUR_REQUEST_METRICS_HEADER, VidurCsvWriter,
    VidurValue, py_float_repr, write_py_float, write_py_float_bytes,
};
pub use replica::{MemoryPlan, memory_plan};
pub use to_run::attach_scheduling_delays;
