//! SVG plots of a [`Report`] (feature `plot`): CDF overlays of real and simulated TTFT, ITL,
//! TPOT and E2E, and the relative error at every percentile 1…99.
//!
//! plotters' SVG backend writes text as `<text>` elements and, without its `ttf`/`ab_glyph`
//! features, estimates text extents itself, so no system font is needed and the files are
//! byte-identical across machines. Each curve is drawn through 201 type-7 quantiles, so the
//! files stay small whatever the sample size.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::compare::Report;
use super::metric::Metric;
use super::quantile::quantile_sorted;
use crate::error::{Error, Result};

const REAL: RGBColor = RGBColor(31, 119, 180);
const SIM: RGBColor = RGBColor(214, 39, 40);
const PALETTE: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];

fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Parse {
        path: path.to_path_buf(),
        message: format!("cannot draw: {e}"),
    }
}

/// `(ms, fraction)` points of an ascending sample's CDF, through 201 quantiles.
fn cdf_points(sorted_s: &[f64]) -> Vec<(f64, f64)> {
    (0..=200)
        .filter_map(|i| {
            let p = i as f64 / 200.0;
            Some((quantile_sorted(sorted_s, p)? * 1e3, p))
        })
        .collect()
}

/// A curve of a chart: points, colour, legend label.
type Line = (Vec<(f64, f64)>, RGBColor, String);

/// One line chart: `lines` (points, colour, legend label) over the given ranges, with an
/// optional black baseline drawn first, written to `path`.
struct Chart<'a> {
    caption: String,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    x_desc: &'a str,
    y_desc: &'a str,
    baseline: Option<[(f64, f64); 2]>,
    legend: SeriesLabelPosition,
}

impl Chart<'_> {
    fn draw(self, path: &Path, lines: Vec<Line>) -> Result<()> {
        let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(path, e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(self.caption, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(self.x, self.y)
            .map_err(|e| err(path, e))?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc)
            .y_desc(self.y_desc)
            .draw()
            .map_err(|e| err(path, e))?;
        if let Some(b) = self.baseline {
            chart
                .draw_series(LineSeries::new(b.to_vec(), BLACK))
                .map_err(|e| err(path, e))?;
        }
        for (pts, color, name) in lines {
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(|e| err(path, e))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(self.legend)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(path, e))?;
        root.present().map_err(|e| err(path, e))
    }
}

/// Writes `cdf_<metric>.svg` for TTFT, ITL, TPOT and E2E (those available) and
/// `error_vs_quantile.svg` into `dir`; returns the files written.
pub fn write_plots(report: &Report, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut written = Vec::new();
    for metric in Metric::MAIN {
        let Some(mr) = report.metrics.get(&metric) else {
            continue;
        };
        let path = dir.join(format!("cdf_{}.svg", metric.key()));
        let real = cdf_points(&mr.real_sorted_s);
        let sim = cdf_points(&mr.sim_sorted_s);
        let lo = real
            .iter()
            .chain(&sim)
            .map(|p| p.0)
            .fold(f64::INFINITY, f64::min);
        let hi = real
            .iter()
            .chain(&sim)
            .map(|p| p.0)
            .fold(f64::NEG_INFINITY, f64::max);
        let pad = ((hi - lo) * 0.02).max(1e-6);
        let x_desc = format!("{} (ms)", metric.label());
        Chart {
            caption: format!("{} CDF ({})", metric.label(), report.def),
            x: (lo - pad)..(hi + pad),
            y: 0f64..1f64,
            x_desc: &x_desc,
            y_desc: "fraction of samples",
            baseline: None,
            legend: SeriesLabelPosition::LowerRight,
        }
        .draw(
            &path,
            vec![
                (real, REAL, format!("real ({})", report.real.label)),
                (sim, SIM, format!("sim ({})", report.sim.label)),
            ],
        )?;
        written.push(path);
    }
    let path = dir.join("error_vs_quantile.svg");
    let mut series = Vec::new();
    for metric in Metric::MAIN {
        let Some(mr) = report.metrics.get(&metric) else {
            continue;
        };
        let pts: Vec<(f64, f64)> = (1..=99)
            .filter_map(|i| {
                let p = i as f64 / 100.0;
                let r = quantile_sorted(&mr.real_sorted_s, p)?;
                let s = quantile_sorted(&mr.sim_sorted_s, p)?;
                (r != 0.0).then(|| (i as f64, (s - r) / r * 100.0))
            })
            .collect();
        series.push((metric, pts));
    }
    let ys = series.iter().flat_map(|s| s.1.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((0.0f64, 0.0f64), |(a, b), y| (a.min(y), b.max(y)));
    let pad = ((hi - lo) * 0.05).max(1.0);
    Chart {
        caption: format!(
            "relative error (sim − real)/real by percentile ({})",
            report.def
        ),
        x: 0f64..100f64,
        y: (lo - pad)..(hi + pad),
        x_desc: "percentile",
        y_desc: "relative error (%)",
        baseline: Some([(0.0, 0.0), (100.0, 0.0)]),
        legend: SeriesLabelPosition::UpperLeft,
    }
    .draw(
        &path,
        series
            .into_iter()
            .enumerate()
            .map(|(i, (metric, pts))| (pts, PALETTE[i % PALETTE.len()], metric.label().to_string()))
            .collect(),
    )?;
    written.push(path);
    Ok(written)
}
