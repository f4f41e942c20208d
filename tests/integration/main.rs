//! simfid's integration tests: one binary, one module per behaviour.

mod check_replay;
mod cli_vidur;
mod fidelity_compare;
mod fidelity_macros;
mod fidelity_stats;
mod fixture_codec;
mod fixture_convert;
mod fixture_cut;
mod golden_fidelity;
mod hf_cb;
mod invariants;
mod loopback;
mod record_exit;
mod record_robustness;
mod record_serve;
mod run_builder;
mod serve_openai;
mod shared;
mod step_profile;
mod trace_workloads;
mod vidur_parity;
mod vidur_profile;
mod vidur_vs_simfid;
mod vidur_vs_vllm;
mod vllm_goldens;
