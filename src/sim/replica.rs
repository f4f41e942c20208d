//! A replica's scheduling state shared by every replica scheduler (Vidur's
//! `BaseReplicaScheduler` in `vidur/scheduler/replica_scheduler/base_replica_scheduler.py`): waiting queue, running list, KV-block accounting,
//! and one FIFO per pipeline stage.

use std::collections::VecDeque;

use super::config::SimConfig;
use super::request::Request;
use crate::error::{Error, Result};

/// Python's float floor division (`a // b` for floats), as Vidur's memory planner uses it.
fn py_floordiv(a: f64, b: f64) -> f64 {
    let m = a % b;
    let mut div = (a - m) / b;
    if m != 0.0 && ((b < 0.0) != (m < 0.0)) {
        div -= 1.0;
    }
    if div != 0.0 {
        let f = div.floor();
        if div - f > 0.5 { f + 1.0 } else { f }
    } else {
        0.0_f64.copysign(a / b)
    }
}

/// What Vidur's memory planner derives for a replica (`vidur/scheduler/utils/memory_planner.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Requests of `max_tokens` that fit on one device (`get_max_batch_size`).
    pub max_batch_size: u64,
    /// KV blocks of the replica (`num_blocks`, unless pinned by configuration).
    pub num_blocks: u64,
}

/// Vidur's memory planner: parameters and per-request KV bytes against device memory.
pub fn memory_plan(cfg: &SimConfig) -> Result<MemoryPlan> {
    let model = &cfg.model;
    let tp = cfg.tensor_parallel_size;
    let pp = cfg.num_pipeline_stages;
    let params = model.params_per_device(tp, pp);
    let kv_per_request = 2
        * 2
        * model.head_dim as u64
        * model.num_kv_heads.div_ceil(tp) as u64
        * cfg.max_request_tokens as u64
        * model.num_layers as u64;
    let available =
        cfg.device.total_memory_gb as f64 * 1024f64.powi(3) * (1.0 - cfg.memory_margin_fraction);
    let for_kv = available - (2 * params) as f64;
    let n = py_floordiv(for_kv, kv_per_request as f64);
    if n <= 0.0 || !n.is_finite() {
        return Err(Error::Config(format!(
            "not enough memory to store even a single request: {} GB on {}, {:.2} GB of weights \
             per device, {:.3} GB of KV cache per request of {} tokens",
            cfg.device.total_memory_gb,
            cfg.device.name,
            (2 * params) as f64 / 1e9,
            kv_per_request as f64 / 1e9,
            cfg.max_request_tokens
        )));
    }
    let max_batch_size = n as u64;
    let max_blocks_per_seq = (cfg.max_request_tokens / cfg.scheduler.block_size) as u64;
    Ok(MemoryPlan {
        max_batch_size,
        num_blocks: max_blocks_per_seq * max_batch_size * pp as u64,
    })
}

/// One pipeline stage: a FIFO of batches, one running at a time.
#[derive(Debug, Default)]
pub(crate) struct Stage {
    pub queue: VecDeque<u32>,
    pub busy: bool,
}

/// Scheduling state of one replica.
#[derive(Debug)]
pub(crate) struct Replica {
    pub waiting: VecDeque<u32>,
    /// Requests resident on the replica between iterations (Vidur's `_preempted_requests`).
    pub running: VecDeque<u32>,
    pub num_blocks: u64,
    pub allocated: u64,
    pub num_in_map: usize,
    pub block_size: u64,
    pub batch_size_cap: usize,
    pub max_micro_batch_size: usize,
    pub max_batch_size: usize,
    pub max_blocks_per_sequence: u64,
    pub watermark_blocks: u64,
    pub chunk_size: i64,
    pub max_tokens_in_batch: u64,
    pub num_running_batches: usize,
    pub stages: Vec<Stage>,
}

impl Replica {
    pub fn new(cfg: &SimConfig, plan: &MemoryPlan) -> Replica {
        let s = &cfg.scheduler;
        let num_stages = cfg.num_pipeline_stages as usize;
        let num_blocks = s.num_blocks.unwrap_or(plan.num_blocks);
        Replica {
            waiting: VecDeque::new(),
            running: VecDeque::new(),
            num_blocks,
            allocated: 0,
            num_in_map: 0,
            block_size: s.block_size as u64,
            batch_size_cap: s.batch_size_cap as usize,
            max_micro_batch_size: s.batch_size_cap as usize / num_stages,
            max_batch_size: (plan.max_batch_size as usize).min(s.batch_size_cap as usize),
            max_blocks_per_sequence: (cfg.max_request_tokens / s.block_size) as u64,
            watermark_blocks: (s.watermark_blocks_fraction * num_blocks as f64) as u64,
            chunk_size: s.chunk_size as i64,
            max_tokens_in_batch: s.max_tokens_in_batch as u64,
            num_running_batches: 0,
            stages: (0..num_stages).map(|_| Stage::default()).collect(),
        }
    }

    pub fn can_allocate(&self, blocks: u64) -> bool {
        self.num_blocks - self.allocated >= blocks
    }

    pub fn allocate(&mut self, r: &mut Request, blocks: u64) {
        self.allocated += blocks;
        match &mut r.blocks {
            Some(b) => *b += blocks,
            None => {
                r.blocks = Some(blocks);
                self.num_in_map += 1;
            }
        }
        debug_assert!(self.allocated <= self.num_blocks);
    }

    pub fn free(&mut self, r: &mut Request) {
        if let Some(b) = r.blocks.take() {
            self.allocated -= b;
            self.num_in_map -= 1;
        }
    }

    /// Whether nothing is queued, resident or in flight (Vidur's `is_empty`; the engine also
    /// asks the scheduler, which may hold requests of its own).
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
            && self.num_in_map == 0
            && self.stages.iter().all(|s| s.queue.is_empty())
    }

    /// Blocks a new request needs for its prompt (vllm/sarathi admission).
    pub fn prompt_blocks(&self, r: &Request) -> u64 {
        (r.prefill as u64).div_ceil(self.block_size)
    }

    /// vllm/sarathi `_can_allocate_request`.
    pub fn can_allocate_request(&self, r: &Request) -> bool {
        if r.blocks.is_none() {
            let need = self.prompt_blocks(r);
            // num_blocks - allocated - need >= watermark, in signed arithmetic.
            (self.num_blocks as i64 - self.allocated as i64 - need as i64)
                >= self.watermark_blocks as i64
        } else {
            self.num_blocks - self.allocated >= 1
        }
    }

    /// vllm/sarathi `_allocate_request`.
    pub fn allocate_request(&mut self, r: &mut Request) -> Result<()> {
        match r.blocks {
            None => {
                let need = self.prompt_blocks(r);
                self.allocate(r, need);
            }
            Some(b) => {
                let reserved = b * self.block_size;
                let required = (r.processed as u64).saturating_sub(reserved);
                match required {
                    0 => {}
                    1 => self.allocate(r, 1),
                    _ => {
                        return Err(Error::Config(format!(
                            "request {} needs {required} more KV slots in one iteration",
                            r.id
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floordiv_matches_python() {
        assert_eq!(py_floordiv(7.0, 2.0), 3.0);
        assert_eq!(py_floordiv(-7.0, 2.0), -4.0);
        assert_eq!(py_floordiv(63350000000.5, 536870912.0), 117.0);
    }
}
