//! Runs built from another simulator's per-request results (`RunBuilder`): good results become
//! the run simfid itself would write and are measured by the fidelity code; every kind of bad
//! input is refused naming the request and the field; `Run::validate` refuses hand-built runs
//! that would give negative TTFT or ITL (issue 11) and accepts every shipped golden.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use simfid::Error;
use simfid::exec::roofline::Roofline;
use simfid::fidelity::{Metric, MetricOptions, RunMetrics};
use simfid::fixture::TOKEN_TIMES_KEY;
use simfid::fixture::{
    Chunk, RequestResult, RequestRun, Run, RunBuilder, RunMeta, Source, TimeOrigin, TimeUnit,
    read_run, read_vidur_csv,
};
use simfid::model::{DeviceSpec, ModelSpec};
use simfid::sim::{ReplicaSchedulerKind, RequestRecord, SimConfig, Simulator};
use simfid::workload::RequestSpec;

use super::shared;

fn meta() -> RunMeta {
    RunMeta::new(Source::Sim, "Qwen/Qwen3-0.6B")
}

/// 40 requests of Qwen3-0.6B on an H100 (roofline), one every 100 ms: simfid's own records.
fn simulated() -> Vec<RequestRecord> {
    let model = ModelSpec::builtin("Qwen/Qwen3-0.6B").unwrap();
    let device = DeviceSpec::builtin("h100").unwrap();
    let exec = Roofline::new(&model, &device, 1, 1).unwrap();
    let cfg = SimConfig::new(model, device, ReplicaSchedulerKind::Sarathi);
    let workload: Vec<RequestSpec> = (0..40)
        .map(|i| RequestSpec {
            id: i,
            arrival_s: i as f64 * 0.1,
            prefill_tokens: 100 + 37 * i as u32,
            decode_tokens: 1 + (i as u32 * 7) % 20,
        })
        .collect();
    let mut records = Vec::new();
    Simulator::new(cfg, &exec)
        .unwrap()
        .run(workload, &mut records)
        .unwrap();
    assert!(records.iter().all(|r| r.completed));
    records
}

/// simfid's records as another simulator would report them, in `unit`.
fn as_results(records: &[RequestRecord], unit: TimeUnit) -> Vec<RequestResult> {
    let scale = unit.to_seconds(1.0).recip();
    records
        .iter()
        .map(|r| {
            RequestResult::new(
                r.id,
                r.arrived_at * scale,
                r.prefill_tokens,
                r.decode_tokens,
            )
            .token_times(r.token_times.iter().map(|t| t * scale))
        })
        .collect()
}

#[test]
fn results_in_seconds_give_the_run_simfid_writes() {
    let records = simulated();
    let built = RunBuilder::new(meta())
        .requests(as_results(&records, TimeUnit::Seconds).into_iter().rev())
        .build()
        .unwrap();
    assert_eq!(built, Run::from_records(meta(), &records));
}

#[test]
fn results_in_milliseconds_are_measured_like_simfids_own() {
    let records = simulated();
    let ours = Run::from_records(meta(), &records);
    let built = RunBuilder::new(meta())
        .unit("ms".parse().unwrap())
        .requests(as_results(&records, TimeUnit::Milliseconds))
        .build()
        .unwrap();
    let opts = MetricOptions::default();
    let (a, b) = (
        RunMetrics::compute(&built, &opts),
        RunMetrics::compute(&ours, &opts),
    );
    assert_eq!((a.ok, a.failed), (40, 0));
    for metric in [Metric::Ttft, Metric::Itl, Metric::Tpot, Metric::E2e] {
        let (x, y) = (a.samples(metric).unwrap(), b.samples(metric).unwrap());
        assert_eq!(x.len(), y.len(), "{metric:?}");
        for (x, y) in x.iter().zip(y) {
            assert!((x - y).abs() < 1e-9, "{metric:?}: {x} vs {y}");
        }
    }
    // And the assertion macros decide on it.
    simfid::assert_ttft_within!(built, ours, p50, 0.1%);
    simfid::assert_itl_within!(built, ours, p50, 0.1%);
}

#[test]
fn times_from_each_arrival_are_shifted_to_the_run_clock() {
    let from_start = RunBuilder::new(meta())
        .unit(TimeUnit::Milliseconds)
        .request(RequestResult::new(0, 0.0, 10, 2).token_times([25.0, 35.0]))
        .request(RequestResult::new(1, 1000.0, 10, 2).token_times([1030.0, 1040.0]))
        .build()
        .unwrap();
    let from_arrival = RunBuilder::new(meta())
        .unit(TimeUnit::Milliseconds)
        .origin(TimeOrigin::Arrival)
        .request(RequestResult::new(0, 0.0, 10, 2).token_times([25.0, 35.0]))
        .request(RequestResult::new(1, 1000.0, 10, 2).token_times([30.0, 40.0]))
        .build()
        .unwrap();
    assert_eq!(from_start, from_arrival);
}

