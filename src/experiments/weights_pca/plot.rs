//! The figures of `weights_pca`: each run's path in the plane of the first two principal
//! components, one colour per run, markers at every snapshot, the loss written at a few of them.

use anyhow::Result;

use crate::engine::StageContext;
use crate::experiments::experiment::{Tables, render_figures, table};
use crate::plot::{Chart, Figure, Series};

/// Loss labels at this many evenly spaced snapshots per run (plus the last), so they stay legible.
const NOTES_PER_RUN: usize = 4;

pub fn figures(ctx: &StageContext) -> Result<()> {
    render_figures(ctx, charts(&ctx.inputs)?)
}

/// The figures, from the plot stage's input tables.
pub fn charts(tables: &Tables) -> Result<Vec<Figure>> {
    let projected = table(tables, "projected.csv")?;
    let explained = table(tables, "explained.csv")?;
    let mut figures = Vec::new();
    for (scope, title, file) in [
        ("whole", "Whole model (all 701 weights and biases)", "whole"),
        ("layer", "One layer (weights and biases)", "layer"),
    ] {
        let share = explained.filter_eq("scope", scope)?;
        let (s1, s2) = (100.0 * share.floats("pc1_share")?[0], 100.0 * share.floats("pc2_share")?[0]);
        let dims = share.floats("dimensions")?[0] as usize;
        let mut chart = Chart::new(
            format!("Optimisation paths, PCA: {title}"),
            format!("PC1 ({s1:.1}% of variance, {dims} dimensions)"),
            format!("PC2 ({s2:.1}%)"),
        );
        let rows = projected.filter_eq("scope", scope)?;
        let seeds: std::collections::BTreeSet<i64> = rows.floats("seed")?.iter().map(|&s| s as i64).collect();
        for (i, seed) in seeds.iter().enumerate() {
            let run = rows.filter_in("seed", &[*seed as f64])?;
            let (losses, n) = (run.floats("loss")?, run.height());
            let mut series =
                Series::line(format!("seed {seed}"), i, run.floats("pc1")?, run.floats("pc2")?).with_markers();
            let stride = (n / NOTES_PER_RUN).max(1);
            for k in (0..n).step_by(stride).chain(std::iter::once(n - 1)) {
                series = series.note(k, format!("{:.3}", losses[k]));
            }
            chart.series.push(series);
        }
        figures.push(Figure::new(file, vec![chart]));
    }
    Ok(figures)
}
