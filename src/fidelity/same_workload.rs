//! Are two runs of the same workload? A comparison of a simulation with a real run is only
//! meaningful when both executed the same requests: same count and ids, same prompt and
//! output lengths, same arrival times.
//!
//! Tolerances (each chosen to pass the differences a faithful replay produces and to catch
//! a different workload):
//! - request count and ids: equal;
//! - prompt tokens and output tokens (requested, i.e. `output_tokens`; compared only for
//!   requests that succeeded in both runs, since an importer may not know the requested length
//!   of a failed request): equal within `max(1 token, 1%)`;
//! - arrivals, when both runs know them: scheduled times relative to each run's first request
//!   equal within `max(50 ms, 1% of the real run's arrival span)` — a recorder's send jitter is
//!   milliseconds, a different arrival process is seconds.

use std::collections::BTreeMap;

use super::metric::arrivals_known;
use crate::fixture::{RequestRun, Run};

/// Absolute arrival tolerance (seconds).
pub const ARRIVAL_ABS_TOL_S: f64 = 0.050;
/// Relative arrival tolerance (fraction of the arrival span).
pub const ARRIVAL_REL_TOL: f64 = 0.01;
/// Relative length tolerance.
pub const LENGTH_REL_TOL: f64 = 0.01;

/// What the workload check found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkloadCheck {
    /// Differences that make the runs different workloads.
    pub mismatches: Vec<String>,
    /// Things that could not be checked.
    pub notes: Vec<String>,
}

fn lengths_differ(a: u32, b: u32) -> bool {
    let tol = (LENGTH_REL_TOL * a.max(b) as f64).max(1.0);
    (a as f64 - b as f64).abs() > tol
}

fn by_id(r: &Run) -> BTreeMap<u64, &RequestRun> {
    r.requests.iter().map(|q| (q.id, q)).collect()
}

/// Compares the workloads of `sim` and `real`.
pub fn check_workload(sim: &Run, real: &Run) -> WorkloadCheck {
    let mut c = WorkloadCheck::default();
    if sim.requests.len() != real.requests.len() {
        c.mismatches.push(format!(
            "request counts differ (sim {}, real {})",
            sim.requests.len(),
            real.requests.len()
        ));
        return c;
    }
    let (s, r) = (by_id(sim), by_id(real));
    if let Some(id) = s.keys().find(|id| !r.contains_key(id)) {
        c.mismatches
            .push(format!("request ids differ (id {id} is only in sim)"));
        return c;
    }
    let mut prompt = (0usize, None);
    let mut output = (0usize, None);
    for (id, a) in &s {
        let b = r[id];
        if lengths_differ(a.prompt_tokens, b.prompt_tokens) {
            prompt.0 += 1;
            prompt
                .1
                .get_or_insert((*id, a.prompt_tokens, b.prompt_tokens));
        }
        if a.ok() && b.ok() && lengths_differ(a.output_tokens, b.output_tokens) {
            output.0 += 1;
            output
                .1
                .get_or_insert((*id, a.output_tokens, b.output_tokens));
        }
    }
    for (what, (n, ex)) in [("prompt", prompt), ("output", output)] {
        if let Some((id, a, b)) = ex {
            c.mismatches.push(format!(
                "{n} requests have different {what} lengths (request {id}: sim {a}, real {b} tokens)"
            ));
        }
    }
    if !arrivals_known(sim) || !arrivals_known(real) {
        let which = if arrivals_known(sim) { "real" } else { "sim" };
        c.notes.push(format!(
            "arrival times of the {which} run are unknown: not checked"
        ));
        return c;
    }
    let t0 = |m: &BTreeMap<u64, &RequestRun>| {
        m.values()
            .map(|q| q.scheduled)
            .fold(f64::INFINITY, f64::min)
    };
    let (s0, r0) = (t0(&s), t0(&r));
    let span = r.values().map(|q| q.scheduled - r0).fold(0.0, f64::max);
    let tol = ARRIVAL_ABS_TOL_S.max(ARRIVAL_REL_TOL * span);
    let mut late = (0usize, None);
    for (id, a) in &s {
        let (x, y) = (a.scheduled - s0, r[id].scheduled - r0);
        if (x - y).abs() > tol {
            late.0 += 1;
            late.1.get_or_insert((*id, x, y));
        }
    }
    if let Some((id, x, y)) = late.1 {
        c.mismatches.push(format!(
            "{} requests arrive at different times (request {id}: sim {x:.3} s, real {y:.3} s \
             after the first; tolerance {:.0} ms)",
            late.0,
            tol * 1e3
        ));
    }
    c
}
