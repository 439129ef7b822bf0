//! The analysis of `random_labels`: the summary of every run.

use anyhow::Result;

use super::train::{ID, WIDTHS};
use crate::analysis::Table;
use crate::engine::StageContext;
use crate::nn::mlp::param_count;
use crate::training::mnist::FinalMetrics;

/// One run: its seed and final metrics.
struct Run {
    seed: u64,
    last: FinalMetrics,
}

pub fn analyze(ctx: &StageContext) -> Result<()> {
    let mut curves = Vec::new();
    let mut runs = Vec::new();
    for (name, path) in &ctx.inputs {
        let seed: u64 = name.trim_end_matches("/curve.csv").parse()?;
        let curve = Table::read_csv(path)?;
        runs.push(Run { seed, last: FinalMetrics::of(&curve)? });
        curves.push(curve.with_seed(seed)?);
    }
    Table::from_records(
        &runs,
        &[
            ("experiment", &|_| ID.into()),
            ("model", &|_| "784-120-120-16-10".into()),
            ("seed", &|r| r.seed.into()),
            ("params", &|_| (param_count(&WIDTHS) as u64).into()),
            ("epochs", &|r| (r.last.evaluations as u64).into()),
            ("train_loss", &|r| r.last.train_loss.into()),
            ("train_acc", &|r| r.last.train_acc.into()),
            ("test_loss", &|r| r.last.test_loss.into()),
            ("test_acc", &|r| r.last.test_acc.into()),
        ],
    )?
    .write_csv(&ctx.output("summary.csv")?)?;
    Table::concat(curves)?.write_csv(&ctx.output("curves.csv")?)
}
