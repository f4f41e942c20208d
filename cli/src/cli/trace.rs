//! `simfid trace`: workload files — request lengths from real prompts through a tokenizer
//! (`simfid trace PROMPTS --tokenizer tokenizer.json`), synthetic workloads with arrivals
//! (`simfid trace synth`), and arrivals attached to a lengths file (`simfid trace arrivals`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use simfid::tokenize::TokenCounter;
use simfid::tokenize::prompts::{
    ChatOverhead, OutputLengths, PromptsFormat, prompt_lengths, read_prompts, write_lengths_csv,
};
use simfid::workload::length::trace_lengths;
use simfid::workload::{ArrivalSpec, LengthSpec, RequestSpec, RngKind, SyntheticSpec, Workload};

/// Flags of `simfid trace`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct TraceArgs {
    #[command(subcommand)]
    pub command: Option<TraceCommand>,
    #[command(flatten)]
    pub prompts: Option<PromptsArgs>,
}

/// `simfid trace` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum TraceCommand {
    /// Lengths CSV from a prompts file and a tokenizer (the default form).
    Prompts(PromptsArgs),
    /// A synthetic workload with arrivals (`arrived_at,num_prefill_tokens,num_decode_tokens`).
    Synth(SynthArgs),
    /// Attach arrival times to a lengths CSV, keeping its row order.
    Arrivals(AttachArgs),
}

/// `simfid trace PROMPTS --tokenizer T -o OUT.csv`.
#[derive(Debug, Clone, Args)]
pub struct PromptsArgs {
    /// Prompts: text (one prompt per non-empty line) or JSON Lines (`prompt`, optional
    /// `max_tokens`/`output_tokens`).
    pub prompts: PathBuf,
    /// The model's tokenizer.json.
    #[arg(long)]
    pub tokenizer: PathBuf,
    /// Lengths CSV to write (`num_prefill_tokens,num_decode_tokens`).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Output length for prompts without their own.
    #[arg(long)]
    pub output_tokens: Option<u32>,
    /// Use --output-tokens for every prompt, ignoring per-prompt lengths.
    #[arg(long, requires = "output_tokens")]
    pub fixed_output: bool,
    /// Tokens a chat template adds to each prompt (a fixed count).
    #[arg(long, conflicts_with = "chat_template")]
    pub chat_overhead: Option<u32>,
    /// A chat template with a `{prompt}` placeholder, tokenized around each prompt (`@FILE`
    /// reads it from a file), e.g. "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n".
    #[arg(long)]
    pub chat_template: Option<String>,
    /// Prompts file format: auto, text, jsonl.
    #[arg(long, default_value = "auto")]
    pub format: String,
}

