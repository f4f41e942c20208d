//! vLLM's V1 scheduler as vLLM 0.24 runs it (`vllm/v1/core/sched/scheduler.py`, `Scheduler.
//! schedule`, and the KV cache manager `vllm/v1/core/kv_cache_manager.py`, read from the 0.24.0
//! wheel).
//!
//! One token budget per step (`--max-num-batched-tokens`) shared by decodes and prefill chunks:
//! - **Running requests first**, in the order they were admitted: a decoding request asks for
//!   1 token, a partly prefilled one for the rest of its prompt, cut to the budget left
//!   (chunked prefill). The loop stops when the budget is spent. Each gets the KV blocks its
//!   computed + new tokens need (`⌈(computed + new)/block_size⌉` in all); when the pool has too
//!   few free blocks, the **last** running request is preempted (its blocks freed, its progress
//!   dropped, put back at the head of the waiting queue: recompute), until the request fits or
//!   is itself the one preempted.
//! - **Then waiting requests**, first come first served, only if nothing was preempted in this
//!   step, while the budget lasts and fewer than `--max-num-seqs` requests run. A waiting
//!   request first looks up its prompt in the **prefix cache** (full blocks only, never the
//!   whole prompt: at least its last token is computed); it is admitted with the tokens left,
//!   cut to the budget, if the blocks they need are free, else admission stops for this step.
//!
//! Prefix caching is on by default in vLLM 0.24. A freed block keeps its content (and hash)
//! until the pool hands it out again: freed blocks join the tail of the free queue (a request's
//! blocks in reverse order, so its tail blocks are reused first) and allocations take from the
//! head. The workloads simfid replays share no prompt prefix between requests, so the hit path
//! that matters is a preempted request finding its own blocks again when it is re-admitted;
//! this module keys a full block by (request id, block index), which is exactly that.
//! vLLM keeps one null block aside: the pool has `num_blocks − 1` usable blocks.

use std::collections::{HashMap, VecDeque};

use super::ReplicaScheduler;
use crate::error::{Error, Result};
use crate::sim::config::SchedulerConfig;
use crate::sim::replica::Replica;
use crate::sim::request::Request;

/// Key of a full block's content: (request id, block index in the request).
type BlockKey = (u64, u32);

/// The KV block pool with its prefix cache.
#[derive(Debug, Default)]
struct BlockPool {
    /// Free blocks in eviction order (head first), as (block, generation); entries whose
    /// generation is stale were taken out of the queue by a cache hit.
    free: VecDeque<(u32, u32)>,
    /// Free blocks (live entries of `free`).
    num_free: u64,
    generation: Vec<u32>,
    in_free: Vec<bool>,
    /// Cached content of a block, if any.
    content: Vec<Option<BlockKey>>,
    cached: HashMap<BlockKey, u32>,
    /// Blocks held by each running request (by slot), in order.
    held: HashMap<u32, Vec<u32>>,
    ready: bool,
    /// Prefix-cache hits (blocks) so far.
    pub hits: u64,
    /// Preemptions so far.
    pub preemptions: u64,
}

impl BlockPool {
    fn init(&mut self, num_blocks: u64) {
        if self.ready {
            return;
        }
        let usable = num_blocks.saturating_sub(1) as u32;
        self.free = (0..usable).map(|b| (b, 0)).collect();
        self.num_free = usable as u64;
        self.generation = vec![0; usable as usize];
        self.in_free = vec![true; usable as usize];
        self.content = vec![None; usable as usize];
        self.ready = true;
    }

    fn pop_free(&mut self) -> u32 {
        loop {
            let (b, g) = self.free.pop_front().expect("num_free counts live entries");
            if self.in_free[b as usize] && self.generation[b as usize] == g {
                self.in_free[b as usize] = false;
                self.num_free -= 1;
                if let Some(key) = self.content[b as usize].take() {
                    self.cached.remove(&key);
                }
                return b;
            }
        }
    }

