//! Issue 13: a run file cut mid-line (a recorder that stopped mid-write) is reported by
//! `simfid compare` and `simfid import` with its file and line, and refused with `--strict`;
//! before, both silently read one request fewer.

use simfid::fixture::{Chunk, RequestRun, RunMeta, RunWriter, Source, read_any_checked};

use super::loopback::{Scratch, simfid};

/// A run of 3 finished requests whose last line is cut in the middle.
fn cut_run(dir: &Scratch) -> std::path::PathBuf {
    let path = dir.path("cut.jsonl");
    let mut w = RunWriter::create(&path, &RunMeta::new(Source::Real, "m")).unwrap();
    for id in 0..3u64 {
        let t0 = id as f64 * 0.1;
        w.append(&RequestRun {
            id,
            scheduled: t0,
            sent: Some(t0),
            prompt_tokens: 8,
            output_tokens: 3,
            chunks: (1..=3)
                .map(|k| Chunk {
                    t: t0 + 0.01 * k as f64,
                    n: 1,
                })
                .collect(),
            finish_reason: Some("length".into()),
            ..RequestRun::default()
        })
        .unwrap();
    }
    w.finish().unwrap();
    let full = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &full[..full.len() - 20]).unwrap();
    path
}

#[test]
fn a_cut_fixture_is_reported_with_its_line_and_refused_with_strict() {
    let dir = Scratch::new("cutfixture");
    let cut = cut_run(&dir);
    let (run, _, info) = read_any_checked(&cut).unwrap();
    assert_eq!(run.requests.len(), 2);
    assert_eq!(info.truncated_line, Some(4));
    let where_ = format!("{}:4: the last line is cut off", cut.display());

    let res = simfid()
        .arg("compare")
        .arg(&cut)
        .arg(&cut)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{err}");
    assert!(
        err.contains(&where_) && err.contains("2 requests read"),
        "{err}"
    );
    let res = simfid()
        .arg("compare")
        .arg(&cut)
        .arg(&cut)
        .arg("--strict")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&where_) && err.contains("refused (--strict)"),
        "{err}"
    );

    let out = dir.path("imported.jsonl");
    let res = simfid()
        .arg("import")
        .arg(&cut)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{err}");
    assert!(err.contains(&where_), "{err}");
    let res = simfid()
        .arg("import")
        .arg(&cut)
        .arg("-o")
        .arg(&out)
        .arg("--strict")
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains(&where_));
}
