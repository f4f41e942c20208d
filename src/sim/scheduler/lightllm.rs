//! Vidur's `lightllm` scheduler: prefill-only and decode-only batches, token-granular KV
//! (block size 1), a "future memory" admission check, and a prefill attempt every
//! `max_waiting_iters` decode iterations.

use super::{ReplicaScheduler, whole_prompt_or_one};
use crate::sim::config::SchedulerConfig;
use crate::error::{Error, Result};
use crate::sim::replica::Replica;
use crate::sim::request::Request;

/// `(tokens held now, tokens still to generate)` of a request, as LightLLM estimates them.
fn tuple_tokens(r: &Request) -> (u64, u64) {
    if r.scheduled {
        let done_decode = r.processed.saturating_sub(r.prefill) as i64;
        let remaining = r.decode as i64 - done_decode - 1;
        (r.processed as u64, remaining.max(0) as u64)
    } else {
        let remaining = r.decode as i64 - 2;
        (r.prefill as u64 + 1, remaining.max(0) as u64)
    }
}

/// LightLLM's check that the peak future KV demand stays below the capacity.
fn fits(rep: &Replica, list: &mut Vec<(u64, u64)>, candidate: (u64, u64)) -> bool {
    list.push(candidate);
    list.sort_by_key(|x| std::cmp::Reverse(x.1));
    let mut cum = 0u64;
    let mut need = 0u64;
    for (i, &(held, left)) in list.iter().enumerate() {
        cum += held;
        need = need.max(left * (i as u64 + 1) + cum);
    }
    need < rep.num_blocks
}

fn prefill_batch(rep: &mut Replica, reqs: &mut [Request], out: &mut Vec<(u32, u32)>) {
    let mut list: Vec<(u64, u64)> = rep
        .running
        .iter()
        .map(|&s| tuple_tokens(&reqs[s as usize]))
        .collect();
    let mut tokens = 0u64;
    while let Some(&s) = rep.waiting.front() {
        let next = whole_prompt_or_one(&reqs[s as usize]);
        if tokens + next as u64 > rep.max_tokens_in_batch
            || rep.num_in_map == rep.batch_size_cap
            || out.len() == rep.max_micro_batch_size
            || !fits(rep, &mut list, tuple_tokens(&reqs[s as usize]))
        {
            break;
        }
        rep.waiting.pop_front();
        let r = &mut reqs[s as usize];
        let blocks = if r.blocks.is_none() {
            r.prefill as u64
        } else {
            1
        };
        rep.allocate(r, blocks);
        out.push((s, next));
        tokens += next as u64;
    }
}

fn decode_batch(rep: &mut Replica, reqs: &mut [Request], out: &mut Vec<(u32, u32)>) -> Result<()> {
    while let Some(s) = rep.running.pop_front() {
        if out.len() >= rep.max_micro_batch_size {
            return Err(Error::SchedulerDeadEnd(format!(
                "lightllm: more than batch_size_cap = {} requests are decoding",
                rep.max_micro_batch_size
            )));
        }
        let r = &mut reqs[s as usize];
        let blocks = if r.blocks.is_none() {
            r.prefill as u64
        } else {
            1
        };
        rep.allocate(r, blocks);
        out.push((s, whole_prompt_or_one(r)));
    }
    Ok(())
}

fn next_batch(
    st: &mut LightLlm,
    rep: &mut Replica,
    reqs: &mut [Request],
    out: &mut Vec<(u32, u32)>,
) -> Result<()> {
    if rep.running.is_empty() {
        prefill_batch(rep, reqs, out);
        if !out.is_empty() {
            st.num_waiting_iters = 0;
        }
        return Ok(());
    }
    if st.num_waiting_iters >= st.max_waiting_iters {
        st.num_waiting_iters = 0;
        prefill_batch(rep, reqs, out);
        if !out.is_empty() {
            return Ok(());
        }
    }
    if rep.can_allocate(rep.running.len() as u64) {
        st.num_waiting_iters += 1;
        decode_batch(rep, reqs, out)
    } else {
        Err(Error::SchedulerDeadEnd(
            "lightllm ran out of KV slots while decoding (Vidur: \"OOM handling not implemented\")"
                .into(),
        ))
    }
}

/// Vidur's `lightllm` scheduler; its state counts the decode iterations since the last
/// prefill attempt.
#[derive(Debug)]
pub(super) struct LightLlm {
    max_waiting_iters: u32,
    num_waiting_iters: u32,
}

impl LightLlm {
    pub(super) fn new(cfg: &SchedulerConfig, _rep: &Replica) -> LightLlm {
        LightLlm {
            max_waiting_iters: cfg.max_waiting_iters,
            num_waiting_iters: 0,
        }
    }
}

impl ReplicaScheduler for LightLlm {
    fn next_batch(
        &mut self,
        rep: &mut Replica,
        reqs: &mut [Request],
        out: &mut Vec<(u32, u32)>,
    ) -> Result<()> {
        next_batch(self, rep, reqs, out)
    }

    fn check_admissible(&self, rep: &Replica, r: &Request) -> Result<()> {
        let p = r.prefill as u64;
        let total = (r.prefill + r.decode) as u64;
        let fail = |reason: String| Err(Error::Unschedulable { id: r.id, reason });
        if total >= rep.num_blocks {
            return fail(format!(
                "prompt + output = {total} tokens do not fit {} KV slots",
                rep.num_blocks
            ));
        }
        if p > rep.max_tokens_in_batch {
            return fail(format!(
                "its prompt of {p} tokens exceeds max_tokens_in_batch = {}",
                rep.max_tokens_in_batch
            ));
        }
        Ok(())
    }
}
