//! Fidelity assertions as plain functions: a [`Criterion`] (metric, statistic, [`Tolerance`])
//! is checked against a [`Report`] and gives a [`Verdict`], whose `Display` is the table a
//! failing test prints. The `assert_*_within!` and `assert_fidelity!` macros are thin
//! wrappers over [`check`].

use std::fmt::{self, Write as _};
use std::str::FromStr;

use super::compare::{CompareOptions, Report, Row, compare};
use super::error::FidelityError;
use super::metric::{Metric, MetricDef, Window};
use super::noise::{NoiseFloor, Spread};
use super::stats::Stat;
use crate::fixture::Run;

impl AsRef<Run> for Run {
    fn as_ref(&self) -> &Run {
        self
    }
}

/// How close sim must be to real: `|rel err| ≤ rel`, or, when an absolute floor is given,
/// `|abs err| ≤ abs_ms` (`10% or 2ms` passes when either holds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Relative tolerance (0.10 for 10%).
    pub rel: f64,
    /// Absolute floor in milliseconds.
    pub abs_ms: Option<f64>,
}

impl Tolerance {
    /// A relative tolerance given in percent.
    pub fn pct(pct: f64) -> Tolerance {
        Tolerance {
            rel: pct / 100.0,
            abs_ms: None,
        }
    }

    /// Adds an absolute floor in milliseconds.
    pub fn or_ms(self, ms: f64) -> Tolerance {
        Tolerance {
            abs_ms: Some(ms),
            ..self
        }
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", fmt_num(self.rel * 100.0))?;
        if let Some(a) = self.abs_ms {
            write!(f, " or {}ms", fmt_num(a))?;
        }
        Ok(())
    }
}

fn fmt_num(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Parses a duration such as `2ms`, `0.5ms`, `500us` or `1s` into milliseconds, at compile
/// time when called in a `const` context (the macros do), so a bad unit does not compile.
pub const fn parse_ms(s: &str) -> f64 {
    let b = s.as_bytes();
    let (mut i, mut value, mut scale, mut dot, mut digits) = (0, 0.0f64, 1.0f64, false, 0);
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        if b[i] == b'.' {
            if dot {
                panic!("a duration has at most one decimal point");
            }
            dot = true;
        } else {
            let d = (b[i] - b'0') as f64;
            if dot {
                scale /= 10.0;
                value += d * scale;
            } else {
                value = value * 10.0 + d;
            }
            digits += 1;
        }
        i += 1;
    }
    if digits == 0 {
        panic!("a duration starts with a number, e.g. 2ms");
    }
    let rest = b.len() - i;
    if rest == 2 && b[i] == b'm' && b[i + 1] == b's' {
        value
    } else if rest == 2 && b[i] == b'u' && b[i + 1] == b's' {
        value / 1000.0
    } else if rest == 1 && b[i] == b's' {
        value * 1000.0
    } else {
        panic!("a duration ends with a unit: ms, us or s")
    }
}

/// One assertion: a metric's statistic within a tolerance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Criterion {
    /// The metric.
    pub metric: Metric,
    /// The statistic.
    pub stat: Stat,
    /// The tolerance.
    pub tol: Tolerance,
}

impl Criterion {
    /// A criterion.
    pub fn new(metric: Metric, stat: Stat, tol: Tolerance) -> Criterion {
        Criterion { metric, stat, tol }
    }
}

impl fmt::Display for Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}<={}", self.metric.key(), self.stat, self.tol)
    }
}

impl FromStr for Criterion {
    type Err = FidelityError;

    /// `METRIC:STAT<=PCT%[ or ABS(ms|us|s)]`, e.g. `ttft:p99<=10%`, `itl:p50<=5% or 2ms`.
    fn from_str(spec: &str) -> Result<Criterion, FidelityError> {
        let bad = |reason: &str| FidelityError::BadAssertion {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let (m, rest) = spec
            .split_once(':')
            .ok_or_else(|| bad("expected METRIC:STAT<=PCT%, e.g. ttft:p99<=10%"))?;
        let metric = Metric::parse(m.trim()).ok_or_else(|| {
            bad("unknown metric (ttft, itl, tpot, e2e, e2e_norm, tbt, sched_delay)")
        })?;
        let (q, tol) = rest
            .split_once("<=")
            .ok_or_else(|| bad("expected '<=' after the statistic"))?;
        let stat = Stat::parse(q.trim())
            .ok_or_else(|| bad("unknown statistic (p50, p90, p95, p99, mean)"))?;
        let (pct, abs) = match tol.split_once(" or ") {
            Some((p, a)) => (p.trim(), Some(a.trim())),
            None => (tol.trim(), None),
        };
        let pct: f64 = pct
            .strip_suffix('%')
            .and_then(|p| p.trim().parse().ok())
            .filter(|p: &f64| p.is_finite() && *p >= 0.0)
            .ok_or_else(|| bad("the tolerance is a percentage such as 10%"))?;
        let mut t = Tolerance::pct(pct);
        if let Some(a) = abs {
            let ok = a.ends_with("ms") || a.ends_with("us") || a.ends_with('s');
            let num = a.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            if !ok || num.parse::<f64>().is_err() {
                return Err(bad("the absolute floor is a duration such as 2ms"));
            }
            t = t.or_ms(parse_ms(a));
        }
        Ok(Criterion::new(metric, stat, t))
    }
}

/// How an assertion ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Within tolerance.
    Pass,
    /// Outside tolerance.
    Fail,
    /// Could not be decided (too few samples, metric unavailable, runs not comparable).
    Refused(String),
}

