//! The analysis of `params_generalization`: the summary of every run.

use anyhow::Result;

use super::train::{ID, widths};
use crate::analysis::Table;
use crate::engine::StageContext;
use crate::nn::mlp::param_count;

pub fn analyze(ctx: &StageContext) -> Result<()> {
    let mut rows = Vec::new();
    for (name, path) in &ctx.inputs {
        let tag = name.trim_end_matches("/curve.csv");
        let (hidden, seed) = tag.split_once('.').expect("tag is HxW.seed");
        let (h1, h2) = hidden.split_once('x').expect("hidden is HxW");
        let hidden = [h1.parse::<usize>()?, h2.parse::<usize>()?];
        let curve = Table::read_csv(path)?;
        let (train_loss, test_loss, train_acc, test_acc) =
            (curve.last("train_loss")?, curve.last("test_loss")?, curve.last("train_acc")?, curve.last("test_acc")?);
        rows.push((
            param_count(&widths(hidden)),
            vec![
                ID.into(),
                format!("784-{}-{}-10", hidden[0], hidden[1]).into(),
                seed.parse::<u64>()?.into(),
                (param_count(&widths(hidden)) as u64).into(),
                (curve.last("epoch")? as u64).into(),
                train_loss.into(),
                train_acc.into(),
                test_loss.into(),
                test_acc.into(),
                (test_loss - train_loss).into(),
                (train_acc - test_acc).into(),
            ],
        ));
    }
    rows.sort_by_key(|(params, _)| *params);
    Table::from_rows(
        &[
            "experiment",
            "model",
            "seed",
            "params",
            "epochs",
            "train_loss",
            "train_acc",
            "test_loss",
            "test_acc",
            "loss_gap",
            "acc_gap",
        ],
        rows.into_iter().map(|(_, r)| r),
    )?
    .write_csv(&ctx.output("summary.csv")?)
}
