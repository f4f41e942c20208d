//! `simfid vidur-config`: what a Vidur user needs to simulate a model Vidur does not know.
//!
//! Vidur (7d47513) resolves models from Python dataclasses, not files. This prints the
//! dataclass for a model (a built-in name or any HuggingFace `config.json`), a small launcher
//! that registers it and calls Vidur's entry point, and — given a simfid run or workload — the
//! exact `python -m vidur.main` command line that replays that workload (trace replay),
//! writing the trace-replay CSV it needs.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use simfid::model::ModelSpec;
use simfid::workload::Workload;

/// Flags of `simfid vidur-config`.
#[derive(Debug, Args)]
pub struct VidurConfigArgs {
    /// Model: a built-in name (e.g. Qwen/Qwen3-0.6B) or a HuggingFace config.json.
    pub model: String,
    /// A simfid run fixture (`.jsonl`) or workload CSV to replay in Vidur.
    #[arg(long)]
    pub workload: Option<PathBuf>,
    /// Where to write the trace-replay CSV for Vidur (default: next to the workload).
    #[arg(long)]
    pub trace_out: Option<PathBuf>,
    /// Vidur device (a100, h100, a40).
    #[arg(long, default_value = "h100")]
    pub device: String,
    /// Vidur's attention profile of the model (Vidur needs one per model).
    #[arg(long)]
    pub attention_csv: Option<PathBuf>,
    /// Vidur's operator profile (mlp.csv) of the model.
    #[arg(long)]
    pub mlp_csv: Option<PathBuf>,
    /// KV-cache tokens of the server being replayed.
    #[arg(long, default_value_t = 131_072)]
    pub kv_tokens: u64,
    /// KV block size. Vidur trains attention only on profile rows of this block size, so it
    /// must be the one the profiles were measured with (256 for this project's profiles, the
    /// server's block size).
    #[arg(long, default_value_t = 256)]
    pub block_size: u64,
    /// Sarathi token budget per iteration (Vidur's closest match to a server's step budget).
    #[arg(long, default_value_t = 2048)]
    pub chunk_size: u32,
}

fn class_name(name: &str) -> String {
    let tail = name.rsplit('/').next().unwrap_or(name);
    let mut out = String::new();
    let mut upper = true;
    for c in tail.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(if upper { c.to_ascii_uppercase() } else { c });
            upper = false;
        } else {
            out.push('_');
            upper = true;
        }
    }
    format!("{out}ModelConfig")
}

/// The Python dataclass (as Vidur's `model_config.py` declares models) for `m`.
pub fn dataclass(m: &ModelSpec) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "@dataclass");
    let _ = writeln!(s, "class {}(Llama2ModelConfig):", class_name(&m.name));
    let _ = writeln!(s, "    num_layers: int = {}", m.num_layers);
    let _ = writeln!(s, "    num_q_heads: int = {}", m.num_q_heads);
    let _ = writeln!(s, "    num_kv_heads: int = {}", m.num_kv_heads);
    let _ = writeln!(s, "    embedding_dim: int = {}", m.embedding_dim);
    let _ = writeln!(s, "    mlp_hidden_dim: int = {}", m.mlp_hidden_dim);
    let _ = writeln!(
        s,
        "    max_position_embeddings: int = {}",
        m.max_position_embeddings
    );
    let _ = writeln!(
        s,
        "    use_gated_mlp: bool = {}",
        if m.use_gated_mlp { "True" } else { "False" }
    );
    let _ = writeln!(
        s,
        "    post_attn_norm: bool = {}",
        if m.post_attn_norm { "True" } else { "False" }
    );
    let _ = writeln!(s, "    vocab_size: int = {}", m.vocab_size);
    let _ = writeln!(s, "    rope_theta: Optional[float] = {}", m.rope_theta);
    let _ = writeln!(s);
    let _ = writeln!(s, "    @staticmethod");
    let _ = writeln!(s, "    def get_name():");
    let _ = writeln!(s, "        return \"{}\"", m.name);
    s
}

/// A launcher that registers the dataclass and runs Vidur's `main` with the given flags.
pub fn launcher(m: &ModelSpec) -> String {
    let mut s = String::new();
    s.push_str("\"\"\"Registers a model with Vidur (7d47513) and runs vidur.main. Written by simfid vidur-config.\n\n");
    s.push_str("Usage: PYTHONPATH=/path/to/vidur python run_vidur.py <python -m vidur.main flags>\n\"\"\"\n");
    s.push_str("from dataclasses import dataclass\nfrom typing import Optional\n\n");
    s.push_str("from vidur.config.model_config import Llama2ModelConfig\n\n\n");
    s.push_str(&dataclass(m));
    s.push_str("\n\nif __name__ == \"__main__\":\n");
    s.push_str(
        "    # Vidur finds models among the subclasses of BaseModelConfig; defining the class\n",
    );
    s.push_str("    # above is enough to register it.\n");
    s.push_str("    from vidur.main import main\n\n    main()\n");
    s
}