/// One checked criterion.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What was asked.
    pub criterion: Criterion,
    /// The compared values, when available.
    pub row: Option<Row>,
    /// The noise floor of this statistic, when repeats were given.
    pub noise: Option<Spread>,
    /// The relative tolerance applied: `max(tolerance, noise floor)`.
    pub limit_rel: f64,
    /// Result.
    pub outcome: Outcome,
}

/// The result of checking criteria: passes when every check passes.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Every check, in the order asked.
    pub checks: Vec<Check>,
    /// The comparison the checks were made on (`None` if it was refused).
    pub report: Option<Report>,
    /// Why the comparison was refused.
    pub error: Option<String>,
}

impl Verdict {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.checks.iter().all(|c| c.outcome == Outcome::Pass)
    }

    /// Checks `criteria` against a report; a statistic with too few samples is refused.
    pub fn evaluate(report: Report, criteria: &[Criterion], noise: Option<&NoiseFloor>) -> Verdict {
        Verdict::evaluate_with(report, criteria, noise, false)
    }

    /// As [`Verdict::evaluate`]; with `allow_few_samples` a statistic the sample-size guard
    /// refuses is checked anyway (and marked so in the table).
    pub fn evaluate_with(
        report: Report,
        criteria: &[Criterion],
        noise: Option<&NoiseFloor>,
        allow_few_samples: bool,
    ) -> Verdict {
        let checks = criteria
            .iter()
            .map(|&criterion| {
                let nf = noise.and_then(|n| n.get(criterion.metric, criterion.stat));
                let limit_rel = criterion.tol.rel.max(nf.map_or(0.0, |s| s.rel));
                let Some(m) = report.metrics.get(&criterion.metric) else {
                    let why = report
                        .unavailable
                        .get(&criterion.metric)
                        .cloned()
                        .unwrap_or_else(|| "not computed".into());
                    return Check {
                        criterion,
                        row: None,
                        noise: nf,
                        limit_rel,
                        outcome: Outcome::Refused(format!(
                            "{} not available: {why}",
                            criterion.metric
                        )),
                    };
                };
                let row = m.rows.get(&criterion.stat).cloned();
                let outcome = match &row {
                    None => Outcome::Refused(format!("{} not computed", criterion.stat)),
                    Some(r) if r.refused.is_some() && !allow_few_samples => {
                        Outcome::Refused(r.refused.clone().unwrap_or_default())
                    }
                    Some(r) => {
                        let rel_ok = r.rel_err.is_some_and(|e| e.abs() <= limit_rel + 1e-12);
                        let abs_ok = criterion
                            .tol
                            .abs_ms
                            .is_some_and(|a| r.abs_err_ms.abs() <= a + 1e-9);
                        if rel_ok || abs_ok || (r.real_ms == r.sim_ms) {
                            Outcome::Pass
                        } else {
                            Outcome::Fail
                        }
                    }
                };
                Check {
                    criterion,
                    row,
                    noise: nf,
                    limit_rel,
                    outcome,
                }
            })
            .collect();
        Verdict {
            checks,
            report: Some(report),
            error: None,
        }
    }

    /// One line saying what the worst failure suggests, e.g. "sim TTFT too low at the tail:
    /// queueing underestimated"; `None` when everything passed.
    pub fn diagnosis(&self) -> Option<String> {
        if let Some(e) = &self.error {
            return Some(format!("runs not comparable: {e}"));
        }
        let worst = self
            .checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .filter_map(|c| {
                let e = c.row.as_ref()?.rel_err?;
                Some((e.abs() / c.limit_rel.max(1e-9), c, e))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((_, c, e)) = worst {
            return Some(diagnose(c.criterion.metric, c.criterion.stat, e));
        }
        self.checks.iter().find_map(|c| match &c.outcome {
            Outcome::Refused(why) => Some(format!("cannot decide {}: {why}", c.criterion)),
            _ => None,
        })
    }
}

/// The one-line reading of a relative error of `stat` of `metric`.
pub fn diagnose(metric: Metric, stat: Stat, rel: f64) -> String {
    let low = rel < 0.0;
    let dir = if low { "too low" } else { "too high" };
    let place = match stat {
        Stat::P50 => "at the median",
        Stat::Mean => "on average",
        _ => "at the tail",
    };
    let est = if low {
        "underestimated"
    } else {
        "overestimated"
    };
    let cause = match (metric, stat.is_tail()) {
        (Metric::Ttft | Metric::SchedDelay, true) => format!("queueing {est}"),
        (Metric::Ttft, false) => format!("prefill time or queueing {est}"),
        (Metric::SchedDelay, false) => format!("waiting for admission {est}"),
        (Metric::Itl | Metric::Tbt | Metric::Tpot, false) => {
            if low {
                "decode step time underestimated (per-iteration framework overhead missing?)"
                    .to_string()
            } else {
                "decode step time overestimated".to_string()
            }
        }
        (Metric::Itl | Metric::Tbt | Metric::Tpot, true) => {
            format!("decode stalls (prefills interrupting decodes, preemptions) {est}")
        }
        (Metric::E2e | Metric::E2eNorm, _) => {
            let when = if low { "early" } else { "late" };
            format!("requests finish too {when}: read the TTFT and TPOT rows")
        }
    };
    format!("sim {} {dir} {place}: {cause}", metric.label())
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:+.1}%", v * 100.0))
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = if self.passed() { "passed" } else { "FAILED" };
        match &self.report {
            Some(r) => writeln!(
                f,
                "fidelity {status}: {} vs {} (metric definitions: {})",
                r.sim.label, r.real.label, r.def
            )?,
            None => writeln!(f, "fidelity {status}")?,
        }
        if let Some(e) = &self.error {
            writeln!(f, "runs not comparable: {e}")?;
        }
        let mut t = String::new();
        t.push_str(
            "| check | real ms | sim ms | abs err ms | rel err | 95% CI | limit | n real | n sim | result |\n\
             | --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | --- |\n",
        );
        for c in &self.checks {
            let few = c.row.as_ref().is_some_and(|r| r.refused.is_some());
            let result = match &c.outcome {
                Outcome::Pass if few => "pass (few samples)".to_string(),
                Outcome::Fail if few => "FAIL (few samples)".to_string(),
                Outcome::Pass => "pass".to_string(),
                Outcome::Fail => "FAIL".to_string(),
                Outcome::Refused(why) => format!("REFUSED: {why}"),
            };
            let mut limit = c.criterion.tol.to_string();
            if let Some(n) = c.noise {
                let _ = write!(limit, " (noise {:.1}%)", n.rel * 100.0);
            }
            match &c.row {
                Some(r) => {
                    let ci = r.ci95.map_or("-".into(), |(lo, hi)| {
                        format!("[{:+.1}%, {:+.1}%]", lo * 100.0, hi * 100.0)
                    });
                    let _ = writeln!(
                        t,
                        "| {} {} | {:.3} | {:.3} | {:+.3} | {} | {ci} | {limit} | {} | {} | {result} |",
                        c.criterion.metric.label(),
                        c.criterion.stat,
                        r.real_ms,
                        r.sim_ms,
                        r.abs_err_ms,
                        pct(r.rel_err),
                        r.n_real,
                        r.n_sim,
                    );
                }
                None => {
                    let _ = writeln!(
                        t,
                        "| {} {} | - | - | - | - | - | {limit} | - | - | {result} |",
                        c.criterion.metric.label(),
                        c.criterion.stat,
                    );
                }
            }
        }
        f.write_str(&t)?;
        if let Some(r) = &self.report {
            let mut seen = Vec::new();
            for c in &self.checks {
                let m = c.criterion.metric;
                if seen.contains(&m) {
                    continue;
                }
                seen.push(m);
                if let Some(mr) = r.metrics.get(&m) {
                    writeln!(
                        f,
                        "{}: KS D = {} (p = {}), W1 = {} ms",
                        m.label(),
                        mr.ks.map_or("-".into(), |k| format!("{:.3}", k.d)),
                        mr.ks.map_or("-".into(), |k| format!("{:.3}", k.p_value)),
                        mr.w1_ms.map_or("-".into(), |w| format!("{w:.3}")),
                    )?;
                }
            }
            for w in &r.warnings {
                writeln!(f, "warning: {w}")?;
            }
        }
        if let Some(d) = self.diagnosis() {
            writeln!(f, "diagnosis: {d}")?;
        }
        Ok(())
    }
}

