//! Invariants of the simulator on random workloads and configurations (proptest): every
//! request completes exactly once, output tokens are conserved, clocks are monotone, KV memory
//! is returned, and the same input gives byte-identical output.

use proptest::prelude::*;
use simfid::exec::{BatchItem, ExecModel, StageTime};
use simfid::model::{DeviceSpec, ModelSpec};
use simfid::sim::{
    GlobalSchedulerKind, ReplicaSchedulerKind, RequestRecord, SimConfig, SimSummary, Simulator,
};
use simfid::workload::RequestSpec;

/// A simple positive execution-time model: fixed cost + per-token + per-KV-token terms.
struct Linear;

impl ExecModel for Linear {
    fn stage_time(&self, batch: &[BatchItem], _stage: usize) -> simfid::Result<StageTime> {
        let tokens: u32 = batch.iter().map(|b| b.num_tokens).sum();
        let kv: u64 = batch.iter().map(|b| b.processed_tokens as u64).sum();
        let t = 2e-3 + 1e-5 * tokens as f64 + 1e-8 * kv as f64;
        Ok(StageTime {
            total_s: t,
            model_s: t,
        })
    }
}

const KINDS: [ReplicaSchedulerKind; 6] = [
    ReplicaSchedulerKind::Sarathi,
    ReplicaSchedulerKind::Vllm,
    ReplicaSchedulerKind::Orca,
    ReplicaSchedulerKind::FasterTransformer,
    ReplicaSchedulerKind::LightLlm,
    ReplicaSchedulerKind::HfCb,
];
const GLOBALS: [GlobalSchedulerKind; 3] = [
    GlobalSchedulerKind::RoundRobin,
    GlobalSchedulerKind::Lor,
    GlobalSchedulerKind::Random,
];

#[derive(Debug, Clone)]
struct Case {
    kind: usize,
    global: usize,
    replicas: u32,
    pp: u32,
    chunk: u32,
    tight_memory: bool,
    requests: Vec<RequestSpec>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        0..6usize,
        0..3usize,
        1..4u32,
        1..3u32,
        prop_oneof![Just(64u32), Just(256), Just(512)],
        any::<bool>(),
        prop::collection::vec((0.0..30.0f64, 1..700u32, 1..120u32), 1..40),
    )
        .prop_map(|(kind, global, replicas, pp, chunk, tight_memory, reqs)| {
            let mut arrivals: Vec<f64> = reqs.iter().map(|r| r.0).collect();
            arrivals.sort_by(f64::total_cmp);
            let requests = reqs
                .iter()
                .zip(arrivals)
                .enumerate()
                .map(|(i, (r, t))| RequestSpec {
                    id: i as u64,
                    arrival_s: t,
                    prefill_tokens: r.1,
                    decode_tokens: r.2,
                })
                .collect();
            Case {
                kind,
                global,
                replicas,
                pp,
                chunk,
                tight_memory,
                requests,
            }
        })
}

fn config(c: &Case) -> SimConfig {
    let kind = KINDS[c.kind];
    let mut cfg = SimConfig::new(
        ModelSpec::builtin("meta-llama/Meta-Llama-3-8B").unwrap(),
        DeviceSpec::builtin("a100").unwrap(),
        kind,
    );
    cfg.global_scheduler = GLOBALS[c.global];
    cfg.num_replicas = c.replicas;
    cfg.scheduler.chunk_size = c.chunk;
    cfg.seed = 7;
    if kind == ReplicaSchedulerKind::LightLlm {
        cfg.scheduler.block_size = 1;
    } else if kind == ReplicaSchedulerKind::HfCb {
        cfg.scheduler = simfid::sim::SchedulerConfig::new(kind);
        if c.tight_memory {
            // 6 blocks of 256 tokens: evictions, still room for the longest request (820).
            cfg.scheduler.num_blocks = Some(6);
            cfg.scheduler.max_tokens_in_batch = c.chunk;
        }
    } else {
        cfg.num_pipeline_stages = c.pp;
    }
    if c.tight_memory
        && matches!(
            kind,
            ReplicaSchedulerKind::Sarathi | ReplicaSchedulerKind::Vllm
        )
    {
        // 60 blocks of 16 tokens: forces restarts, still admits the longest request (820).
        cfg.scheduler.num_blocks = Some(60);
        cfg.scheduler.watermark_blocks_fraction = 0.0;
    }
    cfg
}

