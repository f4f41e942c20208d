//! Renderings of a [`Report`]: a Markdown table for people, one JSON object for machines, and
//! [`ReportView`], a rounded view (integer µs, percents to 0.1) for insta snapshots, so that a
//! simulator change that moves fidelity shows as a reviewable diff and float noise does not.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use super::compare::{Report, RunSummary};
use super::metric::MetricDef;
use super::verdict::{Outcome, Verdict};

/// The format a report is printed in ([`Report::render`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// The Markdown table, then the assertions' table when there is a verdict.
    Markdown,
    /// One pretty-printed JSON object ([`Report::to_json`]), on one line of its own.
    Json,
}

impl Report {
    /// The report as `simfid compare` and `simfid check` print it.
    pub fn render(&self, verdict: Option<&Verdict>, format: ReportFormat) -> String {
        match format {
            ReportFormat::Json => {
                let v = self.to_json(verdict);
                let mut s = serde_json::to_string_pretty(&v).expect("a JSON value serialises");
                s.push('\n');
                s
            }
            ReportFormat::Markdown => {
                let mut s = self.to_markdown();
                if let Some(v) = verdict {
                    s.push_str("\n### assertions\n\n");
                    let _ = write!(s, "{v}");
                }
                s
            }
        }
    }
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:+.1}%", v * 100.0))
}

fn run_line(r: &RunSummary) -> String {
    let mut s = format!(
        "{}: {} requests ({} considered, {} ok, {} failed); {:.2} req/s, {:.1} output tok/s over {:.3} s",
        r.label,
        r.requests,
        r.considered,
        r.ok,
        r.failed,
        r.request_throughput,
        r.output_throughput,
        r.duration_s
    );
    if let Some(g) = r.goodput {
        let _ = write!(s, "; goodput {g:.2} req/s");
    }
    if let Some(e) = &r.first_error {
        let _ = write!(s, "; first failure: {e}");
    }
    s
}

fn def_line(def: MetricDef) -> &'static str {
    match def {
        MetricDef::VllmBench => {
            "vllm-bench (TTFT and E2E from send; ITL = gaps between chunks, pooled; \
             TPOT = (last − first)/(tokens − 1) per request)"
        }
        MetricDef::Vidur => {
            "vidur (TTFT and E2E from arrival; ITL = per-token gaps (TBT); TPOT = (last − first)/tokens)"
        }
        MetricDef::Aiperf => {
            "aiperf (ITL = (last − first)/(tokens − 1) per request, i.e. vLLM's TPOT)"
        }
    }
}

