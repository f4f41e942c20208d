//! Vidur's `orca` scheduler: every resident request each iteration (up to the batch size),
//! then new requests, each reserving KV for the longest possible request; no preemption.

use super::whole_prompt_or_one;
use crate::sim::replica::Replica;
use crate::sim::request::Request;

pub(super) fn next_batch(rep: &mut Replica, reqs: &mut [Request], out: &mut Vec<(u32, u32)>) {
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
