//! Vidur's `faster_transformer` scheduler: request-level (static) batching. A batch runs until
//! all its requests finish; each request reserves KV for the longest possible request.
//!
//! Bug-compatible with Vidur: memory is freed only for the requests of the sub-batch whose end
//! finds every member complete, so requests that finished in an earlier iteration of the same
//! batch keep their blocks (Vidur's `_pending_free_map` that would release them is never filled).

use std::collections::VecDeque;

use super::{ReplicaScheduler, check_reserved_blocks, whole_prompt_or_one};
use crate::error::Result;
use crate::sim::config::SchedulerConfig;
use crate::sim::replica::Replica;
use crate::sim::request::Request;

fn next_batch(held_batches: &mut VecDeque<Vec<u32>>, rep: &mut Replica, reqs: &mut [Request], out: &mut Vec<(u32, u32)>) {
    if let Some(held) = held_batches.pop_front() {
        for s in held {
            let r = &reqs[s as usize];
            if !r.completed {
                out.push((s, whole_prompt_or_one(r)));
            }
        }
        return;
    }
    while let Some(&s) = rep.waiting.front() {
        if out.len() == rep.max_batch_size || !rep.can_allocate(rep.max_blocks_per_sequence) {
            break;
        }
        rep.waiting.pop_front();
        let blocks = rep.max_blocks_per_sequence;
        rep.allocate(&mut reqs[s as usize], blocks);
        out.push((s, whole_prompt_or_one(&reqs[s as usize])));
    }
}

fn on_batch_end(held_batches: &mut VecDeque<Vec<u32>>, rep: &mut Replica, reqs: &mut [Request], batch: &[u32]) {
    if batch.iter().all(|&s| reqs[s as usize].completed) {
        for &s in batch {
            rep.free(&mut reqs[s as usize]);
        }
    } else {
        // Completed members are dropped here (their slots are recycled); the next batch is
        // formed from the rest, exactly as Vidur skips completed requests.
        let rest = batch
            .iter()
            .copied()
            .filter(|&s| !reqs[s as usize].completed)
            .collect();
        held_batches.push_back(rest);
    }
}

/// Vidur's `faster_transformer` scheduler; its state is the batches with unfinished requests,
/// in order (a batch runs again until all its requests finish).
#[derive(Debug, Default)]
pub(super) struct FasterTransformer {
    held_batches: VecDeque<Vec<u32>>,
}

impl FasterTransformer {
    pub(super) fn new(_cfg: &SchedulerConfig, _rep: &Replica) -> FasterTransformer {
        FasterTransformer::default()
    }
}

impl ReplicaScheduler for FasterTransformer {
    fn next_batch(
        &mut self,
        rep: &mut Replica,
        reqs: &mut [Request],
        out: &mut Vec<(u32, u32)>,
    ) -> Result<()> {
        next_batch(&mut self.held_batches, rep, reqs, out);
        Ok(())
    }

    fn on_batch_end(&mut self, rep: &mut Replica, reqs: &mut [Request], batch: &[u32]) {
        on_batch_end(&mut self.held_batches, rep, reqs, batch);
    }

    fn check_admissible(&self, rep: &Replica, r: &Request) -> Result<()> {
        check_reserved_blocks(rep, r)
    }

    /// Static batches (bug-compatible with Vidur) would keep an early finisher's KV blocks:
    /// a request runs to its end.
    fn can_abort(&self) -> bool {
        false
    }
}