#[test]
fn first_and_last_token_only_leaves_itl_unavailable() {
    let run = RunBuilder::new(meta())
        .request(
            RequestResult::new(0, 0.0, 10, 5)
                .first_token(0.2)
                .last_token(0.6),
        )
        .request(RequestResult::new(1, 1.0, 10, 1).first_token(1.3))
        .request(RequestResult::new(2, 2.0, 10, 4).failed("timeout"))
        .build()
        .unwrap();
    assert_eq!(
        run.meta.extra[TOKEN_TIMES_KEY],
        serde_json::json!("first_last")
    );
    assert_eq!(
        run.requests[0].chunks,
        [Chunk { t: 0.2, n: 1 }, Chunk { t: 0.6, n: 4 }]
    );
    let m = RunMetrics::compute(&run, &MetricOptions::default());
    assert_eq!((m.ok, m.failed), (2, 1));
    let ttft = m.samples(Metric::Ttft).unwrap();
    assert!((ttft[0] - 0.2).abs() < 1e-12 && (ttft[1] - 0.3).abs() < 1e-12);
    assert!((m.samples(Metric::Tpot).unwrap()[0] - 0.1).abs() < 1e-12);
    assert!(m.samples(Metric::Itl).is_err());
}

#[test]
fn chunks_of_several_tokens_are_kept() {
    let run = RunBuilder::new(meta())
        .unit(TimeUnit::Microseconds)
        .request(
            RequestResult::new(7, 1e6, 10, 5)
                .chunks([(1.1e6, 1), (1.2e6, 4)])
                .first_token(1.1e6),
        )
        .build()
        .unwrap();
    assert_eq!(
        run.requests[0].chunks,
        [Chunk { t: 1.1, n: 1 }, Chunk { t: 1.2, n: 4 }]
    );
    assert_eq!(run.requests[0].received_tokens(), 5);
}

/// Builds one request and returns the error's (id, field, message).
fn refused(
    unit: TimeUnit,
    origin: TimeOrigin,
    requests: Vec<RequestResult>,
) -> (u64, String, String) {
    let err = RunBuilder::new(meta())
        .unit(unit)
        .origin(origin)
        .requests(requests)
        .build()
        .expect_err("the builder should refuse this input");
    let text = err.to_string();
    match err {
        Error::InvalidRequest { id, field, message } => {
            assert_eq!(text, format!("request {id}: {field}: {message}"));
            (id, field, message)
        }
        other => panic!("not an InvalidRequest: {other}"),
    }
}

/// (case, unit, origin, requests, id, field, a fragment of the message).
type Case = (
    &'static str,
    TimeUnit,
    TimeOrigin,
    Vec<RequestResult>,
    u64,
    &'static str,
    &'static str,
);