/// Options of [`check`] and the assertion macros, set with builder calls (the macros take
/// them as trailing `name(args)` items: `noise_floor(&repeats)`, `def(MetricDef::Vidur)`,
/// `warmup(10)`, `window(5.0, 60.0)`, `resamples(200)`, `seed(7)`,
/// `allow_workload_mismatch(true)`).
#[derive(Debug, Clone, Default)]
pub struct AssertOptions<'a> {
    /// The comparison settings.
    pub compare: CompareOptions,
    /// Real repeats for the noise floor.
    pub repeats: Vec<&'a Run>,
    /// Check statistics that the sample-size guard refuses anyway.
    pub few_samples_allowed: bool,
}

impl<'a> AssertOptions<'a> {
    /// Metric definitions.
    pub fn def(mut self, def: MetricDef) -> Self {
        self.compare.metrics.def = def;
        self
    }

    /// Drops the first `n` requests.
    pub fn warmup(mut self, n: usize) -> Self {
        self.compare.metrics.warmup = n;
        self
    }

    /// Keeps requests scheduled in `[start_s, end_s)` after the first.
    pub fn window(mut self, start_s: f64, end_s: f64) -> Self {
        self.compare.metrics.window = Some(Window { start_s, end_s });
        self
    }

    /// Never applies a tolerance below the spread between these real repeats.
    pub fn noise_floor<R: AsRef<Run>>(mut self, repeats: &'a [R]) -> Self {
        self.repeats = repeats.iter().map(AsRef::as_ref).collect();
        self
    }

