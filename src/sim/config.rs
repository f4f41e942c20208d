//! Simulation configuration: cluster shape, schedulers and their knobs.

use serde::{Deserialize, Serialize};

pub use super::registry::ReplicaSchedulerKind;
use crate::error::{Error, Result};
use crate::model::{DeviceSpec, ModelSpec};

/// How requests are routed to replicas (`vidur/scheduler/global_scheduler/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GlobalSchedulerKind {
    /// `counter % num_replicas`.
    RoundRobin,
    /// Least outstanding (waiting) requests, lowest id on ties.
    Lor,
    /// Uniformly random replica (CPython `random.randint`, continuing Vidur's global stream).
    Random,
}

impl GlobalSchedulerKind {
    /// Parses Vidur's name (`round_robin`, `lor`, `random`).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "round_robin" => Ok(Self::RoundRobin),
            "lor" => Ok(Self::Lor),
            "random" => Ok(Self::Random),
            _ => Err(Error::UnknownScheduler {
                what: "global",
                name: s.to_string(),
                known: "round_robin, lor, random".into(),
            }),
        }
    }
}

/// Replica-scheduler knobs (Vidur's `*_scheduler_config_*` flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerConfig {
    /// Which scheduler.
    pub kind: ReplicaSchedulerKind,
    /// Most requests resident on a replica (`batch_size_cap`, 128).
    pub batch_size_cap: u32,
    /// Tokens per KV block (`block_size`, 16).
    pub block_size: u32,
    /// Fraction of blocks kept free at admission (`watermark_blocks_fraction`, 0.01).
    pub watermark_blocks_fraction: f64,
    /// KV blocks per replica; `None` = from the memory planner.
    pub num_blocks: Option<u64>,
    /// Sarathi's per-iteration token budget (`chunk_size`, 512).
    pub chunk_size: u32,
    /// vLLM / LightLLM token budget (`max_tokens_in_batch`, 4096).
    pub max_tokens_in_batch: u32,
    /// LightLLM: decode iterations between prefill attempts (`max_waiting_iters`, 10).
    pub max_waiting_iters: u32,
    /// hf_cb: fraction of blocks below which only decodes are scheduled (0.15 for FIFO).
    #[serde(default = "default_safety_margin")]
    pub safety_margin: f64,
    /// hf_cb: most requests in one step (`max_requests_per_batch`, 1024).
    #[serde(default = "default_max_requests")]
    pub max_requests_per_batch: u32,
}

fn default_safety_margin() -> f64 {
    0.15
}

fn default_max_requests() -> u32 {
    1024
}

impl SchedulerConfig {
    /// Vidur's defaults for `kind`; for `hf_cb`, the configuration of this project's goldens
    /// (`transformers serve --continuous-batching --cb-num-blocks 512 --cb-max-batch-tokens
    /// 2048`: 512 blocks of 256 tokens, 2048 tokens per step).
    pub fn new(kind: ReplicaSchedulerKind) -> Self {
        let hf = kind == ReplicaSchedulerKind::HfCb;
        if kind == ReplicaSchedulerKind::VllmV1 {
            // vLLM 0.24's scheduler with this project's goldens' flags: 256 sequences, 512
            // tokens per step, blocks of 16; the KV capacity from the memory planner unless
            // pinned (a preset pins the server's reported cache).
            return SchedulerConfig {
                kind,
                batch_size_cap: 256,
                block_size: 16,
                watermark_blocks_fraction: 0.0,
                num_blocks: None,
                chunk_size: 512,
                max_tokens_in_batch: 512,
                max_waiting_iters: 10,
                safety_margin: default_safety_margin(),
                max_requests_per_batch: default_max_requests(),
            };
        }
        SchedulerConfig {
            kind,
            batch_size_cap: if hf { 1024 } else { 128 },
            block_size: if hf { 256 } else { 16 },
            watermark_blocks_fraction: if hf { 0.0 } else { 0.01 },
            num_blocks: if hf { Some(512) } else { None },
            chunk_size: 512,
            max_tokens_in_batch: if hf { 2048 } else { 4096 },
            max_waiting_iters: 10,
            safety_margin: default_safety_margin(),
            max_requests_per_batch: default_max_requests(),
        }
    }
}

