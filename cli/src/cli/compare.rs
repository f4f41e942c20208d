//! `simfid compare SIM REAL`: the fidelity report of a simulated run against a real one.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::report::{ReportOpts, load, report};

/// Flags of `simfid compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The simulated run: a simfid run, a vLLM bench result JSON or a Vidur request_metrics.csv.
    pub sim: PathBuf,
    /// The real run (same formats).
    pub real: PathBuf,
    /// Refuse a run file whose last line is cut off (a recorder that stopped mid-write)
    /// instead of reading the requests before it with a warning.
    #[arg(long)]
    pub strict: bool,
    /// Report options.
    #[command(flatten)]
    pub opts: ReportOpts,
}

/// Runs `simfid compare`; returns the exit code.
pub fn main(a: CompareArgs) -> Result<i32> {
    let sim = load(&a.sim, a.strict)?;
    let real = load(&a.real, a.strict)?;
    report(
        &sim,
        &real,
        &a.sim.display().to_string(),
        &a.real.display().to_string(),
        &a.opts,
    )
}
