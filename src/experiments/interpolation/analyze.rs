//! The analysis of `interpolation`: the trained end points and the interpolation curves in one table each.

use anyhow::Result;

use super::train::ID;
use crate::analysis::{Cell, Table};
use crate::engine::StageContext;

pub fn analyze(ctx: &StageContext) -> Result<()> {
    let mut curves = Vec::new();
    let mut rows = Vec::new();
    for (name, path) in &ctx.inputs {
        if let Some(tag) = name.strip_suffix("/curve.csv") {
            let (lr, batch) = tag.split_once('/').expect("lr/batch");
            let curve = Table::read_csv(path)?;
            rows.push(vec![
                ID.into(),
                "784-20-40-10".into(),
                format!("lr {lr} batch {batch}").into(),
                Cell::Float(lr.parse()?),
                batch.parse::<u64>()?.into(),
                (curve.height() as u64).into(),
                curve.last("train_loss")?.into(),
                curve.last("train_acc")?.into(),
                curve.last("test_loss")?.into(),
                curve.last("test_acc")?.into(),
            ]);
        } else {
            curves.push(Table::read_csv(path)?);
        }
    }
    Table::from_rows(
        &[
            "experiment",
            "model",
            "variant",
            "lr",
            "batch_size",
            "epochs",
            "train_loss",
            "train_acc",
            "test_loss",
            "test_acc",
        ],
        rows.into_iter(),
    )?
    .write_csv(&ctx.output("summary.csv")?)?;
    Table::concat(curves)?.write_csv(&ctx.output("interpolation.csv")?)
}
