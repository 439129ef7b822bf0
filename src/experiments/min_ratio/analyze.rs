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
    table.write_csv(&ctx.output("summary.csv")?)
}
