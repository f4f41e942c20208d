//! simfid's integration tests: one binary, one module per behaviour.

mod check_replay;
mod cli_vidur;
mod fidelity_compare;
mod fidelity_macros;
mod fidelity_stats;
mod fixture_convert;
mod hf_cb;
mod invariants;
mod shared;
mod step_profile;
mod vidur_parity;