/// Runs `simfid vidur-config`.
pub fn main(a: VidurConfigArgs) -> Result<i32> {
    let m = ModelSpec::resolve(&a.model)?;
    println!(
        "# Vidur model entry for {} (add to vidur/config/model_config.py, or use the launcher below)\n",
        m.name
    );
    println!("{}", dataclass(&m));
    if m.head_dim * m.num_q_heads != m.embedding_dim {
        println!(
            "# Note: Vidur derives the head dimension as embedding_dim / num_q_heads = {}, but this \
             model's is {}. Vidur's\n# predictor only uses these fields to select profile rows, so \
             profiles must be written with n_embd = {} and\n# n_head = {}; its memory planner will \
             size the KV cache for head_dim {} (pin --*_scheduler_config_num_blocks).\n",
            m.embedding_dim / m.num_q_heads,
            m.head_dim,
            m.embedding_dim,
            m.num_q_heads,
            m.embedding_dim / m.num_q_heads
        );
    }
    println!("# Launcher (save as run_vidur.py):\n");
    println!("{}", launcher(&m));
    let Some(wpath) = &a.workload else {
        return Ok(0);
    };
    let workload: Workload = if wpath.extension().is_some_and(|e| e == "jsonl") {
        let (run, _) = simfid::fixture::read_run(wpath)?;
        run.workload()
    } else {
        match simfid::workload::read_workload_csv(
            wpath,
            &simfid::workload::TraceReplayOptions::exact(),
        )? {
            simfid::workload::CsvWorkload::TraceReplay(w) => w,
            simfid::workload::CsvWorkload::Lengths(_) => {
                bail!(
                    "{}: a lengths-only file has no arrival times",
                    wpath.display()
                )
            }
        }
    };
    let trace = a
        .trace_out
        .clone()
        .unwrap_or_else(|| wpath.with_extension("vidur-trace.csv"));
    // Vidur's trace replay takes arrivals in seconds from the start, in file order.
    simfid::workload::write_workload_csv(&trace, &workload)
        .with_context(|| trace.display().to_string())?;
    let max_tokens = workload
        .requests
        .iter()
        .map(|r| r.prefill_tokens + r.decode_tokens)
        .max()
        .unwrap_or(4096)
        .max(4096)
        .next_power_of_two();
    let blocks = a.kv_tokens / a.block_size.max(1);
    let mut cmd = vec![
        "python run_vidur.py".to_string(),
        format!("--replica_config_model_name {}", m.name),
        format!("--replica_config_device {}", a.device),
        format!(
            "--replica_config_network_device {}_pairwise_nvlink",
            a.device
        ),
        "--replica_config_tensor_parallel_size 1".into(),
        "--replica_config_num_pipeline_stages 1".into(),
        "--cluster_config_num_replicas 1".into(),
        "--global_scheduler_config_type round_robin".into(),
        "--replica_scheduler_config_type sarathi".into(),
        format!("--sarathi_scheduler_config_chunk_size {}", a.chunk_size),
        "--sarathi_scheduler_config_batch_size_cap 128".into(),
        format!("--sarathi_scheduler_config_block_size {}", a.block_size),
        format!("--sarathi_scheduler_config_num_blocks {blocks}"),
        "--request_generator_config_type trace_replay".into(),
        format!(
            "--trace_request_generator_config_trace_file {}",
            trace.display()
        ),
        format!("--trace_request_generator_config_max_tokens {max_tokens}"),
        format!(
            "--random_forrest_execution_time_predictor_config_prediction_max_tokens_per_request {max_tokens}"
        ),
        format!(
            "--random_forrest_execution_time_predictor_config_prediction_max_prefill_chunk_size {}",
            a.chunk_size.max(4096)
        ),
        "--random_forrest_execution_time_predictor_config_num_estimators 250".into(),
        "--random_forrest_execution_time_predictor_config_max_depth 16".into(),
        "--random_forrest_execution_time_predictor_config_min_samples_split 2".into(),
        "--metrics_config_store_token_completion_metrics".into(),
        "--no-metrics_config_store_plots".into(),
    ];
    if let Some(p) = &a.mlp_csv {
        cmd.push(format!(
            "--random_forrest_execution_time_predictor_config_compute_input_file {}",
            p.display()
        ));
    }
    if let Some(p) = &a.attention_csv {
        cmd.push(format!(
            "--random_forrest_execution_time_predictor_config_attention_input_file {}",
            p.display()
        ));
    }
    println!(
        "# Replay of {} ({} requests) in Vidur: sarathi with the server's token budget is the closest\n\
         # Vidur scheduler to continuous batching with chunked prefill; {} KV tokens = {} blocks of {}.\n\
         # Wrote the trace-replay file {}.\n",
        wpath.display(),
        workload.len(),
        a.kv_tokens,
        blocks,
        a.block_size,
        trace.display()
    );
    println!("{}", cmd.join(" \\\n  "));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qwen3_dataclass_has_its_shape() {
        let d = dataclass(&ModelSpec::qwen3_0_6b());
        assert!(
            d.contains("class Qwen3_0_6BModelConfig(Llama2ModelConfig):"),
            "{d}"
        );
        assert!(d.contains("num_layers: int = 28"));
        assert!(d.contains("num_kv_heads: int = 8"));
        assert!(d.contains("mlp_hidden_dim: int = 3072"));
        assert!(d.contains("return \"Qwen/Qwen3-0.6B\""));
    }
}
