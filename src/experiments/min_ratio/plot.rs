//! The figure of `min_ratio`: minimal ratio (x) against the loss where the gradient is ~0 (y).

use anyhow::Result;

use crate::analysis::Table;
use crate::engine::StageContext;
use crate::plot::{self, Chart, Series};

pub fn figures(ctx: &StageContext) -> Result<()> {
    let results = Table::read_csv(ctx.input("results.csv")?)?;
    let mut chart = Chart::new(
        "Minimal ratio vs loss at points of near-zero gradient",
        "minimal ratio (share of Hessian eigenvalues > tolerance)",
        "MSE at that point",
    );
    for (i, (reached, label)) in
        [("true", "‖∇L‖ below target"), ("false", "target not reached")].into_iter().enumerate()
    {
        let runs = results.filter_eq("reached", reached)?;
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
