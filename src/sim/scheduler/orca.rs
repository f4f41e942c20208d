//! Vidur's `orca` scheduler: every resident request each iteration (up to the batch size),
//! then new requests, each reserving KV for the longest possible request; no preemption.

use super::{ReplicaScheduler, check_reserved_blocks, whole_prompt_or_one};
use crate::error::Result;
use crate::sim::config::SchedulerConfig;
use crate::sim::replica::Replica;
use crate::sim::request::Request;

fn next_batch(rep: &mut Replica, reqs: &mut [Request], out: &mut Vec<(u32, u32)>) {
    while let Some(&s) = rep.running.front() {
        if out.len() == rep.max_batch_size {
            break;
        }
        rep.running.pop_front();
        out.push((s, whole_prompt_or_one(&reqs[s as usize])));
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

/// Vidur's `orca` scheduler (no state of its own).
#[derive(Debug)]
pub(super) struct Orca;

impl Orca {
    pub(super) fn new(_cfg: &SchedulerConfig, _rep: &Replica) -> Orca {
        Orca
    }
}

impl ReplicaScheduler for Orca {
    fn next_batch(
        &mut self,
        rep: &mut Replica,
        reqs: &mut [Request],
        out: &mut Vec<(u32, u32)>,
    ) -> Result<()> {
        next_batch(rep, reqs, out);
        Ok(())
    }

    fn check_admissible(&self, rep: &Replica, r: &Request) -> Result<()> {
        check_reserved_blocks(rep, r)
    }
}
