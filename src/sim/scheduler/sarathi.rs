//! Vidur's `sarathi` scheduler (Sarathi-Serve): per iteration, running decodes first (1 token
//! each, outside the budget), then continuing partial prefills, then new requests in strict FCFS
//! order, prefills sharing `chunk_size` tokens. Restart-based preemption as in vllm.

use super::{ReplicaScheduler, check_whole_prompt_blocks, make_room_or_restart, sort_running};
use crate::sim::config::SchedulerConfig;
use crate::error::Result;
use crate::sim::replica::Replica;
use crate::sim::request::Request;

/// Tokens of a request this iteration given the tokens already in the batch.
fn next_tokens(rep: &Replica, r: &Request, batch_tokens: i64) -> u32 {
    debug_assert!(!r.completed);
    if r.prefill_complete {
        return 1;
    }
    let left = r.prefill as i64 - r.processed as i64;
    left.min(rep.chunk_size - batch_tokens).max(0) as u32
}

fn next_batch(
    st: &mut Sarathi,
    rep: &mut Replica,
    reqs: &mut [Request],
    out: &mut Vec<(u32, u32)>,
) -> Result<()> {
    let mut batch_tokens: i64 = 0;
    let mut running_prefills = std::mem::take(&mut st.scratch_a);
    let mut skipped = std::mem::take(&mut st.scratch_b);
    running_prefills.clear();
    skipped.clear();
    while !rep.running.is_empty() {
        if out.len() == rep.max_micro_batch_size {
            break;
        }
        let s = rep.running.pop_front().expect("non-empty");
        if !reqs[s as usize].prefill_complete {
            running_prefills.push(s);
            continue;
        }
        let next = next_tokens(rep, &reqs[s as usize], batch_tokens);
        if next == 0 {
            skipped.push(s);
            continue;
        }
        if make_room_or_restart(rep, reqs, s)? {
            batch_tokens += next as i64;
            out.push((s, next));
        }
    }
    for &s in &running_prefills {
        let next = next_tokens(rep, &reqs[s as usize], batch_tokens);
        if next == 0 {
            skipped.push(s);
            continue;
        }
        batch_tokens += next as i64;
        out.push((s, next));
    }
    for &s in skipped.iter().rev() {
        rep.running.push_front(s);
    }
    st.scratch_a = running_prefills;
    st.scratch_b = skipped;
    sort_running(rep, reqs);
    while let Some(&s) = rep.waiting.front() {
        if rep.num_in_map == rep.batch_size_cap || out.len() == rep.max_micro_batch_size {
            break;
        }
        if !rep.can_allocate_request(&reqs[s as usize]) {
            break;
        }
        let next = next_tokens(rep, &reqs[s as usize], batch_tokens);
        if next == 0 {
            break;
        }
        rep.waiting.pop_front();
        rep.allocate_request(&mut reqs[s as usize])?;
        batch_tokens += next as i64;
        out.push((s, next));
    }
    Ok(())
}

/// Vidur's `sarathi` scheduler; its state is two reusable buffers (no allocation per
/// iteration).
#[derive(Debug, Default)]
pub(super) struct Sarathi {
    scratch_a: Vec<u32>,
    scratch_b: Vec<u32>,
}

impl Sarathi {
    pub(super) fn new(_cfg: &SchedulerConfig, _rep: &Replica) -> Sarathi {
        Sarathi::default()
    }
}

impl ReplicaScheduler for Sarathi {
    fn next_batch(
        &mut self,
        rep: &mut Replica,
        reqs: &mut [Request],
        out: &mut Vec<(u32, u32)>,
    ) -> Result<()> {
        next_batch(self, rep, reqs, out)
    }

    fn check_admissible(&self, rep: &Replica, r: &Request) -> Result<()> {
        check_whole_prompt_blocks(rep, r, None)
    }
}
