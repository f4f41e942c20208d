//! [`OpProfile`]: the profiles of one model and parallel layout, loaded and answering
//! [`OpTimes`] queries over a [`PredictionGrid`].

use std::path::PathBuf;

use super::interpolate::{Curve, Surface};
use super::read::{CollectiveFilter, load_attention, load_collective, load_mlp};
use crate::error::{Error, Result};
use crate::exec::vidur::VidurPredictorConfig;
use crate::exec::{LinearOp, OpTimes};
use crate::model::{ModelSpec, NodeSpec};

/// The profile files of one device, model and node type (Vidur's `{compute,attention,
/// all_reduce,send_recv}_input_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileFiles {
    /// `mlp.csv`: linear layers, norms, rope and residual add per token count.
    pub mlp: PathBuf,
    /// `attention.csv`: prefill and decode attention (current or historic layout).
    pub attention: PathBuf,
    /// `all_reduce.csv` of the node type; needed when `tp > 1`.
    pub all_reduce: Option<PathBuf>,
    /// `send_recv.csv` of the node type; needed when `pp > 1`.
    pub send_recv: Option<PathBuf>,
}

/// The key ranges Vidur tabulates its predictions over (the grids of Vidur's `vidur/execution_time_predictor/sklearn_execution_time_predictor.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PredictionGrid {
    /// Largest token count of the linear ops, `kv_cache_save` and the collectives
    /// (`prediction_max_tokens_per_request`, × `prediction_max_batch_size` for Orca).
    pub max_tokens: u32,
    /// Largest decode batch (`prediction_max_batch_size`).
    pub max_batch_size: u32,
    /// Largest KV-cache length of the attention tables (`prediction_max_tokens_per_request`).
    pub max_kv_cache_size: u32,
    /// Step of the tabulated KV-cache lengths (`kv_cache_prediction_granularity`).
    pub kv_granularity: u32,
    /// Largest prefill chunk (`prediction_max_prefill_chunk_size`).
    pub max_prefill_chunk_size: u32,
}

impl Default for PredictionGrid {
    /// Vidur's defaults: 4096 tokens, batch 128, kv 0..=4096 step 64, chunk 4096.
    fn default() -> Self {
        PredictionGrid {
            max_tokens: 4096,
            max_batch_size: 128,
            max_kv_cache_size: 4096,
            kv_granularity: 64,
            max_prefill_chunk_size: 4096,
        }
    }
}

impl From<&VidurPredictorConfig> for PredictionGrid {
    /// The grid a [`VidurModel`](crate::exec::vidur::VidurModel) with this configuration
    /// tabulates.
    fn from(cfg: &VidurPredictorConfig) -> Self {
        PredictionGrid {
            max_tokens: cfg.max_tokens,
            max_batch_size: cfg.max_batch_size,
            max_kv_cache_size: cfg.max_kv,
            kv_granularity: cfg.kv_granularity,
            max_prefill_chunk_size: cfg.max_prefill_chunk,
        }
    }
}

/// Per-operator times interpolated from Vidur-format operator profiles (see the module docs).
#[derive(Debug, Clone)]
pub struct OpProfile {
    /// Indexed like [`LinearOp::ALL`].
    linear: Vec<Curve>,
    kv_cache_save: Curve,
    /// Rows keyed by batch size, each over kv.
    decode: Surface,
    /// Rows keyed by chunk², each over kv.
    prefill: Surface,
    all_reduce: Option<Curve>,
    send_recv: Option<Curve>,
    grid: PredictionGrid,
}