/// Everything a simulation needs besides the workload and the execution-time model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// The served model.
    pub model: ModelSpec,
    /// The GPU.
    pub device: DeviceSpec,
    /// Replicas in the cluster.
    pub num_replicas: u32,
    /// Tensor parallelism per replica.
    pub tensor_parallel_size: u32,
    /// Pipeline stages per replica.
    pub num_pipeline_stages: u32,
    /// Fraction of device memory kept free by the memory planner (0.1).
    pub memory_margin_fraction: f64,
    /// Largest request (prompt + output) the memory planner sizes for (4096).
    pub max_request_tokens: u32,
    /// Routing.
    pub global_scheduler: GlobalSchedulerKind,
    /// Batching.
    pub scheduler: SchedulerConfig,
    /// Stop after the first event past this many simulated seconds (Vidur's `time_limit`).
    pub time_limit_s: Option<f64>,
    /// Refuse requests that can never be scheduled (default) instead of stalling like Vidur.
    pub strict_admission: bool,
    /// Seed of the `random` global scheduler when the workload does not hand over its stream.
    pub seed: u64,
}

impl SimConfig {
    /// A single-replica configuration with Vidur's defaults for everything else.
    pub fn new(model: ModelSpec, device: DeviceSpec, scheduler: ReplicaSchedulerKind) -> Self {
        SimConfig {
            model,
            device,
            num_replicas: 1,
            tensor_parallel_size: 1,
            num_pipeline_stages: 1,
            memory_margin_fraction: 0.1,
            max_request_tokens: 4096,
            global_scheduler: GlobalSchedulerKind::RoundRobin,
            scheduler: SchedulerConfig::new(scheduler),
            time_limit_s: None,
            strict_admission: true,
            seed: 42,
        }
    }

    /// Checks the combination of settings (Vidur's asserts, as errors).
    pub fn validate(&self) -> Result<()> {
        let m = &self.model;
        let (tp, pp) = (self.tensor_parallel_size, self.num_pipeline_stages);
        let bad = |s: String| Err(Error::Config(s));
        if self.num_replicas == 0 || tp == 0 || pp == 0 {
            return bad(
                "num_replicas, tensor_parallel_size and num_pipeline_stages must be ≥ 1".into(),
            );
        }
        if !m.num_layers.is_multiple_of(pp) {
            return bad(format!(
                "{} layers are not divisible into {pp} pipeline stages",
                m.num_layers
            ));
        }
        if !m.embedding_dim.is_multiple_of(tp) || !m.num_q_heads.is_multiple_of(tp) {
            return bad(format!(
                "embedding_dim {} and num_q_heads {} must be divisible by tensor_parallel_size {tp}",
                m.embedding_dim, m.num_q_heads
            ));
        }
        let s = &self.scheduler;
        if s.block_size == 0 || s.batch_size_cap == 0 {
            return bad("block_size and batch_size_cap must be ≥ 1".into());
        }
        if s.batch_size_cap < pp {
            return bad(format!(
                "batch_size_cap {} is smaller than the {pp} pipeline stages",
                s.batch_size_cap
            ));
        }
        if s.kind == ReplicaSchedulerKind::LightLlm && (s.block_size != 1 || pp != 1) {
            return bad("lightllm needs block_size 1 and a single pipeline stage".into());
        }
        if s.kind == ReplicaSchedulerKind::HfCb && pp != 1 {
            return bad("hf_cb runs a single pipeline stage".into());
        }
        if s.kind == ReplicaSchedulerKind::HfCb
            && (s.max_tokens_in_batch == 0 || s.max_requests_per_batch == 0)
        {
            return bad("hf_cb needs max_tokens_in_batch and max_requests_per_batch ≥ 1".into());
        }
        if s.kind == ReplicaSchedulerKind::VllmV1
            && (pp != 1 || s.max_tokens_in_batch == 0 || s.num_blocks == Some(0))
        {
            return bad(
                "vllm_v1 runs a single pipeline stage and needs max_tokens_in_batch ≥ 1".into(),
            );
        }
        if s.kind == ReplicaSchedulerKind::Sarathi && s.chunk_size == 0 {
            return bad("sarathi chunk_size must be ≥ 1".into());
        }
        if !(0.0..1.0).contains(&self.memory_margin_fraction) {
            return bad("memory_margin_fraction must be in [0, 1)".into());
        }
        if !(0.0..1.0).contains(&s.watermark_blocks_fraction) {
            return bad("watermark_blocks_fraction must be in [0, 1)".into());
        }
        Ok(())
    }
}