    fn push_free(&mut self, b: u32) {
        let g = self.generation[b as usize].wrapping_add(1);
        self.generation[b as usize] = g;
        self.in_free[b as usize] = true;
        self.free.push_back((b, g));
        self.num_free += 1;
    }

    /// Takes a cached free block out of the free queue (a prefix hit).
    fn take_cached(&mut self, b: u32) {
        debug_assert!(self.in_free[b as usize]);
        self.in_free[b as usize] = false;
        self.num_free -= 1;
    }
}

/// Tokens already in the KV cache (vLLM's `num_computed_tokens`): the simulator counts the
/// newest generated token as processed; vLLM computes it in the next step.
fn computed(r: &Request) -> u64 {
    if r.prefill_complete {
        r.processed as u64 - 1
    } else {
        r.processed as u64
    }
}

/// Gives slot `s` the blocks for `n` more tokens; false (nothing taken) when too few are free.
fn allocate(pool: &mut BlockPool, rep: &mut Replica, reqs: &mut [Request], s: u32, n: u64) -> bool {
    let bs = rep.block_size;
    let r = &reqs[s as usize];
    let held = pool.held.get(&s).map_or(0, Vec::len) as u64;
    let need = (computed(r) + n).div_ceil(bs).saturating_sub(held);
    if need > pool.num_free {
        return false;
    }
    for _ in 0..need {
        let b = pool.pop_free();
        pool.held.entry(s).or_default().push(b);
    }
    if need > 0 {
        rep.allocate(&mut reqs[s as usize], need);
    }
    true
}

/// Frees slot `s`'s blocks: full blocks of computed tokens stay cached until reused.
fn free(pool: &mut BlockPool, rep: &mut Replica, reqs: &mut [Request], s: u32) {
    let r = &reqs[s as usize];
    let full = (computed(r) / rep.block_size) as usize;
    let id = r.id;
    let blocks = pool.held.remove(&s).unwrap_or_default();
    for (i, &b) in blocks.iter().enumerate().rev() {
        if i < full {
            let key = (id, i as u32);
            if let Some(old) = pool.cached.insert(key, b) {
                pool.content[old as usize] = None;
            }
            pool.content[b as usize] = Some(key);
        }
        pool.push_free(b);
    }
    rep.free(&mut reqs[s as usize]);
}

/// Preempts slot `s` (recompute): blocks freed (cached), progress dropped, back to the head
/// of the waiting queue.
fn preempt(pool: &mut BlockPool, rep: &mut Replica, reqs: &mut [Request], s: u32) {
    free(pool, rep, reqs, s);
    reqs[s as usize].restart();
    rep.waiting.push_front(s);
    pool.preemptions += 1;
}

/// Prefix-cache lookup for a waiting request: takes its cached leading full blocks (at most
/// `⌊(tokens − 1)/block_size⌋`) and marks their tokens computed. Returns the tokens hit.
fn lookup(pool: &mut BlockPool, rep: &mut Replica, reqs: &mut [Request], s: u32) -> u64 {
    let r = &reqs[s as usize];
    debug_assert!(r.processed == 0 && !pool.held.contains_key(&s));
    let max_blocks = (r.prefill as u64).saturating_sub(1) / rep.block_size;
    let id = r.id;
    let mut hit = Vec::new();
    for i in 0..max_blocks as u32 {
        match pool.cached.get(&(id, i)) {
            Some(&b) if pool.in_free[b as usize] => hit.push(b),
            _ => break,
        }
    }
    if hit.is_empty() {
        return 0;
    }
    for &b in &hit {
        pool.take_cached(b);
    }
    pool.hits += hit.len() as u64;
    let n = hit.len() as u64;
    pool.held.insert(s, hit);
    rep.allocate(&mut reqs[s as usize], n);
    let tokens = n * rep.block_size;
    reqs[s as usize].processed = tokens as u32;
    tokens
}

