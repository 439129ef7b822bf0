//! The analysis of `sensitivity`: one row per batch size.

use anyhow::Result;

use super::train::{ID, RunResult, WIDTHS};
use crate::analysis::Table;
use crate::engine::StageContext;
use crate::nn::mlp::param_count;

pub fn analyze(ctx: &StageContext) -> Result<()> {
    let mut runs: Vec<RunResult> =
        ctx.inputs.values().map(|p| Ok(serde_json::from_slice(&std::fs::read(p)?)?)).collect::<Result<_>>()?;
    runs.sort_by_key(|r| r.batch_size);
    let rows = runs.iter().map(|r| {
        vec![
            ID.into(),
            "784-20-20-10".into(),
            format!("batch {}", r.batch_size).into(),
            (r.batch_size as u64).into(),
            (param_count(&WIDTHS) as u64).into(),
            (r.epochs as u64).into(),
            r.train_loss.into(),
            r.train_acc.into(),
            r.test_loss.into(),
            r.test_acc.into(),
            r.sensitivity.into(),
            r.loss_input_grad.into(),
        ]
    });
    Table::from_rows(
        &[
            "experiment",
            "model",
            "variant",
            "batch_size",
            "params",
            "epochs",
            "train_loss",
            "train_acc",
            "test_loss",
            "test_acc",
            "sensitivity",
            "loss_input_grad",
        ],
        rows,
    )?
    .write_csv(&ctx.output("summary.csv")?)
}
