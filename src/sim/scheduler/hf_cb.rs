//! transformers 5.17 continuous batching, as `transformers serve --continuous-batching` runs it
//! (FIFO scheduler: transformers' `src/transformers/generation/continuous_batching/scheduler.py`).
//!
//! Each step: candidates are the decoding requests (in the order they became active), then the
//! partly prefilled ones, then the waiting queue (unless admissions are blocked after an
//! eviction). In order, each candidate takes `min(remaining, token budget)` tokens — 1 for a
//! decode, the rest of the prompt (chunked by the leftover budget) for a prefill — if its
//! current length fits the KV-read budget and its blocks can be allocated:
//! `⌊(n − free_in_last_block + 1) / 256⌋ + 1` more blocks when the tokens do not fit the
//! blocks it holds. Below the safety margin (15% of blocks free) only decodes, or a first
//! request in an empty batch, are taken. A running request that cannot get a block is
//! "starved": after the batch is formed, the newest starved requests are evicted until the
//! rest fit (never the last active one): a soft reset re-queues them at the back with their
//! generated tokens appended to the prompt, and admissions stop until a request finishes.
//! Prefix caching is not modelled: simfid's recorded workloads never share prompt prefixes.

use super::ReplicaScheduler;
use crate::error::{Error, Result};
use crate::sim::config::SchedulerConfig;
use crate::sim::replica::Replica;
use crate::sim::request::Request;

/// transformers' `position_offset`: tokens already in the KV cache.
fn position(r: &Request) -> u64 {
    if r.prefill_complete {
        // Vidur-style bookkeeping counts the newest generated token as processed; transformers
        // writes it into the cache only in the next step.
        r.processed as u64 - 1
    } else {
        r.processed as u64
    }
}

fn blocks_of(r: &Request) -> u64 {
    r.blocks.unwrap_or(0)
}

/// Blocks a request needs to process `n` more tokens (0 when its blocks suffice).
fn blocks_needed(rep: &Replica, r: &Request, n: u64) -> u64 {
    let held = blocks_of(r);
    let occupancy = (held * rep.block_size) as i64 - position(r) as i64;
    if occupancy < n as i64 || held == 0 {
        ((n as i64 - occupancy + 1).div_euclid(rep.block_size as i64) + 1) as u64
    } else {
        0
    }
}

fn next_batch(
    st: &mut HfCb,
    rep: &mut Replica,
    reqs: &mut [Request],
    out: &mut Vec<(u32, u32)>,
) -> Result<()> {
    loop {
        let starved = form(st, rep, reqs, out);
        if !out.is_empty() {
            if !starved.is_empty() {
                evict(st, rep, reqs, starved);
            }
            return Ok(());
        }
        if starved.is_empty() && !st.failed_allocation {
            return Ok(());
        }
        // Nothing could be scheduled because the cache is full: evict, then try again.
        if evict(st, rep, reqs, starved) == 0 {
            return Err(Error::SchedulerDeadEnd(
                "hf_cb: no request can be scheduled and none can be evicted (the real server's \
                 worker dies here)"
                    .into(),
            ));
        }
    }
}

/// One scheduling pass; returns the starved active requests with the blocks they needed.
fn form(st: &mut HfCb, rep: &mut Replica, reqs: &mut [Request], out: &mut Vec<(u32, u32)>) -> Vec<(u32, u64)> {
    out.clear();
    st.failed_allocation = false;
    let mut cands = std::mem::take(&mut st.scratch);
    cands.clear();
    cands.extend(
        st.active
            .iter()
            .copied()
            .filter(|&s| reqs[s as usize].prefill_complete),
    );
    cands.extend(
        st.active
            .iter()
            .copied()
            .filter(|&s| !reqs[s as usize].prefill_complete),
    );
    let n_active = cands.len();
    if !st.block_new_requests {
        cands.extend(rep.waiting.iter().copied());
    }
    let mut tok = rep.max_tokens_in_batch as i64;
    let mut cache_budget = (rep.num_blocks * rep.block_size) as i64;
    let mut req_budget = st.max_requests_per_batch as i64;
    let mut starved = Vec::new();
    let mut admitted = 0usize;
    for (i, &s) in cands.iter().enumerate() {
        let is_active = i < n_active;
        let r = &reqs[s as usize];
        let free = rep.num_blocks - rep.allocated;
        if (free as f64) < st.safety_blocks && !out.is_empty() && !r.prefill_complete {
            break;
        }
        let remaining = if r.prefill_complete {
            1
        } else {
            (r.prefill - r.processed) as i64
        };
        let n = remaining.min(tok) as u64;
        let read = position(r) as i64;
        if cache_budget < read {
            continue;
        }
        let need = blocks_needed(rep, r, n);
        if need > 0 {
            if need > free {
                st.failed_allocation = true;
                if is_active {
                    starved.push((s, need));
                } else if free == 0 {
                    break;
                }
                continue;
            }
            rep.allocate(&mut reqs[s as usize], need);
        }
        if !is_active {
            admitted += 1;
            st.active.push(s);
        }
        out.push((s, n as u32));
        tok -= n as i64;
        cache_budget -= read;
        req_budget -= 1;
        if tok == 0 || cache_budget <= 0 || req_budget <= 0 {
            break;
        }
    }
    // Admitted requests leave the waiting queue (they were its head, in order, but a request
    // skipped for its KV-read budget may sit between them).
    if admitted > 0 {
        let taken: Vec<u32> = st.active[st.active.len() - admitted..].to_vec();
        rep.waiting.retain(|s| !taken.contains(s));
    }
    st.scratch = cands;
    starved
}

