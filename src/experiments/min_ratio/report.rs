//! The report section of `min_ratio`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use super::Settings;
use super::train::ID;
use crate::analysis::Table;
use crate::report::{Section, input, span};

pub fn section(inputs: &BTreeMap<String, PathBuf>, settings: &Settings) -> Result<Section> {
    let results = Table::read_csv(input(inputs, "results.csv")?)?;
    let mut s = Section::new(ID, "5. When the gradient is almost zero: minimal ratio");
    let reached = results.filter_eq("reached", "true")?.height();
    let ratios = results.floats("ratio")?;
    let losses = results.floats("loss")?;
    s.text(format!(
        "{} runs of a 1-12-6-1 ReLU network (109 parameters) on y = cos(x), x = 20·U[0,1) − 10 ({} points, drawn once). \
         Each: {} epochs of full-batch Adam (lr {}) on the MSE, then the squared gradient norm ‖∇L‖² is minimised: up to {} \
         Adam steps (lr {}) on its gradient 2·H·∇L from a central difference of gradients (step {}), then up to {} \
         Levenberg–Marquardt steps, until ‖∇L‖ < {}. At that \
         point: the Hessian of the training loss by central differences of gradients, symmetrised; its eigenvalues from a \
         symmetric solver; minimal ratio = share of eigenvalues above {}.",
        results.height(),
        settings.samples,
        settings.epochs,
        settings.lr,
        settings.norm_adam_steps,
        settings.norm_lr,
        settings.fd_step,
        settings.norm_lm_steps,
        settings.grad_norm_target,
        settings.eigen_tolerance
    ));
    s.text(format!(
        "{reached} of {} runs reached the gradient-norm target; the others are kept (their best point is used) and drawn \
         in their own colour. Minimal ratio {}, loss {}.",
        results.height(),
        span(&ratios),
        span(&losses)
    ));
    s.figure("Minimal ratio vs loss", format!("{ID}/min_ratio.png"), input(inputs, "min_ratio.png")?);
    s.table("Every run", &results)?;
    s.beside(
        "Ours beside the original (read from its figure, 100 points)",
        vec![
            ["runs".into(), "100".into(), results.height().to_string()],
            ["minimal ratio".into(), "0.17 to 0.58 (λ > 0, wrong Hessian)".into(), span(&ratios)],
            [
                "0.1 × mean training loss (its y axis)".into(),
                "0.046 to 0.116".into(),
                span(&results.floats("original_metric")?),
            ],
            ["loss at the critical point".into(), "not measured".into(), span(&losses)],
            [
                "‖∇L‖ at that point".into(),
                "not measured (no gradient-norm phase)".into(),
                span(&results.floats("grad_norm")?),
            ],
        ],
    );
    s.text(
        "Original (read from its figure, 100 points): ratio 0.17-0.58, mostly 0.3-0.55; its y axis, 0.1 × the mean \
         training loss, 0.046-0.116 (our column original_metric is the same quantity). It did no gradient-norm phase, \
         took the Hessian of mean((f(x) − x)²) instead of the training loss, used a non-symmetric eigen-solver and \
         counted eigenvalues > 0 with no tolerance, so its ratios are not comparable with ours.",
    );
    Ok(s)
}
