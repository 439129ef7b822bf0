//! The figure of `grad_norm`: gradient norm (top) and loss (bottom) against the iteration, aligned,
//! one colour per seed.

use anyhow::Result;

use crate::data::synth;
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
    let mut norm =
        Chart::new("Gradient norm during training", "iteration (full batch: one epoch)", "‖∇L‖ (log scale)").log_y();
    // The training targets are fixed by the spec (sign(sin 5πx) on 200 points of [-1, 1]).
    let targets: Vec<f64> = synth::grad_norm_data().1.into_iter().map(f64::from).collect();
    let mut loss = baselines::function_fit_loss(
        Chart::new("Loss during training", "iteration (full batch: one epoch)", "MSE"),
        &targets,
    );
    for (i, seed) in seeds.iter().enumerate() {
        let run = curves.filter_in("seed", &[*seed as f64])?;
        let x = run.floats("epoch")?;
        // A dead run's exact zeros cannot sit on a log axis: they are drawn at the axis floor.
        let norms: Vec<f64> = run.floats("grad_norm")?.iter().map(|&g| g.max(1e-8)).collect();
        norm.series.push(Series::line(format!("seed {seed}"), i, x.clone(), norms));
        loss.series.push(Series::line(format!("seed {seed}"), i, x, run.floats("loss")?));
    }
    Ok(vec![Figure::new("grad_norm", vec![norm, loss])])
}
