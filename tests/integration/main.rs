//! simfid's integration tests: one binary, one module per behaviour.

mod invariants;
mod shared;
mod vidur_parity;
