//! The report section of `min_ratio`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use super::Settings;
use super::train::ID;
use crate::analysis::Table;
use crate::analysis::{format_float, format_setting};
use crate::report::{Section, input, span};

/// What the critical points say together: how many are trivial, the range of the others' losses,
/// and Spearman's ρ between minimal ratio and loss over them, its sign explained.
fn relation_text(relation: &Table, runs: usize) -> Result<String> {
    let value = |column: &str| relation.last(column);
    let trivial = value("trivial")? as usize;
    let critical = runs - value("not_critical")? as usize;
    let fitted = critical - trivial;
    let mut text = format!(
        "The constant prediction (the mean of y) has loss {} (the variance of y, the dashed line). {trivial} of the \
         {critical} critical points are trivial: they explain less than {} % of that variance (R² < {}), and stay out \
         of what follows.",
        format_float(value("constant_loss")?),
        format_setting(100.0 * value("trivial_below_r2")?),
        format_setting(value("trivial_below_r2")?),
    );
    let (lo, hi) = (value("fitted_loss_min")?, value("fitted_loss_max")?);
    match fitted {
        0 => {}
        1 => text += &format!(" The other one lies at loss {}.", span(&[lo, hi])),
        _ => text += &format!(" The other {fitted} lie at losses {}.", span(&[lo, hi])),
    }
    let (rho, band) = (value("rho")?, value("null_band")?);
    if rho.is_finite() && band.is_finite() {
        let reading = if rho <= -band {
            "negative beyond that band: points with a larger share of positive curvature (nearer a local minimum) \
             have lower loss, and those with more flat or negative directions (saddles, dead units) sit higher, \
             as the assignment expects"
        } else if rho >= band {
            "positive beyond that band: points with a larger share of positive curvature sit at higher loss, \
             against the expectation that minima lie lower than saddles"
        } else {
            "inside that band: over these points the share of positive curvature says nothing reliable about the loss"
        };
        text += &format!(
            " Spearman's ρ between minimal ratio and loss over them is {rho:.2}; with no relation, 95 % of samples of \
             {fitted} points give |ρ| < {band:.2}. It is {reading}."
        );
    } else {
        text += " Too few non-trivial points to relate minimal ratio and loss.";
    }
    Ok(text)
}

/// What the report says of the retraining on L where LM stalls, or that it is off.
fn retraining(steps: usize) -> String {
    match steps {
        0 => "Runs where LM stalls short of it are left there (the retraining on the loss is off: \
              `norm_retrain_steps = 0`)."
            .to_string(),
        n => format!(
            "Where LM stalls short of it, the point is a local minimum of ‖∇L‖² that is not a critical point (the \
             gradients around it agree: no kink holds it), so the run trains on the loss itself for {n} Adam steps \
             (lr 1e-3) and LM tries again, up to three times."
        ),
    }
}

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
         Levenberg–Marquardt steps in f64 (the Hessian by central differences of the f64 gradient), until ‖∇L‖ < {}. \
         {} At the point reached: the exact Hessian of the training loss on \
         the piece the point lies on (every ReLU's sign on every sample held, where the network is a polynomial in its \
         parameters), symmetrised; its eigenvalues from a symmetric solver; minimal ratio = share of eigenvalues above \
         {}.",
        results.height(),
        settings.samples,
        settings.epochs,
        settings.lr,
        settings.norm_adam_steps,
        settings.norm_lr,
        settings.fd_step,
        settings.norm_lm_steps,
        settings.grad_norm_target,
        retraining(settings.norm_retrain_steps),
        settings.eigen_tolerance
    ));
    let missed: Vec<String> = results.filter_eq("reached", "false")?.strings("seed")?;
    let missed_text = match missed.len() {
        0 => "every run reached it".to_string(),
        _ => format!(
            "the other {} (seed{} {}) are not critical points: they are drawn in their own colour and left out of what \
             follows",
            missed.len(),
            if missed.len() == 1 { "" } else { "s" },
            missed.join(", ")
        ),
    };
    s.text(format!(
        "{reached} of {} runs reached the gradient-norm target; {missed_text}. Minimal ratio {}, loss {} (every run).",
        results.height(),
        span(&ratios),
        span(&losses)
    ));
    let relation = Table::read_csv(input(inputs, "relation.csv")?)?;
    s.text(relation_text(&relation, results.height())?);
    s.figure("Minimal ratio vs loss", format!("{ID}/min_ratio.png"), input(inputs, "min_ratio.png")?);
    s.table("Every run", &results)?;
    s.beside(
        "Ours beside the original (read from its figure, 100 points)",
        vec![
            ["runs".into(), "100".into(), results.height().to_string()],
            [
                "training before the critical point is sought".into(),
                "100 epochs, lr 0.001".into(),
                format!("{} epochs, lr {}", settings.epochs, settings.lr),
            ],
            ["minimal ratio".into(), "0.17 to 0.58 (λ > 0, wrong Hessian)".into(), span(&ratios)],
            [
                "0.1 × mean training loss (its y axis; ours over our epochs)".into(),
                "0.046 to 0.116".into(),
                span(&results.floats("original_metric")?),
            ],
            ["loss at the critical point".into(), "not measured".into(), span(&losses)],
            [
                "trivial points (near the constant prediction)".into(),
                "all 100 (its y axis is 0.1 × the constant's loss)".into(),
                format!("{} of {}", relation.last("trivial")?, results.height()),
            ],
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
         counted eigenvalues > 0 with no tolerance, so its ratios are not comparable with ours. Its 100 epochs at lr 0.001 \
         leave every run at the constant prediction's loss (the `original` profile reproduces that: 99 of 100 points \
         trivial), so its figure shows one trivial critical point a hundred times.",
    );
    Ok(s)
}
