//! The figures of `mnist_cnn`: loss and accuracy per epoch, train solid and test dashed.

use anyhow::Result;

use crate::engine::StageContext;
use crate::experiments::baselines;
use crate::experiments::experiment::{Tables, render_figures, table};
use crate::plot::{self, Chart, Figure, Series};

pub fn figures(ctx: &StageContext) -> Result<()> {
    render_figures(ctx, charts(&ctx.inputs)?)
}

/// The figures, from the plot stage's input tables.
pub fn charts(tables: &Tables) -> Result<Vec<Figure>> {
    let curves = table(tables, "curves.csv")?;
    let models: Vec<String> =
        curves.strings("model")?.into_iter().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let mut figures = Vec::new();
    for (metric, title, unit) in [
        ("loss", "Cross-entropy on the full sets", "cross-entropy (log scale)"),
        ("acc", "Accuracy on the full sets", "accuracy (%)"),
    ] {
        let seeds = plot::over_seeds(curves.floats("n")?.into_iter().fold(0.0, f64::max) as usize);
        let mut chart = Chart::new(format!("MNIST CNNs: {title}{seeds}"), "epoch", unit);
        chart = if metric == "loss" { baselines::mnist_loss(chart.log_y()) } else { baselines::mnist_accuracy(chart) };
        let scale = if metric == "acc" { 100.0 } else { 1.0 };
        for (i, model) in models.iter().enumerate() {
            for split in ["train", "test"] {
                let c = curves.filter_eq("model", model)?.filter_eq("metric", &format!("{split}_{metric}"))?;
                let s = |col: &str| -> Result<Vec<f64>> { Ok(c.floats(col)?.iter().map(|v| v * scale).collect()) };
                let series = Series::band(
                    format!("{} {split}", model.to_uppercase()),
                    i,
                    c.floats("epoch")?,
                    s("mean")?,
                    s("min")?,
                    s("max")?,
                );
                chart.series.push(if split == "test" { series.dashed() } else { series });
            }
        }
        let name = if metric == "acc" { "accuracy" } else { "loss" };
        figures.push(Figure::new(name, vec![chart]));
    }
    Ok(figures)
}
