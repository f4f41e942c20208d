//! The discrete-event loop (Vidur's `vidur/simulator.py` and `vidur/events/`).
//!
//! Events are ordered by `(time, creation sequence)`: equal-time events run in the order they
//! were created, which is what Vidur's heap does (its event-type tie-breaker is dead code, B1).
//! Arrivals are not stored in the heap: they stream from the workload in arrival order and win
//! every tie, because Vidur creates all arrival events before any other event. That keeps memory
//! proportional to the requests in the system, not to the length of the trace.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::config::{GlobalSchedulerKind, SimConfig};
use super::metrics::{RecordSink, RequestRecord, SimSummary};
use super::replica::{MemoryPlan, Replica, memory_plan};
use super::request::Request;
use super::scheduler::{self, ReplicaScheduler};
use crate::error::Result;
use crate::exec::{BatchItem, ExecModel, StageTime};
use crate::workload::RequestSpec;

#[derive(Debug, Clone, Copy)]
enum Kind {
    GlobalSchedule,
    ReplicaSchedule { r: u32 },
    StageArrival { r: u32, s: u32, b: u32 },
    StageSchedule { r: u32, s: u32 },
    StageEnd { r: u32, s: u32, b: u32 },
    BatchEnd { r: u32, b: u32 },
}

#[derive(Debug, Clone, Copy)]
struct Event {
    t: f64,
    seq: u64,
    kind: Kind,
}

impl PartialEq for Event {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Event {
    // Reversed: BinaryHeap is a max-heap, we pop the earliest (time, seq).
    fn cmp(&self, o: &Self) -> Ordering {
        o.t.total_cmp(&self.t).then(o.seq.cmp(&self.seq))
    }
}

/// A stream of arrivals sorted by time.
trait ArrivalSource {
    fn peek_time(&mut self) -> Option<f64>;
    fn take(&mut self) -> Option<RequestSpec>;
}

impl<I: Iterator<Item = RequestSpec>> ArrivalSource for std::iter::Peekable<I> {
    fn peek_time(&mut self) -> Option<f64> {
        self.peek().map(|a| a.arrival_s)
    }
    fn take(&mut self) -> Option<RequestSpec> {
        self.next()
    }
}

impl ArrivalSource for std::collections::VecDeque<RequestSpec> {
    fn peek_time(&mut self) -> Option<f64> {
        self.front().map(|a| a.arrival_s)
    }
    fn take(&mut self) -> Option<RequestSpec> {
        self.pop_front()
    }
}

/// Where the next event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Arrival,
    Heap,
    Now,
}

#[derive(Debug, Default)]
struct Batch {
    replica: u32,
    scheduled_at: f64,
    slots: Vec<u32>,
    items: Vec<BatchItem>,
    stage: StageTime,
}

/// Routes requests to replicas.
enum Router {
    RoundRobin(u64),
    Lor,
    Random(Box<dyn FnMut(u32) -> u32>),
}

/// A configured simulator. Build one with [`Simulator::new`], run a workload with
/// [`Simulator::run`].
pub struct Simulator<'a> {
    cfg: SimConfig,
    exec: &'a dyn ExecModel,
    plan: MemoryPlan,
    replicas: Vec<Replica>,
    /// Each replica's scheduler, which owns the scheduler's own state.
    schedulers: Vec<Box<dyn ReplicaScheduler>>,
    router: Router,
    reqs: Vec<Request>,
    free_slots: Vec<u32>,
    batches: Vec<Batch>,
    free_batches: Vec<u32>,
    heap: BinaryHeap<Event>,
    /// Events created at the current time, in creation order. They sort after every heap event
    /// of the same time (those were created earlier), so they need no heap.
    now_queue: std::collections::VecDeque<Kind>,
    now: f64,
    /// Requests added online (`add_request`), not yet arrived.
    online: std::collections::VecDeque<RequestSpec>,
    summary: SimSummary,
    last_arrival: Option<f64>,
    limit: f64,
    seq: u64,
    global_queue: Vec<u32>,
    scratch: Vec<(u32, u32)>,
    record: RequestRecord,
}

