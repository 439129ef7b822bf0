//! The analysis of `sensitivity`: one row per batch size and seed.

use anyhow::Result;

use super::train::{ID, RunResult, WIDTHS};
use crate::analysis::Table;
use crate::engine::StageContext;
use crate::nn::mlp::param_count;

pub fn analyze(ctx: &StageContext) -> Result<()> {
    let mut runs: Vec<RunResult> =
        ctx.inputs.values().map(|p| Ok(serde_json::from_slice(&std::fs::read(p)?)?)).collect::<Result<_>>()?;
    runs.sort_by_key(|r| (r.batch_size, r.seed));
    Table::from_records(
        &runs,
        &[
            ("experiment", &|_| ID.into()),
            ("model", &|_| "784-20-20-10".into()),
            ("variant", &|r| format!("batch {}", r.batch_size).into()),
            ("batch_size", &|r| (r.batch_size as u64).into()),
            ("seed", &|r| r.seed.into()),
            ("params", &|_| (param_count(&WIDTHS) as u64).into()),
            ("epochs", &|r| (r.epochs as u64).into()),
            ("train_loss", &|r| r.train_loss.into()),
            ("train_acc", &|r| r.train_acc.into()),
            ("test_loss", &|r| r.test_loss.into()),
            ("test_acc", &|r| r.test_acc.into()),
            ("sensitivity", &|r| r.sensitivity.into()),
            ("loss_input_grad", &|r| r.loss_input_grad.into()),
        ],
    )?
    .write_csv(&ctx.output("summary.csv")?)
}
