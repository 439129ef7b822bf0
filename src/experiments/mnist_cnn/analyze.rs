//! The analysis of `mnist_cnn`: the summary of every run and the curves over seeds.

use anyhow::Result;

use super::model::RunReport;
use super::train::ID;
use crate::analysis::Table;
use crate::engine::StageContext;

const METRICS: [&str; 4] = ["train_loss", "train_acc", "test_loss", "test_acc"];

pub fn analyze(ctx: &StageContext) -> Result<()> {
    let mut runs = Vec::new();
    let mut curves = Vec::new();
    for (name, path) in &ctx.inputs {
        let Some(tag) = name.strip_suffix("/run.json") else { continue };
        let run: RunReport = serde_json::from_slice(&std::fs::read(path)?)?;
        let curve = Table::read_csv(ctx.input(&format!("{tag}/curve.csv"))?)?;
        curves.push(curve.melt("epoch", &METRICS)?.with_labels(&[("model", run.model.name())])?.with_seed(run.seed)?);
        runs.push(run);
    }
    runs.sort_by_key(|r| (r.model, r.seed));
    let rows = runs.iter().map(|r| {
        vec![
            ID.into(),
            r.model.name().into(),
            r.seed.into(),
            (r.params as u64).into(),
            (r.epochs as u64).into(),
            r.train_loss.into(),
            r.train_acc.into(),
            r.test_loss.into(),
            r.test_acc.into(),
        ]
    });
    Table::from_rows(
        &["experiment", "model", "seed", "params", "epochs", "train_loss", "train_acc", "test_loss", "test_acc"],
        rows,
    )?
    .write_csv(&ctx.output("summary.csv")?)?;
    Table::concat(curves)?.band(&["model", "metric", "epoch"], "value")?.write_csv(&ctx.output("curves.csv")?)
}
