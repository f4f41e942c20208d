//! simfid's integration tests: one binary, one module per behaviour.

mod check_replay;
mod cli_vidur;
mod fidelity_compare;
mod fidelity_macros;
mod fidelity_stats;
#[cfg(feature = "cli")]
mod fixture_codec;
mod fixture_convert;
#[cfg(feature = "cli")]
mod fixture_cut;
mod golden_fidelity;
mod hf_cb;
mod invariants;
mod layers;
#[cfg(feature = "cli")]
mod loopback;
#[cfg(feature = "cli")]
mod record_exit;
#[cfg(feature = "cli")]
mod record_robustness;
#[cfg(feature = "cli")]
mod record_serve;
mod run_builder;
mod scheduler_registry;
#[cfg(feature = "cli")]
mod serve_openai;
mod shared;
mod step_profile;
#[cfg(feature = "cli")]
mod trace_workloads;
mod vidur_parity;
mod vidur_profile;
mod vidur_vs_simfid;
#[cfg(feature = "cli")]
mod vllm_goldens;
