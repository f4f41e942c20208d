//! Replica schedulers: how one replica forms its next batch. One file each, holding the
//! scheduler's own state; [`crate::sim::registry`] lists them.
//!
//! A scheduler fills `out` with `(request slot, tokens this iteration)` pairs in batch order;
//! leaving it empty means "no batch now". The replica ([`Replica`]) holds what every scheduler
//! shares: the waiting and running queues, the KV block count and the configured limits.

use super::config::SchedulerConfig;
use super::replica::Replica;
use super::request::Request;
use crate::error::Result;

/// One replica's batching policy and its own state (the engine keeps one per replica).
///
/// Adding a scheduler: a file `NAME.rs` here with `pub(super) struct Variant` implementing this
/// trait and `pub(super) fn new(cfg: &SchedulerConfig, rep: &Replica) -> Variant`, plus its
/// entry in [`crate::sim::registry`].
pub(crate) trait ReplicaScheduler: std::fmt::Debug {
    /// Forms the replica's next batch into `out` (empty on entry; left empty: no batch now).
    fn next_batch(
        &mut self,
        rep: &mut Replica,
        reqs: &mut [Request],
        out: &mut Vec<(u32, u32)>,
    ) -> Result<()>;

    /// Updates the replica after a batch finished (the requests are already updated). The
    /// default frees finished requests and keeps the others resident, in batch order.
    fn on_batch_end(&mut self, rep: &mut Replica, reqs: &mut [Request], batch: &[u32]) {
        keep_or_free(rep, reqs, batch);
    }

    /// An error ([`crate::Error::Unschedulable`]) when the request can never run on this
    /// replica, so that it is refused at arrival instead of stalling the simulation.
    fn check_admissible(&self, rep: &Replica, r: &Request) -> Result<()>;

    /// Whether the scheduler holds no request outside the replica's queues.
    fn is_idle(&self) -> bool {
        true
    }

    /// Whether a request can leave early ([`crate::sim::Simulator::abort_request`]); a
    /// scheduler whose batches run to their end together says no.
    fn can_abort(&self) -> bool {
        true
    }
}

macro_rules! register {
    ($($(#[doc = $doc:literal])* $variant:ident $name:literal $module:ident,)*) => {
        $(mod $module;)*

        /// The scheduler `cfg.kind` names, for a replica.
        pub(crate) fn build(cfg: &SchedulerConfig, rep: &Replica) -> Box<dyn ReplicaScheduler> {
            match cfg.kind {
                $(super::ReplicaSchedulerKind::$variant => Box::new($module::$variant::new(cfg, rep)),)*
            }
        }
    };
}

super::registry::with_replica_schedulers!(register);

/// Frees the finished requests of a batch and keeps the others resident, in batch order.
pub(crate) fn keep_or_free(rep: &mut Replica, reqs: &mut [Request], batch: &[u32]) {
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

/// vllm's and sarathi's admission check: the prompt's blocks fit above the watermark, the whole
/// sequence fits the replica, and (vllm) the prompt fits the token budget.
pub(crate) fn check_whole_prompt_blocks(
    rep: &Replica,
    r: &Request,
    prompt_budget: Option<u64>,
) -> Result<()> {
    let p = r.prefill as u64;
    let total = (r.prefill + r.decode) as u64;
    let fail = |reason: String| Err(crate::Error::Unschedulable { id: r.id, reason });
    let need = p.div_ceil(rep.block_size);
    if need + rep.watermark_blocks > rep.num_blocks {
        return fail(format!(
            "its prompt of {p} tokens needs {need} KV blocks of {} tokens, but the \
             replica has {} blocks and keeps {} free (watermark)",
            rep.block_size, rep.num_blocks, rep.watermark_blocks
        ));
    }
    let full = total.div_ceil(rep.block_size);
    if full > rep.num_blocks {
        return fail(format!(
            "prompt + output = {total} tokens need {full} KV blocks, more than the \
             replica's {}",
            rep.num_blocks
        ));
    }
    if let Some(budget) = prompt_budget
        && p > budget
    {
        return fail(format!(
            "its prompt of {p} tokens exceeds max_tokens_in_batch = {budget}"
        ));
    }
    Ok(())
}

/// orca's and faster_transformer's admission check: every request reserves the blocks of the
/// longest sequence.
pub(crate) fn check_reserved_blocks(rep: &Replica, r: &Request) -> Result<()> {
    if rep.max_blocks_per_sequence > rep.num_blocks {
        return Err(crate::Error::Unschedulable {
            id: r.id,
            reason: format!(
                "every request reserves {} blocks but the replica has {}",
                rep.max_blocks_per_sequence, rep.num_blocks
            ),
        });
    }
    Ok(())
}
