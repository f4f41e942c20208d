//! Quantiles. simfid reports one estimator everywhere: linear interpolation between order
//! statistics, Hyndman–Fan type 7, which is NumPy's and vLLM bench's default
//! (`np.percentile(x, q)`); nearest-rank is available for comparison.

/// Type-7 quantile of `sorted` (ascending, no NaN) at probability `p` in `[0, 1]`:
/// `h = (n − 1)·p`, `x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])`. `None` for an empty sample.
pub fn quantile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let h = (n - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = h - lo as f64;
    // NumPy's lerp form: exact at both ends.
    let (a, b) = (sorted[lo], sorted[hi]);
    let d = b - a;
    Some(if frac >= 0.5 {
        b - d * (1.0 - frac)
    } else {
        a + d * frac
    })
}

/// Type-7 quantile of an unsorted sample (sorts a copy).
pub fn quantile(sample: &[f64], p: f64) -> Option<f64> {
    let mut v: Vec<f64> = sample.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    quantile_sorted(&v, p)
}

/// Nearest-rank quantile: the smallest value with at least `p·n` values at or below it.
pub fn nearest_rank_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let rank = ((p * n as f64).ceil() as usize).max(1);
    Some(sorted[rank - 1])
}

/// Arithmetic mean; `None` for an empty sample.
pub fn mean(sample: &[f64]) -> Option<f64> {
    (!sample.is_empty()).then(|| sample.iter().sum::<f64>() / sample.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_numpy_percentile() {
        // np.percentile([1, 2, 3, 4], [0, 25, 50, 90, 100]) = [1, 1.75, 2.5, 3.7, 4]
        let x = [4.0, 1.0, 3.0, 2.0];
        let got: Vec<f64> = [0.0, 0.25, 0.5, 0.9, 1.0]
            .iter()
            .map(|&p| quantile(&x, p).unwrap())
            .collect();
        let want = [1.0, 1.75, 2.5, 3.7, 4.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
    }

    #[test]
    fn small_samples_and_ties() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[7.0], 0.99), Some(7.0));
        // np.percentile([1, 3], 99) = 2.98
        assert!((quantile(&[3.0, 1.0], 0.99).unwrap() - 2.98).abs() < 1e-12);
        // np.percentile([1, 2, 2, 2, 5], [50, 90]) = [2, 3.8]
        let t = [2.0, 5.0, 2.0, 1.0, 2.0];
        assert_eq!(quantile(&t, 0.5), Some(2.0));
        assert!((quantile(&t, 0.9).unwrap() - 3.8).abs() < 1e-12);
        assert_eq!(
            nearest_rank_sorted(&[1.0, 2.0, 2.0, 2.0, 5.0], 0.9),
            Some(5.0)
        );
    }
}
