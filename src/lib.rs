//! simfid tells whether an LLM-serving simulator reproduces a real GPU server.
//!
//! # Brief overview
//!
//! simfid is a library, a command line (`simfid`) and a test framework. Its principal types:
//!
//! - [`model::ModelSpec`] / [`model::DeviceSpec`]: what is served, on what (HuggingFace
//!   `config.json`; Qwen3-0.6B and Vidur's models built in; A100, H100, H200, A40).
//! - [`workload::Workload`] of [`workload::RequestSpec`]s, from CSV traces or
//!   [`workload::SyntheticSpec`] (lengths × arrival process, seeded; Vidur's random streams
//!   reproduced bit for bit).
//! - [`exec::ExecModel`]: how long one batch iteration takes —
//!   [`exec::vidur::VidurModel`] over Vidur's prediction tables ([`exec::tables`]) or operator
//!   profiles ([`exec::profile`]), or [`exec::roofline::Roofline`].
//! - [`sim::Simulator`]: the discrete-event simulator with Vidur's semantics, configured by
//!   [`sim::SimConfig`], producing one [`sim::RequestRecord`] per request (Vidur's metrics and
//!   every output token's time).
//! - [`fixture::Run`]: the versioned on-disk format shared by simulated and recorded runs.
//! - [`fidelity`]: the statistics that compare a simulated run with a real one.
//!
//! # Simulating a workload
//!
//! ```
//! use simfid::exec::roofline::Roofline;
//! use simfid::model::{DeviceSpec, ModelSpec};
//! use simfid::sim::{ReplicaSchedulerKind, RequestRecord, SimConfig, Simulator};
//! use simfid::workload::{ArrivalSpec, LengthSpec, RngKind, SyntheticSpec};
//!
//! // Qwen3-0.6B on an H100, Sarathi-Serve batching, a roofline execution-time model.
//! let model = ModelSpec::qwen3_0_6b();
//! let device = DeviceSpec::builtin("h100")?;
//! let exec = Roofline::new(&model, &device, 1, 1)?;
//! let cfg = SimConfig::new(model, device, ReplicaSchedulerKind::Sarathi);
//!
//! // 200 requests, prompt+output uniform in 64..2048 tokens at 8:1, Poisson at 4 req/s.
//! let workload = SyntheticSpec {
//!     length: LengthSpec::Uniform { min_tokens: 64, max_tokens: 2048, prefill_to_decode_ratio: 8.0 },
//!     arrival: ArrivalSpec::Poisson { qps: 4.0, vidur_clip: false },
//!     num_requests: Some(200),
//!     duration_s: None,
//!     seed: 7,
//!     rng: RngKind::Pcg,
//! };
//!
//! let mut records: Vec<RequestRecord> = Vec::new();
//! let summary = Simulator::new(cfg, &exec)?.run(workload.iter()?, &mut records)?;
//! assert_eq!(summary.completed, 200);
//! // Every output token has a time; TTFT is the first one minus the arrival.
//! let r = &records[0];
//! assert_eq!(r.token_times.len(), r.decode_tokens as usize);
//! assert_eq!(r.ttft(), r.token_times[0] - r.arrived_at);
//! # Ok::<(), simfid::Error>(())
//! ```
//!
//! Records stream to any [`sim::RecordSink`] as requests finish: a `Vec`, or
//! [`sim::VidurCsvWriter`] for Vidur's `request_metrics.csv`, so a million-request simulation
//! runs in constant memory.
#![warn(missing_docs)]

pub mod error;
pub mod exec;
pub mod fidelity;
pub mod fixture;
pub mod model;
pub mod sim;
pub mod workload;

pub use error::{Error, Result};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
