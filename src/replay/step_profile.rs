//! Step profiles: a [`StepModel`] fitted on step observations (relative least squares with
//! outliers set aside), with the client-visible serving delays, as `simfid profile fit` writes
//! it.

use serde::{Deserialize, Serialize};

use super::steps::PrefillStep;
use crate::error::{Error, Result};
use crate::exec::step::{NUM_TERMS, Padding, StepModel};

/// One engine step whose composition is known.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepObservation {
    /// Requests in the step.
    pub requests: u32,
    /// Query tokens (decodes count 1, prefill chunks their length).
    pub q_tokens: u64,
    /// KV context read (sum over requests of the tokens already cached).
    pub kv_tokens: u64,
    /// Measured step time in seconds.
    pub seconds: f64,
}

const ALL_TERMS: [usize; NUM_TERMS] = [0, 1, 2, 3, 4, 5, 6, 7];

impl StepModel {
    /// Robust least-squares fit: an ordinary fit, then observations whose relative residual is
    /// more than three times the median one (and more than 10%) are set aside and the model is
    /// fitted again, until nothing changes. Steps that stall for a CUDA-graph capture (the
    /// first step of a new shape costs ~100 ms more) are such outliers; they are reported by
    /// [`StepModel::outliers`], not modelled.
    pub fn fit(obs: &[StepObservation], padding: Padding) -> Result<StepModel> {
        Self::fit_terms(obs, padding, &ALL_TERMS)
    }

    /// [`StepModel::fit`] on some of the [`StepModel::TERMS`] only (indices; the others stay
    /// 0): for data that cannot tell terms apart (in decode-only steps the query tokens are
    /// the request count).
    pub fn fit_terms(
        obs: &[StepObservation],
        padding: Padding,
        terms: &[usize],
    ) -> Result<StepModel> {
        let mut kept: Vec<StepObservation> = obs.to_vec();
        let mut model = Self::fit_plain_terms(&kept, padding, terms)?;
        for _ in 0..5 {
            let cut = model.outlier_cut(&kept);
            let next: Vec<StepObservation> = kept
                .iter()
                .copied()
                .filter(|o| model.rel_residual(o).abs() <= cut)
                .collect();
            if next.len() == kept.len() || next.len() < 3 {
                break;
            }
            kept = next;
            model = Self::fit_plain_terms(&kept, padding, terms)?;
        }
        Ok(model)
    }

    fn rel_residual(&self, o: &StepObservation) -> f64 {
        (self.predict(o.requests, o.q_tokens, o.kv_tokens) - o.seconds) / o.seconds
    }

    fn outlier_cut(&self, obs: &[StepObservation]) -> f64 {
        let mut r: Vec<f64> = obs.iter().map(|o| self.rel_residual(o).abs()).collect();
        r.sort_by(f64::total_cmp);
        let med = r.get(r.len() / 2).copied().unwrap_or(0.0);
        (3.0 * med).max(0.10)
    }

    /// Observations the robust fit set aside (relative residual beyond its cut).
    pub fn outliers(&self, obs: &[StepObservation]) -> Vec<StepObservation> {
        let cut = self.outlier_cut(obs);
        obs.iter()
            .copied()
            .filter(|o| self.rel_residual(o).abs() > cut)
            .collect()
    }

    /// Ordinary least squares on all observations.
    pub fn fit_plain(obs: &[StepObservation], padding: Padding) -> Result<StepModel> {
        Self::fit_plain_terms(obs, padding, &ALL_TERMS)
    }

