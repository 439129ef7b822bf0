//! The figures of `params_generalization`: final loss and accuracy against the number of
//! parameters (log x), train and test.

use anyhow::Result;

use crate::analysis::Table;
use crate::engine::StageContext;
use crate::experiments::baselines;
use crate::plot::{self, Chart, Series};

pub fn figures(ctx: &StageContext) -> Result<()> {
    let summary = Table::read_csv(ctx.input("summary.csv")?)?;
    let params = summary.floats("params")?;
    let pct = |c: &str| -> Result<Vec<f64>> { Ok(summary.floats(c)?.iter().map(|v| 100.0 * v).collect()) };
    let mut loss = baselines::mnist_loss(
        Chart::new("Final loss vs number of parameters", "parameters (log scale)", "cross-entropy (log scale)")
            .log_x()
            .log_y(),
    );
    loss.series.push(Series::points("train", 0, params.clone(), summary.floats("train_loss")?));
    loss.series.push(Series::points("test", 3, params.clone(), summary.floats("test_loss")?));
    let mut acc = baselines::mnist_accuracy(
        Chart::new("Final accuracy vs number of parameters", "parameters (log scale)", "accuracy (%)").log_x(),
    );
    acc.series.push(Series::points("train", 0, params.clone(), pct("train_acc")?));
    acc.series.push(Series::points("test", 3, params, pct("test_acc")?));
    plot::render(&loss, &ctx.output("loss")?)?;
    plot::render(&acc, &ctx.output("accuracy")?)
}
