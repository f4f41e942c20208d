//! Vidur (microsoft/vidur 7d47513, fed Qwen3-0.6B operator profiles measured on the H100) against
//! simfid's built-in preset `h100-qwen3-0.6b-hfcb`, on the same H100 goldens (issue 6).
//!
//! Vidur's reports were produced once, offline, with `simfid compare <request_metrics.csv>
//! <golden>` and are committed under `fixtures/vidur-reports/h100-qwen3-0.6b/` (see its README
//! for the commands). simfid's errors are computed live here, so a simulator change that loses
//! to Vidur fails this test.

use std::path::PathBuf;

use simfid::fidelity::{CompareOptions, Metric, Stat, compare};
use simfid::fixture::read_run;
use simfid::replay::Preset;

fn root() -> PathBuf {
    PathBuf::from(super::shared::ROOT)
}

/// Every `<golden>.vidur.json` committed.
fn vidur_reports() -> Vec<(String, serde_json::Value)> {
    let dir = root().join("fixtures/vidur-reports/h100-qwen3-0.6b");
    let mut out: Vec<(String, serde_json::Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p
                .file_name()?
                .to_str()?
                .strip_suffix(".vidur.json")?
                .to_string();
            let text = std::fs::read_to_string(&p).unwrap();
            Some((name, serde_json::from_str(&text).unwrap()))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn vidur_rel_err(report: &serde_json::Value, metric: &str, stat: &str) -> f64 {
    report["metrics"][metric][stat]["rel_err"]
        .as_f64()
        .unwrap_or_else(|| panic!("no {metric} {stat} rel_err in Vidur's report"))
}

/// (golden, metric, simfid |rel err|, Vidur |rel err|) for TTFT and E2E medians.
fn errors() -> Vec<(String, &'static str, f64, f64)> {
    let preset = Preset::builtin("h100-qwen3-0.6b-hfcb").unwrap();
    let reports = vidur_reports();
    assert!(!reports.is_empty(), "no Vidur reports committed");
    let mut out = Vec::new();
    for (name, vidur) in reports {
        let path = root()
            .join("golden/h100/qwen3-0.6b/hf-cb")
            .join(format!("{name}.jsonl"));
        let (real, _) = read_run(&path).unwrap_or_else(|e| panic!("{e}"));
        // Replayed after the runs its server served before it (its metadata), as `simfid
        // check` does by default.
        let history: Vec<simfid::fixture::Run> = simfid::replay::session_history(&path)
            .unwrap()
            .expect("goldens carry their server history")
            .iter()
            .map(|p| read_run(p).unwrap().0)
            .collect();
        let refs: Vec<&simfid::fixture::Run> = history.iter().collect();
        let sim = preset.replay_after(&real, &refs).unwrap();
        let report = compare(&sim, &real, &CompareOptions::default()).unwrap();
        for (metric, key) in [(Metric::Ttft, "ttft"), (Metric::E2e, "e2e")] {
            let ours = report.metrics[&metric].rows[&Stat::P50].rel_err.unwrap();
            let theirs = vidur_rel_err(&vidur, key, "p50");
            eprintln!(
                "{name} {key} p50: simfid {:+.1}% Vidur {:+.1}%",
                ours * 100.0,
                theirs * 100.0
            );
            out.push((name.clone(), key, ours.abs(), theirs.abs()));
        }
    }
    out
}

/// Where Vidur measured closer than simfid (golden, metric): nowhere any more. (Before the
/// capture stalls and median-calibrated delays, Vidur was closer on the TTFT medians at 1 req/s
/// and 2 req/s; today simfid is +27% vs Vidur's +32% and +6% vs −10% there.)
const VIDUR_AHEAD: [(&str, &str); 0] = [];

#[test]
fn simfid_beats_vidur_on_medians_except_where_measured_otherwise() {
    for (name, metric, ours, theirs) in errors() {
        if VIDUR_AHEAD.contains(&(name.as_str(), metric)) {
            // Vidur is ahead here; hold simfid within 10 points of it.
            assert!(
                ours < theirs + 0.10,
                "{name} {metric} p50: simfid |{ours:.3}| vs Vidur |{theirs:.3}|"
            );
        } else {
            assert!(
                ours < theirs,
                "{name} {metric} p50: simfid |{ours:.3}| not below Vidur |{theirs:.3}|"
            );
        }
    }
}

#[test]
fn vidur_reports_are_of_the_goldens_workloads() {
    for (name, report) in vidur_reports() {
        assert_eq!(
            report["warnings"].as_array().map(Vec::len),
            Some(0),
            "{name}: Vidur replayed a different workload: {}",
            report["warnings"]
        );
        assert!(
            report["unavailable"]["itl"].is_string(),
            "{name}: Vidur's request_metrics.csv has no per-token times"
        );
    }
}
