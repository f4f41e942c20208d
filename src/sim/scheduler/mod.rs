//! Replica schedulers: how one replica forms its next batch (SPEC §2.5). One file each.
//!
//! A scheduler fills `out` with `(request slot, tokens this iteration)` pairs in batch order;
//! leaving it empty means "no batch now".

mod faster_transformer;
mod hf_cb;
mod lightllm;
mod orca;
mod sarathi;
mod vllm;
mod vllm_v1;

pub(crate) use vllm_v1::BlockPool;

use super::config::ReplicaSchedulerKind;
use super::replica::Replica;
use super::request::Request;
use crate::error::Result;

/// Forms the replica's next batch into `out` (cleared first).
pub(crate) fn next_batch(
    rep: &mut Replica,
    reqs: &mut [Request],
    out: &mut Vec<(u32, u32)>,
) -> Result<()> {
    out.clear();
    match rep.kind {
        ReplicaSchedulerKind::Vllm => vllm::next_batch(rep, reqs, out),
        ReplicaSchedulerKind::Sarathi => sarathi::next_batch(rep, reqs, out),
        ReplicaSchedulerKind::Orca => {
            orca::next_batch(rep, reqs, out);
            Ok(())
        }
        ReplicaSchedulerKind::FasterTransformer => {
            faster_transformer::next_batch(rep, reqs, out);
            Ok(())
        }
        ReplicaSchedulerKind::LightLlm => lightllm::next_batch(rep, reqs, out),
        ReplicaSchedulerKind::HfCb => hf_cb::next_batch(rep, reqs, out),
        ReplicaSchedulerKind::VllmV1 => vllm_v1::next_batch(rep, reqs, out),
    }
}

/// Updates the replica after a batch finished (requests already updated).
pub(crate) fn on_batch_end(rep: &mut Replica, reqs: &mut [Request], batch: &[u32]) {
    rep.num_running_batches -= 1;
    if rep.kind == ReplicaSchedulerKind::FasterTransformer {
        faster_transformer::on_batch_end(rep, reqs, batch);
        return;
    }
    if rep.kind == ReplicaSchedulerKind::HfCb {
        hf_cb::on_batch_end(rep, reqs, batch);
        return;
    }
    if rep.kind == ReplicaSchedulerKind::VllmV1 {
        vllm_v1::on_batch_end(rep, reqs, batch);
        return;
    }
    for &s in batch {
        let r = &mut reqs[s as usize];
        if r.completed {
            rep.free(r);
        } else {
            rep.running.push_back(s);
        }
    }
}

/// Base `_get_request_next_num_tokens`: the whole prompt, or 1 when decoding.
pub(crate) fn whole_prompt_or_one(r: &Request) -> u32 {
    debug_assert!(!r.completed);
    if r.prefill_complete { 1 } else { r.prefill }
}

/// The victim loop shared by vllm and sarathi: makes room for running request `s` by
/// restarting the latest-arrived other running requests, or `s` itself when it is alone.
/// Returns true when `s` got its allocation.
pub(crate) fn make_room_or_restart(
    rep: &mut Replica,
    reqs: &mut [Request],
    s: u32,
) -> Result<bool> {
    while !rep.can_allocate_request(&reqs[s as usize]) {
        let victim = match rep.running.pop_back() {
            Some(v) => v,
            None => {
                let r = &mut reqs[s as usize];
                r.restart();
                rep.free(r);
                rep.waiting.push_front(s);
                return Ok(false);
            }
        };
        let v = &mut reqs[victim as usize];
        v.restart();
        rep.free(v);
        rep.waiting.push_front(victim);
    }
    rep.allocate_request(&mut reqs[s as usize])?;
    Ok(true)
}

/// Stable sort of the running list by arrival time.
pub(crate) fn sort_running(rep: &mut Replica, reqs: &[Request]) {
    let at = |s: u32| reqs[s as usize].arrived_at;
    let (a, b) = rep.running.as_slices();
    let sorted = a.is_sorted_by(|&x, &y| at(x) <= at(y))
        && b.is_sorted_by(|&x, &y| at(x) <= at(y))
        && match (a.last(), b.first()) {
            (Some(&x), Some(&y)) => at(x) <= at(y),
            _ => true,
        };
    if sorted {
        return;
    }
    rep.running.make_contiguous().sort_by(|&a, &b| {
        reqs[a as usize]
            .arrived_at
            .total_cmp(&reqs[b as usize].arrived_at)
    });
}