#[test]
fn bad_results_are_refused_naming_the_request_and_field() {
    use TimeOrigin::{Arrival, RunStart};
    use TimeUnit::{Milliseconds as Ms, Seconds as S};
    let ok = |id| RequestResult::new(id, 0.0, 10, 2).token_times([0.1, 0.2]);
    let req = |id, arrival| RequestResult::new(id, arrival, 10, 3);
    let cases: Vec<Case> = vec![
        (
            "NaN arrival",
            S,
            RunStart,
            vec![ok(0), req(4, f64::NAN)],
            4,
            "arrival",
            "NaN is not a finite time",
        ),
        (
            "negative arrival",
            Ms,
            RunStart,
            vec![req(5, -3.0)],
            5,
            "arrival",
            "-3 ms is before the run start",
        ),
        (
            "token times measured from the arrival",
            Ms,
            RunStart,
            vec![ok(0), req(9, 49_579.0).token_times([30.0, 45.0, 60.0])],
            9,
            "token_times[0]",
            "30 ms is before the arrival at 49579 ms (use TimeOrigin::Arrival",
        ),
        (
            "reversed token times",
            S,
            RunStart,
            vec![req(3, 1.0).token_times([1.5, 1.4, 1.3])],
            3,
            "token_times[1]",
            "1.4 s is before token_times[0] (1.5 s): times must not go backwards",
        ),
        (
            "infinite token time",
            S,
            RunStart,
            vec![req(2, 0.0).token_times([0.1, f64::INFINITY, 0.3])],
            2,
            "token_times[1]",
            "inf is not a finite time",
        ),
        (
            "negative offset from arrival",
            Ms,
            Arrival,
            vec![req(8, 5.0).token_times([-1.0, 2.0, 3.0])],
            8,
            "token_times[0]",
            "-1 ms is negative",
        ),
        (
            "too few token times",
            S,
            RunStart,
            vec![req(6, 0.0).token_times([0.1, 0.2])],
            6,
            "token_times",
            "2 times for 3 output tokens",
        ),
        (
            "chunk tokens do not add up",
            S,
            RunStart,
            vec![req(6, 0.0).chunks([(0.1, 1), (0.2, 1)])],
            6,
            "chunks",
            "2 tokens for 3 output tokens",
        ),
        (
            "empty chunk",
            S,
            RunStart,
            vec![req(6, 0.0).chunks([(0.1, 1), (0.2, 0), (0.3, 2)])],
            6,
            "chunks[1].n",
            "a chunk holds no token",
        ),
        (
            "reversed chunks",
            S,
            RunStart,
            vec![req(1, 0.0).chunks([(0.3, 2), (0.1, 1)])],
            1,
            "chunks[1].t",
            "before chunks[0].t",
        ),
        (
            "token times and chunks",
            S,
            RunStart,
            vec![req(1, 0.0).token_times([0.1, 0.2, 0.3]).chunks([(0.3, 3)])],
            1,
            "chunks",
            "given together with token_times",
        ),
        (
            "first token disagrees",
            S,
            RunStart,
            vec![req(1, 0.0).token_times([0.1, 0.2, 0.3]).first_token(0.05)],
            1,
            "first_token",
            "0.05 s differs from token_times[0] (0.1 s)",
        ),
        (
            "last token missing",
            S,
            RunStart,
            vec![req(1, 0.0).first_token(0.1)],
            1,
            "last_token",
            "missing: 3 output tokens",
        ),
        (
            "last token without first",
            S,
            RunStart,
            vec![req(1, 0.0).last_token(0.1)],
            1,
            "first_token",
            "missing while last_token is given",
        ),
        (
            "last token before first",
            S,
            RunStart,
            vec![req(1, 0.0).first_token(0.3).last_token(0.2)],
            1,
            "last_token",
            "0.2 s is before first_token (0.3 s)",
        ),
        (
            "no times at all",
            S,
            RunStart,
            vec![req(1, 0.0)],
            1,
            "token_times",
            "missing: give token_times, chunks or first_token",
        ),
        (
            "no output",
            S,
            RunStart,
            vec![RequestResult::new(1, 0.0, 10, 0)],
            1,
            "output_tokens",
            "0 for a request that did not fail",
        ),
        (
            "duplicate id",
            S,
            RunStart,
            vec![ok(0), ok(1), ok(0)],
            0,
            "id",
            "appears more than once",
        ),
    ];
    for (case, unit, origin, requests, id, field, fragment) in cases {
        let (got_id, got_field, message) = refused(unit, origin, requests);
        assert_eq!(
            (got_id, got_field.as_str()),
            (id, field),
            "{case}: {message}"
        );
        assert!(
            message.contains(fragment),
            "{case}: {message:?} lacks {fragment:?}"
        );
    }
}

#[test]
fn time_units_parse_and_unknown_ones_are_named() {
    for (s, unit) in [
        ("s", TimeUnit::Seconds),
        ("ms", TimeUnit::Milliseconds),
        ("us", TimeUnit::Microseconds),
        ("µs", TimeUnit::Microseconds),
        ("ns", TimeUnit::Nanoseconds),
        ("milliseconds", TimeUnit::Milliseconds),
    ] {
        assert_eq!(s.parse::<TimeUnit>().unwrap(), unit, "{s}");
    }
    assert_eq!(TimeUnit::Milliseconds.to_seconds(1.0), 0.001);
    assert_eq!(TimeUnit::Nanoseconds.to_string(), "ns");
    let err = "minutes".parse::<TimeUnit>().unwrap_err().to_string();
    assert!(
        err.contains("unknown time unit 'minutes'") && err.contains("s, ms, us, ns"),
        "{err}"
    );
}

/// A request streamed 3 tokens 10 ms apart, 50 ms after its arrival at `at` s.
fn streamed(id: u64, at: f64) -> RequestRun {
    RequestRun {
        id,
        scheduled: at,
        sent: Some(at),
        prompt_tokens: 10,
        output_tokens: 3,
        chunks: (0..3)
            .map(|k| Chunk {
                t: at + 0.05 + 0.01 * k as f64,
                n: 1,
            })
            .collect(),
        ..RequestRun::default()
    }
}

