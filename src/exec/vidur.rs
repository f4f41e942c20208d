//! Vidur's per-layer composition of operator times into batch-stage times (Vidur's `vidur/entities/execution_time.py` and
//! `vidur/execution_time_predictor/base_execution_time_predictor.py`).
//!
//! For a batch with `T` tokens (`R` = `T` rounded up to a multiple of 8), per layer in ms:
//!
//! ```text
//! attention = pre_proj(R) + post_proj(R) + rope(R) + kv_cache_save(T)
//!           + decode(B, ceil64(mean kv)) · (1 + 0.1·[B > 1])              (GQA only)
//!           + prefill(Σ ceil64(kv_i), round(√Σc_i²)²) · (1 + 0.1·[n > 1])  (GQA only)
//!           + tp_comm(R) + input_layernorm(R)
//! mlp       = up_proj(R) + down_proj(R) + act(R) + tp_comm(R) + post_attention_layernorm(R)
//! block     = attention + mlp + add(R)
//! stage [s] = (block · layers_per_stage + send_recv(R)·[not last stage]) · 1e-3
//! ```
//!
//! Sums are evaluated in exactly this order so that the floating-point result equals Vidur's.
//! Everything that depends on `R` alone is precomputed into dense arrays (in the same left-to-
//! right order), so a batch costs a handful of loads and adds.

use super::{BatchItem, ExecModel, LinearOp, OpTimes, StageTime};
use crate::error::{Error, Result};
use crate::model::ModelSpec;

/// Settings of Vidur's predictor that shape the lookups (its `execution_time_predictor_config`).
#[derive(Debug, Clone, PartialEq)]
pub struct VidurPredictorConfig {
    /// KV-length granularity of the attention keys (`kv_cache_prediction_granularity`, 64).
    pub kv_granularity: u32,
    /// Largest batch token count predicted (`prediction_max_tokens_per_request`, 4096;
    /// × `prediction_max_batch_size` for orca).
    pub max_tokens: u32,
    /// Largest decode batch predicted (`prediction_max_batch_size`, 128).
    pub max_batch_size: u32,
    /// Largest KV length in the attention grids (`prediction_max_tokens_per_request`, 4096).
    pub max_kv: u32,
    /// Largest prefill chunk predicted (`prediction_max_prefill_chunk_size`, 4096).
    pub max_prefill_chunk: u32,
    /// `attention_decode_batching_overhead_fraction` (0.1; applied to GQA models only).
    pub decode_overhead_fraction: f64,
    /// `attention_prefill_batching_overhead_fraction` (0.1; applied to GQA models only).
    pub prefill_overhead_fraction: f64,
    /// `nccl_cpu_launch_overhead_ms` (0.02).
    pub nccl_cpu_launch_overhead_ms: f64,
    /// `nccl_cpu_skew_overhead_per_device_ms` (0.0).
    pub nccl_cpu_skew_overhead_per_device_ms: f64,
}

impl Default for VidurPredictorConfig {
    fn default() -> Self {
        VidurPredictorConfig {
            kv_granularity: 64,
            max_tokens: 4096,
            max_batch_size: 128,
            max_kv: 4096,
            max_prefill_chunk: 4096,
            decode_overhead_fraction: 0.1,
            prefill_overhead_fraction: 0.1,
            nccl_cpu_launch_overhead_ms: 0.02,
            nccl_cpu_skew_overhead_per_device_ms: 0.0,
        }
    }
}

/// Vidur's execution-time model over any [`OpTimes`] source, precomputed into dense tables.
#[derive(Debug, Clone)]
pub struct VidurModel {
    layers_per_stage: f64,
    num_stages: usize,
    gran: u32,
    max_tokens: u32,
    max_batch: u32,
    max_kv: u32,
    max_chunk: u32,
    /// pre_proj + post_proj + rope, by rounded tokens.
    ppr: Vec<f64>,
    /// TP all-reduce incl. CPU overheads (0 when TP = 1), by rounded tokens.
    tp_comm: Vec<f64>,
    attn_norm: Vec<f64>,
    /// up + down + act + tp_comm + mlp norm, by rounded tokens.
    mlp: Vec<f64>,
    add: Vec<f64>,
    /// send/recv, by rounded tokens (empty when PP = 1).
    send_recv: Vec<f64>,
    /// by unrounded tokens.
    kv_save: Vec<f64>,
    /// `[batch][kv / gran]`, overhead factor applied.
    decode: Vec<f64>,
    /// `[kv / gran][chunk]`, without the multi-prefill overhead factor.
    prefill: Vec<f64>,
    prefill_multi_factor: f64,
}

