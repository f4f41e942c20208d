//! The scheduler registry (`src/sim/registry.rs`) lists every replica scheduler once: each
//! kind parses from its name, serialises as it, and builds and runs a simulation.

use simfid::exec::roofline::Roofline;
use simfid::model::{DeviceSpec, ModelSpec};
use simfid::sim::{ReplicaSchedulerKind, RequestRecord, SimConfig, Simulator};
use simfid::workload::RequestSpec;

#[test]
fn every_registered_scheduler_parses_serialises_and_runs() {
    let names: Vec<&str> = ReplicaSchedulerKind::ALL.iter().map(|k| k.name()).collect();
    // Vidur's five, then transformers' and vLLM V1's; a new scheduler adds its name after
    // them without a change to this test.
    assert_eq!(
        names[..7],
        [
            "vllm",
            "sarathi",
            "orca",
            "faster_transformer",
            "lightllm",
            "hf_cb",
            "vllm_v1"
        ]
    );
    let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len(), "names are unique");
    let model = ModelSpec::qwen3_0_6b();
    let device = DeviceSpec::builtin("h100").unwrap();
    let exec = Roofline::new(&model, &device, 1, 1).unwrap();
    for &kind in ReplicaSchedulerKind::ALL {
        assert_eq!(ReplicaSchedulerKind::parse(kind.name()).unwrap(), kind);
        assert_eq!(
            serde_json::to_value(kind).unwrap(),
            serde_json::Value::from(kind.name())
        );
        let mut cfg = SimConfig::new(model.clone(), device.clone(), kind);
        if kind == ReplicaSchedulerKind::LightLlm {
            // LightLLM's KV is token-granular.
            cfg.scheduler.block_size = 1;
        }
        let workload: Vec<RequestSpec> = (0..20)
            .map(|i| RequestSpec {
                id: i,
                arrival_s: i as f64 * 0.05,
                prefill_tokens: 100,
                decode_tokens: 8,
            })
            .collect();
        let mut records: Vec<RequestRecord> = Vec::new();
        let summary = Simulator::new(cfg, &exec)
            .unwrap()
            .run(workload, &mut records)
            .unwrap();
        assert_eq!(summary.completed, 20, "{}", kind.name());
    }
    let err = ReplicaSchedulerKind::parse("fifo").unwrap_err().to_string();
    assert!(
        err.ends_with(&format!("known: {}", names.join(", "))),
        "{err}"
    );
}
