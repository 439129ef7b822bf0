//! The figures of `sensitivity` (log x = batch size): loss over sensitivity, and accuracy over
//! sensitivity, as aligned panels (the original drew twin axes).

use anyhow::Result;

use crate::analysis::{Cell, Table};
use crate::engine::StageContext;
use crate::experiments::baselines;
use crate::experiments::experiment::{Tables, render_figures, table};
use crate::plot::{Chart, Figure, Series};

pub fn figures(ctx: &StageContext) -> Result<()> {
    render_figures(ctx, charts(&ctx.inputs)?)
}

/// The figures, from the plot stage's input tables.
pub fn charts(tables: &Tables) -> Result<Vec<Figure>> {
    // One point per batch size: the mean over its seeds.
    let runs = table(tables, "summary.csv")?;
    let t = means_by_batch(&runs)?;
    let bs = t.floats("batch_size")?;
    let pct = |c: &str| -> Result<Vec<f64>> { Ok(t.floats(c)?.iter().map(|v| 100.0 * v).collect()) };
    let sensitivity = || -> Result<Chart> {
        let mut c = Chart::new(
            "Sensitivity: ‖∂softmax/∂x‖_F, mean over the test set and seeds",
            "batch size (log scale)",
            "sensitivity",
        )
        .log_x();
        c.series.push(Series::line("sensitivity", 3, bs.clone(), t.floats("sensitivity")?).with_markers());
        Ok(c)
    };
    let mut loss = baselines::mnist_loss(
        Chart::new("Loss vs batch size (mean over seeds)", "batch size (log scale)", "cross-entropy").log_x(),
    );
    loss.series.push(Series::line("train", 0, bs.clone(), t.floats("train_loss")?).with_markers());
    loss.series.push(Series::line("test", 0, bs.clone(), t.floats("test_loss")?).dashed().with_markers());
    let loss_figure = Figure::new("loss_sensitivity", vec![loss, sensitivity()?]);
    let mut acc = baselines::mnist_accuracy(
        Chart::new("Accuracy vs batch size (mean over seeds)", "batch size (log scale)", "accuracy (%)").log_x(),
    );
    acc.series.push(Series::line("train", 0, bs.clone(), pct("train_acc")?).with_markers());
    acc.series.push(Series::line("test", 0, bs.clone(), pct("test_acc")?).dashed().with_markers());
    Ok(vec![loss_figure, Figure::new("accuracy_sensitivity", vec![acc, sensitivity()?])])
}

/// The measurements of `runs` averaged over seeds: one row per batch size, ascending.
pub fn means_by_batch(runs: &Table) -> Result<Table> {
    const MEASURED: [&str; 6] = ["train_loss", "train_acc", "test_loss", "test_acc", "sensitivity", "loss_input_grad"];
    let rows = runs.means_by("batch_size", &MEASURED)?.into_iter().map(|(batch, means)| {
        let mut row: Vec<Cell> = vec![batch.into()];
        row.extend(means.into_iter().map(Cell::from));
        row
    });
    let mut names = vec!["batch_size"];
    names.extend(MEASURED);
    Table::from_rows(&names, rows)
}