    /// Bootstrap resamples.
    pub fn resamples(mut self, n: usize) -> Self {
        self.compare.bootstrap.resamples = n;
        self
    }

    /// Bootstrap seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.compare.bootstrap.seed = seed;
        self
    }

    /// Checks statistics that the sample-size guard refuses anyway (marked in the table).
    pub fn allow_few_samples(mut self, yes: bool) -> Self {
        self.few_samples_allowed = yes;
        self
    }

    /// Compares runs of different workloads anyway.
    pub fn allow_workload_mismatch(mut self, yes: bool) -> Self {
        self.compare.allow_workload_mismatch = yes;
        self
    }
}

/// Compares `sim` with `real` and checks `criteria`.
pub fn check(sim: &Run, real: &Run, criteria: &[Criterion], opts: &AssertOptions<'_>) -> Verdict {
    let refused = |e: String| Verdict {
        checks: criteria
            .iter()
            .map(|&criterion| Check {
                criterion,
                row: None,
                noise: None,
                limit_rel: criterion.tol.rel,
                outcome: Outcome::Refused("runs not comparable".into()),
            })
            .collect(),
        report: None,
        error: Some(e),
    };
    let noise = if opts.repeats.is_empty() {
        None
    } else {
        match NoiseFloor::from_repeats(&opts.repeats, &opts.compare.metrics) {
            Ok(n) => Some(n),
            Err(e) => return refused(e.to_string()),
        }
    };
    // Compute only what the criteria ask for (the bootstrap is the costly part).
    let mut copts = opts.compare.clone();
    let mut only: Vec<Metric> = criteria.iter().map(|c| c.metric).collect();
    only.sort();
    only.dedup();
    copts.only = Some(only);
    copts.stats = Stat::ALL
        .into_iter()
        .filter(|s| criteria.iter().any(|c| c.stat == *s))
        .collect();
    match compare(sim, real, &copts) {
        Ok(report) => {
            Verdict::evaluate_with(report, criteria, noise.as_ref(), opts.few_samples_allowed)
        }
        Err(e) => refused(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_assertions() {
        let c: Criterion = "ttft:p99<=10%".parse().unwrap();
        assert_eq!(
            c,
            Criterion::new(Metric::Ttft, Stat::P99, Tolerance::pct(10.0))
        );
        let c: Criterion = "itl:p50<=5% or 2ms".parse().unwrap();
        assert_eq!(c.tol.abs_ms, Some(2.0));
        let c: Criterion = "e2el : mean <= 2.5% or 500us".parse().unwrap();
        assert_eq!(c.metric, Metric::E2e);
        assert_eq!(c.tol.abs_ms, Some(0.5));
        for bad in [
            "ttft",
            "foo:p99<=1%",
            "ttft:p42<=1%",
            "ttft:p99<=10",
            "ttft:p99<=1% or 2",
        ] {
            assert!(bad.parse::<Criterion>().is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_ms("2ms"), 2.0);
        assert_eq!(parse_ms("0.5ms"), 0.5);
        assert_eq!(parse_ms("1s"), 1000.0);
        assert_eq!(parse_ms("250us"), 0.25);
    }

    #[test]
    fn diagnoses() {
        assert_eq!(
            diagnose(Metric::Ttft, Stat::P99, -0.3),
            "sim TTFT too low at the tail: queueing underestimated"
        );
    }
}
