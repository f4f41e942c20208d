//! simfid's integration tests: one binary, one module per behaviour.

mod fidelity_stats;
mod invariants;
mod shared;
mod vidur_parity;
