//! The analysis of `params_generalization`: the summary of every run.

use anyhow::Result;

use super::train::{ID, widths};
use crate::analysis::Table;
use crate::engine::StageContext;
use crate::nn::mlp::param_count;
use crate::training::mnist::FinalMetrics;

/// One model's run: its hidden widths, seed and final metrics.
struct Run {
    hidden: [usize; 2],
    seed: u64,
    last: FinalMetrics,
}

impl Run {
    fn params(&self) -> usize {
        param_count(&widths(self.hidden))
    }
}

pub fn analyze(ctx: &StageContext) -> Result<()> {
    let mut runs = Vec::new();
    for (name, path) in &ctx.inputs {
        let tag = name.trim_end_matches("/curve.csv");
        let (hidden, seed) = tag.split_once('.').expect("tag is HxW.seed");
        let (h1, h2) = hidden.split_once('x').expect("hidden is HxW");
        let hidden = [h1.parse::<usize>()?, h2.parse::<usize>()?];
        runs.push(Run { hidden, seed: seed.parse()?, last: FinalMetrics::of(&Table::read_csv(path)?)? });
    }
    runs.sort_by_key(Run::params);
    Table::from_records(
        &runs,
        &[
            ("experiment", &|_| ID.into()),
            ("model", &|r| format!("784-{}-{}-10", r.hidden[0], r.hidden[1]).into()),
            ("seed", &|r| r.seed.into()),
            ("params", &|r| (r.params() as u64).into()),
            ("epochs", &|r| (r.last.last_epoch as u64).into()),
            ("train_loss", &|r| r.last.train_loss.into()),
            ("train_acc", &|r| r.last.train_acc.into()),
            ("test_loss", &|r| r.last.test_loss.into()),
            ("test_acc", &|r| r.last.test_acc.into()),
            ("loss_gap", &|r| (r.last.test_loss - r.last.train_loss).into()),
            ("acc_gap", &|r| (r.last.train_acc - r.last.test_acc).into()),
        ],
    )?
    .write_csv(&ctx.output("summary.csv")?)
}
