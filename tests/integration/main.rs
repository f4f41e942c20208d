//! simfid's integration tests: one binary, one module per behaviour.

#[cfg(feature = "cli")]
mod fixture_codec;
mod invariants;
#[cfg(feature = "cli")]
mod loopback;
#[cfg(feature = "cli")]
mod record_robustness;
#[cfg(feature = "cli")]
mod record_serve;
mod shared;
#[cfg(feature = "cli")]
mod trace_workloads;
mod vidur_parity;