    fn fit_plain_terms(
        obs: &[StepObservation],
        padding: Padding,
        terms: &[usize],
    ) -> Result<StepModel> {
        if obs.len() < 3 {
            return Err(Error::StepFit(format!(
                "a step model needs at least 3 observed steps, got {}",
                obs.len()
            )));
        }
        let mut probe = StepModel::new(&[]);
        probe.padding = padding;
        let rows: Vec<[f64; NUM_TERMS]> = obs
            .iter()
            .map(|o| probe.features(o.requests, o.q_tokens, o.kv_tokens))
            .collect();
        // Drop columns that do not vary (beyond the intercept) so the system stays regular.
        let mut cols = vec![0usize];
        for j in (1..NUM_TERMS).filter(|j| terms.contains(j)) {
            let first = rows[0][j];
            if rows
                .iter()
                .any(|r| (r[j] - first).abs() > 1e-9 * first.abs().max(1.0))
            {
                cols.push(j);
            }
        }
        let coef_sub = loop {
            match least_squares(&rows, obs, &cols) {
                Some(c) => break c,
                None if cols.len() > 1 => {
                    cols.pop();
                }
                None => {
                    return Err(Error::StepFit("step observations are degenerate".into()));
                }
            }
        };
        let mut coef = vec![0.0; NUM_TERMS];
        for (k, &j) in cols.iter().enumerate() {
            coef[j] = coef_sub[k];
        }
        let min_step_s = obs.iter().map(|o| o.seconds).fold(f64::INFINITY, f64::min);
        probe.coef = coef;
        probe.min_step_s = min_step_s;
        Ok(probe)
    }

    /// Root-mean-square and largest relative residual of the model on `obs`.
    pub fn residuals(&self, obs: &[StepObservation]) -> (f64, f64) {
        let mut sq = 0.0;
        let mut worst: f64 = 0.0;
        for o in obs {
            let rel = (self.predict(o.requests, o.q_tokens, o.kv_tokens) - o.seconds) / o.seconds;
            sq += rel * rel;
            worst = worst.max(rel.abs());
        }
        ((sq / obs.len().max(1) as f64).sqrt(), worst)
    }
}

/// Solves the normal equations of the relative least-squares problem (each observation
/// weighted by 1/seconds², so a 25 ms step and a 200 ms step count alike) on the given
/// columns; `None` when singular.
fn least_squares(
    rows: &[[f64; NUM_TERMS]],
    obs: &[StepObservation],
    cols: &[usize],
) -> Option<Vec<f64>> {
    let k = cols.len();
    // Scale columns to unit max to keep the system well conditioned.
    let scale: Vec<f64> = cols
        .iter()
        .map(|&j| {
            rows.iter()
                .map(|r| r[j].abs())
                .fold(0.0, f64::max)
                .max(1e-300)
        })
        .collect();
    let mut a = vec![vec![0.0; k + 1]; k];
    for (r, o) in rows.iter().zip(obs) {
        let w = 1.0 / o.seconds.max(1e-9);
        for i in 0..k {
            let xi = r[cols[i]] / scale[i] * w;
            for j in 0..k {
                a[i][j] += xi * r[cols[j]] / scale[j] * w;
            }
            a[i][k] += xi * o.seconds * w;
        }
    }
    // Gaussian elimination with partial pivoting.
    for c in 0..k {
        let p = (c..k).max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs()))?;
        if a[p][c].abs() < 1e-12 {
            return None;
        }
        a.swap(c, p);
        let pivot = a[c].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != c {
                let f = row[c] / pivot[c];
                for (x, p) in row[c..].iter_mut().zip(&pivot[c..]) {
                    *x -= f * p;
                }
            }
        }
    }
    Some((0..k).map(|i| a[i][k] / a[i][i] / scale[i]).collect())
}

