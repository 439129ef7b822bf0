//! The analysis of `sim_functions`: every run's losses and predictions gathered into the summary,
//! the loss curves over seeds and the prediction bands.

use std::collections::BTreeMap;

use anyhow::Result;

use super::model::{Model, RunReport};
use super::train::ID;
use crate::analysis::Table;
use crate::data::{self, synth::Function};
use crate::engine::StageContext;

/// Epochs at which the spec prints the original's losses.
pub const CHECKPOINTS: [usize; 8] = [500, 1000, 2000, 3000, 5000, 10000, 15000, 20000];

pub fn analyze(ctx: &StageContext) -> Result<()> {
    let mut runs: BTreeMap<(Function, Model, u64), RunReport> = BTreeMap::new();
    let mut curves = Vec::new();
    let mut predictions = Vec::new();
    for (name, path) in &ctx.inputs {
        let Some(tag) = name.strip_suffix("/run.json") else {
            continue;
        };
        let run: RunReport = serde_json::from_slice(&std::fs::read(path)?)?;
        let labels = [("function", run.function.name()), ("model", run.model.name())];
        curves
            .push(Table::read_csv(ctx.input(&format!("{tag}/loss.csv"))?)?.with_labels(&labels)?.with_seed(run.seed)?);
        let (xs, target) = data::read_xy(ctx.input(&format!("{}/data.csv", run.function.name()))?)?;
        let pred = Table::read_csv(ctx.input(&format!("{tag}/prediction.csv"))?)?;
        predictions.push(
            pred.with_column("target", &target)?.with_column("x", &xs)?.with_labels(&labels)?.with_seed(run.seed)?,
        );
        runs.insert((run.function, run.model, run.seed), run);
    }

    let runs: Vec<&RunReport> = runs.values().collect();
    let mut summary = Table::from_records(
        &runs,
        &[
            ("experiment", &|_| ID.into()),
            ("function", &|r| r.function.name().into()),
            ("model", &|r| r.model.name().into()),
            ("seed", &|r| r.seed.into()),
            ("params", &|r| (r.params as u64).into()),
            ("epochs", &|r| (r.epochs as u64).into()),
            ("stopped_early", &|r| r.stopped_early.into()),
            ("final_loss", &|r| r.final_loss.into()),
            ("min_loss", &|r| r.min_loss.into()),
        ],
    )?;
    summary.write_csv(&ctx.output("summary.csv")?)?;

    let curves = Table::concat(curves)?;
    curves.band(&["function", "model", "epoch"], "loss")?.write_csv(&ctx.output("loss_curves.csv")?)?;
    let checkpoints: Vec<f64> = CHECKPOINTS.iter().map(|&e| (e - 1) as f64).collect();
    curves
        .filter_in("epoch", &checkpoints)?
        .band(&["function", "model", "epoch"], "loss")?
        .write_csv(&ctx.output("loss_checkpoints.csv")?)?;
    Table::concat(predictions)?
        .band(&["function", "model", "x", "target"], "prediction")?
        .write_csv(&ctx.output("predictions.csv")?)?;
    Ok(())
}
