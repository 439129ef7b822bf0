//! The figures of `params_generalization`: final loss and accuracy against the number of
//! parameters (log x), train and test.

use anyhow::Result;

use crate::engine::StageContext;
use crate::experiments::baselines;
use crate::experiments::experiment::{Tables, render_figures, table};
use crate::plot::{Chart, Figure, Series};

pub fn figures(ctx: &StageContext) -> Result<()> {
    render_figures(ctx, charts(&ctx.inputs)?)
}

/// The figures, from the plot stage's input tables.
pub fn charts(tables: &Tables) -> Result<Vec<Figure>> {
    let summary = table(tables, "summary.csv")?;
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
    Ok(vec![Figure::new("loss", vec![loss]), Figure::new("accuracy", vec![acc])])
}
