//! The analysis of `random_labels`: the summary of every run.

use anyhow::Result;

use super::train::{ID, WIDTHS};
use crate::analysis::Table;
use crate::engine::StageContext;
use crate::nn::mlp::param_count;

pub fn analyze(ctx: &StageContext) -> Result<()> {
    let mut curves = Vec::new();
    let mut rows = Vec::new();
    for (name, path) in &ctx.inputs {
        let seed: u64 = name.trim_end_matches("/curve.csv").parse()?;
        let curve = Table::read_csv(path)?;
        rows.push(vec![
            ID.into(),
            "784-120-120-16-10".into(),
            seed.into(),
            (param_count(&WIDTHS) as u64).into(),
            (curve.height() as u64).into(),
            curve.last("train_loss")?.into(),
            curve.last("train_acc")?.into(),
            curve.last("test_loss")?.into(),
            curve.last("test_acc")?.into(),
        ]);
        curves.push(curve.with_seed(seed)?);
    }
    Table::from_rows(
        &["experiment", "model", "seed", "params", "epochs", "train_loss", "train_acc", "test_loss", "test_acc"],
        rows.into_iter(),
    )?
    .write_csv(&ctx.output("summary.csv")?)?;
    Table::concat(curves)?.write_csv(&ctx.output("curves.csv")?)
}
