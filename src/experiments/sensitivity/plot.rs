//! The figures of `sensitivity` (log x = batch size): loss over sensitivity, and accuracy over
//! sensitivity, as aligned panels (the original drew twin axes).

use anyhow::Result;

use crate::analysis::Table;
use crate::engine::StageContext;
use crate::plot::{self, Chart, Series};

pub fn figures(ctx: &StageContext) -> Result<()> {
    let t = Table::read_csv(ctx.input("summary.csv")?)?;
    let bs = t.floats("batch_size")?;
    let pct = |c: &str| -> Result<Vec<f64>> { Ok(t.floats(c)?.iter().map(|v| 100.0 * v).collect()) };
    let sensitivity = || -> Result<Chart> {
        let mut c =
            Chart::new("Sensitivity: ‖∂softmax/∂x‖_F, mean over the test set", "batch size (log scale)", "sensitivity")
                .log_x();
        c.series.push(Series::line("sensitivity", 3, bs.clone(), t.floats("sensitivity")?).with_markers());
        Ok(c)
    };
    let mut loss = Chart::new("Loss vs batch size", "batch size (log scale)", "cross-entropy").log_x();
    loss.series.push(Series::line("train", 0, bs.clone(), t.floats("train_loss")?).with_markers());
    loss.series.push(Series::line("test", 0, bs.clone(), t.floats("test_loss")?).dashed().with_markers());
    plot::render_panels(&[loss, sensitivity()?], &ctx.output("loss_sensitivity")?)?;
    let mut acc = Chart::new("Accuracy vs batch size", "batch size (log scale)", "accuracy (%)").log_x();
    acc.series.push(Series::line("train", 0, bs.clone(), pct("train_acc")?).with_markers());
    acc.series.push(Series::line("test", 0, bs.clone(), pct("test_acc")?).dashed().with_markers());
    plot::render_panels(&[acc, sensitivity()?], &ctx.output("accuracy_sensitivity")?)
}