/// The three hand-built mistakes of issue 11 are refused by `Run::validate`.
#[test]
fn validate_refuses_hand_built_runs_that_cannot_be_measured() {
    let run = |r: RequestRun| Run {
        meta: RunMeta::new(Source::Sim, "m"),
        requests: vec![streamed(0, 0.0), r],
    };
    let good = run(streamed(1, 2.0));
    good.validate().unwrap();

    let mut no_sent = streamed(1, 2.0);
    no_sent.sent = None;
    let mut relative = streamed(1, 2.0);
    relative.chunks.iter_mut().for_each(|c| c.t -= 2.0);
    let mut reversed = streamed(1, 2.0);
    reversed.chunks.reverse();
    let mut too_many = streamed(1, 2.0);
    too_many.chunks[2].n = 5;
    let mut negative = streamed(1, 2.0);
    negative.scheduled = -1.0;
    let mut not_finite = streamed(1, 2.0);
    not_finite.chunks[1].t = f64::NAN;
    for (r, prefix, fragment) in [
        (
            no_sent,
            "request 1: sent: ",
            "missing for a request that streamed output",
        ),
        (
            relative,
            "request 1: chunks[0].t: ",
            "s is before the request was sent at 2 s",
        ),
        (
            reversed,
            "request 1: chunks[1].t: ",
            "(chunks must be in time order)",
        ),
        (
            too_many,
            "request 1: chunks: ",
            "7 tokens streamed for 3 output tokens",
        ),
        (
            negative,
            "request 1: scheduled: ",
            "-1 s is before the run start",
        ),
        (
            not_finite,
            "request 1: chunks[1].t: ",
            "NaN is not a finite time",
        ),
    ] {
        let err = run(r).validate().unwrap_err().to_string();
        assert!(err.starts_with(prefix) && err.contains(fragment), "{err}");
    }
}

fn goldens(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            goldens(&path, out);
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            out.push(path);
        }
    }
}

#[test]
fn validate_accepts_every_golden_simulation_and_vidur_import() {
    let mut paths = Vec::new();
    goldens(&Path::new(super::shared::ROOT).join("golden"), &mut paths);
    assert!(paths.len() >= 30, "{} goldens", paths.len());
    for path in &paths {
        let (run, _) = read_run(path).unwrap();
        run.validate()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    Run::from_records(meta(), &simulated()).validate().unwrap();
    for r in ["a", "d"] {
        let path = shared::vidur_run(r).join("request_metrics.csv.gz");
        read_vidur_csv(&path).unwrap().validate().unwrap();
    }
}

proptest! {
    /// Whatever numbers another simulator hands over, a run the builder accepts passes
    /// `Run::validate` and never gives a negative TTFT, ITL, TPOT or E2E; and token times in
    /// order, not before the arrival, are always accepted.
    #[test]
    fn accepted_runs_never_give_negative_latencies(
        requests in prop::collection::vec(
            (0.0..100.0f64, prop::collection::vec(-10.0..200.0f64, 1..6)),
            1..8,
        ),
        sorted in any::<bool>(),
        unit in prop_oneof![Just(TimeUnit::Seconds), Just(TimeUnit::Milliseconds)],
        origin in prop_oneof![Just(TimeOrigin::RunStart), Just(TimeOrigin::Arrival)],
    ) {
        let mut well_formed = true;
        let results: Vec<RequestResult> = requests
            .iter()
            .enumerate()
            .map(|(i, (arrival, times))| {
                let mut times = times.clone();
                if sorted {
                    times.sort_by(f64::total_cmp);
                }
                let floor = match origin {
                    TimeOrigin::RunStart => *arrival,
                    TimeOrigin::Arrival => 0.0,
                };
                well_formed &= times.is_sorted() && times[0] >= floor;
                RequestResult::new(i as u64, *arrival, 10, times.len() as u32).token_times(times)
            })
            .collect();
        let built = RunBuilder::new(meta()).unit(unit).origin(origin).requests(results).build();
        match built {
            Err(e) => prop_assert!(!well_formed, "well-formed input refused: {e}"),
            Ok(run) => {
                prop_assert!(run.validate().is_ok());
                let m = RunMetrics::compute(&run, &MetricOptions::default());
                prop_assert_eq!(m.ok, requests.len());
                for metric in [Metric::Ttft, Metric::Itl, Metric::Tpot, Metric::E2e] {
                    for &x in m.samples(metric).unwrap() {
                        prop_assert!(x >= 0.0, "{:?} {}", metric, x);
                    }
                }
            }
        }
    }
}
