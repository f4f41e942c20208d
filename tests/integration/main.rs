//! simfid's integration tests: one binary, one module per behaviour.

mod cli_vidur;
mod hf_cb;
mod fidelity_compare;
mod fidelity_macros;
mod fidelity_stats;
mod fixture_convert;
mod invariants;
mod shared;
mod step_profile;
mod vidur_parity;
