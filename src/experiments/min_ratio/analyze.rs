//! The analysis of `min_ratio`: every run's critical point in one table, which of them are
//! trivial, and the relation the assignment asks about as a number.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::train::{ID, RunResult, WIDTHS};
use crate::analysis::stats::{spearman, spearman_null_band};
use crate::analysis::{Cell, Table};
use crate::engine::StageContext;
use crate::experiments::baselines::constant_prediction_mse;
use crate::nn::mlp::param_count;

#[derive(Serialize, Deserialize)]
pub struct AnalyzeParams {
    /// A critical point is trivial when it explains less than this share of the targets'
    /// variance (R² = 1 − loss / Var y): the network is little better than a constant.
    pub trivial_below_r2: f64,
}

/// What the critical points say together (`relation.csv`, one row).
#[derive(Debug, PartialEq)]
pub struct Relation {
    pub runs: usize,
    /// Runs whose gradient norm stayed above the target: not critical points, left out of the rest.
    pub not_critical: usize,
    /// Critical points that are trivial (left out of ρ).
    pub trivial: usize,
    /// The constant prediction's loss, the variance of the targets.
    pub constant_loss: f64,
    /// Loss range of the non-trivial points (`None` when there are none).
    pub fitted_loss: Option<(f64, f64)>,
    /// Spearman's ρ between minimal ratio and loss over the non-trivial points, and the band
    /// (±) that 95 % of samples with no relation fall in.
    pub rho: Option<f64>,
    pub null_band: Option<f64>,
}

/// R² of a critical point's loss against the constant prediction's.
pub fn r2(loss: f64, constant_loss: f64) -> f64 {
    1.0 - loss / constant_loss
}

/// Whether a critical point of `loss` is trivial: it explains less than `below_r2` of the variance.
pub fn is_trivial(loss: f64, constant_loss: f64, below_r2: f64) -> bool {
    r2(loss, constant_loss) < below_r2
}

/// Of `(ratio, loss, reached)` triples, leaves out the points that did not reach the gradient-norm
/// target (they are not critical points), counts the trivial ones among the rest, and relates
/// ratio to loss over the others.
pub fn relate(points: &[(f64, f64, bool)], constant_loss: f64, trivial_below_r2: f64) -> Relation {
    let critical: Vec<(f64, f64)> = points.iter().filter(|p| p.2).map(|&(ratio, loss, _)| (ratio, loss)).collect();
    let fitted: Vec<(f64, f64)> =
        critical.iter().copied().filter(|&(_, loss)| !is_trivial(loss, constant_loss, trivial_below_r2)).collect();
    let (ratios, losses): (Vec<f64>, Vec<f64>) = fitted.iter().copied().unzip();
    let span = losses
        .iter()
        .copied()
        .fold(None, |acc: Option<(f64, f64)>, l| Some(acc.map_or((l, l), |(lo, hi)| (lo.min(l), hi.max(l)))));
    Relation {
        runs: points.len(),
        not_critical: points.len() - critical.len(),
        trivial: critical.len() - fitted.len(),
        constant_loss,
        fitted_loss: span,
        rho: spearman(&ratios, &losses),
        null_band: spearman_null_band(fitted.len()),
    }
}

