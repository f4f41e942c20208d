//! simfid's integration tests: one binary, one module per behaviour.

mod shared;
mod vidur_parity;
