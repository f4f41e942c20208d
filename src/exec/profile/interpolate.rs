//! The interpolants: [`Curve`] (piecewise-linear in one feature) and [`Surface`] (rows of
//! curves on a ragged grid, linear between rows).

/// A piecewise-linear function through points with distinct, increasing `xs`, constant beyond
/// the first and last point.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Curve {
    xs: Vec<f64>,
    ys: Vec<f64>,
}

impl Curve {
    /// Sorts the points by x and averages the y of equal x. `points` must not be empty.
    pub(super) fn from_points(mut points: Vec<(f64, f64)>) -> Curve {
        debug_assert!(!points.is_empty());
        points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        let mut i = 0;
        while i < points.len() {
            let x = points[i].0;
            let mut j = i;
            let mut sum = 0.0;
            while j < points.len() && points[j].0 == x {
                sum += points[j].1;
                j += 1;
            }
            xs.push(x);
            ys.push(sum / (j - i) as f64);
            i = j;
        }
        Curve { xs, ys }
    }

    pub(super) fn eval(&self, x: f64) -> f64 {
        let n = self.xs.len();
        // Index of the first profiled x above the query.
        let hi = self.xs.partition_point(|&p| p <= x);
        if hi == 0 {
            return self.ys[0];
        }
        if hi == n {
            return self.ys[n - 1];
        }
        let (x0, x1) = (self.xs[hi - 1], self.xs[hi]);
        let (y0, y1) = (self.ys[hi - 1], self.ys[hi]);
        y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    }
}

/// A function of two features on a ragged grid: rows at distinct increasing `keys`, each a
/// [`Curve`] over the second feature with its own range. Between rows the two neighbouring
/// rows' values are interpolated linearly in the key; beyond the first and last row the
/// nearest row is used.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Surface {
    keys: Vec<f64>,
    rows: Vec<Curve>,
}

impl Surface {
    /// Groups `(key, x, y)` points into rows by key. `points` must not be empty.
    pub(super) fn from_points(mut points: Vec<(f64, f64, f64)>) -> Surface {
        debug_assert!(!points.is_empty());
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut keys = Vec::new();
        let mut rows = Vec::new();
        let mut i = 0;
        while i < points.len() {
            let key = points[i].0;
            let j = i + points[i..].partition_point(|p| p.0 == key);
            keys.push(key);
            rows.push(Curve::from_points(
                points[i..j].iter().map(|p| (p.1, p.2)).collect(),
            ));
            i = j;
        }
        Surface { keys, rows }
    }

    pub(super) fn eval(&self, key: f64, x: f64) -> f64 {
        let n = self.keys.len();
        let hi = self.keys.partition_point(|&k| k <= key);
        if hi == 0 {
            return self.rows[0].eval(x);
        }
        if hi == n {
            return self.rows[n - 1].eval(x);
        }
        let (k0, k1) = (self.keys[hi - 1], self.keys[hi]);
        let y0 = self.rows[hi - 1].eval(x);
        if key == k0 {
            return y0;
        }
        let y1 = self.rows[hi].eval(x);
        y0 + (y1 - y0) * (key - k0) / (k1 - k0)
    }
}
