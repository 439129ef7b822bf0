//! The analysis of `interpolation`: the trained end points and the interpolation curves in one table each.

use anyhow::Result;

use super::train::ID;
use crate::analysis::{Cell, Table};
use crate::engine::StageContext;
use crate::training::mnist::FinalMetrics;

/// One trained end point: its learning rate (as its label names it, and as a number), its batch
/// size and its final metrics.
struct EndPoint {
    label: String,
    lr: f64,
    batch: u64,
    last: FinalMetrics,
}

pub fn analyze(ctx: &StageContext) -> Result<()> {
    let mut curves = Vec::new();
    let mut ends = Vec::new();
    for (name, path) in &ctx.inputs {
        if let Some(tag) = name.strip_suffix("/curve.csv") {
            let (lr, batch) = tag.split_once('/').expect("lr/batch");
            let last = FinalMetrics::of(&Table::read_csv(path)?)?;
            ends.push(EndPoint { label: lr.to_string(), lr: lr.parse()?, batch: batch.parse()?, last });
        } else {
            curves.push(Table::read_csv(path)?);
        }
    }
    Table::from_records(
        &ends,
        &[
            ("experiment", &|_| ID.into()),
            ("model", &|_| "784-20-40-10".into()),
            ("variant", &|e| format!("lr {} batch {}", e.label, e.batch).into()),
            ("lr", &|e| Cell::Float(e.lr)),
            ("batch_size", &|e| e.batch.into()),
            ("epochs", &|e| (e.last.evaluations as u64).into()),
            ("train_loss", &|e| e.last.train_loss.into()),
            ("train_acc", &|e| e.last.train_acc.into()),
            ("test_loss", &|e| e.last.test_loss.into()),
            ("test_acc", &|e| e.last.test_acc.into()),
        ],
    )?
    .write_csv(&ctx.output("summary.csv")?)?;
    Table::concat(curves)?.write_csv(&ctx.output("interpolation.csv")?)
}