impl Report {
    /// The Markdown report: run summaries, one row per metric and statistic, distribution
    /// distances, unavailable metrics and warnings.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "## simfid compare: {} vs {}\n",
            self.sim.label, self.real.label
        );
        let _ = writeln!(s, "- sim {}", run_line(&self.sim));
        let _ = writeln!(s, "- real {}", run_line(&self.real));
        let _ = writeln!(s, "- metric definitions: {}\n", def_line(self.def));
        s.push_str(
            "| metric | stat | real ms | sim ms | abs err ms | rel err | 95% CI of rel err | n real | n sim | note |\n\
             | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |\n",
        );
        for (m, mr) in &self.metrics {
            for (q, r) in &mr.rows {
                let ci = r.ci95.map_or("-".into(), |(lo, hi)| {
                    format!("[{:+.1}%, {:+.1}%]", lo * 100.0, hi * 100.0)
                });
                let note = r.refused.as_ref().map_or(String::new(), |_| {
                    format!("too few samples (needs {})", q.min_samples())
                });
                let _ = writeln!(
                    s,
                    "| {} | {q} | {:.3} | {:.3} | {:+.3} | {} | {ci} | {} | {} | {note} |",
                    m.label(),
                    r.real_ms,
                    r.sim_ms,
                    r.abs_err_ms,
                    pct(r.rel_err),
                    r.n_real,
                    r.n_sim
                );
            }
        }
        s.push_str("\n| metric | KS D | KS p | W1 ms |\n| --- | ---: | ---: | ---: |\n");
        for (m, mr) in &self.metrics {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                m.label(),
                mr.ks.map_or("-".into(), |k| format!("{:.3}", k.d)),
                mr.ks.map_or("-".into(), |k| format!("{:.3}", k.p_value)),
                mr.w1_ms.map_or("-".into(), |w| format!("{w:.3}"))
            );
        }
        if !self.unavailable.is_empty() {
            s.push('\n');
            for (m, why) in &self.unavailable {
                let _ = writeln!(s, "- {} not available: {why}", m.label());
            }
        }
        if !self.warnings.is_empty() {
            s.push('\n');
            for w in &self.warnings {
                let _ = writeln!(s, "- warning: {w}");
            }
        }
        s
    }

    /// One JSON object: `{"def", "sim", "real", "metrics": {metric: {stat: {real_ms, sim_ms,
    /// abs_err_ms, rel_err, ci95, n_real, n_sim, enough_samples}}}, "distributions": {metric:
    /// {ks_d, ks_p, w1_ms}}, "unavailable", "warnings"}`; with a verdict also `"assertions"` and
    /// `"passed"`.
    pub fn to_json(&self, verdict: Option<&Verdict>) -> Value {
        let mut metrics = serde_json::Map::new();
        let mut dists = serde_json::Map::new();
        for (m, mr) in &self.metrics {
            let mut stats = serde_json::Map::new();
            for (q, r) in &mr.rows {
                stats.insert(
                    q.key().to_string(),
                    json!({
                        "real_ms": r.real_ms,
                        "sim_ms": r.sim_ms,
                        "abs_err_ms": r.abs_err_ms,
                        "rel_err": r.rel_err,
                        "ci95": r.ci95.map(|(a, b)| [a, b]),
                        "n_real": r.n_real,
                        "n_sim": r.n_sim,
                        "enough_samples": r.refused.is_none(),
                    }),
                );
            }
            metrics.insert(m.key().to_string(), Value::Object(stats));
            dists.insert(
                m.key().to_string(),
                json!({
                    "ks_d": mr.ks.map(|k| k.d),
                    "ks_p": mr.ks.map(|k| k.p_value),
                    "w1_ms": mr.w1_ms,
                }),
            );
        }
        let unavailable: BTreeMap<&str, &str> = self
            .unavailable
            .iter()
            .map(|(m, w)| (m.key(), w.as_str()))
            .collect();
        let mut out = json!({
            "def": self.def.name(),
            "sim": self.sim,
            "real": self.real,
            "metrics": metrics,
            "distributions": dists,
            "unavailable": unavailable,
            "warnings": self.warnings,
        });
        if let Some(v) = verdict {
            let checks: Vec<Value> = v
                .checks
                .iter()
                .map(|c| {
                    let (outcome, reason) = match &c.outcome {
                        Outcome::Pass => ("pass", None),
                        Outcome::Fail => ("fail", None),
                        Outcome::Refused(w) => ("refused", Some(w.clone())),
                    };
                    json!({
                        "assert": c.criterion.to_string(),
                        "outcome": outcome,
                        "reason": reason,
                        "limit_rel": c.limit_rel,
                        "rel_err": c.row.as_ref().and_then(|r| r.rel_err),
                    })
                })
                .collect();
            out["assertions"] = Value::Array(checks);
            out["passed"] = Value::Bool(v.passed());
            out["diagnosis"] = json!(v.diagnosis());
        }
        out
    }

    /// The rounded view for snapshots.
    pub fn view(&self) -> ReportView {
        let us = |ms: f64| (ms * 1e3).round() as i64;
        let p1 = |x: f64| {
            // Round first so that float noise around zero does not flip the sign.
            let v = (x * 1000.0).round() / 10.0;
            if v == 0.0 {
                "0.0%".to_string()
            } else {
                format!("{v:+.1}%")
            }
        };
        let run = |r: &RunSummary| RunView {
            requests: r.requests,
            ok: r.ok,
            failed: r.failed,
        };
        let mut metrics = BTreeMap::new();
        let mut distributions = BTreeMap::new();
        for (m, mr) in &self.metrics {
            let rows = mr
                .rows
                .iter()
                .map(|(q, r)| {
                    (
                        q.key().to_string(),
                        RowView {
                            real_us: us(r.real_ms),
                            sim_us: us(r.sim_ms),
                            rel_err: r.rel_err.map(p1),
                            ci95: r.ci95.map(|(a, b)| format!("[{}, {}]", p1(a), p1(b))),
                            n_real: r.n_real,
                            n_sim: r.n_sim,
                            enough_samples: r.refused.is_none(),
                        },
                    )
                })
                .collect();
            metrics.insert(m.key().to_string(), rows);
            distributions.insert(
                m.key().to_string(),
                DistView {
                    ks_d: mr.ks.map(|k| format!("{:.3}", k.d)),
                    w1_us: mr.w1_ms.map(us),
                },
            );
        }
        ReportView {
            def: self.def.name().to_string(),
            sim: run(&self.sim),
            real: run(&self.real),
            metrics,
            distributions,
            unavailable: self
                .unavailable
                .iter()
                .map(|(m, w)| (m.key().to_string(), w.clone()))
                .collect(),
            warnings: self.warnings.clone(),
        }
    }
}

/// A run's counts in a [`ReportView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunView {
    /// Requests.
    pub requests: usize,
    /// Successful.
    pub ok: usize,
    /// Failed.
    pub failed: usize,
}

/// One statistic in a [`ReportView`]: integer microseconds and percents to 0.1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowView {
    /// Real, µs.
    pub real_us: i64,
    /// Sim, µs.
    pub sim_us: i64,
    /// Relative error, e.g. `+3.2%`.
    pub rel_err: Option<String>,
    /// 95% bootstrap interval of the relative error.
    pub ci95: Option<String>,
    /// Real samples.
    pub n_real: usize,
    /// Sim samples.
    pub n_sim: usize,
    /// Whether the sample-size guard accepts the statistic.
    pub enough_samples: bool,
}

/// Distribution distances in a [`ReportView`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DistView {
    /// KS D to three decimals.
    pub ks_d: Option<String>,
    /// W1 in µs.
    pub w1_us: Option<i64>,
}

/// A snapshot-friendly view of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportView {
    /// Metric definitions.
    pub def: String,
    /// Simulated run's counts.
    pub sim: RunView,
    /// Real run's counts.
    pub real: RunView,
    /// Metric → statistic → row.
    pub metrics: BTreeMap<String, BTreeMap<String, RowView>>,
    /// Metric → distances.
    pub distributions: BTreeMap<String, DistView>,
    /// Metric → why not available.
    pub unavailable: BTreeMap<String, String>,
    /// Warnings.
    pub warnings: Vec<String>,
}
