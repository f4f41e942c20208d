//! Parity with Vidur: replaying the realised workload of each reference run with Vidur's own
//! prediction tables reproduces its per-request metrics to 1e-6 relative (data: the runs and
//! tables committed under `fixtures/vidur/`).

use std::path::Path;

use simfid::exec::tables::PredictionTables;
use simfid::exec::vidur::{VidurModel, VidurPredictorConfig};
use simfid::model::{DeviceSpec, ModelSpec};
use simfid::sim::{ReplicaSchedulerKind, RequestRecord, SimConfig, Simulator};
use simfid::workload::RequestSpec;

use super::shared;

/// The realised workload of a reference run: arrivals from the arrival time series, token
/// counts from `request_metrics.csv` (original sizes, recorded at arrival).
fn realised_workload(run: &Path) -> Vec<RequestSpec> {
    let (h, rows) = shared::read_csv(&run.join("plots/request_arrival_time_series.csv.gz"));
    let t = shared::col(&h, "Time (sec)");
    let arrivals: Vec<f64> = rows.iter().map(|r| r[t].parse().unwrap()).collect();
    let (h, rows) = shared::read_csv(&run.join("request_metrics.csv.gz"));
    let (id, p, d) = (
        shared::col(&h, "Request Id"),
        shared::col(&h, "request_num_prefill_tokens"),
        shared::col(&h, "request_num_decode_tokens"),
    );
    assert_eq!(rows.len(), arrivals.len());
    rows.iter()
        .map(|r| {
            let i: u64 = r[id].parse().unwrap();
            RequestSpec {
                id: i,
                arrival_s: arrivals[i as usize],
                prefill_tokens: r[p].parse().unwrap(),
                decode_tokens: r[d].parse().unwrap(),
            }
        })
        .collect()
}

fn check_run(name: &str, kind: ReplicaSchedulerKind, tweak: impl Fn(&mut SimConfig)) {
    let run = shared::vidur_run(name);
    let tables = PredictionTables::load(&shared::vidur_tables()).unwrap();
    let model = ModelSpec::builtin("meta-llama/Meta-Llama-3-8B").unwrap();
    let exec = VidurModel::new(&tables, &model, 1, 1, &VidurPredictorConfig::default()).unwrap();
    let mut cfg = SimConfig::new(model, DeviceSpec::builtin("a100").unwrap(), kind);
    tweak(&mut cfg);
    let mut workload = realised_workload(&run);
    workload.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
    let mut records: Vec<RequestRecord> = Vec::new();
    let summary = Simulator::new(cfg, &exec)
        .unwrap()
        .run(workload, &mut records)
        .unwrap();
    records.sort_by_key(|r| r.id);

    let (h, rows) = shared::read_csv(&run.join("request_metrics.csv.gz"));
    assert_eq!(records.len(), rows.len(), "{name}: request count");
    assert_eq!(
        summary.completed as usize,
        rows.len(),
        "{name}: all complete"
    );
    let cols = [
        "prefill_e2e_time",
        "request_e2e_time",
        "request_scheduling_delay",
        "request_execution_time",
        "request_preemption_time",
        "decode_time_execution_plus_preemption_normalized",
    ];
    let idx: Vec<usize> = cols.iter().map(|c| shared::col(&h, c)).collect();
    let restarts = shared::col(&h, "request_num_restarts");
    let mut worst = 0.0f64;
    for (rec, row) in records.iter().zip(&rows) {
        let vals = rec.vidur_row();
        for (&j, c) in idx.iter().zip(cols) {
            let want: f64 = row[j].parse().unwrap();
            let got = match vals[j] {
                Some(simfid::sim::VidurValue::F(x)) => x,
                other => panic!("{name}: request {} {c}: {other:?}", rec.id),
            };
            let rel = (got - want).abs() / want.abs().max(1e-12);
            let abs = (got - want).abs();
            worst = worst.max(if want.abs() > 1e-9 { rel } else { abs });
            assert!(
                rel <= 1e-6 || abs <= 1e-12,
                "{name}: request {} {c}: simfid {got} vs Vidur {want}",
                rec.id
            );
        }
        assert_eq!(
            rec.restarts.to_string(),
            row[restarts],
            "{name}: request {} restarts",
            rec.id
        );
    }
    eprintln!(
        "{name}: {} requests, worst relative difference {worst:e}",
        records.len()
    );
}

#[test]
fn run_a_sarathi_poisson_2qps() {
    check_run("a", ReplicaSchedulerKind::Sarathi, |_| {});
}

#[test]
fn run_b_vllm_poisson_2qps() {
    check_run("b", ReplicaSchedulerKind::Vllm, |_| {});
}

#[test]
fn run_c_sarathi_overload_8qps() {
    check_run("c", ReplicaSchedulerKind::Sarathi, |_| {});
}

#[test]
fn run_d_sarathi_trace_boundary_lengths() {
    check_run("d", ReplicaSchedulerKind::Sarathi, |_| {});
}

#[test]
fn run_e_sarathi_20000_requests() {
    check_run("e", ReplicaSchedulerKind::Sarathi, |_| {});
}
