//! Real runs and the simulator: everything learned from, or replayed against, recorded runs.
//!
//! - [`preset`]: a [`Preset`] describes one real deployment (model, GPU, scheduler with its KV
//!   capacity, step profile); built in ([`Preset::for_run`] picks one from a run's header) or
//!   read from a file.
//! - [`history`]: what the server served before a run ([`History`], [`Served`], [`WarmUp`]),
//!   which decides the step shapes (CUDA graphs) already captured.
//! - [`simulate`]: a real run's requests simulated at their send times ([`replay`],
//!   [`Preset::replay_history`], what `simfid check` runs), the result a [`Run`](crate::fixture::Run)
//!   like the real one.
//! - [`steps`]: engine steps cut from a run's chunk times; [`reconstruct`]: their composition
//!   under a FIFO scheduler; [`experiment`]: controlled profiling experiments;
//!   [`step_profile`]: the step-model fit and the profile file; [`calibrate()`]: the delays.

pub mod calibrate;
pub mod experiment;
pub mod history;
pub mod preset;
pub mod reconstruct;
pub mod simulate;
pub mod step_profile;
pub mod steps;

pub use calibrate::{Calibration, calibrate};
pub use experiment::{Experiment, serving_delay};
pub use history::{History, Served, WarmUp, session_history};
pub use preset::{Preset, SchedulerKnobs, ServerKind};
pub use simulate::{
    Delays, FRONTEND_PASSES, Replay, open_streams, replay, replay_delayed, replay_frontend,
    replay_workload,
};
pub use step_profile::{StepObservation, StepProfile, fit_prefill_steps};
pub use steps::{ObservedStep, PrefillStep, STEP_GAP_S, extract_steps, prefill_steps};