fn dense<F: Fn(u32) -> Result<f64>>(max: u32, f: F) -> Result<Vec<f64>> {
    let mut v = vec![f64::NAN; max as usize + 1];
    for t in 1..=max {
        v[t as usize] = f(t)?;
    }
    Ok(v)
}

/// Like [`dense`], but a key the source cannot predict becomes NaN (reported when looked up).
fn dense_lenient<F: Fn(u32) -> Result<f64>>(max: u32, f: F) -> Vec<f64> {
    let mut v = vec![f64::NAN; max as usize + 1];
    for t in 1..=max {
        if let Ok(x) = f(t) {
            v[t as usize] = x;
        }
    }
    v
}

impl VidurModel {
    /// Precomputes Vidur's composition for `model` at tensor parallelism `tp` and `pp` pipeline
    /// stages from per-operator times `ops`.
    pub fn new(
        ops: &dyn OpTimes,
        model: &ModelSpec,
        tp: u32,
        pp: u32,
        cfg: &VidurPredictorConfig,
    ) -> Result<VidurModel> {
        if pp == 0 || tp == 0 || !model.num_layers.is_multiple_of(pp) {
            return Err(Error::Exec(format!(
                "{} layers cannot be split into {pp} pipeline stages",
                model.num_layers
            )));
        }
        let gqa = model.num_q_heads > model.num_kv_heads;
        let max_t = cfg.max_tokens.div_ceil(8) * 8;
        // Linear ops are only ever looked up at multiples of 8, but Vidur's grid is every
        // integer, so fill every integer and look up at R.
        let lin = |op| dense_lenient(max_t, |t| ops.linear(op, t));
        let pre = lin(LinearOp::AttnPreProj);
        let post = lin(LinearOp::AttnPostProj);
        let rope = lin(LinearOp::AttnRope);
        let up = lin(LinearOp::MlpUpProj);
        let down = lin(LinearOp::MlpDownProj);
        let act = lin(LinearOp::MlpAct);
        let in_norm = lin(LinearOp::InputLayernorm);
        let post_norm = if model.post_attn_norm {
            lin(LinearOp::PostAttentionLayernorm)
        } else {
            vec![0.0; max_t as usize + 1]
        };
        let add = lin(LinearOp::Add);
        let tp_comm = if tp == 1 {
            vec![0.0; max_t as usize + 1]
        } else {
            let skew = cfg.nccl_cpu_skew_overhead_per_device_ms * (tp as f64).powf(1.25);
            dense(max_t, |t| {
                Ok(ops.all_reduce(t)? + cfg.nccl_cpu_launch_overhead_ms + skew)
            })?
        };
        let send_recv = if pp == 1 {
            Vec::new()
        } else {
            dense_lenient(max_t, |t| ops.send_recv(t))
        };
        let n = max_t as usize + 1;
        let mut ppr = vec![f64::NAN; n];
        let mut mlp = vec![f64::NAN; n];
        for t in 0..n {
            ppr[t] = pre[t] + post[t] + rope[t];
            mlp[t] = up[t] + down[t] + act[t] + tp_comm[t] + post_norm[t];
        }
        let kv_save = dense_lenient(max_t, |t| ops.kv_cache_save(t));

        let gran = cfg.kv_granularity.max(1);
        let nkv = (cfg.max_kv / gran) as usize + 1;
        let dec_frac = if gqa {
            cfg.decode_overhead_fraction
        } else {
            0.0
        };
        let mut decode = vec![f64::NAN; (cfg.max_batch_size as usize + 1) * nkv];
        for b in 1..=cfg.max_batch_size {
            let factor = 1.0 + dec_frac * ((b > 1) as u8 as f64);
            for k in 0..nkv {
                if let Ok(x) = ops.attn_decode(b, k as u32 * gran) {
                    decode[b as usize * nkv + k] = x * factor;
                }
            }
        }
        let nch = cfg.max_prefill_chunk as usize + 1;
        let mut prefill = vec![f64::NAN; nkv * nch];
        for k in 0..nkv {
            for c in 1..nch {
                if let Ok(x) = ops.attn_prefill(k as u32 * gran, (c * c) as u64) {
                    prefill[k * nch + c] = x;
                }
            }
        }
        let pre_frac = if gqa {
            cfg.prefill_overhead_fraction
        } else {
            0.0
        };
        Ok(VidurModel {
            layers_per_stage: (model.num_layers / pp) as f64,
            num_stages: pp as usize,
            gran,
            max_tokens: max_t,
            max_batch: cfg.max_batch_size,
            max_kv: cfg.max_kv,
            max_chunk: cfg.max_prefill_chunk,
            ppr,
            tp_comm,
            attn_norm: in_norm,
            mlp,
            add,
            send_recv,
            kv_save,
            decode,
            prefill,
            prefill_multi_factor: 1.0 + pre_frac,
        })
    }

