//! Output helpers shared by the subcommands: run folders, summaries, token-time files.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use simfid::fidelity::quantile::quantile;
use simfid::fidelity::{MetricDef, RequestSamples, gaps};
use simfid::fixture::{RequestRun, RunWriter};
use simfid::sim::{RecordSink, RequestRecord, SimSummary, VidurCsvWriter};

/// `YYYY-MM-DD_HH-MM-SS-mmm` (UTC), the shape of Vidur's run-folder names.
pub fn timestamp() -> String {
    simfid::record::probe::utc_now_rfc3339()
        .trim_end_matches('Z')
        .replace('T', "_")
        .replace([':', '.'], "-")
}

/// Creates `dir/<timestamp>/` like Vidur does and returns it.
pub fn run_dir(dir: &Path) -> Result<PathBuf> {
    let out = dir.join(timestamp());
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    Ok(out)
}

/// Latency samples for the terminal summary of a simulation (seconds), collected as records
/// stream by (constant memory but for the ITL samples, capped).
#[derive(Default)]
pub struct LatencyStats {
    pub ttft: Vec<f64>,
    pub e2e: Vec<f64>,
    pub tpot: Vec<f64>,
    pub itl: Vec<f64>,
    pub sched: Vec<f64>,
}

impl LatencyStats {
    /// Keep at most this many ITL samples (a prefix of the run) to bound memory.
    const ITL_CAP: usize = 5_000_000;

    pub fn add(&mut self, rec: &RequestRecord) {
        if !rec.completed {
            return;
        }
        // TTFT and E2E as Vidur records them (`prefill_e2e_time`, `request_e2e_time`: the
        // first prefill's end, which a restart does not move); TPOT and ITL under vLLM
        // bench's definitions, from the token times.
        self.ttft.push(rec.ttft());
        self.e2e.push(rec.e2e());
        self.sched.push(rec.scheduling_delay);
        let n = rec.token_times.len();
        if n > 1 {
            let s = RequestSamples::new(
                MetricDef::VllmBench,
                rec.arrived_at,
                rec.token_times[0],
                rec.token_times[n - 1],
                n as u32,
            );
            self.tpot.extend(s.tpot);
            if self.itl.len() < Self::ITL_CAP {
                self.itl.extend(gaps(rec.token_times.iter().copied()));
            }
        }
    }
}

/// Forwards records to the CSV writer and, optionally, a token-times file, keeping the
/// samples the terminal summary needs.
pub struct Tee<W: Write> {
    pub csv: VidurCsvWriter<W>,
    pub tokens: Option<std::io::BufWriter<std::fs::File>>,
    /// The simulation as a simfid run, one request per line as it finishes.
    pub run: Option<RunWriter>,
    pub stats: LatencyStats,
}

impl<W: Write> Tee<W> {
    pub fn new(csv: VidurCsvWriter<W>, tokens: Option<std::fs::File>) -> Self {
        Tee {
            csv,
            tokens: tokens.map(std::io::BufWriter::new),
            run: None,
            stats: LatencyStats::default(),
        }
    }

    /// Also writes every record to `run` as a [`RequestRun`] (every token's time).
    pub fn with_run(mut self, run: RunWriter) -> Self {
        self.run = Some(run);
        self
    }
}

impl<W: Write> RecordSink for Tee<W> {
    fn record(&mut self, rec: &RequestRecord) -> simfid::Result<()> {
        self.stats.add(rec);
        if let Some(w) = &mut self.run {
            w.append(&RequestRun::from_record(rec))?;
        }
        if let Some(f) = &mut self.tokens {
            let io = |e| simfid::Error::io("token_times.csv", e);
            for (i, t) in rec.token_times.iter().enumerate() {
                writeln!(f, "{},{},{}", rec.id, i, simfid::sim::py_float_repr(*t)).map_err(io)?;
            }
        }
        self.csv.record(rec)
    }
}

/// Rewrites the last column (`request_num_restarts`) of a Vidur `request_metrics.csv` as
/// floats (`0` → `0.0`), which is how pandas writes an integer column that has empty cells.
pub fn pandas_float_restarts(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let mut out = String::with_capacity(text.len() + text.len() / 50);
    for (i, line) in text.lines().enumerate() {
        out.push_str(line);
        if i > 0 {
            let last = line.rsplit(',').next().unwrap_or("");
            if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
                out.push_str(".0");
            }
        }
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| path.display().to_string())
}

/// Prints a latency table (ms) and the run's counts.
pub fn print_summary(st: &LatencyStats, s: &SimSummary, wall_s: f64) {
    println!(
        "simulated {} requests ({} completed, {} unfinished) in {:.3} s of simulated time; \
         {} iterations; {} restarts; {:.3} s wall ({:.0} requests/s)",
        s.arrived,
        s.completed,
        s.unfinished,
        s.end_time_s,
        s.batches,
        s.restarts,
        wall_s,
        s.arrived as f64 / wall_s.max(1e-9)
    );
    println!("| metric (ms) | P50 | P90 | P99 | mean |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, v) in [
        ("TTFT (prefill_e2e_time)", &st.ttft),
        ("ITL (token gaps)", &st.itl),
        ("TPOT (per request)", &st.tpot),
        ("E2E (request_e2e_time)", &st.e2e),
        ("scheduling delay", &st.sched),
    ] {
        let q = |p| quantile(v, p).map_or("-".to_string(), |x| format!("{:.2}", x * 1e3));
        let mean = simfid::fidelity::quantile::mean(v)
            .map_or("-".to_string(), |x| format!("{:.2}", x * 1e3));
        println!(
            "| {name} | {} | {} | {} | {mean} |",
            q(0.5),
            q(0.9),
            q(0.99)
        );
    }
}
