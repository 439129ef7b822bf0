//! The figure of `random_labels`: loss (top) and accuracy (bottom) per epoch, train on the random
//! labels (solid), test on the true labels (dashed).

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
    let curves = table(tables, "curves.csv")?;
    let seeds: std::collections::BTreeSet<i64> = curves.floats("seed")?.iter().map(|&s| s as i64).collect();
    let mut loss =
        baselines::mnist_loss(Chart::new("Random labels: cross-entropy on the full sets", "epoch", "cross-entropy"));
    let mut acc =
        baselines::mnist_accuracy(Chart::new("Random labels: accuracy on the full sets", "epoch", "accuracy (%)"));
    for (i, seed) in seeds.iter().enumerate() {
        let run = curves.filter_in("seed", &[*seed as f64])?;
        let x = run.floats("epoch")?;
        let pct = |c: &str| -> Result<Vec<f64>> { Ok(run.floats(c)?.iter().map(|v| 100.0 * v).collect()) };
        loss.series.push(Series::line(
            format!("train, random labels (seed {seed})"),
            i,
            x.clone(),
            run.floats("train_loss")?,
        ));
        loss.series.push(
            Series::line(format!("test, true labels (seed {seed})"), i, x.clone(), run.floats("test_loss")?).dashed(),
        );
        acc.series.push(Series::line(format!("train, random labels (seed {seed})"), i, x.clone(), pct("train_acc")?));
        acc.series.push(Series::line(format!("test, true labels (seed {seed})"), i, x, pct("test_acc")?).dashed());
    }
    Ok(vec![Figure::new("random_labels", vec![loss, acc])])
}