fn simulate(c: &Case) -> (Vec<RequestRecord>, SimSummary) {
    let mut out: Vec<RequestRecord> = Vec::new();
    let summary = Simulator::new(config(c), &Linear)
        .unwrap()
        .run(c.requests.clone(), &mut out)
        .unwrap();
    (out, summary)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn requests_complete_once_with_conserved_tokens_and_monotone_clocks(c in case()) {
        let (records, summary) = simulate(&c);
        let kind = KINDS[c.kind];
        // Exactly one record per request.
        let mut ids: Vec<u64> = records.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        prop_assert_eq!(ids, (0..c.requests.len() as u64).collect::<Vec<_>>());
        prop_assert_eq!(summary.arrived as usize, c.requests.len());
        prop_assert_eq!(summary.completed + summary.unfinished, summary.arrived);
        if kind != ReplicaSchedulerKind::FasterTransformer {
            // Only Vidur's faster_transformer leaks memory and can stall.
            prop_assert!(!summary.stalled, "stalled: {:?}", summary);
            prop_assert_eq!(summary.completed as usize, c.requests.len());
            prop_assert_eq!(summary.leaked_kv_blocks, 0);
        } else {
            prop_assert_eq!(summary.stalled, summary.unfinished > 0 || summary.leaked_kv_blocks > 0);
        }
        for r in &records {
            let spec = c.requests[r.id as usize];
            prop_assert_eq!(r.prefill_tokens, spec.prefill_tokens);
            prop_assert_eq!(r.decode_tokens, spec.decode_tokens);
            prop_assert_eq!(r.arrived_at, spec.arrival_s);
            if !r.completed {
                prop_assert!(r.token_times.len() < spec.decode_tokens as usize);
                continue;
            }
            // Tokens conserved: one time per output token, and the restart bookkeeping adds up.
            prop_assert_eq!(r.token_times.len(), spec.decode_tokens as usize, "request {}", r.id);
            prop_assert_eq!(
                r.final_prefill_tokens + r.final_decode_tokens,
                spec.prefill_tokens + spec.decode_tokens
            );
            // Monotone clocks.
            prop_assert!(r.arrived_at <= r.scheduled_at);
            prop_assert!(r.scheduled_at < r.prefill_completed_at);
            prop_assert!(r.prefill_completed_at <= r.completed_at);
            // The first output token comes with the first prefill end, unless a restart in the
            // middle of the prefill turned prompt tokens into decode steps (Vidur semantics).
            prop_assert!(r.token_times[0] >= r.prefill_completed_at);
            if r.restarts == 0 {
                prop_assert_eq!(r.token_times[0], r.prefill_completed_at);
            }
            prop_assert_eq!(*r.token_times.last().unwrap(), r.completed_at);
            prop_assert!(r.token_times.windows(2).all(|w| w[0] <= w[1]));
            prop_assert!(r.completed_at <= summary.end_time_s);
            prop_assert!(r.execution_time > 0.0 && r.preempted_time >= 0.0);
        }
    }

    #[test]
    fn same_input_gives_identical_output(c in case()) {
        let (a, sa) = simulate(&c);
        let (b, sb) = simulate(&c);
        prop_assert_eq!(a, b);
        prop_assert_eq!(sa, sb);
    }
}

#[test]
fn tight_memory_exercises_restarts() {
    // A guard that the property above really covers preemption: this workload must restart.
    let requests: Vec<RequestSpec> = (0..30)
        .map(|i| RequestSpec {
            id: i,
            arrival_s: i as f64 * 0.01,
            prefill_tokens: 300,
            decode_tokens: 100,
        })
        .collect();
    let c = Case {
        kind: 0,
        global: 0,
        replicas: 1,
        pp: 1,
        chunk: 512,
        tight_memory: true,
        requests,
    };
    let (records, summary) = simulate(&c);
    assert_eq!(summary.completed, 30);
    assert!(summary.restarts > 0, "{summary:?}");
    assert!(records.iter().all(|r| r.token_times.len() == 100));
    // transformers' continuous batching allocates per chunk, nothing for the output: short
    // prompts with long outputs outgrow 6 blocks of 256 tokens and force soft-reset evictions.
    let requests = (0..30)
        .map(|i| RequestSpec {
            id: i,
            arrival_s: i as f64 * 0.01,
            prefill_tokens: 200,
            decode_tokens: 400,
        })
        .collect();
    let hf = Case {
        kind: 5,
        requests,
        ..c
    };
    let (records, summary) = simulate(&hf);
    assert_eq!(summary.completed, 30);
    assert!(summary.restarts > 0, "{summary:?}");
    assert!(records.iter().all(|r| r.token_times.len() == 400));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Driving the simulator online (requests added as the clock reaches them, the clock
    /// advanced in steps, as `simfid serve` does) gives exactly the batch result.
    #[test]
    fn online_driving_matches_batch_run(c in case(), step in 0.01..2.0f64) {
        let (batch, batch_summary) = simulate(&c);
        let cfg = config(&c);
        let mut sim = Simulator::new(cfg, &Linear).unwrap();
        let mut out: Vec<RequestRecord> = Vec::new();
        let mut pending = c.requests.iter().copied().peekable();
        let mut clock = 0.0;
        loop {
            while let Some(r) = pending.next_if(|r| r.arrival_s <= clock) {
                sim.add_request(r).unwrap();
            }
            sim.advance_until(clock, &mut out).unwrap();
            if pending.peek().is_none() && sim.next_event_time().is_none() {
                break;
            }
            clock += step;
        }
        let summary = sim.finish(&mut out).unwrap();
        prop_assert_eq!(&out, &batch);
        prop_assert_eq!(summary, batch_summary);
    }
}