impl OpProfile {
    /// Reads the profiles for `model` at tensor parallelism `tp` and pipeline parallelism
    /// `pp`, with KV-cache blocks of `block_size` tokens on nodes of type `node`. The
    /// all-reduce profile is read only when `tp > 1`, the send/recv profile only when
    /// `pp > 1`; each is then required. Queries answer over [`PredictionGrid::default`].
    pub fn load(
        files: &ProfileFiles,
        model: &ModelSpec,
        tp: u32,
        pp: u32,
        block_size: u32,
        node: &NodeSpec,
    ) -> Result<OpProfile> {
        if tp == 0 || pp == 0 {
            return Err(Error::Exec(format!(
                "tensor parallelism ({tp}) and pipeline parallelism ({pp}) must be at least 1"
            )));
        }
        let workers = tp * pp;
        let per_node = node.num_devices_per_node;
        if per_node == 0 || (workers >= per_node && !workers.is_multiple_of(per_node)) {
            return Err(Error::Exec(format!(
                "{workers} workers (tp {tp} × pp {pp}) must be fewer than or a multiple of the \
                 {per_node} devices per node of {}",
                node.name
            )));
        }
        let multi_node = workers > per_node;

        let linear = load_mlp(&files.mlp, model, tp)?;
        let (kv_cache_save, decode, prefill) =
            load_attention(&files.attention, model, tp, block_size)?;
        let all_reduce = if tp > 1 {
            let path = files.all_reduce.as_deref().ok_or_else(|| {
                Error::Exec(format!(
                    "tensor parallelism {tp} needs an all_reduce profile"
                ))
            })?;
            let filter = CollectiveFilter {
                collective: "all_reduce",
                num_workers: Some(tp),
                devices_per_node: tp,
            };
            Some(load_collective(path, model, &filter)?)
        } else {
            None
        };
        let send_recv = if pp > 1 {
            let path = files.send_recv.as_deref().ok_or_else(|| {
                Error::Exec(format!(
                    "pipeline parallelism {pp} needs a send_recv profile"
                ))
            })?;
            let filter = CollectiveFilter {
                collective: "send_recv",
                num_workers: None,
                devices_per_node: if multi_node { 1 } else { 2 },
            };
            Some(load_collective(path, model, &filter)?)
        } else {
            None
        };
        Ok(OpProfile {
            linear,
            kv_cache_save,
            decode,
            prefill,
            all_reduce,
            send_recv,
            grid: PredictionGrid::default(),
        })
    }

    /// The same profile answering over `grid` instead (e.g. Vidur's wider token range for
    /// Orca).
    pub fn with_grid(mut self, grid: PredictionGrid) -> OpProfile {
        self.grid = grid;
        self
    }

    /// The key ranges this profile answers.
    pub fn grid(&self) -> &PredictionGrid {
        &self.grid
    }

    fn check_tokens(&self, what: &str, tokens: u32) -> Result<()> {
        if tokens == 0 || tokens > self.grid.max_tokens {
            return Err(Error::OutOfRange {
                what: format!(
                    "{what} at {tokens} tokens (profile answers 1..={})",
                    self.grid.max_tokens
                ),
            });
        }
        Ok(())
    }
}

impl OpTimes for OpProfile {
    fn linear(&self, op: LinearOp, tokens: u32) -> Result<f64> {
        self.check_tokens(op.name(), tokens)?;
        Ok(self.linear[linear_index(op)].eval(tokens as f64))
    }

    fn kv_cache_save(&self, tokens: u32) -> Result<f64> {
        self.check_tokens("attn_kv_cache_save", tokens)?;
        Ok(self.kv_cache_save.eval(tokens as f64))
    }

    fn attn_decode(&self, batch_size: u32, kv: u32) -> Result<f64> {
        let g = &self.grid;
        if batch_size == 0 || batch_size > g.max_batch_size || kv > g.max_kv_cache_size {
            return Err(Error::OutOfRange {
                what: format!(
                    "attn_decode at batch_size {batch_size}, kv_cache_size {kv} (profile \
                     answers batch 1..={}, kv 0..={})",
                    g.max_batch_size, g.max_kv_cache_size
                ),
            });
        }
        Ok(self.decode.eval(batch_size as f64, kv as f64))
    }

    fn attn_prefill(&self, kv: u32, chunk_sq: u64) -> Result<f64> {
        let g = &self.grid;
        let max_sq = u64::from(g.max_prefill_chunk_size).pow(2);
        if chunk_sq == 0 || chunk_sq > max_sq || kv > g.max_kv_cache_size {
            return Err(Error::OutOfRange {
                what: format!(
                    "attn_prefill at kv_cache_size {kv}, prefill_chunk_size² {chunk_sq} \
                     (profile answers kv 0..={}, chunk² 1..={max_sq})",
                    g.max_kv_cache_size
                ),
            });
        }
        Ok(self.prefill.eval(chunk_sq as f64, kv as f64))
    }

    fn all_reduce(&self, tokens: u32) -> Result<f64> {
        self.check_tokens("all_reduce", tokens)?;
        match &self.all_reduce {
            Some(c) => Ok(c.eval(tokens as f64)),
            None => Err(Error::OutOfRange {
                what: format!("all_reduce at {tokens} tokens (no all-reduce profile: tp = 1)"),
            }),
        }
    }

    fn send_recv(&self, tokens: u32) -> Result<f64> {
        self.check_tokens("send_recv", tokens)?;
        match &self.send_recv {
            Some(c) => Ok(c.eval(tokens as f64)),
            None => Err(Error::OutOfRange {
                what: format!("send_recv at {tokens} tokens (no send/recv profile: pp = 1)"),
            }),
        }
    }
}

fn linear_index(op: LinearOp) -> usize {
    LinearOp::ALL
        .iter()
        .position(|&o| o == op)
        .expect("LinearOp::ALL lists every op")
}
