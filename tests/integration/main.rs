//! simfid's integration tests: one binary, one module per behaviour.

mod shared;
mod invariants;
mod vidur_parity;