    fn out_of_range(what: &str, key: impl std::fmt::Display) -> Error {
        Error::OutOfRange {
            what: format!("{what} at {key}"),
        }
    }

    fn at(table: &[f64], i: usize, what: &str) -> Result<f64> {
        match table.get(i) {
            Some(v) if !v.is_nan() => Ok(*v),
            _ => Err(Self::out_of_range(what, format!("num_tokens={i}"))),
        }
    }

    /// Model time of one stage in ms before the `× 1e-3` (exposed for tests).
    fn stage_ms(&self, batch: &[BatchItem], stage: usize) -> Result<f64> {
        let mut total: u32 = 0;
        let mut n_dec: u32 = 0;
        let mut dec_kv_sum: u64 = 0;
        let mut n_pre: u32 = 0;
        let mut pre_kv: u64 = 0;
        let mut pre_sq: u64 = 0;
        let g = self.gran as u64;
        for it in batch {
            total += it.num_tokens;
            if it.prefill_complete {
                n_dec += 1;
                dec_kv_sum += it.processed_tokens as u64;
            } else {
                n_pre += 1;
                pre_kv += (it.processed_tokens as u64).div_ceil(g) * g;
                pre_sq += it.num_tokens as u64 * it.num_tokens as u64;
            }
        }
        let r = total.div_ceil(8) * 8;
        if r > self.max_tokens {
            return Err(Self::out_of_range("linear ops", format!("num_tokens={r}")));
        }
        let r = r as usize;
        let decode = if n_dec == 0 {
            0.0
        } else {
            // Vidur: int(np.mean(kv)) rounded up to the granularity.
            let mean = (dec_kv_sum as f64 / n_dec as f64) as u64;
            let kv = mean.div_ceil(g) * g;
            if n_dec > self.max_batch || kv > self.max_kv as u64 {
                return Err(Self::out_of_range(
                    "attn_decode",
                    format!("batch_size={n_dec}, kv_cache_size={kv}"),
                ));
            }
            let nkv = (self.max_kv / self.gran) as usize + 1;
            Self::at(
                &self.decode,
                n_dec as usize * nkv + (kv / g) as usize,
                "attn_decode",
            )?
        };
        let prefill = if n_pre == 0 {
            0.0
        } else {
            let c = (pre_sq as f64).sqrt().round_ties_even() as u64;
            if pre_kv > self.max_kv as u64 || c > self.max_chunk as u64 {
                return Err(Self::out_of_range(
                    "attn_prefill",
                    format!("kv_cache_size={pre_kv}, prefill_chunk_size={c}"),
                ));
            }
            let nch = self.max_chunk as usize + 1;
            let x = Self::at(
                &self.prefill,
                (pre_kv / g) as usize * nch + c as usize,
                "attn_prefill",
            )?;
            if n_pre > 1 {
                x * self.prefill_multi_factor
            } else {
                x * 1.0
            }
        };
        let kv_save = Self::at(&self.kv_save, total as usize, "attn_kv_cache_save")?;
        let attn = Self::at(&self.ppr, r, "attention projections")?
            + kv_save
            + decode
            + prefill
            + self.tp_comm[r]
            + Self::at(&self.attn_norm, r, "input_layernorm")?;
        let block = attn + Self::at(&self.mlp, r, "mlp")? + Self::at(&self.add, r, "add")?;
        let pp = if stage + 1 == self.num_stages {
            0.0
        } else {
            Self::at(&self.send_recv, r, "send_recv")?
        };
        Ok(block * self.layers_per_stage + pp)
    }
}

impl ExecModel for VidurModel {
    fn stage_time(&self, batch: &[BatchItem], stage: usize) -> Result<StageTime> {
        let model_s = self.stage_ms(batch, stage)? * 1e-3;
        Ok(StageTime {
            total_s: model_s,
            model_s,
        })
    }
}
