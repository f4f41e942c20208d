//! Execution-time models: how long one iteration (a batch on one pipeline stage) takes.
//!
//! The simulator asks an [`ExecModel`] for the time of each batch stage. simfid ships:
//! - [`vidur::VidurModel`]: Vidur's per-layer composition (`vidur/entities/execution_time.py`) over per-operator times
//!   from any [`OpTimes`] source, precomputed into dense tables so a lookup costs a few loads:
//!   - [`tables::PredictionTables`]: Vidur's own exported prediction tables (exact lookups,
//!     bit-level parity with Vidur);
//!   - [`profile::OpProfile`]: Vidur-format operator profiles (`mlp.csv`, `attention.csv`,
//!     `all_reduce.csv`, `send_recv.csv`) with simfid's own interpolation;
//! - [`roofline::Roofline`]: peak FLOP/s and bandwidth of the device, for what-ifs with no
//!   profile (the built-in default of `simfid simulate`).

pub mod profile;
pub mod roofline;
mod spec;
pub mod step;
pub mod tables;
pub mod vidur;

pub use spec::ExecSpec;

use crate::error::Result;

/// Time of one batch stage, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StageTime {
    /// Wall time of the stage including modelled CPU overheads (Vidur: `total_time`).
    pub total_s: f64,
    /// GPU model time only (Vidur: `model_time`).
    pub model_s: f64,
}

/// One request's part in a batch, as an execution-time model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchItem {
    /// Tokens this request contributes to the iteration (a prefill chunk, or 1 when decoding).
    pub num_tokens: u32,
    /// Tokens of this request already processed before this iteration (its KV-cache length).
    pub processed_tokens: u32,
    /// Whether the request's prefill was complete when the iteration was formed (a decode).
    pub prefill_complete: bool,
}

/// A model of batch-stage execution time.
pub trait ExecModel {
    /// Time of `batch` on pipeline stage `stage` (0-based) of `num_stages`.
    fn stage_time(&self, batch: &[BatchItem], stage: usize) -> Result<StageTime>;
}

/// Vidur's per-layer linear operators, each predicted from the batch's token count rounded up
/// to a multiple of 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LinearOp {
    /// QKV projection (`attn_pre_proj`).
    AttnPreProj,
    /// Output projection (`attn_post_proj`).
    AttnPostProj,
    /// Rotary embedding (`attn_rope`).
    AttnRope,
    /// MLP up (+gate) projection (`mlp_up_proj`).
    MlpUpProj,
    /// MLP down projection (`mlp_down_proj`).
    MlpDownProj,
    /// MLP activation (`mlp_act`).
    MlpAct,
    /// Norm before attention (`input_layernorm`).
    InputLayernorm,
    /// Norm before the MLP (`post_attention_layernorm`).
    PostAttentionLayernorm,
    /// Residual add (`add`).
    Add,
}

impl LinearOp {
    /// Every linear op, in a fixed order.
    pub const ALL: [LinearOp; 9] = [
        LinearOp::AttnPreProj,
        LinearOp::AttnPostProj,
        LinearOp::AttnRope,
        LinearOp::MlpUpProj,
        LinearOp::MlpDownProj,
        LinearOp::MlpAct,
        LinearOp::InputLayernorm,
        LinearOp::PostAttentionLayernorm,
        LinearOp::Add,
    ];

    /// Vidur's name of the op (the profile column and prediction-table file stem).
    pub fn name(self) -> &'static str {
        match self {
            LinearOp::AttnPreProj => "attn_pre_proj",
            LinearOp::AttnPostProj => "attn_post_proj",
            LinearOp::AttnRope => "attn_rope",
            LinearOp::MlpUpProj => "mlp_up_proj",
            LinearOp::MlpDownProj => "mlp_down_proj",
            LinearOp::MlpAct => "mlp_act",
            LinearOp::InputLayernorm => "input_layernorm",
            LinearOp::PostAttentionLayernorm => "post_attention_layernorm",
            LinearOp::Add => "add",
        }
    }
}

/// Per-layer operator times in **milliseconds**, keyed exactly as Vidur's predictor looks them
/// up (`vidur/execution_time_predictor/sklearn_execution_time_predictor.py`). Out-of-range keys return [`crate::Error::OutOfRange`].
pub trait OpTimes {
    /// A linear op at `tokens` = batch tokens rounded up to a multiple of 8.
    fn linear(&self, op: LinearOp, tokens: u32) -> Result<f64>;
    /// KV-cache save at the unrounded batch token count.
    fn kv_cache_save(&self, tokens: u32) -> Result<f64>;
    /// Decode attention for `batch_size` decodes with mean KV length `kv` (a multiple of the
    /// KV granularity, 64 by default).
    fn attn_decode(&self, batch_size: u32, kv: u32) -> Result<f64>;
    /// Prefill attention at aggregated KV length `kv` (sum of per-request ceil-64 KV) and
    /// `chunk_sq` = round(sqrt(sum of squared chunk sizes))^2.
    fn attn_prefill(&self, kv: u32, chunk_sq: u64) -> Result<f64>;
    /// Tensor-parallel all-reduce at rounded `tokens` (only asked for when TP > 1).
    fn all_reduce(&self, tokens: u32) -> Result<f64>;
    /// Pipeline-parallel send/recv at rounded `tokens` (only asked for when PP > 1).
    fn send_recv(&self, tokens: u32) -> Result<f64>;
}
