//! A roofline execution-time model: what the hardware could do at best, scaled by
//! efficiencies. For what-if questions when no profile of the model/GPU pair exists; it knows
//! nothing of the serving framework's per-step overhead beyond a constant you give it.
//!
//! Per stage, for `L` layers of this stage:
//! - FLOPs: `2 · T · P_stage` (weights) + attention `Σ 4 · L · H_q · d · c_i · (kv_i + c_i)`
//!   (+ the LM head `2 · B · E · V` on the last stage, one token per request);
//! - bytes: weights `2 · P_stage` + KV read `Σ kv_i · kv_bytes_per_token` + KV written
//!   `T · kv_bytes_per_token` (+ LM head weights on the last stage);
//! - time = `max(FLOPs / (peak · flop_eff), bytes / (bandwidth · bw_eff)) + overhead`.

use super::{BatchItem, ExecModel, StageTime};
use crate::error::{Error, Result};
use crate::model::{DeviceSpec, ModelSpec};

/// The roofline model; see the module docs for the formula.
#[derive(Debug, Clone, PartialEq)]
pub struct Roofline {
    params_per_stage: f64,
    kv_bytes_per_token_stage: f64,
    attn_flops_per_pair: f64,
    lm_head_params: f64,
    peak_flops: f64,
    bandwidth: f64,
    num_stages: usize,
    /// Fraction of peak FLOP/s reached (default 0.5).
    pub flop_efficiency: f64,
    /// Fraction of peak bandwidth reached (default 0.7).
    pub bandwidth_efficiency: f64,
    /// Constant per-iteration overhead in seconds (default 0).
    pub overhead_s: f64,
}

impl Roofline {
    /// A roofline for `model` on `device` at tensor parallelism `tp` and `pp` stages.
    pub fn new(model: &ModelSpec, device: &DeviceSpec, tp: u32, pp: u32) -> Result<Roofline> {
        if tp == 0 || pp == 0 || !model.num_layers.is_multiple_of(pp) {
            return Err(Error::Exec(format!(
                "roofline: {} layers cannot be split into {pp} stages",
                model.num_layers
            )));
        }
        let layers = (model.num_layers / pp) as f64;
        Ok(Roofline {
            params_per_stage: model.params_per_device(tp, pp) as f64,
            kv_bytes_per_token_stage: model.kv_bytes_per_token(tp) as f64 / pp as f64,
            attn_flops_per_pair: 4.0
                * layers
                * (model.num_q_heads / tp) as f64
                * model.head_dim as f64,
            lm_head_params: model.embedding_dim as f64 * model.vocab_size as f64 / tp as f64,
            peak_flops: device.fp16_tflops * 1e12,
            bandwidth: device.hbm_gbps * 1e9,
            num_stages: pp as usize,
            flop_efficiency: 0.5,
            bandwidth_efficiency: 0.7,
            overhead_s: 0.0,
        })
    }
}

impl ExecModel for Roofline {
    fn stage_time(&self, batch: &[BatchItem], stage: usize) -> Result<StageTime> {
        let tokens: f64 = batch.iter().map(|b| b.num_tokens as f64).sum();
        let mut flops = 2.0 * tokens * self.params_per_stage;
        let mut bytes = 2.0 * self.params_per_stage + tokens * self.kv_bytes_per_token_stage;
        for b in batch {
            let (c, kv) = (b.num_tokens as f64, b.processed_tokens as f64);
            flops += self.attn_flops_per_pair * c * (kv + c);
            bytes += kv * self.kv_bytes_per_token_stage;
        }
        if stage + 1 == self.num_stages {
            flops += 2.0 * batch.len() as f64 * self.lm_head_params;
            bytes += 2.0 * self.lm_head_params;
        }
        let t = (flops / (self.peak_flops * self.flop_efficiency))
            .max(bytes / (self.bandwidth * self.bandwidth_efficiency))
            + self.overhead_s;
        Ok(StageTime {
            total_s: t,
            model_s: t,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(n: u32, kv: u32) -> Vec<BatchItem> {
        (0..n)
            .map(|_| BatchItem {
                num_tokens: 1,
                processed_tokens: kv,
                prefill_complete: true,
            })
            .collect()
    }

    #[test]
    fn decode_is_memory_bound_and_grows_with_context() {
        let m = ModelSpec::qwen3_0_6b();
        let r = Roofline::new(&m, &DeviceSpec::builtin("h100").unwrap(), 1, 1).unwrap();
        let short = r.stage_time(&decode(8, 128), 0).unwrap().total_s;
        let long = r.stage_time(&decode(8, 8192), 0).unwrap().total_s;
        assert!(short > 0.0 && long > short);
        // Weights of ~0.6 B params in bf16 at 0.7 × 3.35 TB/s: about 0.5 ms.
        assert!((2e-4..2e-3).contains(&short), "{short}");
    }

    #[test]
    fn prefill_is_compute_bound() {
        let m = ModelSpec::builtin("meta-llama/Meta-Llama-3-8B").unwrap();
        let r = Roofline::new(&m, &DeviceSpec::builtin("a100").unwrap(), 1, 1).unwrap();
        let one = [BatchItem {
            num_tokens: 2048,
            processed_tokens: 0,
            prefill_complete: false,
        }];
        let t = r.stage_time(&one, 0).unwrap().total_s;
        // 2 · 2048 · 7 G params ≈ 28.6 TFLOP at 156 TFLOP/s ≈ 0.18 s.
        assert!((0.1..0.4).contains(&t), "{t}");
    }
}
