//! simfid's integration tests: one binary, one module per behaviour.

mod fidelity_compare;
mod fidelity_macros;
mod fidelity_stats;
mod fixture_convert;
mod invariants;
mod shared;
mod vidur_parity;
