//! The figure of `min_ratio`: minimal ratio (x) against the loss where the gradient is ~0 (y).

use anyhow::Result;

use crate::analysis::Table;
use crate::engine::StageContext;
use crate::experiments::baselines;
use crate::plot::{self, Chart, Series};

pub fn figures(ctx: &StageContext) -> Result<()> {
    let results = Table::read_csv(ctx.input("results.csv")?)?;
    let (_, ys) = crate::data::read_xy(ctx.input("data.csv")?)?;
    let targets: Vec<f64> = ys.into_iter().map(f64::from).collect();
    // A network that outputs a constant sits at the targets' variance: points there learned nothing.
    let mut chart = baselines::function_fit_loss(
        Chart::new(
            "Minimal ratio vs loss at points of near-zero gradient",
            "minimal ratio (share of Hessian eigenvalues > tolerance)",
            "MSE at that point",
        ),
        &targets,
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
    plot::render(&chart, &ctx.output("min_ratio")?)
}
