//! The run fixture codec: whatever is written reads back identical (every float to the bit),
//! newer major versions are refused, a cut-off last line is tolerated.

use std::collections::BTreeMap;

use proptest::prelude::*;
use simfid::fixture::{
    Chunk, RequestRun, Run, RunMeta, RunWriter, ServerInfo, Source, read_run, write_run,
};

use super::loopback::Scratch;

fn text() -> impl Strategy<Value = String> {
    "[ -~äöü🚀\"\\\\\n]{0,20}"
}

fn meta() -> impl Strategy<Value = RunMeta> {
    (
        any::<bool>(),
        text(),
        proptest::option::of(text()),
        proptest::option::of((
            text(),
            proptest::option::of(text()),
            proptest::collection::vec(text(), 0..3),
        )),
        proptest::option::of(any::<u64>()),
        proptest::collection::btree_map(
            "[a-z]{1,8}",
            any::<f64>().prop_filter("finite", |x| x.is_finite()),
            0..3,
        ),
    )
        .prop_map(|(real, model, gpu, server, seed, extra)| {
            let mut m = RunMeta::new(if real { Source::Real } else { Source::Sim }, model);
            m.gpu = gpu;
            m.server = server.map(|(name, version, flags)| ServerInfo {
                name,
                version,
                flags,
                url: Some("http://127.0.0.1:8000/v1".into()),
            });
            m.seed = seed;
            m.extra = extra
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::from(v)))
                .collect::<BTreeMap<_, _>>();
            m
        })
}

fn time() -> impl Strategy<Value = f64> {
    prop_oneof![
        0.0f64..1e5,
        any::<f64>().prop_filter("finite", |x| x.is_finite())
    ]
}

fn request(id: u64) -> impl Strategy<Value = RequestRun> {
    (
        time(),
        proptest::option::of(time()),
        (any::<u32>(), any::<u32>()),
        (
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
        ),
        proptest::collection::vec((time(), any::<u32>()), 0..20),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::collection::vec(text(), 0..2),
    )
        .prop_map(
            move |(scheduled, sent, (p, o), (up, uc), chunks, finish, error, warnings)| {
                RequestRun {
                    id,
                    scheduled,
                    sent,
                    prompt_tokens: p,
                    output_tokens: o,
                    usage_prompt_tokens: up,
                    usage_completion_tokens: uc,
                    chunks: chunks.into_iter().map(|(t, n)| Chunk { t, n }).collect(),
                    finish_reason: finish,
                    error,
                    warnings,
                }
            },
        )
}

fn run() -> impl Strategy<Value = Run> {
    (meta(), 0usize..12).prop_flat_map(|(meta, n)| {
        let reqs: Vec<_> = (0..n as u64).map(request).collect();
        (Just(meta), reqs).prop_map(|(meta, requests)| Run { meta, requests })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// write_run then read_run gives back the same run, bit for bit.
    #[test]
    fn fixture_round_trips(run in run()) {
        let dir = Scratch::new("codec");
        let path = dir.path("run.jsonl");
        write_run(&path, &run).unwrap();
        let (back, info) = read_run(&path).unwrap();
        prop_assert!(!info.truncated_last_line);
        prop_assert_eq!(back, run);
    }
}

#[test]
fn newer_major_is_refused_and_a_cut_last_line_is_tolerated() {
    let dir = Scratch::new("codec-version");
    let path = dir.path("run.jsonl");
    let meta = RunMeta::new(Source::Real, "m");
    let mut w = RunWriter::create(&path, &meta).unwrap();
    for id in 0..3 {
        w.append(&RequestRun {
            id,
            ..RequestRun::default()
        })
        .unwrap();
    }
    w.finish().unwrap();
    let full = std::fs::read_to_string(&path).unwrap();
    assert!(full.starts_with("{\"format\":\"simfid-run\",\"format_version\":\"1.1\""));
    // A crash mid-line: the finished requests are still read.
    std::fs::write(&path, &full[..full.len() - 10]).unwrap();
    let (run, info) = read_run(&path).unwrap();
    assert!(info.truncated_last_line);
    assert_eq!(run.requests.len(), 2);
    // 1.0 files (no warnings field) still read.
    std::fs::write(&path, full.replace("\"1.1\"", "\"1.0\"")).unwrap();
    assert_eq!(read_run(&path).unwrap().0.requests.len(), 3);
    std::fs::write(&path, full.replace("\"1.1\"", "\"2.0\"")).unwrap();
    let err = read_run(&path).unwrap_err().to_string();
    assert!(err.contains("newer than this simfid understands"), "{err}");
}
