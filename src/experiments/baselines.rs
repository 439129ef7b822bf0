//! What trivial predictors score, drawn on every figure whose metric has one: a reader sees at a
//! glance whether a curve learned anything. MNIST's ten classes are balanced to within a point, so
//! guessing scores 10 % and a uniform prediction costs ln 10 in cross-entropy; for a function fit,
//! the best constant prediction costs the variance of the targets in MSE.

use crate::plot::Chart;

/// Guessing among MNIST's 10 classes, in percent (the figures' accuracy unit).
pub const CHANCE_ACCURACY_PCT: f64 = 10.0;

/// The cross-entropy of the uniform prediction over 10 classes: -ln(1/10).
pub const UNIFORM_CROSS_ENTROPY: f64 = std::f64::consts::LN_10;

/// An MNIST cross-entropy chart, with the uniform prediction's loss drawn.
pub fn mnist_loss(chart: Chart) -> Chart {
    chart.baseline(format!("uniform prediction: ln 10 = {UNIFORM_CROSS_ENTROPY:.3}"), UNIFORM_CROSS_ENTROPY)
}

/// An MNIST accuracy chart (in percent), with chance drawn.
pub fn mnist_accuracy(chart: Chart) -> Chart {
    chart.baseline(format!("chance: {CHANCE_ACCURACY_PCT} %"), CHANCE_ACCURACY_PCT)
}

/// The MSE of the best constant prediction of `targets` (their mean): their variance.
pub fn constant_prediction_mse(targets: &[f64]) -> f64 {
    let n = targets.len().max(1) as f64;
    let mean = targets.iter().sum::<f64>() / n;
    targets.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / n
}

/// A function fit's MSE chart, with the best constant prediction's loss drawn.
pub fn function_fit_loss(chart: Chart, targets: &[f64]) -> Chart {
    constant_prediction(chart, constant_prediction_mse(targets))
}

/// An MSE chart with the best constant prediction's loss `mse` (the targets' variance) drawn.
pub fn constant_prediction(chart: Chart, mse: f64) -> Chart {
    chart.baseline(format!("constant prediction (variance of y): {}", crate::analysis::format_float(mse)), mse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constant_predictions_loss_is_the_targets_variance() {
        assert_eq!(constant_prediction_mse(&[1.0, 3.0]), 1.0);
        assert_eq!(constant_prediction_mse(&[2.0; 5]), 0.0);
        // cos(x) over whole periods: variance 1/2.
        let ys: Vec<f64> = (0..10_000).map(|k| (k as f64 * std::f64::consts::TAU / 10_000.0).cos()).collect();
        assert!((constant_prediction_mse(&ys) - 0.5).abs() < 1e-9);
        // Each of 10 classes at probability 1/10: -ln(0.1) whatever the label.
        assert!((UNIFORM_CROSS_ENTROPY + 0.1f64.ln()).abs() < 1e-12);
    }
}
