//! The report section of `weights_pca`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use super::Settings;
use super::train::ID;
use crate::analysis::Table;
use crate::report::{Section, input, span};

pub fn section(inputs: &BTreeMap<String, PathBuf>, settings: &Settings) -> Result<Section> {
    let summary = Table::read_csv(input(inputs, "summary.csv")?)?;
    let explained = Table::read_csv(input(inputs, "explained.csv")?)?;
    let mut s = Section::new(ID, "3. Visualise the optimisation process (PCA of the weights)");
    s.text(format!(
        "{} runs (seeds {:?}) of a 1-30-20-1 ReLU network (701 parameters) trained with MSE on f1(x) = sin(5πx)/(5πx) \
         (the section-1 grid), full-batch Adam lr {}, {} epochs; all weights and biases recorded every {} epochs. One PCA \
         is fitted jointly over every snapshot of every run, for the whole model and for layer {} alone; each run has its \
         own colour, and points carry their loss wherever the label does not cover another (projected.csv has them all).",
        settings.seeds.len(),
        settings.seeds,
        settings.lr,
        settings.epochs,
        settings.snapshot_every,
        settings.layer
    ));
    s.figure("Whole model", format!("{ID}/whole.png"), input(inputs, "whole.png")?);
    s.figure(format!("Layer {}", settings.layer), format!("{ID}/layer.png"), input(inputs, "layer.png")?);
    s.table("Variance explained by the first two components", &explained)?;
    s.table("Every run: loss at the last snapshot", &summary)?;
    let (pc1, pc2) = (explained.floats("pc1_share")?, explained.floats("pc2_share")?);
    let shares: Vec<f64> = pc1.iter().zip(pc2).map(|(a, b)| 100.0 * (a + b)).collect();
    s.beside(
        "Ours beside the original (read from its figures)",
        vec![
            ["runs".into(), "8".into(), summary.height().to_string()],
            ["parameters recorded".into(), "650 weights, no biases".into(), "701 weights and biases".into()],
            [
                "final loss".into(),
                "0.0 (a one-output cross-entropy: nothing trains)".into(),
                span(&summary.floats("final_loss")?),
            ],
            ["distinct points per run".into(), "1 (the weights never move)".into(), "one per snapshot".into()],
            ["variance in PC1 + PC2, %".into(), "not reported".into(), span(&shares)],
        ],
    );
    s.text(
        "The original trained with a one-output cross-entropy, which is identically zero: no weight ever moved, and its \
         plots show 8 static points labelled 0.0 (and it left the biases out, and coloured points by position, not by \
         run). It named this target in its report but used an aliased sign target in the notebook; we use the target \
         its report names.",
    );
    Ok(s)
}
