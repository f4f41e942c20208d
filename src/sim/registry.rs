//! The replica schedulers simfid knows, one entry each: this list is the only place that names
//! them all. An entry is the scheduler's doc line, its [`ReplicaSchedulerKind`] variant, its
//! name (Vidur's `--replica_scheduler_config_type` where Vidur has it, `--scheduler` of
//! `simfid simulate`) and its file under `sim/scheduler/`, which defines a type of the
//! variant's name implementing the scheduler (`sim/scheduler/mod.rs` declares the files and
//! builds the schedulers from this list).
//!
//! Adding a scheduler: write `sim/scheduler/NAME.rs` (see `ReplicaScheduler` there) and add its
//! entry below.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Calls `$callback!` with every scheduler's entry: `#[doc] Variant "name" module,`.
macro_rules! with_replica_schedulers {
    ($callback:ident) => {
        $callback! {
            /// vLLM v0 as Vidur models it: prefill-first, whole prompts, padded token budget.
            Vllm "vllm" vllm,
            /// Sarathi-Serve: chunked prefill, decodes first, one token budget (`chunk_size`).
            Sarathi "sarathi" sarathi,
            /// Orca: iteration-level batching, worst-case KV reservation.
            Orca "orca" orca,
            /// FasterTransformer: request-level (static) batching.
            FasterTransformer "faster_transformer" faster_transformer,
            /// LightLLM: token-level KV (block size 1) with its future-memory admission check.
            LightLlm "lightllm" lightllm,
            /// transformers 5.17 continuous batching (`transformers serve --continuous-batching`):
            /// FIFO, decodes first, chunked prefill in the leftover token budget, KV blocks
            /// allocated per chunk, soft-reset eviction (`sim/scheduler/hf_cb.rs`).
            HfCb "hf_cb" hf_cb,
            /// vLLM 0.24's V1 scheduler (`vllm serve`): one token budget shared by decodes and
            /// prefill chunks, running requests first, then waiting ones; KV blocks with a prefix
            /// cache; preemption by recompute (`sim/scheduler/vllm_v1.rs`).
            VllmV1 "vllm_v1" vllm_v1,
        }
    };
}
pub(crate) use with_replica_schedulers;

macro_rules! declare_kind {
    ($($(#[doc = $doc:literal])* $variant:ident $name:literal $module:ident,)*) => {
        /// Replica (batching) scheduler (Vidur's `replica_scheduler`; one file each under
        /// `sim/scheduler/`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum ReplicaSchedulerKind {
            $(
                $(#[doc = $doc])*
                #[serde(rename = $name)]
                $variant,
            )*
        }

        impl ReplicaSchedulerKind {
            /// Every scheduler, in the registry's order.
            pub const ALL: &'static [ReplicaSchedulerKind] = &[$(Self::$variant),*];

            /// The scheduler's name (Vidur's where Vidur has it).
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

with_replica_schedulers!(declare_kind);

impl ReplicaSchedulerKind {
    /// Parses a name ([`ReplicaSchedulerKind::name`]: Vidur's `vllm`, `sarathi`, `orca`,
    /// `faster_transformer`, `lightllm`, and simfid's `hf_cb`, `vllm_v1`).
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
                Error::UnknownScheduler {
                    what: "replica",
                    name: s.to_string(),
                    known: known.join(", "),
                }
            })
    }
}