impl<'a> Simulator<'a> {
    /// Builds the cluster: memory plan, replicas, router.
    pub fn new(cfg: SimConfig, exec: &'a dyn ExecModel) -> Result<Simulator<'a>> {
        cfg.validate()?;
        let plan = memory_plan(&cfg)?;
        let limit = cfg
            .time_limit_s
            .filter(|&l| l > 0.0)
            .unwrap_or(f64::INFINITY);
        let replicas: Vec<Replica> = (0..cfg.num_replicas)
            .map(|_| Replica::new(&cfg, &plan))
            .collect();
        let schedulers = replicas
            .iter()
            .map(|rep| scheduler::build(&cfg.scheduler, rep))
            .collect();
        let router = match cfg.global_scheduler {
            GlobalSchedulerKind::RoundRobin => Router::RoundRobin(0),
            GlobalSchedulerKind::Lor => Router::Lor,
            GlobalSchedulerKind::Random => {
                let mut rng = crate::workload::pyrandom::PyRandom::seed(cfg.seed);
                Router::Random(Box::new(move |n| {
                    rng.randint(1, n as i64).map_or(0, |r| r as u32 - 1)
                }))
            }
        };
        Ok(Simulator {
            cfg,
            exec,
            plan,
            replicas,
            schedulers,
            router,
            reqs: Vec::new(),
            free_slots: Vec::new(),
            batches: Vec::new(),
            free_batches: Vec::new(),
            heap: BinaryHeap::new(),
            now_queue: std::collections::VecDeque::new(),
            now: 0.0,
            online: std::collections::VecDeque::new(),
            summary: SimSummary::default(),
            last_arrival: None,
            limit,
            seq: 0,
            global_queue: Vec::new(),
            scratch: Vec::new(),
            record: RequestRecord::default(),
        })
    }

    /// Replaces the source of the `random` global scheduler: `pick(n)` returns a replica in
    /// `0..n`. `simfid vidur` hands over CPython's `random` stream as the workload generator
    /// left it, as Vidur does.
    pub fn with_random_router(mut self, pick: Box<dyn FnMut(u32) -> u32>) -> Self {
        if matches!(self.router, Router::Random(_)) {
            self.router = Router::Random(pick);
        }
        self
    }

    /// The memory plan the replicas were built with.
    pub fn memory_plan(&self) -> MemoryPlan {
        self.plan
    }

    /// KV blocks per replica (pinned or planned).
    pub fn num_blocks(&self) -> u64 {
        self.replicas[0].num_blocks
    }

    fn push(&mut self, t: f64, kind: Kind) {
        if t == self.now {
            self.now_queue.push_back(kind);
            return;
        }
        self.seq += 1;
        self.heap.push(Event {
            t,
            seq: self.seq,
            kind,
        });
    }

    /// Runs `arrivals` (sorted by arrival time) to completion. Finished requests go to `sink`
    /// as they finish; requests still unfinished at the end (time limit or a stalled replica)
    /// are passed at the end with `completed == false`.
    ///
    /// If the simulation fails midway (an execution-time model without a prediction for a
    /// batch, say), the requests still in the system are passed to `sink` as unfinished before
    /// the error is returned, so nothing already simulated is lost.
    pub fn run(
        &mut self,
        arrivals: impl IntoIterator<Item = RequestSpec>,
        sink: &mut dyn RecordSink,
    ) -> Result<SimSummary> {
        let mut arrivals = arrivals.into_iter().peekable();
        let result = (|| {
            while self.step(&mut arrivals, f64::INFINITY, sink)? {}
            self.finish(sink)
        })();
        if result.is_err() {
            self.drain_unfinished(sink);
        }
        result
    }

    /// Online use (`simfid serve`): adds a request arriving at `spec.arrival_s`, which must not
    /// be earlier than the simulated clock or than the previous arrival.
    pub fn add_request(&mut self, spec: RequestSpec) -> Result<()> {
        let last = self
            .online
            .back()
            .map_or(self.now, |s| s.arrival_s.max(self.now));
        if spec.arrival_s < last {
            return Err(crate::Error::UnsortedArrivals(format!(
                "request {} arrives at {} s, before the simulated clock ({} s)",
                spec.id, spec.arrival_s, last
            )));
        }
        self.online.push_back(spec);
        Ok(())
    }

    /// Online use: whether `spec` could ever be scheduled (at least one prompt and one output
    /// token; with `strict_admission`, fits the replica's KV capacity and token budget). A
    /// server checks this before [`add_request`](Self::add_request) so that an impossible
    /// request is refused alone instead of failing the simulation.
    pub fn check_admissible(&self, spec: &RequestSpec) -> Result<()> {
        if spec.prefill_tokens == 0 || spec.decode_tokens == 0 {
            return Err(crate::Error::Unschedulable {
                id: spec.id,
                reason: "prompt and output must each have at least 1 token".into(),
            });
        }
        if self.cfg.strict_admission {
            let mut r = Request::default();
            r.reset(spec, None);
            self.schedulers[0].check_admissible(&self.replicas[0], &r)?;
        }
        Ok(())
    }

    /// Online use: request `id`'s client went away. As vLLM aborts such a request, it stops
    /// taking resources: it ends at its next step (see `Request::abort`), or, not arrived yet,
    /// arrives as a 1-token prompt and output. Its record is still passed to the sink when it
    /// ends. Returns false when no unfinished request has this id, and under the
    /// FasterTransformer scheduler, whose static batches (bug-compatible with Vidur) would
    /// keep an early finisher's KV blocks: there the request runs to its end.
    pub fn abort_request(&mut self, id: u64) -> bool {
        if !self.schedulers.iter().all(|s| s.can_abort()) {
            return false;
        }
        if let Some(s) = self.online.iter_mut().find(|s| s.id == id) {
            s.prefill_tokens = 1;
            s.decode_tokens = 1;
            return true;
        }
        match self.reqs.iter_mut().find(|r| r.alive && r.id == id) {
            Some(r) => {
                r.abort();
                true
            }
            None => false,
        }
    }

    /// Online use: time of the next event (arrival or engine event), if any.
    pub fn next_event_time(&self) -> Option<f64> {
        if !self.now_queue.is_empty() {
            return Some(self.now);
        }
        let a = self.online.front().map(|s| s.arrival_s);
        let h = self.heap.peek().map(|e| e.t);
        match (a, h) {
            (Some(a), Some(h)) => Some(a.min(h)),
            (x, None) | (None, x) => x,
        }
    }

    /// Online use: processes every event (and added arrival) up to simulated time `until`.
    pub fn advance_until(&mut self, until: f64, sink: &mut dyn RecordSink) -> Result<()> {
        let mut online = std::mem::take(&mut self.online);
        let r = (|| {
            while self.step(&mut online, until, sink)? {}
            Ok(())
        })();
        self.online = online;
        r
    }

    /// The simulated clock.
    pub fn now(&self) -> f64 {
        self.now
    }

    /// Ends a run: passes requests left unfinished to `sink` and returns the summary.
    pub fn finish(&mut self, sink: &mut dyn RecordSink) -> Result<SimSummary> {
        let mut summary = std::mem::take(&mut self.summary);
        summary.end_time_s = self.now;
        let left = self.alive_slots();
        summary.unfinished = left.len() as u64;
        summary.leaked_kv_blocks = self.replicas.iter().map(|r| r.allocated).sum::<u64>();
        summary.stalled = !summary.hit_time_limit
            && (!left.is_empty()
                || self
                    .replicas
                    .iter()
                    .zip(&self.schedulers)
                    .any(|(r, s)| !r.is_empty() || !s.is_idle()));
        for s in left {
            self.reqs[s as usize].alive = false;
            self.emit(s, sink)?;
            summary.leaked_kv_blocks -= self.reqs[s as usize].blocks.unwrap_or(0);
        }
        summary.kv_blocks_per_replica = self.replicas[0].num_blocks;
        Ok(summary)
    }

    /// Slots of requests not finished yet, in id order.
    fn alive_slots(&self) -> Vec<u32> {
        let mut left: Vec<u32> = (0..self.reqs.len() as u32)
            .filter(|&s| self.reqs[s as usize].alive)
            .collect();
        left.sort_by_key(|&s| self.reqs[s as usize].id);
        left
    }

    /// After an error: hands every request still in the system to `sink` as unfinished.
    fn drain_unfinished(&mut self, sink: &mut dyn RecordSink) {
        for s in self.alive_slots() {
            self.reqs[s as usize].alive = false;
            // The original error matters more than a failing sink.
            let _ = self.emit(s, sink);
        }
    }

    /// Processes the next event if its time is at most `until`; false when there is none (or
    /// the time limit was passed).
    fn step<A: ArrivalSource>(
        &mut self,
        arrivals: &mut A,
        until: f64,
        sink: &mut dyn RecordSink,
    ) -> Result<bool> {
        if self.summary.hit_time_limit {
            return Ok(false);
        }
        let now = self.now;
        // Order at the current time: arrivals (created first), then heap events of this time
        // (created before the clock got here), then events created at this time.
        let next_arrival = arrivals.peek_time();
        let heap_now = self.heap.peek().is_some_and(|e| e.t == now);
        let source = if next_arrival == Some(now) {
            Next::Arrival
        } else if heap_now {
            Next::Heap
        } else if !self.now_queue.is_empty() {
            Next::Now
        } else {
            match (next_arrival, self.heap.peek()) {
                (Some(a), Some(e)) if a <= e.t => Next::Arrival,
                (Some(_), None) => Next::Arrival,
                (_, Some(_)) => Next::Heap,
                (None, None) => return Ok(false),
            }
        };
        let t = match source {
            Next::Arrival => next_arrival.expect("peeked"),
            Next::Heap => self.heap.peek().expect("peeked").t,
            Next::Now => now,
        };
        if t > until {
            return Ok(false);
        }
        if t < now {
            return Err(crate::Error::UnsortedArrivals(format!(
                "arrivals are not sorted by time: {t} s after {now} s"
            )));
        }
        self.now = t;
        let terminate = t > self.limit;
        match source {
            Next::Arrival => {
                let spec = arrivals.take().expect("peeked");
                let inter = self.last_arrival.map(|l| spec.arrival_s - l);
                self.last_arrival = Some(spec.arrival_s);
                self.on_arrival(&spec, inter)?;
                self.summary.arrived += 1;
                self.push(t, Kind::GlobalSchedule);
            }
            Next::Heap => {
                let ev = self.heap.pop().expect("peeked");
                self.handle(ev.t, ev.kind, sink)?;
            }
            Next::Now => {
                let kind = self.now_queue.pop_front().expect("non-empty");
                self.handle(t, kind, sink)?;
            }
        }
        if terminate {
            self.summary.hit_time_limit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn on_arrival(&mut self, spec: &RequestSpec, inter: Option<f64>) -> Result<()> {
        let slot = match self.free_slots.pop() {
            Some(s) => s,
            None => {
                self.reqs.push(Request::default());
                self.reqs.len() as u32 - 1
            }
        };
        self.reqs[slot as usize].reset(spec, inter);
        if spec.prefill_tokens == 0 || spec.decode_tokens == 0 {
            return Err(crate::Error::Unschedulable {
                id: spec.id,
                reason: "prompt and output must each have at least 1 token".into(),
            });
        }
        if self.cfg.strict_admission {
            self.schedulers[0].check_admissible(&self.replicas[0], &self.reqs[slot as usize])?;
        }
        self.global_queue.push(slot);
        Ok(())
    }

    fn handle(&mut self, t: f64, kind: Kind, sink: &mut dyn RecordSink) -> Result<()> {
        match kind {
            Kind::GlobalSchedule => {
                let n = self.replicas.len() as u32;
                let mut touched = 0u64; // bitset for small clusters
                let mut touched_big: Vec<u32> = Vec::new();
                // The queue is already in arrival order (Vidur sorts it stably by arrival).
                let pending: Vec<u32> = if matches!(self.router, Router::Lor) {
                    self.replicas
                        .iter()
                        .map(|r| r.waiting.len() as u32)
                        .collect()
                } else {
                    Vec::new()
                };
                let mut pending = pending;
                let queue = std::mem::take(&mut self.global_queue);
                for &slot in &queue {
                    let r = match &mut self.router {
                        Router::RoundRobin(c) => {
                            let r = (*c % n as u64) as u32;
                            *c += 1;
                            r
                        }
                        Router::Lor => {
                            let (best, _) = pending
                                .iter()
                                .enumerate()
                                .min_by_key(|&(i, &p)| (p, i))
                                .expect("≥ 1 replica");
                            pending[best] += 1;
                            best as u32
                        }
                        Router::Random(pick) => pick(n),
                    };
                    self.reqs[slot as usize].replica = r;
                    self.replicas[r as usize].waiting.push_back(slot);
                    if r < 64 {
                        touched |= 1 << r;
                    } else if !touched_big.contains(&r) {
                        touched_big.push(r);
                    }
                }
                self.global_queue = queue;
                self.global_queue.clear();
                for r in 0..n.min(64) {
                    if touched & (1 << r) != 0 {
                        self.push(t, Kind::ReplicaSchedule { r });
                    }
                }
                touched_big.sort_unstable();
                for r in touched_big {
                    self.push(t, Kind::ReplicaSchedule { r });
                }
            }
            Kind::ReplicaSchedule { r } => {
                let num_stages = self.replicas[r as usize].stages.len();
                let mut formed: [u32; 8] = [0; 8];
                let mut formed_more: Vec<u32> = Vec::new();
                let mut count = 0usize;
                while self.replicas[r as usize].num_running_batches < num_stages {
                    let mut out = std::mem::take(&mut self.scratch);
                    out.clear();
                    self.schedulers[r as usize].next_batch(
                        &mut self.replicas[r as usize],
                        &mut self.reqs,
                        &mut out,
                    )?;
                    if out.is_empty() {
                        self.scratch = out;
                        break;
                    }
                    let b = self.new_batch(r, &out);
                    self.scratch = out;
                    self.replicas[r as usize].num_running_batches += 1;
                    if count < formed.len() {
                        formed[count] = b;
                    } else {
                        formed_more.push(b);
                    }
                    count += 1;
                }
                for i in 0..count {
                    let b = if i < formed.len() {
                        formed[i]
                    } else {
                        formed_more[i - formed.len()]
                    };
                    let batch = &mut self.batches[b as usize];
                    batch.scheduled_at = t;
                    for &s in &batch.slots {
                        self.reqs[s as usize].on_batch_schedule(t);
                    }
                }
                for i in 0..count {
                    let b = if i < formed.len() {
                        formed[i]
                    } else {
                        formed_more[i - formed.len()]
                    };
                    self.push(t, Kind::StageArrival { r, s: 0, b });
                }
            }
            Kind::StageArrival { r, s, b } => {
                self.replicas[r as usize].stages[s as usize]
                    .queue
                    .push_back(b);
                self.push(t, Kind::StageSchedule { r, s });
            }
            Kind::StageSchedule { r, s } => {
                let stage = &mut self.replicas[r as usize].stages[s as usize];
                if stage.busy {
                    return Ok(());
                }
                let Some(b) = stage.queue.pop_front() else {
                    return Ok(());
                };
                stage.busy = true;
                let time = self
                    .exec
                    .stage_time(&self.batches[b as usize].items, s as usize)?;
                let batch = &mut self.batches[b as usize];
                batch.stage = time;
                for &slot in &batch.slots {
                    self.reqs[slot as usize].on_stage_schedule(t);
                }
                self.push(t + time.total_s, Kind::StageEnd { r, s, b });
            }
            Kind::StageEnd { r, s, b } => {
                self.replicas[r as usize].stages[s as usize].busy = false;
                let batch = &self.batches[b as usize];
                let (e, m) = (batch.stage.total_s, batch.stage.model_s);
                for &slot in &batch.slots {
                    self.reqs[slot as usize].on_stage_end(t, e, m);
                }
                self.push(t, Kind::StageSchedule { r, s });
                if s as usize + 1 == self.replicas[r as usize].stages.len() {
                    self.push(t, Kind::BatchEnd { r, b });
                } else {
                    self.push(t, Kind::StageArrival { r, s: s + 1, b });
                }
            }
            Kind::BatchEnd { r, b } => {
                self.summary.batches += 1;
                let batch = std::mem::take(&mut self.batches[b as usize]);
                for (&slot, item) in batch.slots.iter().zip(&batch.items) {
                    let r = &mut self.reqs[slot as usize];
                    let before = r.token_times.len();
                    r.on_batch_end(t, item.num_tokens);
                    if r.token_times.len() > before {
                        sink.token(r.id, before as u32, t);
                    }
                }
                self.replicas[r as usize].num_running_batches -= 1;
                self.schedulers[r as usize].on_batch_end(
                    &mut self.replicas[r as usize],
                    &mut self.reqs,
                    &batch.slots,
                );
                for &slot in &batch.slots {
                    if self.reqs[slot as usize].completed {
                        self.summary.completed += 1;
                        self.summary.restarts += self.reqs[slot as usize].restarts as u64;
                        self.emit(slot, sink)?;
                        self.reqs[slot as usize].alive = false;
                        self.free_slots.push(slot);
                    }
                }
                self.batches[b as usize] = batch;
                self.free_batches.push(b);
                self.push(t, Kind::ReplicaSchedule { r });
            }
        }
        Ok(())
    }

    fn new_batch(&mut self, r: u32, out: &[(u32, u32)]) -> u32 {
        let b = match self.free_batches.pop() {
            Some(b) => b,
            None => {
                self.batches.push(Batch::default());
                self.batches.len() as u32 - 1
            }
        };
        let batch = &mut self.batches[b as usize];
        batch.replica = r;
        batch.slots.clear();
        batch.items.clear();
        for &(s, n) in out {
            let req = &self.reqs[s as usize];
            batch.slots.push(s);
            batch.items.push(BatchItem {
                num_tokens: n,
                processed_tokens: req.processed,
                prefill_complete: req.prefill_complete,
            });
        }
        b
    }

    fn emit(&mut self, slot: u32, sink: &mut dyn RecordSink) -> Result<()> {
        let r = &mut self.reqs[slot as usize];
        let rec = &mut self.record;
        rec.fill_from(r);
        std::mem::swap(&mut rec.token_times, &mut r.token_times);
        let res = sink.record(rec);
        std::mem::swap(&mut rec.token_times, &mut r.token_times);
        res
    }
}
