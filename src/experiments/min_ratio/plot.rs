//! The figure of `min_ratio`: minimal ratio (x) against the loss where the gradient is ~0 (y).

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
    let results = table(tables, "results.csv")?;
    // A network that outputs a constant sits at the targets' variance (the analysis computed it):
    // points there learned nothing.
    let mut chart = baselines::constant_prediction(
        Chart::new(
            "Minimal ratio vs loss at points of near-zero gradient",
            "minimal ratio (share of Hessian eigenvalues > tolerance)",
            "MSE at that point",
        ),
        table(tables, "relation.csv")?.last("constant_loss")?,
    );
    let fitted = results.filter_eq("trivial", "false")?;
    let groups = [
        (fitted.filter_eq("reached", "true")?, "‖∇L‖ below target"),
        (fitted.filter_eq("reached", "false")?, "‖∇L‖ target not reached"),
        (results.filter_eq("trivial", "true")?, "trivial: near the constant prediction"),
    ];
    for (i, (runs, label)) in groups.into_iter().enumerate() {
        if runs.height() > 0 {
            chart.series.push(Series::points(
                format!("{label} ({} runs)", runs.height()),
                i,
                runs.floats("ratio")?,
                runs.floats("loss")?,
            ));
        }
    }
    Ok(vec![Figure::new("min_ratio", vec![chart])])
}