/// A step profile: the fitted model plus the client-visible serving delay and provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepProfile {
    /// Format name (`simfid-step-profile`).
    pub format: String,
    /// Format version.
    pub format_version: String,
    /// Model served.
    pub model: String,
    /// GPU.
    pub gpu: Option<String>,
    /// Server description.
    pub server: Option<String>,
    /// The step model.
    pub step: StepModel,
    /// Delay between the end of the step that produced a token and the client receiving it,
    /// plus the request's way in (HTTP, tokenisation), estimated from idle-server TTFTs.
    pub serving_delay_s: f64,
    /// Time from a request's send to its arrival in the server's scheduler queue (HTTP,
    /// tokenisation on the event loop). It decides which step a request can join; the
    /// client-visible part of it is in [`StepProfile::serving_delay_s`] too, so a replay
    /// delays arrivals by this and tokens by `serving_delay_s − arrival_delay_s`.
    #[serde(default)]
    pub arrival_delay_s: f64,
    /// Added to the way in per response stream already open when a request is sent: a server
    /// whose frontend (HTTP, detokenisation, SSE writes) runs on one event loop admits a
    /// request later the more streams it is feeding (vLLM's API server). 0: no such term
    /// (and not written, so older profiles read back byte for byte).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub arrival_delay_per_stream_s: f64,
    /// Fit quality: RMS and largest relative residual.
    pub fit_rms_rel: f64,
    /// Largest relative residual.
    pub fit_max_rel: f64,
    /// The observations the model was fitted on.
    pub observations: Vec<StepObservation>,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl StepProfile {
    /// Reads a step profile written by `simfid profile fit`.
    pub fn from_file(path: &std::path::Path) -> Result<StepProfile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

/// Fits a step model's prefill terms on [`prefill_steps`](super::steps::prefill_steps): what each step took beyond the
/// model's decode-step prediction for its requests is
/// `mixed_step_s + prefill_token_s × chunk + continued_prefill_s × [prefix > 0]`, by least squares after setting aside steps whose
/// excess is more than three times the median one (a step delayed by anything else).
/// Returns `(mixed_step_s, prefill_token_s, continued_prefill_s, steps used)`, or `None` with
/// too few steps of each kind.
pub fn fit_prefill_steps(
    model: &StepModel,
    steps: &[PrefillStep],
) -> Option<(f64, f64, f64, usize)> {
    let excess: Vec<(f64, f64, f64)> = steps
        .iter()
        .map(|s| {
            let n = s.decoders + 1;
            let base = model.predict(n, n as u64, s.kv);
            (
                s.chunk as f64,
                if s.prefix > 0 { 1.0 } else { 0.0 },
                s.seconds - base,
            )
        })
        .collect();
    let mut abs: Vec<f64> = excess.iter().map(|e| e.2.abs()).collect();
    abs.sort_by(f64::total_cmp);
    let cut = 3.0 * abs.get(abs.len() / 2).copied()?;
    let kept: Vec<&(f64, f64, f64)> = excess.iter().filter(|e| e.2.abs() <= cut).collect();
    let cont = kept.iter().filter(|e| e.1 > 0.0).count();
    if kept.len() - cont < 5 || cont < 5 {
        return None;
    }
    // Normal equations of y = m + c·chunk + k·[continued], solved by Cramer's rule.
    let mut a = [[0.0f64; 3]; 3];
    let mut v = [0.0f64; 3];
    for e in &kept {
        let x = [1.0, e.0, e.1];
        for i in 0..3 {
            for j in 0..3 {
                a[i][j] += x[i] * x[j];
            }
            v[i] += x[i] * e.2;
        }
    }
    let det = |m: &[[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(&a);
    if d.abs() < 1e-12 {
        return None;
    }
    let solve = |k: usize| {
        let mut m = a;
        for i in 0..3 {
            m[i][k] = v[i];
        }
        det(&m) / d
    };
    Some((solve(0), solve(1), solve(2), kept.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth() -> StepModel {
        StepModel::new(&[0.022, 0.0004, 2e-6, 5e-8, 1e-6, 2e-7, 0.003, 0.6])
    }

    #[test]
    fn fit_recovers_a_known_model() {
        let t = truth();
        let mut obs = Vec::new();
        for n in [1u32, 2, 4, 8, 16, 32, 64] {
            for kv in [256u64, 2048, 20_000, 70_000] {
                for q in [n as u64, n as u64 + 512, n as u64 + 1900] {
                    let kv = kv * n as u64 / 8;
                    obs.push(StepObservation {
                        requests: n,
                        q_tokens: q,
                        kv_tokens: kv,
                        seconds: t.predict(n, q, kv),
                    });
                }
            }
        }
        let m = StepModel::fit(&obs, Padding::default()).unwrap();
        let (rms, max) = m.residuals(&obs);
        assert!(rms < 1e-9 && max < 1e-8, "{rms} {max} {:?}", m.coef);
    }

    #[test]
    fn too_few_observations_are_refused() {
        assert!(StepModel::fit(&[], Padding::default()).is_err());
    }
}
