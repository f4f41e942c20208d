//! Flag groups shared by several subcommands (`#[command(flatten)]`).

use clap::Args;
use serde::Deserialize;

/// The engine flags of `simfid simulate` and `simfid serve`: what is served, on what, under
/// which scheduler and KV cache. Each is also a key of `simfid simulate --config FILE`.
#[derive(Debug, Default, Clone, Args, Deserialize)]
pub struct EngineArgs {
    /// Model: a built-in name (Qwen/Qwen3-0.6B, meta-llama/Meta-Llama-3-8B, …) or a config.json.
    #[arg(long)]
    pub model: Option<String>,
    /// GPU: a100, h100, h200, a40.
    #[arg(long)]
    pub device: Option<String>,
    /// Replica scheduler: sarathi (default), vllm, orca, faster_transformer, lightllm, hf_cb,
    /// vllm_v1.
    #[arg(long)]
    pub scheduler: Option<String>,
    /// Tensor parallelism.
    #[arg(long)]
    pub tp: Option<u32>,
    /// Sarathi token budget per iteration.
    #[arg(long)]
    pub chunk_size: Option<u32>,
    /// Most resident requests per replica.
    #[arg(long)]
    pub batch_size_cap: Option<u32>,
    /// Tokens per KV block.
    #[arg(long)]
    pub block_size: Option<u32>,
    /// KV blocks per replica (default: Vidur's memory planner).
    #[arg(long)]
    pub num_blocks: Option<u64>,
    /// vLLM/LightLLM token budget.
    #[arg(long)]
    pub max_tokens_in_batch: Option<u32>,
}
