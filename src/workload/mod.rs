//! Workloads: what requests arrive when, with how many prompt and output tokens.
//!
//! A [`Workload`] is an ordered list of [`RequestSpec`]s plus a description of what produced it
//! (kept for provenance). Workloads come from length generators ([`length`]) combined with
//! arrival processes ([`arrival`]) by [`generate`], or from CSV files ([`csv`]) in the two
//! formats Vidur reads: lengths only (`num_prefill_tokens,num_decode_tokens`) and trace replay
//! (`arrived_at,num_prefill_tokens,num_decode_tokens`). The same workload file drives a
//! simulation and a real recording.
//!
//! Every random component is seeded explicitly. Two random sources exist: simfid's own
//! (`Pcg64Mcg`) and a bit-exact port of the generators Vidur uses (CPython's `random` and
//! NumPy's legacy `RandomState`, both MT19937, in [`pyrandom`]), so that `simfid vidur` turns
//! Vidur's synthetic-workload flags into the very requests Vidur would simulate.
//!
//! Principal types: [`SyntheticSpec`] (a [`LengthSpec`] plus an [`ArrivalSpec`], a request
//! count or duration, a seed and an [`RngKind`]; streamed with [`SyntheticSpec::iter`] or
//! collected with [`SyntheticSpec::generate`]), [`read_workload_csv`] /
//! [`write_workload_csv`] for files, [`PyRandom`] and [`NumpyRandomState`] for Vidur's random
//! streams.
//!
//! Fidelity to Vidur: with [`RngKind::Vidur`], uniform/fixed lengths, trace lengths, and
//! Poisson/gamma/static/trace arrivals reproduce Vidur's requests bit for bit (checked against
//! the reference runs a–e). Two things cannot be exact: zipf `scramble` (Vidur uses Python's
//! per-process salted `hash()`; simfid has its own deterministic scramble) and, on AVX-512 CPUs
//! only, NumPy's vectorised `np.power` in the zipf normalisation, which can differ from libm in
//! the last bit (see [`length`]).

pub mod arrival;
pub mod csv;
pub mod generate;
pub mod length;
mod main_rng;
pub mod pyrandom;
mod request;
mod rng;
#[cfg(test)]
mod vidur_tests;

pub use arrival::ArrivalSpec;
pub use csv::{
    CsvWorkload, TraceReplayOptions, read_lengths_csv, read_trace_replay_csv,
    read_vidur_interval_trace, read_workload_csv, write_workload_csv,
};
pub use generate::{SyntheticIter, SyntheticSpec};
pub use length::LengthSpec;
pub use pyrandom::{NumpyRandomState, PyRandom};
pub use request::{RequestSpec, Workload};
pub use rng::RngKind;