/// Arrival-process flags (shared with `simfid record` for lengths-only workloads).
#[derive(Debug, Clone, Args)]
pub struct ArrivalArgs {
    /// Arrival process: poisson, gamma, static, recorded (times from --arrival-times).
    #[arg(long, default_value = "poisson")]
    pub arrival: String,
    /// Requests per second (poisson, gamma).
    #[arg(long)]
    pub qps: Option<f64>,
    /// Gamma shape (vLLM bench's burstiness; 1 = Poisson, < 1 burstier).
    #[arg(long, default_value_t = 1.0)]
    pub burstiness: f64,
    /// Recorded arrivals: a file with one time (seconds) per line, or a CSV with an
    /// `arrived_at` column.
    #[arg(long)]
    pub arrival_times: Option<PathBuf>,
    /// Seed (simfid's Pcg64Mcg).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// `simfid trace synth`.
#[derive(Debug, Clone, Args)]
pub struct SynthArgs {
    /// Requests.
    #[arg(long)]
    pub num_requests: u64,
    /// Shortest prompt.
    #[arg(long)]
    pub prompt_min: u32,
    /// Longest prompt (inclusive).
    #[arg(long)]
    pub prompt_max: u32,
    /// Shortest output.
    #[arg(long)]
    pub output_min: u32,
    /// Longest output (inclusive).
    #[arg(long)]
    pub output_max: u32,
    #[command(flatten)]
    pub arrivals: ArrivalArgs,
    /// Workload CSV to write.
    #[arg(short, long)]
    pub output: PathBuf,
}

/// `simfid trace arrivals`.
#[derive(Debug, Clone, Args)]
pub struct AttachArgs {
    /// Lengths CSV (`num_prefill_tokens,num_decode_tokens`).
    pub lengths: PathBuf,
    #[command(flatten)]
    pub arrivals: ArrivalArgs,
    /// Workload CSV to write.
    #[arg(short, long)]
    pub output: PathBuf,
}

impl ArrivalArgs {
    /// The arrival spec the flags describe.
    pub fn spec(&self) -> Result<ArrivalSpec> {
        let qps = || {
            self.qps
                .with_context(|| format!("--arrival {} needs --qps", self.arrival))
        };
        Ok(match self.arrival.as_str() {
            "poisson" => ArrivalSpec::Poisson {
                qps: qps()?,
                vidur_clip: false,
            },
            "gamma" => ArrivalSpec::Gamma {
                qps: qps()?,
                burstiness: self.burstiness,
            },
            "static" => ArrivalSpec::Static,
            "recorded" => {
                let path = self
                    .arrival_times
                    .as_ref()
                    .context("--arrival recorded needs --arrival-times FILE")?;
                ArrivalSpec::Recorded {
                    times_s: read_times(path)?,
                }
            }
            other => bail!("--arrival must be poisson, gamma, static or recorded (got '{other}')"),
        })
    }
}

/// Reads arrival times: one number per line, or the `arrived_at` column of a CSV.
fn read_times(path: &Path) -> Result<Vec<f64>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, first)) = lines.next() else {
        bail!("{}: no arrival times", path.display());
    };
    let header: Vec<&str> = first.split(',').map(str::trim).collect();
    let (col, skip_first) = match header.iter().position(|h| *h == "arrived_at") {
        Some(c) => (c, true),
        None => (0, false),
    };
    let parse = |i: usize, l: &str| -> Result<f64> {
        let cell = l.split(',').nth(col).unwrap_or("").trim();
        let v: f64 = cell
            .parse()
            .map_err(|_| anyhow::anyhow!("{}:{}: not a number: '{cell}'", path.display(), i + 1))?;
        if !v.is_finite() || v < 0.0 {
            bail!(
                "{}:{}: arrival time must be finite and >= 0",
                path.display(),
                i + 1
            );
        }
        Ok(v)
    };
    let mut out = Vec::new();
    if !skip_first {
        out.push(parse(0, first)?);
    }
    for (i, l) in lines {
        out.push(parse(i, l)?);
    }
    Ok(out)
}

/// Gives the lengths `rows` (in file order) arrival times from `args`: request `k` gets row
/// `k` and the `k`-th arrival of the process (the same times `simfid trace synth` would draw
/// with that seed).
pub fn attach_arrivals(rows: &[(f64, f64)], args: &ArrivalArgs, path: &Path) -> Result<Workload> {
    let lengths =
        trace_lengths(rows, 1.0, 1.0, u32::MAX).with_context(|| format!("{}", path.display()))?;
    let arrival = args.spec()?;
    let n = lengths.len() as u64;
    let desc = arrival.describe();
    let times = SyntheticSpec {
        length: LengthSpec::Fixed {
            prefill: 1,
            decode: 1,
        },
        arrival,
        num_requests: Some(n),
        duration_s: None,
        seed: args.seed,
        rng: RngKind::Pcg,
    }
    .generate()?;
    let requests = times
        .requests
        .iter()
        .map(|r| {
            let (p, d) = lengths[r.id as usize];
            RequestSpec {
                prefill_tokens: p,
                decode_tokens: d,
                ..*r
            }
        })
        .collect();
    Ok(Workload::new(
        requests,
        format!(
            "{} ({n} rows) + {desc}, seed {} (pcg64mcg)",
            path.display(),
            args.seed
        ),
    ))
}

