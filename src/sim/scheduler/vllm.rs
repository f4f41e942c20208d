//! Vidur's `vllm` scheduler (vLLM v0): prefill-first without mixing, whole prompts, a padded
//! token budget `len(batch) × max(tokens) ≤ max_tokens_in_batch`, restart-based preemption.

use super::{
    ReplicaScheduler, check_whole_prompt_blocks, make_room_or_restart, sort_running,
    whole_prompt_or_one,
};
use crate::sim::config::SchedulerConfig;
use crate::error::Result;
use crate::sim::replica::Replica;
use crate::sim::request::Request;

fn next_batch(
    rep: &mut Replica,
    reqs: &mut [Request],
    out: &mut Vec<(u32, u32)>,
) -> Result<()> {
    let mut max_tokens = 0u64;
    while let Some(&s) = rep.waiting.front() {
        let r = &reqs[s as usize];
        let next = whole_prompt_or_one(r);
        if !rep.can_allocate_request(r) {
            break;
        }
        let new_max = max_tokens.max(next as u64);
        if (out.len() as u64 + 1) * new_max > rep.max_tokens_in_batch {
            break;
        }
        if rep.num_in_map == rep.batch_size_cap || out.len() == rep.max_micro_batch_size {
            break;
        }
        rep.waiting.pop_front();
        rep.allocate_request(&mut reqs[s as usize])?;
        out.push((s, next));
        max_tokens = new_max;
    }
    if !out.is_empty() {
        return Ok(());
    }
    sort_running(rep, reqs);
    while !rep.running.is_empty() {
        if out.len() == rep.max_micro_batch_size {
            break;
        }
        let s = rep.running.pop_front().expect("non-empty");
        if make_room_or_restart(rep, reqs, s)? {
            out.push((s, whole_prompt_or_one(&reqs[s as usize])));
        }
    }
    Ok(())
}

/// Vidur's `vllm` scheduler (no state of its own).
#[derive(Debug)]
pub(super) struct Vllm;

impl Vllm {
    pub(super) fn new(_cfg: &SchedulerConfig, _rep: &Replica) -> Vllm {
        Vllm
    }
}

impl ReplicaScheduler for Vllm {
    fn next_batch(
        &mut self,
        rep: &mut Replica,
        reqs: &mut [Request],
        out: &mut Vec<(u32, u32)>,
    ) -> Result<()> {
        next_batch(rep, reqs, out)
    }

    fn check_admissible(&self, rep: &Replica, r: &Request) -> Result<()> {
        check_whole_prompt_blocks(rep, r, Some(rep.max_tokens_in_batch))
    }
}
