//! The figures of `sim_functions`: target, training loss and predictions, one set per function.

use anyhow::Result;

use super::model::{DataParams, Model};
use crate::data::synth::Function;
use crate::engine::StageContext;
use crate::experiments::baselines;
use crate::experiments::experiment::{Tables, render_figures, table};
use crate::plot::{self, Chart, Figure, Series};

pub fn figures(ctx: &StageContext) -> Result<()> {
    let DataParams { function } = ctx.params()?;
    render_figures(ctx, charts(&ctx.inputs, function)?)
}

/// The figures of `function`, from the plot stage's input tables (every function's curves).
pub fn charts(tables: &Tables, function: Function) -> Result<Vec<Figure>> {
    let f = function.name();
    let curves = table(tables, "loss_curves.csv")?.filter_eq("function", f)?;
    let preds = table(tables, "predictions.csv")?.filter_eq("function", f)?;
    let models: Vec<String> =
        curves.strings("model")?.into_iter().collect::<std::collections::BTreeSet<_>>().into_iter().collect();

    let seeds = plot::over_seeds(curves.floats("n")?.into_iter().fold(0.0, f64::max) as usize);
    let mut loss =
        Chart::new(format!("Training loss on {f}(x) = {}{seeds}", function.formula()), "epoch", "MSE (log scale)")
            .log_y();
    let mut fit = Chart::new(format!("Predictions vs ground truth, {f}(x) = {}{seeds}", function.formula()), "x", "y");
    for (i, model) in models.iter().enumerate() {
        let m: Model = serde_json::from_value(serde_json::Value::String(model.clone()))?;
        let c = curves.filter_eq("model", model)?;
        loss.series.push(
            Series::band(m.label(), i, c.floats("epoch")?, c.floats("mean")?, c.floats("min")?, c.floats("max")?)
                .thin(2000),
        );
        let p = preds.filter_eq("model", model)?;
        fit.series.push(Series::band(
            m.label(),
            i,
            p.floats("x")?,
            p.floats("mean")?,
            p.floats("min")?,
            p.floats("max")?,
        ));
    }
    let truth = preds.filter_eq("model", &models[0])?;
    fit.series.push(Series::line("ground truth", plot::BLACK, truth.floats("x")?, truth.floats("target")?));
    let mut target = Chart::new(format!("Target {f}(x) = {}", function.formula()), "x", "y");
    target.series.push(Series::line(f, plot::BLACK, truth.floats("x")?, truth.floats("target")?));

    // The runs train on the prediction grid itself: its targets are the training targets.
    let loss = baselines::function_fit_loss(loss, &truth.floats("target")?);
    Ok(vec![
        Figure::new(format!("loss_{f}"), vec![loss]),
        Figure::new(format!("predictions_{f}"), vec![fit]),
        Figure::new(format!("target_{f}"), vec![target]),
    ])
}
