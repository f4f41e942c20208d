//! Fidelity statistics: how a simulated run compares with a real one.
//!
//! Principal types: [`MetricDef`] and [`RunMetrics`] (metric samples from a run's raw times
//! under named definitions, see [`metric`]), [`compare`] → [`Report`] (per metric and
//! statistic: real, sim, absolute and relative error, bootstrap 95% interval, sample counts;
//! KS and Wasserstein-1 per metric; rendered by [`report`]), [`NoiseFloor`] (spread between
//! real repeats), [`Criterion`] / [`check`] → [`Verdict`] (what the `assert_*_within!` and
//! [`assert_fidelity!`](crate::assert_fidelity) macros run), and [`check_workload`] (are two
//! runs of the same workload?). Statistics are defined in [`stats`] and in ARCHITECTURE.md.

mod compare;
mod error;
pub mod macros;
pub mod metric;
mod noise;
#[cfg(feature = "plot")]
pub mod plot;
pub mod quantile;
pub mod report;
mod same_workload;
pub mod stats;
mod verdict;
mod vllm_bench;

pub use compare::{CompareOptions, MetricReport, Report, Row, RunSummary, compare};
pub use error::FidelityError;
pub use metric::{Metric, MetricDef, MetricOptions, RequestSamples, RunMetrics, Slo, Window, gaps};
pub use noise::{NoiseFloor, Spread};
pub use report::{ReportFormat, ReportView};
pub use same_workload::{WorkloadCheck, check_workload};
pub use stats::{Bootstrap, Ks, Stat};
pub use verdict::{
    AssertOptions, Check, Criterion, Outcome, Tolerance, Verdict, check, diagnose, parse_ms,
};
pub use vllm_bench::{to_vllm_bench, write_vllm_bench};