/// Undoes a lookup whose request could not be admitted (its hit blocks go back, still cached).
fn unlookup(pool: &mut BlockPool, rep: &mut Replica, reqs: &mut [Request], s: u32) {
    free(pool, rep, reqs, s);
    reqs[s as usize].processed = 0;
}

fn next_batch(
    pool: &mut BlockPool,
    rep: &mut Replica,
    reqs: &mut [Request],
    out: &mut Vec<(u32, u32)>,
) -> Result<()> {
    pool.init(rep.num_blocks);
    let mut budget = rep.max_tokens_in_batch;
    let mut preempted = false;
    let mut i = 0;
    while i < rep.running.len() && budget > 0 {
        let s = rep.running[i];
        let r = &reqs[s as usize];
        let n = if r.prefill_complete {
            1
        } else {
            ((r.prefill - r.processed) as u64).min(budget)
        };
        let mut scheduled = true;
        while !allocate(pool, rep, reqs, s, n) {
            let victim = rep.running.pop_back().expect("s is running");
            preempt(pool, rep, reqs, victim);
            preempted = true;
            if victim == s {
                scheduled = false;
                break;
            }
        }
        if !scheduled {
            break;
        }
        out.push((s, n as u32));
        budget -= n;
        i += 1;
    }
    if preempted {
        return Ok(());
    }
    while budget > 0 && rep.running.len() < rep.batch_size_cap {
        let Some(&s) = rep.waiting.front() else {
            break;
        };
        let hit = lookup(pool, rep, reqs, s);
        let r = &reqs[s as usize];
        let n = (r.prefill as u64 - hit).min(budget);
        if !allocate(pool, rep, reqs, s, n) {
            if hit > 0 {
                unlookup(pool, rep, reqs, s);
            }
            break;
        }
        rep.waiting.pop_front();
        rep.running.push_back(s);
        out.push((s, n as u32));
        budget -= n;
    }
    Ok(())
}

fn on_batch_end(pool: &mut BlockPool, rep: &mut Replica, reqs: &mut [Request], batch: &[u32]) {
    for &s in batch {
        if reqs[s as usize].completed {
            free(pool, rep, reqs, s);
            if let Some(p) = rep.running.iter().position(|&x| x == s) {
                rep.running.remove(p);
            }
        }
    }
}

/// vLLM 0.24's V1 scheduler; its state is the KV block pool with its prefix cache.
#[derive(Debug, Default)]
pub(super) struct VllmV1 {
    pool: BlockPool,
}

impl VllmV1 {
    pub(super) fn new(_cfg: &SchedulerConfig, _rep: &Replica) -> VllmV1 {
        VllmV1::default()
    }
}

impl ReplicaScheduler for VllmV1 {
    fn next_batch(
        &mut self,
        rep: &mut Replica,
        reqs: &mut [Request],
        out: &mut Vec<(u32, u32)>,
    ) -> Result<()> {
        next_batch(&mut self.pool, rep, reqs, out)
    }

    fn on_batch_end(&mut self, rep: &mut Replica, reqs: &mut [Request], batch: &[u32]) {
        on_batch_end(&mut self.pool, rep, reqs, batch);
    }

    fn check_admissible(&self, rep: &Replica, r: &Request) -> Result<()> {
        // Blocks are allocated per step; the whole sequence must fit the pool (less vLLM's
        // null block) eventually.
        let total = (r.prefill + r.decode) as u64;
        let full = total.div_ceil(rep.block_size);
        if full + 1 > rep.num_blocks {
            return Err(Error::Unschedulable {
                id: r.id,
                reason: format!(
                    "prompt + output = {total} tokens need {full} KV blocks of {} tokens, more \
                     than the server's {} usable",
                    rep.block_size,
                    rep.num_blocks.saturating_sub(1)
                ),
            });
        }
        Ok(())
    }
}
