//! The `hf_cb` scheduler schedules like transformers 5.17 continuous batching
//! (`generation/continuous_batching/scheduler.py`, as `src/sim/scheduler/hf_cb.rs` describes
//! it): decodes first, chunked prefill in the leftover budget, blocks
//! allocated per chunk, safety margin, soft-reset evictions of the newest starved request.

use std::cell::RefCell;

use simfid::exec::{BatchItem, ExecModel, StageTime};
use simfid::model::{DeviceSpec, ModelSpec};
use simfid::sim::{ReplicaSchedulerKind, RequestRecord, SimConfig, Simulator};
use simfid::workload::RequestSpec;

/// Records every step's composition; each step takes 10 ms.
#[derive(Default)]
struct Steps(RefCell<Vec<Vec<BatchItem>>>);

impl ExecModel for Steps {
    fn stage_time(&self, batch: &[BatchItem], _: usize) -> simfid::Result<StageTime> {
        self.0.borrow_mut().push(batch.to_vec());
        Ok(StageTime {
            total_s: 0.01,
            model_s: 0.01,
        })
    }
}

fn req(id: u64, t: f64, p: u32, d: u32) -> RequestSpec {
    RequestSpec {
        id,
        arrival_s: t,
        prefill_tokens: p,
        decode_tokens: d,
    }
}

fn run(cfg: SimConfig, reqs: Vec<RequestSpec>) -> (Vec<Vec<BatchItem>>, Vec<RequestRecord>, u64) {
    let steps = Steps::default();
    let mut out = Vec::new();
    let s = Simulator::new(cfg, &steps)
        .unwrap()
        .run(reqs, &mut out)
        .unwrap();
    out.sort_by_key(|r: &RequestRecord| r.id);
    (steps.0.into_inner(), out, s.restarts)
}

fn config() -> SimConfig {
    SimConfig::new(
        ModelSpec::qwen3_0_6b(),
        DeviceSpec::builtin("h100").unwrap(),
        ReplicaSchedulerKind::HfCb,
    )
}

#[test]
fn long_prompt_is_chunked_by_the_token_budget_and_decodes_go_first() {
    // Request 0 decodes; request 1's 5000-token prompt arrives and is chunked in 2048-token
    // steps minus the decodes that go first.
    let (steps, recs, _) = run(config(), vec![req(0, 0.0, 100, 50), req(1, 0.015, 5000, 2)]);
    assert_eq!(
        steps[0],
        vec![BatchItem {
            num_tokens: 100,
            processed_tokens: 0,
            prefill_complete: false
        }]
    );
    // Step 2 (t = 0.01): request 0 decodes alone (request 1 not arrived yet).
    assert_eq!(steps[1].len(), 1);
    // Step 3 (t = 0.02): decode of 0 first, then 2047 prompt tokens of 1.
    assert_eq!(steps[2][0].num_tokens, 1);
    assert_eq!(steps[2][1].num_tokens, 2047);
    assert_eq!(steps[3][1].num_tokens, 2047);
    assert_eq!(steps[4][1].num_tokens, 5000 - 2 * 2047);
    assert!(recs.iter().all(|r| r.completed));
    // Request 1's first token comes from the step of its last chunk.
    assert_eq!(recs[1].token_times[0], 0.05);
}

#[test]
fn several_prompts_share_a_step_in_fifo_order() {
    let reqs = (0..3).map(|i| req(i, 0.0, 900, 3)).collect();
    let (steps, _, _) = run(config(), reqs);
    let first: Vec<u32> = steps[0].iter().map(|b| b.num_tokens).collect();
    // 900 + 900 + the 248 tokens left of the 2048 budget.
    assert_eq!(first, vec![900, 900, 248]);
    let second: Vec<u32> = steps[1].iter().map(|b| b.num_tokens).collect();
    // Two decodes first, then the rest of the third prompt.
    assert_eq!(second, vec![1, 1, 652]);
}

#[test]
fn full_cache_evicts_the_newest_starved_request_by_soft_reset() {
    let mut cfg = config();
    cfg.scheduler.num_blocks = Some(4);
    // Two requests of 200-token prompts (1 block each at first) growing to 200 + 700 tokens
    // (4 blocks each): they cannot both finish in 4 blocks.
    let (_, recs, restarts) = run(cfg, vec![req(0, 0.0, 200, 700), req(1, 0.0, 200, 700)]);
    assert!(restarts >= 1);
    assert!(
        recs.iter()
            .all(|r| r.completed && r.token_times.len() == 700)
    );
    // The older request is never the victim.
    assert_eq!(recs[0].restarts, 0);
    assert!(recs[1].restarts >= 1);
}

#[test]
fn a_request_larger_than_the_cache_is_refused() {
    let mut cfg = config();
    cfg.scheduler.num_blocks = Some(4);
    let steps = Steps::default();
    let mut out: Vec<RequestRecord> = Vec::new();
    let e = Simulator::new(cfg, &steps)
        .unwrap()
        .run(vec![req(0, 0.0, 1500, 100)], &mut out)
        .unwrap_err();
    assert!(
        e.to_string().contains("request 0 can never be scheduled"),
        "{e}"
    );
}
