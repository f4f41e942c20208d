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
//! - [`replay`]: real runs against the simulator — [`replay::Preset`] (a deployment: model,
//!   GPU, scheduler, step profile), [`replay::History`] (what the server served before),
//!   [`replay::Preset::replay_history`] (a recorded run simulated at its send times, as
//!   `simfid check` does), step profiles and their fit.
//! - `record` and `serve` (feature `record`): the recorder that replays a workload against an
//!   OpenAI-compatible server, and the simulator behind the same API.
//!
//! `ARCHITECTURE.md` shows the layers (each module uses only those below it, checked by a
//! test) and where each piece lives.
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
//!
//! # Asserting fidelity
//!
//! A simulated run and a real one are both a [`fixture::Run`]: per request, its send time and
//! the time of every streamed chunk. The macros [`assert_ttft_within!`],
//! [`assert_itl_within!`], [`assert_tpot_within!`], [`assert_e2e_within!`] and
//! [`assert_fidelity!`] compare the two under vLLM bench's metric definitions and panic with a
//! table when the simulator is off. This example runs as it is in a `tests/` file of a crate
//! that depends on simfid: it simulates one workload twice, with two bandwidth efficiencies of
//! the built-in roofline, and treats the first as the "real" run (in practice: a recorded
//! golden read with [`fixture::read_any`], from a simfid recording, a vLLM bench result JSON
//! or a Vidur `request_metrics.csv`).
//!
//! ```
//! use simfid::exec::roofline::Roofline;
//! use simfid::fixture::{Run, RunMeta, Source};
//! use simfid::model::{DeviceSpec, ModelSpec};
//! use simfid::sim::{ReplicaSchedulerKind, RequestRecord, SimConfig, Simulator};
//! use simfid::workload::RequestSpec;
//!
//! /// 200 requests, one every 100 ms, 512 prompt and 64 output tokens, on Qwen3-0.6B / H100.
//! fn simulate(bandwidth_efficiency: f64, source: Source) -> Run {
//!     let model = ModelSpec::qwen3_0_6b();
//!     let device = DeviceSpec::builtin("h100").unwrap();
//!     let mut exec = Roofline::new(&model, &device, 1, 1).unwrap();
//!     exec.bandwidth_efficiency = bandwidth_efficiency;
//!     let cfg = SimConfig::new(model, device, ReplicaSchedulerKind::Sarathi);
//!     let workload: Vec<RequestSpec> = (0..200)
//!         .map(|i| RequestSpec {
//!             id: i,
//!             arrival_s: i as f64 * 0.1,
//!             prefill_tokens: 512,
//!             decode_tokens: 64,
//!         })
//!         .collect();
//!     let mut records: Vec<RequestRecord> = Vec::new();
//!     Simulator::new(cfg, &exec).unwrap().run(workload, &mut records).unwrap();
//!     Run::from_records(RunMeta::new(source, "Qwen/Qwen3-0.6B"), &records)
//! }
//!
//! let real = simulate(0.70, Source::Real);
//! let sim = simulate(0.72, Source::Sim);
//!
//! // One metric, one statistic: relative tolerance, optionally with an absolute floor.
//! simfid::assert_ttft_within!(sim, real, p50, 10%);
//! simfid::assert_itl_within!(sim, real, p50, 5% or 1ms);
//!
//! // Several at once; a failure prints real / sim / error / 95% CI / n for every line, KS
//! // and W1 per metric, and a diagnosis such as "sim ITL too low at the median: decode
//! // step time underestimated (per-iteration framework overhead missing?)".
//! simfid::assert_fidelity!(sim, real, {
//!     ttft: p50 10%, p90 10% or 2ms;
//!     itl: p50 5%, p99 10%;
//!     tpot: mean 5%;
//!     e2e: p90 5%;
//! });
//!
//! // With real repeats of the workload, a tolerance is never applied below their spread
//! // (here 4.4%, so a 1% tolerance on a 2.8% error passes).
//! let repeats = [real.clone(), simulate(0.67, Source::Real)];
//! simfid::assert_tpot_within!(sim, real, p50, 1%, noise_floor(&repeats));
//! ```
//!
//! A tail quantile needs samples beyond it: `p99` is refused (the assertion fails with the
//! reason) below 1000 samples — here TTFT has 200, ITL 12 600 — see
//! [`fidelity::stats::TAIL_SAMPLES`]. The same checks run from the command line on files:
//! `simfid compare SIM REAL --assert 'ttft:p99<=10%' --format json --plots plots/` (exit 1
//! when an assertion fails, 2 when an input is unusable or the runs are not of the same
//! workload). The statistics are defined in ARCHITECTURE.md and [`fidelity`].
#![warn(missing_docs)]

pub mod error;
pub mod exec;
pub mod fidelity;
pub mod fixture;
pub mod model;
#[cfg(feature = "record")]
pub mod record;
pub mod replay;
#[cfg(feature = "record")]
pub mod serve;
pub mod sim;
#[cfg(feature = "tokenizer")]
pub mod tokenize;
pub mod workload;

pub use error::{Error, Result};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
