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
    Table::from_records(
        &runs,
        &[
            ("experiment", &|_| ID.into()),
            ("model", &|r| r.model.name().into()),
            ("seed", &|r| r.seed.into()),
            ("params", &|r| (r.params as u64).into()),
            ("epochs", &|r| (r.epochs as u64).into()),
            ("train_loss", &|r| r.train_loss.into()),
            ("train_acc", &|r| r.train_acc.into()),
            ("test_loss", &|r| r.test_loss.into()),
            ("test_acc", &|r| r.test_acc.into()),
        ],
    )?
    .write_csv(&ctx.output("summary.csv")?)?;
    Table::concat(curves)?.band(&["model", "metric", "epoch"], "value")?.write_csv(&ctx.output("curves.csv")?)
}
