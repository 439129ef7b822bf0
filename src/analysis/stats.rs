//! Small statistics the claims and analyses need.

/// Ranks 1..=n, ties sharing the mean of their ranks (as `scipy.stats.rankdata`).
pub fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && values[order[end + 1]] == values[order[start]] {
            end += 1;
        }
        let rank = (start + end) as f64 / 2.0 + 1.0;
        for &i in &order[start..=end] {
            out[i] = rank;
        }
        start = end + 1;
    }
    out
}

/// Pearson correlation; `None` when fewer than two points or a constant series.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len();
    if n < 2 || n != y.len() {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    let (mx, my) = (mean(x), mean(y));
    let cov: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    (vx > 0.0 && vy > 0.0).then(|| cov / (vx * vy).sqrt())
}

/// Spearman's rank correlation (Pearson on tie-averaged ranks).
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    pearson(&ranks(x), &ranks(y))
}

/// The half-width of the band that Spearman's ρ of `n` points with no relation falls in 95 % of
/// the time, from its large-sample standard error 1/√(n − 1); `None` below 3 points.
pub fn spearman_null_band(n: usize) -> Option<f64> {
    (n >= 3).then(|| 1.96 / ((n - 1) as f64).sqrt())
}

pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The two-sided 95 % quantile of Student's t with `df` degrees of freedom: exact to three
/// decimals from the table for df ≤ 30, the Cornish–Fisher expansion around the normal's beyond.
pub fn student_t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        _ => {
            let (z, v) = (1.959_963_984_540_054_f64, df as f64);
            z + (z.powi(3) + z) / (4.0 * v) + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * v * v)
        }
    }
}

/// How many values of this `mean` and standard deviation `sd` the 95 % Student-t interval of the
/// mean needs to exclude 0: the smallest n with t(n − 1) · sd / √n < |mean| (`None` for a zero
/// mean, or past 1000).
pub fn values_to_exclude_zero(mean: f64, sd: f64) -> Option<usize> {
    if !(mean.is_finite() && sd.is_finite()) || mean == 0.0 {
        return None;
    }
    (2..=1000).find(|&n| student_t_975(n - 1) * sd / (n as f64).sqrt() < mean.abs())
}

/// The exact two-sided sign test: the probability, were each of `n` outcomes a fair coin, of a
/// split at least as uneven as `held` of `n` (`scipy.stats.binomtest(held, n).pvalue`); 1 for
/// `n` = 0.
pub fn sign_test_p(held: usize, n: usize) -> f64 {
    let choose = |k: usize| (0..k).fold(1.0, |c, i| c * (n - i) as f64 / (i + 1) as f64);
    let extreme = held.min(n - held);
    let tail: f64 = (0..=extreme).map(choose).sum::<f64>() / 2f64.powi(n as i32);
    // The two tails overlap only when the split is even (then every outcome is as extreme).
    if 2 * extreme == n { 1.0 } else { (2.0 * tail).min(1.0) }
}

/// The sample standard deviation (n − 1 in the denominator).
pub fn sample_sd(values: &[f64]) -> f64 {
    let m = mean(values);
    (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() as f64 - 1.0)).sqrt()
}

/// The mean of `values` and its 95 % Student-t interval: `None` below two values.
pub fn mean_interval(values: &[f64]) -> Option<(f64, f64, f64)> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let (m, sd) = (mean(values), sample_sd(values));
    let half = student_t_975(n - 1) * sd / (n as f64).sqrt();
    Some((m, m - half, m + half))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_published_table_and_the_normal_limit() {
        // scipy.stats.t.ppf(0.975, df): 12.706, 4.303, 2.042 (df 30), 2.021 (df 40), 1.984 (df 100).
        for (df, exact) in [(1, 12.706), (2, 4.303), (30, 2.042), (40, 2.021), (100, 1.984)] {
            assert!((student_t_975(df) - exact).abs() < 1e-3, "df {df}: {}", student_t_975(df));
        }
        assert!((student_t_975(100_000) - 1.96).abs() < 1e-3);
    }

    #[test]
    fn the_interval_of_three_values_is_the_textbook_one() {
        // mean 2, sd 1, n 3: 2 ± 4.303 / √3.
        let (m, lo, hi) = mean_interval(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(m, 2.0);
        assert!((hi - m - 4.303 / 3f64.sqrt()).abs() < 1e-12 && (m - lo - (hi - m)).abs() < 1e-12);
        assert_eq!(mean_interval(&[5.0, 5.0]), Some((5.0, 5.0, 5.0)));
        assert_eq!(mean_interval(&[1.0]), None);
    }

    #[test]
    fn the_sign_test_matches_the_binomial_distribution() {
        // scipy.stats.binomtest(k, n).pvalue: (5, 5) 0.0625, (6, 6) 0.03125, (5, 6) 0.21875,
        // (0, 7) 0.015625, (7, 9) 0.1796875, (2, 4) 1.0.
        for (k, n, p) in [(5, 5, 0.0625), (6, 6, 0.03125), (5, 6, 0.21875), (0, 7, 0.015625), (7, 9, 0.1796875)] {
            assert!((sign_test_p(k, n) - p).abs() < 1e-12, "{k} of {n}: {}", sign_test_p(k, n));
        }
        assert_eq!(sign_test_p(2, 4), 1.0);
        assert_eq!(sign_test_p(0, 0), 1.0);
    }

    #[test]
    fn seeds_to_settle_follow_the_interval() {
        // mean 1, sd 1: n = 7 gives t(6) · 1/√7 = 2.447/2.646 = 0.925 < 1; n = 6: 2.571/2.449 = 1.05.
        assert_eq!(values_to_exclude_zero(1.0, 1.0), Some(7));
        assert_eq!(values_to_exclude_zero(-1.0, 1.0), Some(7), "either sign");
        assert_eq!(values_to_exclude_zero(1.0, 0.0), Some(2));
        assert_eq!(values_to_exclude_zero(0.0, 1.0), None);
        assert_eq!(values_to_exclude_zero(1e-3, 1.0), None, "past 1000");
    }

    #[test]
    fn ranks_average_ties_like_scipy() {
        // scipy.stats.rankdata([0, 2, 3, 2]) == [1. , 2.5, 4. , 2.5]
        assert_eq!(ranks(&[0.0, 2.0, 3.0, 2.0]), vec![1.0, 2.5, 4.0, 2.5]);
    }

    #[test]
    fn the_null_band_is_close_to_the_exact_critical_values() {
        // Two-sided 5 % critical values of Spearman's ρ (Zar 1972, table of exact values):
        // n = 10: 0.648, n = 30: 0.362, n = 100: 0.197.
        for (n, exact) in [(10, 0.648), (30, 0.362), (100, 0.197)] {
            let band = spearman_null_band(n).unwrap();
            assert!((band - exact).abs() < 0.01, "n = {n}: {band} against {exact}");
        }
        assert_eq!(spearman_null_band(2), None);
    }

    #[test]
    fn spearman_matches_scipy_documented_example() {
        // scipy.stats.spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]).statistic == 0.8207826816681233
        let rho = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]).unwrap();
        assert!((rho - 0.8207826816681233).abs() < 1e-12, "{rho}");
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[30.0, 20.0, 10.0]), Some(-1.0));
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[1.0, 1.0, 1.0]), None);
    }
}
