//! `simfid bench`: simulator speed and memory on Vidur's run-e configuration (Sarathi, chunk
//! 512, cap 128, Llama-3-8B on A100, uniform 136–4096 tokens at P:D 16, Poisson 2 QPS), for
//! 20,000 and 1,000,000 requests. Each size runs in a child process so that its peak RSS is
//! its own; request metrics stream to a temporary `request_metrics.csv` as in a real run.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use simfid::exec::ExecModel;
use simfid::exec::roofline::Roofline;
use simfid::exec::tables::PredictionTables;
use simfid::exec::vidur::{VidurModel, VidurPredictorConfig};
use simfid::model::{DeviceSpec, ModelSpec};
use simfid::sim::{ReplicaSchedulerKind, SimConfig, Simulator, VidurCsvWriter};
use simfid::workload::{ArrivalSpec, LengthSpec, RngKind, SyntheticSpec};

/// Vidur's event loop for run e (20,000 requests) took about 208 s on this machine when its reference
/// runs (`fixtures/vidur/runs/e/command.sh`) were made; the figure is kept here, not in a file.
const VIDUR_RUN_E_EVENT_LOOP_S: f64 = 208.0;

/// Flags of `simfid bench`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// `simfid bench record`: the recorder instead of the simulator.
    #[command(subcommand)]
    pub mode: Option<BenchMode>,
    /// Request counts to simulate (default: 20000 and 1000000).
    #[arg(long = "requests", value_delimiter = ',')]
    pub requests: Vec<u64>,
    /// Vidur prediction tables for Llama-3-8B on A100 (default: from $SIMFID_SHARED, else the
    /// roofline model).
    #[arg(long)]
    pub tables: Option<PathBuf>,
    /// Internal: run one case in this process and print its figures as JSON.
    #[arg(long, hide = true)]
    pub case: Option<u64>,
}

/// Other benchmarks.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum BenchMode {
    /// The recorder against `simfid serve` at many concurrent streams.
    Record(super::bench_record::BenchRecordArgs),
}

/// CPU time of the calling thread in seconds: on a busy machine it measures the simulator's
/// own work, which wall time does not.
fn thread_cpu_s() -> f64 {
    super::bench_record::thread_cpu_ns() as f64 * 1e-9
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn tables_dir(args: &BenchArgs) -> Option<PathBuf> {
    args.tables.clone().or_else(|| {
        let d = PathBuf::from(std::env::var_os("SIMFID_SHARED")?).join(
            "vidur-data/predictions/a100_Meta-Llama-3-8B_tp1_pp1_proxy-attention_rf-n250-d16-s2",
        );
        d.is_dir().then_some(d)
    })
}

fn run_case(n: u64, args: &BenchArgs) -> Result<()> {
    let model = ModelSpec::builtin("meta-llama/Meta-Llama-3-8B")?;
    let device = DeviceSpec::builtin("a100")?;
    let (exec, what): (Box<dyn ExecModel>, String) = match tables_dir(args) {
        Some(dir) => {
            let t = PredictionTables::load(&dir)?;
            (
                Box::new(VidurModel::new(
                    &t,
                    &model,
                    1,
                    1,
                    &VidurPredictorConfig::default(),
                )?),
                "vidur-tables".into(),
            )
        }
        None => (
            Box::new(Roofline::new(&model, &device, 1, 1)?),
            "roofline".into(),
        ),
    };
    let mut cfg = SimConfig::new(model, device, ReplicaSchedulerKind::Sarathi);
    cfg.scheduler.chunk_size = 512;
    cfg.scheduler.batch_size_cap = 128;
    let spec = SyntheticSpec {
        length: LengthSpec::Uniform {
            min_tokens: 136,
            max_tokens: 4096,
            prefill_to_decode_ratio: 16.0,
        },
        arrival: ArrivalSpec::Poisson {
            qps: 2.0,
            vidur_clip: true,
        },
        num_requests: Some(n),
        duration_s: None,
        seed: 42,
        rng: RngKind::Vidur,
    };
    let path = std::env::temp_dir().join(format!("simfid-bench-{}-{n}.csv", std::process::id()));
    let file = std::fs::File::create(&path).with_context(|| path.display().to_string())?;
    let mut csv = VidurCsvWriter::new(std::io::BufWriter::with_capacity(1 << 20, file))?;
    let rss_before = peak_rss_kib().unwrap_or(0);
    let mut sim = Simulator::new(cfg, exec.as_ref())?;
    let start = Instant::now();
    let cpu0 = thread_cpu_s();
    let summary = sim.run(spec.iter()?, &mut csv)?;
    let cpu = thread_cpu_s() - cpu0;
    let wall = start.elapsed().as_secs_f64();
    csv.finish()?;
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&path);
    println!(
        "{}",
        serde_json::json!({
            "requests": n,
            "completed": summary.completed,
            "iterations": summary.batches,
            "simulated_s": summary.end_time_s,
            "wall_s": wall,
            "cpu_s": cpu,
            "requests_per_s": n as f64 / wall,
            "requests_per_cpu_s": n as f64 / cpu,
            "iterations_per_s": summary.batches as f64 / wall,
            "peak_rss_kib": peak_rss_kib(),
            "rss_before_run_kib": rss_before,
            "metrics_csv_bytes": bytes,
            "exec": what,
        })
    );
    Ok(())
}

/// Runs `simfid bench`.
pub fn main(args: BenchArgs) -> Result<i32> {
    if let Some(BenchMode::Record(r)) = args.mode {
        return super::bench_record::main(r);
    }
    if let Some(n) = args.case {
        run_case(n, &args)?;
        return Ok(0);
    }
    let sizes = if args.requests.is_empty() {
        vec![20_000, 1_000_000]
    } else {
        args.requests.clone()
    };
    let exe = std::env::current_exe()?;
    println!(
        "simfid bench: Vidur run-e configuration (sarathi chunk 512, Llama-3-8B/A100, Poisson 2 QPS), one core"
    );
    println!(
        "| requests | iterations | wall s | CPU s | requests/s (wall) | requests/CPU-s | \
         iterations/CPU-s | peak RSS MiB | vs Vidur's loop (~{:.0} req/s), per CPU-s | exec model |",
        20_000.0 / VIDUR_RUN_E_EVENT_LOOP_S
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for n in sizes {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["bench", "--case", &n.to_string()]);
        if let Some(t) = &args.tables {
            cmd.arg("--tables").arg(t);
        }
        let out = cmd
            .output()
            .context("cannot start the benchmark child process")?;
        if !out.status.success() {
            bail!(
                "benchmark case {n} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or("{}"))?;
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "| {n} | {} | {:.3} | {:.3} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0}× | {} |",
            v["iterations"],
            f("wall_s"),
            f("cpu_s"),
            f("requests_per_s"),
            f("requests_per_cpu_s"),
            f("iterations") / f("cpu_s"),
            f("peak_rss_kib") / 1024.0,
            f("requests_per_cpu_s") / (20_000.0 / VIDUR_RUN_E_EVENT_LOOP_S),
            v["exec"].as_str().unwrap_or("?"),
        );
    }
    Ok(0)
}