/// Runs `simfid trace`.
pub fn main(a: TraceArgs) -> Result<i32> {
    match a.command {
        None => match a.prompts {
            Some(p) => prompts(p),
            None => bail!("simfid trace: give a prompts file (see simfid trace --help)"),
        },
        Some(TraceCommand::Prompts(p)) => prompts(p),
        Some(TraceCommand::Synth(s)) => synth(s),
        Some(TraceCommand::Arrivals(x)) => arrivals(x),
    }
}

fn prompts(a: PromptsArgs) -> Result<i32> {
    let format = match a.format.as_str() {
        "auto" => PromptsFormat::Auto,
        "text" => PromptsFormat::Text,
        "jsonl" => PromptsFormat::Jsonl,
        other => bail!("--format must be auto, text or jsonl (got '{other}')"),
    };
    let counter = TokenCounter::from_file(&a.tokenizer)?;
    let entries = read_prompts(&a.prompts, format)?;
    if entries.is_empty() {
        bail!("{}: no prompts", a.prompts.display());
    }
    let overhead = match (&a.chat_overhead, &a.chat_template) {
        (Some(n), _) => ChatOverhead::Fixed(*n),
        (None, Some(t)) => ChatOverhead::Template(match t.strip_prefix('@') {
            Some(file) => std::fs::read_to_string(file)
                .with_context(|| format!("cannot read the chat template {file}"))?,
            None => t.clone(),
        }),
        (None, None) => ChatOverhead::None,
    };
    let outputs = OutputLengths {
        default: a.output_tokens,
        force: a.fixed_output,
    };
    let rows = prompt_lengths(&entries, &counter, &overhead, outputs, &a.prompts)?;
    write_lengths_csv(&a.output, &rows)?;
    let total: u64 = rows.iter().map(|r| u64::from(r.0)).sum();
    let (min, max) = rows
        .iter()
        .fold((u32::MAX, 0), |(lo, hi), r| (lo.min(r.0), hi.max(r.0)));
    println!(
        "simfid trace: {} prompts, prompt tokens min {min} / mean {:.1} / max {max}; wrote {}",
        rows.len(),
        total as f64 / rows.len() as f64,
        a.output.display()
    );
    Ok(0)
}

fn synth(a: SynthArgs) -> Result<i32> {
    let spec = SyntheticSpec {
        length: LengthSpec::UniformIndependent {
            prompt_min: a.prompt_min,
            prompt_max: a.prompt_max,
            output_min: a.output_min,
            output_max: a.output_max,
        },
        arrival: a.arrivals.spec()?,
        num_requests: Some(a.num_requests),
        duration_s: None,
        seed: a.arrivals.seed,
        rng: RngKind::Pcg,
    };
    let w = spec.generate()?;
    simfid::workload::write_workload_csv(&a.output, &w)?;
    println!(
        "simfid trace synth: {} requests over {:.3} s ({}); wrote {}",
        w.len(),
        w.requests.last().map_or(0.0, |r| r.arrival_s),
        w.source,
        a.output.display()
    );
    Ok(0)
}

fn arrivals(a: AttachArgs) -> Result<i32> {
    let rows = simfid::workload::read_lengths_csv(&a.lengths)?;
    let w = attach_arrivals(&rows, &a.arrivals, &a.lengths)?;
    simfid::workload::write_workload_csv(&a.output, &w)?;
    println!(
        "simfid trace arrivals: {} requests over {:.3} s; wrote {}",
        w.len(),
        w.requests.last().map_or(0.0, |r| r.arrival_s),
        a.output.display()
    );
    Ok(0)
}