/// Evicts the newest starved requests until the rest fit; returns how many were evicted.
fn evict(st: &mut HfCb, rep: &mut Replica, reqs: &mut [Request], mut starved: Vec<(u32, u64)>) -> usize {
    let mut free = rep.num_blocks - rep.allocated;
    let mut demand: u64 = starved.iter().map(|&(_, n)| n).sum();
    let n_active = st.active.len();
    let mut victims = Vec::new();
    while demand > free && n_active - victims.len() > 1 {
        let Some((s, need)) = starved.pop() else {
            break;
        };
        victims.push(s);
        demand -= need;
        free += blocks_of(&reqs[s as usize]);
    }
    victims.reverse();
    for &s in &victims {
        let r = &mut reqs[s as usize];
        r.soft_reset();
        rep.free(r);
        st.active.retain(|&a| a != s);
        rep.waiting.push_back(s);
    }
    if !victims.is_empty() {
        st.block_new_requests = true;
        st.evictions += victims.len() as u64;
    }
    victims.len()
}

fn on_batch_end(st: &mut HfCb, rep: &mut Replica, reqs: &mut [Request], batch: &[u32]) {
    for &s in batch {
        let r = &mut reqs[s as usize];
        if r.completed {
            rep.free(r);
            st.active.retain(|&a| a != s);
            st.block_new_requests = false;
        }
    }
}

/// The `hf_cb` scheduler and its state.
#[derive(Debug)]
pub(super) struct HfCb {
    /// Active (prefilling or decoding) requests in the order they became active.
    active: Vec<u32>,
    /// Admissions stopped after an eviction, until a request finishes.
    block_new_requests: bool,
    /// Blocks below which only decodes are scheduled.
    safety_blocks: f64,
    /// Most requests per step.
    max_requests_per_batch: usize,
    /// Requests evicted (soft reset) so far.
    evictions: u64,
    /// An allocation failed in the last scheduling pass.
    failed_allocation: bool,
    /// Reusable candidate list (no allocation per step).
    scratch: Vec<u32>,
}

impl HfCb {
    pub(super) fn new(cfg: &SchedulerConfig, rep: &Replica) -> HfCb {
        HfCb {
            active: Vec::new(),
            block_new_requests: false,
            safety_blocks: cfg.safety_margin * rep.num_blocks as f64,
            max_requests_per_batch: cfg.max_requests_per_batch as usize,
            evictions: 0,
            failed_allocation: false,
            scratch: Vec::new(),
        }
    }
}

impl ReplicaScheduler for HfCb {
    fn next_batch(
        &mut self,
        rep: &mut Replica,
        reqs: &mut [Request],
        out: &mut Vec<(u32, u32)>,
    ) -> Result<()> {
        next_batch(self, rep, reqs, out)
    }

    fn on_batch_end(&mut self, rep: &mut Replica, reqs: &mut [Request], batch: &[u32]) {
        on_batch_end(self, rep, reqs, batch);
    }

    fn check_admissible(&self, rep: &Replica, r: &Request) -> Result<()> {
        // Blocks are allocated per chunk; the whole sequence must fit eventually.
        let total = (r.prefill + r.decode) as u64;
        let full = (total + 1).div_ceil(rep.block_size);
        if full > rep.num_blocks {
            return Err(Error::Unschedulable {
                id: r.id,
                reason: format!(
                    "prompt + output = {total} tokens need {full} KV blocks of {} tokens, more \
                     than the server's {}",
                    rep.block_size, rep.num_blocks
                ),
            });
        }
        Ok(())
    }

    fn is_idle(&self) -> bool {
        self.active.is_empty()
    }
}
