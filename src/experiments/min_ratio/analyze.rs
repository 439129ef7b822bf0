//! The analysis of `min_ratio`: every run's critical point in one table.

use anyhow::Result;

use super::train::{ID, RunResult, WIDTHS};
use crate::analysis::Table;
use crate::engine::StageContext;
use crate::nn::mlp::param_count;

pub fn analyze(ctx: &StageContext) -> Result<()> {
    let mut runs: Vec<RunResult> =
        ctx.inputs.values().map(|path| Ok(serde_json::from_slice(&std::fs::read(path)?)?)).collect::<Result<_>>()?;
    runs.sort_by_key(|r| r.seed);
    let rows = runs.iter().map(|r| {
        vec![
            ID.into(),
            "1-12-6-1".into(),
            r.seed.into(),
            (param_count(&WIDTHS) as u64).into(),
            r.train_loss.into(),
            r.original_metric.into(),
            r.grad_norm_after_training.into(),
            r.loss.into(),
            r.grad_norm.into(),
            r.reached.into(),
            (r.norm_steps as u64).into(),
            r.ratio.into(),
            (r.positive as u64).into(),
            (r.near_zero as u64).into(),
            (r.negative as u64).into(),
            r.eig_min.into(),
            r.eig_max.into(),
        ]
    });
    let mut table = Table::from_rows(
        &[
            "experiment",
            "model",
            "seed",
            "params",
            "train_loss",
            "original_metric",
            "grad_norm_after_training",
            "loss",
            "grad_norm",
            "reached",
            "norm_steps",
            "ratio",
            "positive",
            "near_zero",
            "negative",
            "eig_min",
            "eig_max",
        ],
        rows,
    )?;
    table.write_csv(&ctx.output("results.csv")?)?;
    table.write_csv(&ctx.output("summary.csv")?)
}
