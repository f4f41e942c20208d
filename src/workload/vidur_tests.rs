//! Equality with Vidur's reference runs (`fixtures/vidur/runs/{a,b,c,d,e}`, Vidur's own output
//! committed gzipped; see its README): the synthetic generator with [`RngKind::Vidur`] must
//! produce every request Vidur simulated, arrival times bit-equal and token counts equal.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::csv::read_lengths_csv;
use super::{ArrivalSpec, LengthSpec, RequestSpec, RngKind, SyntheticSpec};

/// The folder of one reference run; panics naming the path when it is missing (the data is
/// part of the repository).
fn run_dir(run: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/vidur/runs")
        .join(run);
    assert!(
        dir.is_dir(),
        "Vidur reference run not found: {}",
        dir.display()
    );
    dir
}

/// Reads a CSV file, gunzipping it when the name ends in `.gz`, into its header and rows.
fn read_table(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = if path.extension().is_some_and(|e| e == "gz") {
        let mut s = String::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_string(&mut s)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        s
    } else {
        String::from_utf8(bytes).unwrap()
    };
    let mut reader = ::csv::Reader::from_reader(text.as_bytes());
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

/// Vidur's realised requests of a run, in id order: arrival times from
/// `plots/request_arrival_time_series.csv` (one row per request, id order) and token counts from
/// `request_metrics.csv`.
fn vidur_requests(dir: &Path) -> Vec<RequestSpec> {
    let (h, rows) = read_table(&dir.join("plots/request_arrival_time_series.csv.gz"));
    let t = column(&h, "Time (sec)");
    let times: Vec<f64> = rows.iter().map(|r| r[t].parse().unwrap()).collect();

    let (h, rows) = read_table(&dir.join("request_metrics.csv.gz"));
    let (id, p, d) = (
        column(&h, "Request Id"),
        column(&h, "request_num_prefill_tokens"),
        column(&h, "request_num_decode_tokens"),
    );
    let mut lengths: Vec<(u64, u32, u32)> = rows
        .iter()
        .map(|r| {
            (
                r[id].parse().unwrap(),
                r[p].parse().unwrap(),
                r[d].parse().unwrap(),
            )
        })
        .collect();
    lengths.sort_by_key(|l| l.0);
    assert_eq!(
        lengths.len(),
        times.len(),
        "{}: row counts differ",
        dir.display()
    );
    lengths
        .iter()
        .zip(times)
        .enumerate()
        .map(|(i, (&(id, p, d), t))| {
            assert_eq!(id, i as u64, "{}: request ids are not 0..n", dir.display());
            RequestSpec {
                id,
                arrival_s: t,
                prefill_tokens: p,
                decode_tokens: d,
            }
        })
        .collect()
}

fn uniform_poisson(qps: f64, n: u64) -> SyntheticSpec {
    SyntheticSpec {
        length: LengthSpec::Uniform {
            min_tokens: 136,
            max_tokens: 4096,
            prefill_to_decode_ratio: 16.0,
        },
        arrival: ArrivalSpec::Poisson {
            qps,
            vidur_clip: true,
        },
        num_requests: Some(n),
        duration_s: None,
        seed: 42,
        rng: RngKind::Vidur,
    }
}

/// Compares every request and reports the first difference; arrival times must be bit-equal.
fn assert_same(run: &str, ours: &[RequestSpec], vidur: &[RequestSpec]) {
    assert_eq!(ours.len(), vidur.len(), "run {run}: request counts differ");
    for (a, b) in ours.iter().zip(vidur) {
        assert!(
            a.id == b.id
                && a.arrival_s.to_bits() == b.arrival_s.to_bits()
                && a.prefill_tokens == b.prefill_tokens
                && a.decode_tokens == b.decode_tokens,
            "run {run}: first difference at request {}: simfid {a:?}, vidur {b:?}",
            a.id
        );
    }
}

fn check_uniform_run(run: &str, qps: f64, n: u64) {
    let vidur = vidur_requests(&run_dir(run));
    assert_eq!(vidur.len() as u64, n);
    let ours = uniform_poisson(qps, n).generate().unwrap();
    assert_same(run, &ours.requests, &vidur);
}

#[test]
fn run_a_uniform_poisson_2qps_2000_requests() {
    check_uniform_run("a", 2.0, 2000);
}

#[test]
fn run_b_same_workload_as_a() {
    check_uniform_run("b", 2.0, 2000);
}

#[test]
fn run_c_uniform_poisson_8qps() {
    check_uniform_run("c", 8.0, 2000);
}

#[test]
fn run_e_uniform_poisson_2qps_20000_requests() {
    check_uniform_run("e", 2.0, 20_000);
}

#[test]
fn run_d_trace_lengths_poisson_1qps() {
    let dir = run_dir("d");
    let vidur = vidur_requests(&dir);
    let rows = read_lengths_csv(dir.join("trace_50.csv")).unwrap();
    let spec = SyntheticSpec {
        length: LengthSpec::Trace {
            rows,
            prefill_scale: 1.0,
            decode_scale: 1.0,
            max_tokens: 4096,
            seed: 42,
        },
        arrival: ArrivalSpec::Poisson {
            qps: 1.0,
            vidur_clip: true,
        },
        num_requests: Some(50),
        duration_s: None,
        seed: 42,
        rng: RngKind::Vidur,
    };
    let ours = spec.generate().unwrap();
    assert_same("d", &ours.requests, &vidur);
}
