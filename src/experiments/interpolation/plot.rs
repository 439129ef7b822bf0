//! The figures of `interpolation`, one per learning rate: cross-entropy (log scale, top) and
//! accuracy (bottom) against α, train solid and test dashed. α = 0 is the batch-64 model, α = 1
//! the batch-1024 one.

use anyhow::Result;

use crate::engine::StageContext;
use crate::experiments::baselines;
use crate::experiments::experiment::{Tables, render_figures, table};
use crate::plot::{Chart, Figure, Series};

/// How a learning rate names stages, inputs and figures.
pub fn lr_label(lr: f64) -> String {
    format!("{lr}")
}

pub fn figures(ctx: &StageContext) -> Result<()> {
    render_figures(ctx, charts(&ctx.inputs)?)
}

/// The figures, from the plot stage's input tables.
pub fn charts(tables: &Tables) -> Result<Vec<Figure>> {
    let all = table(tables, "interpolation.csv")?;
    let lrs: std::collections::BTreeSet<String> = all.floats("lr")?.iter().map(|&l| lr_label(l)).collect();
    let mut figures = Vec::new();
    for lr in lrs {
        let t = all.filter_in("lr", &[lr.parse::<f64>()?])?;
        let alpha = t.floats("alpha")?;
        let pct = |c: &str| -> Result<Vec<f64>> { Ok(t.floats(c)?.iter().map(|v| 100.0 * v).collect()) };
        let x_label = "α  (θ = (1-α)·θ_batch64 + α·θ_batch1024)";
        let mut loss = baselines::mnist_loss(
            Chart::new(format!("Interpolation, lr {lr}: cross-entropy"), x_label, "cross-entropy (log scale)").log_y(),
        );
        loss.series.push(Series::line("train", 0, alpha.clone(), t.floats("train_loss")?).with_markers());
        loss.series.push(Series::line("test", 0, alpha.clone(), t.floats("test_loss")?).dashed());
        let mut acc =
            baselines::mnist_accuracy(Chart::new(format!("Interpolation, lr {lr}: accuracy"), x_label, "accuracy (%)"));
        acc.series.push(Series::line("train", 3, alpha.clone(), pct("train_acc")?).with_markers());
        acc.series.push(Series::line("test", 3, alpha, pct("test_acc")?).dashed());
        figures.push(Figure::new(format!("interpolation_lr{lr}"), vec![loss, acc]));
    }
    Ok(figures)
}