pub fn analyze(ctx: &StageContext) -> Result<()> {
    let params: AnalyzeParams = ctx.params()?;
    let runs: Result<Vec<RunResult>> = ctx
        .inputs
        .iter()
        .filter(|(name, _)| name.ends_with("/run.json"))
        .map(|(_, path)| Ok(serde_json::from_slice(&std::fs::read(path)?)?))
        .collect();
    let mut runs = runs?;
    if runs.is_empty() {
        bail!("no runs to analyse");
    }
    runs.sort_by_key(|r| r.seed);
    let (_, ys) = crate::data::read_xy(ctx.input("data.csv")?)?;
    let constant_loss = constant_prediction_mse(&ys.iter().map(|&y| f64::from(y)).collect::<Vec<_>>());
    let mut table = Table::from_records(
        &runs,
        &[
            ("experiment", &|_| ID.into()),
            ("model", &|_| "1-12-6-1".into()),
            ("seed", &|r| r.seed.into()),
            ("params", &|_| (param_count(&WIDTHS) as u64).into()),
            ("train_loss", &|r| r.train_loss.into()),
            ("original_metric", &|r| r.original_metric.into()),
            ("grad_norm_after_training", &|r| r.grad_norm_after_training.into()),
            ("loss", &|r| r.loss.into()),
            ("r2", &|r| r2(r.loss, constant_loss).into()),
            ("trivial", &|r| is_trivial(r.loss, constant_loss, params.trivial_below_r2).into()),
            ("grad_norm", &|r| r.grad_norm.into()),
            ("reached", &|r| r.reached.into()),
            ("norm_steps", &|r| (r.norm_steps as u64).into()),
            ("ratio", &|r| r.ratio.into()),
            ("positive", &|r| (r.positive as u64).into()),
            ("near_zero", &|r| (r.near_zero as u64).into()),
            ("negative", &|r| (r.negative as u64).into()),
            ("eig_min", &|r| r.eig_min.into()),
            ("eig_max", &|r| r.eig_max.into()),
        ],
    )?;
    table.write_csv(&ctx.output("results.csv")?)?;
    table.write_csv(&ctx.output("summary.csv")?)?;

    let points: Vec<(f64, f64, bool)> = runs.iter().map(|r| (r.ratio, r.loss, r.reached)).collect();
    let relation = relate(&points, constant_loss, params.trivial_below_r2);
    // What cannot be computed (no fitted point, one point) is written as NaN: the column stays numeric.
    let cell = |v: Option<f64>| -> Cell { v.unwrap_or(f64::NAN).into() };
    Table::from_rows(
        &[
            "runs",
            "not_critical",
            "trivial",
            "constant_loss",
            "trivial_below_r2",
            "fitted_loss_min",
            "fitted_loss_max",
            "rho",
            "null_band",
        ],
        std::iter::once(vec![
            (relation.runs as u64).into(),
            (relation.not_critical as u64).into(),
            (relation.trivial as u64).into(),
            relation.constant_loss.into(),
            params.trivial_below_r2.into(),
            cell(relation.fitted_loss.map(|s| s.0)),
            cell(relation.fitted_loss.map(|s| s.1)),
            cell(relation.rho),
            cell(relation.null_band),
        ]),
    )?
    .write_csv(&ctx.output("relation.csv")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivial_points_are_those_near_the_constant_prediction() {
        // Constant loss 0.5, trivial below R² 0.2, i.e. loss above 0.4.
        // The last point did not reach the gradient-norm target: it counts as a run and nothing else.
        let points = [
            (0.40, 0.01, true),
            (0.35, 0.10, true),
            (0.30, 0.25, true),
            (0.20, 0.39, true),
            (0.10, 0.41, true),
            (0.01, 0.50, true),
            (0.05, 0.52, true),
            (0.99, 0.30, false),
        ];
        let relation = relate(&points, 0.5, 0.2);
        assert_eq!((relation.runs, relation.not_critical), (8, 1));
        assert_eq!(relation.trivial, 3, "0.41, 0.50 and 0.52 explain under a fifth of the variance");
        assert_eq!(relation.fitted_loss, Some((0.01, 0.39)));
        // Over the four fitted points the ratio falls exactly as the loss rises.
        assert_eq!(relation.rho, Some(-1.0));
        assert!((relation.null_band.unwrap() - 1.96 / 3f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn no_fitted_point_leaves_no_range_and_no_correlation() {
        let relation = relate(&[(0.1, 0.5, true), (0.2, 0.49, true)], 0.5, 0.2);
        assert_eq!(relation.trivial, 2);
        assert_eq!((relation.fitted_loss, relation.rho), (None, None));
    }
}
