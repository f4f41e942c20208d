//! simfid's integration tests: one binary, one module per behaviour.

mod cli_vidur;
mod hf_cb;
mod invariants;
mod shared;
mod step_profile;
mod vidur_parity;
