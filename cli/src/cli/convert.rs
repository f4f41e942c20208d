//! `simfid import` and `simfid export`: runs to and from other tools' formats.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use simfid::fidelity::metric::{arrivals_known, token_times_known};
use simfid::fidelity::write_vllm_bench;
use simfid::fixture::{read_any_checked, read_run, write_run};

/// Formats `simfid export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// vLLM `bench serve` result JSON with the detailed per-request arrays.
    VllmBench,
}

/// Flags of `simfid export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// The simfid run file to export.
    pub run: PathBuf,
    /// Target format.
    #[arg(long = "to", value_enum)]
    pub to: ExportFormat,
    /// Output file.
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Flags of `simfid import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// A vLLM bench result JSON (saved with --save-detailed), a Vidur request_metrics.csv
    /// (or .csv.gz) or a simfid run; recognised by content.
    pub input: PathBuf,
    /// The simfid run file to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Refuse a run file whose last line is cut off (a recorder that stopped mid-write)
    /// instead of importing the requests before it with a warning.
    #[arg(long)]
    pub strict: bool,
}

/// Runs `simfid export`.
pub fn export(a: ExportArgs) -> Result<i32> {
    let (run, info) = read_run(&a.run)?;
    if let Some(p) = info.problem(&a.run, run.requests.len()) {
        eprintln!("simfid: warning: {p}");
    }
    match a.to {
        ExportFormat::VllmBench => write_vllm_bench(&a.output, &run)?,
    }
    eprintln!(
        "simfid: wrote {} requests to {}",
        run.requests.len(),
        a.output.display()
    );
    Ok(0)
}

/// Runs `simfid import`.
pub fn import(a: ImportArgs) -> Result<i32> {
    let (run, fmt, info) = read_any_checked(&a.input)?;
    if a.strict {
        info.refuse(&a.input)?;
    } else if let Some(p) = info.problem(&a.input, run.requests.len()) {
        eprintln!("simfid: warning: {p}; --strict refuses such a file");
    }
    write_run(&a.output, &run)?;
    eprintln!(
        "simfid: imported {} requests from {} ({}) into {}",
        run.requests.len(),
        a.input.display(),
        fmt.name(),
        a.output.display()
    );
    if !arrivals_known(&run) {
        eprintln!(
            "simfid: note: arrival times are unknown (no start_times): requests are put at t = 0"
        );
    }
    if !token_times_known(&run) {
        eprintln!(
            "simfid: note: only first- and last-token times are known: ITL and TBT will be \
             reported as not available"
        );
    }
    Ok(0)
}
