//! The report section of `grad_norm`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use super::Settings;
use super::train::ID;
use crate::analysis::Table;
use crate::report::{Section, input, span};

pub fn section(inputs: &BTreeMap<String, PathBuf>, settings: &Settings) -> Result<Section> {
    let summary = Table::read_csv(input(inputs, "summary.csv")?)?;
    let mut s = Section::new(ID, "4. Gradient norm during training");
    s.text(format!(
        "The 1-5-10-10-10-10-10-5-1 ReLU network (571 parameters) fitted by full-batch Adam (lr {}) with MSE to \
         sign(sin(5πx)) on 200 points of [-1, 1], {} iterations, seeds {:?}. The gradient norm covers every weight and \
         bias, at the weights the loss was computed with. One figure, two aligned panels, as the assignment asks.",
        settings.lr, settings.epochs, settings.seeds
    ));
    s.figure("Gradient norm and loss per iteration", format!("{ID}/grad_norm.png"), input(inputs, "grad_norm.png")?);
    s.table("Every run (dead: the gradient is exactly zero from `dead_from_epoch` to the end)", &summary)?;
    let curves = Table::read_csv(input(inputs, "curves.csv")?)?;
    let first = curves.filter_in("epoch", &[0.0])?;
    let dead: Vec<String> = summary
        .strings("dead")?
        .iter()
        .zip(summary.strings("seed")?)
        .zip(summary.floats("dead_from_epoch")?)
        .filter(|((d, _), _)| *d == "true")
        .map(|((_, seed), from)| format!("seed {seed} from iteration {from}"))
        .collect();
    let min_at: Vec<f64> = summary.floats("min_grad_norm_epoch")?;
    s.beside(
        "Ours (range over seeds) beside the original (one unseeded run, read from its figures)",
        vec![
            ["loss at iteration 0".into(), "1.12".into(), span(&first.floats("loss")?)],
            ["final loss".into(), "≈ 0.75 (iteration 2000)".into(), span(&summary.floats("final_loss")?)],
            ["smallest gradient norm".into(), "≈ 0.07".into(), span(&summary.floats("min_grad_norm")?)],
            ["... at iteration".into(), "200-250".into(), span(&min_at)],
            [
                "dead runs".into(),
                "none in the original; a PyTorch re-run died at 1877".into(),
                if dead.is_empty() { "none".into() } else { dead.join(", ") },
            ],
        ],
    );
    s.text(
        "Original (read from its figures, one unseeded run): loss 1.12 at the start, a plateau near 1.0, about 0.75 at \
         iteration 2000; gradient norm about 1.0 at first, a minimum near 0.07 around iterations 200-250, then noisy \
         (0-2.2). An independent PyTorch re-run with seed 0 died at iteration 1877 (loss stuck at 1.0, gradient exactly 0).",
    );
    Ok(s)
}
