//! The analysis of `weights_pca`: PCA to 2-D fitted jointly over every snapshot of every run.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::train::{ID, WIDTHS};
use crate::analysis::linalg::pca2;
use crate::analysis::{Cell, Table};
use crate::engine::StageContext;
use crate::nn::mlp::param_count;
use crate::nn::shape::layer_ranges;

#[derive(Serialize, Deserialize)]
pub struct AnalyzeParams {
    pub layer: usize,
}

/// Joint PCA over every snapshot of every run, for the whole model and for one layer.
pub fn analyze(ctx: &StageContext) -> Result<()> {
    let AnalyzeParams { layer } = ctx.params()?;
    let mut meta = Vec::new(); // (seed, epoch, loss)
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut finals = Vec::new();
    for (name, path) in &ctx.inputs {
        let seed: u64 = name.trim_end_matches("/path.csv").parse()?;
        let table = Table::read_csv(path)?;
        let (epochs, losses) = (table.floats("epoch")?, table.floats("loss")?);
        let params: Vec<Vec<f64>> =
            (0..param_count(&WIDTHS)).map(|k| table.floats(&format!("p{k}"))).collect::<Result<_>>()?;
        for i in 0..epochs.len() {
            meta.push((seed, epochs[i], losses[i]));
            rows.push(params.iter().map(|col| col[i]).collect());
        }
        finals.push((seed, *epochs.last().unwrap(), *losses.last().unwrap()));
    }
    let range = layer_ranges(&WIDTHS)[layer - 1].clone();
    let layer_rows: Vec<Vec<f64>> = rows.iter().map(|r| r[range.clone()].to_vec()).collect();
    let scopes = [("whole", pca2(&rows)), ("layer", pca2(&layer_rows))];

    let mut projected = Vec::new();
    let mut explained = Vec::new();
    for (scope, pca) in &scopes {
        for ((seed, epoch, loss), [pc1, pc2]) in meta.iter().zip(&pca.projected) {
            projected.push(vec![
                (*scope).into(),
                (*seed).into(),
                Cell::Int(*epoch as i64),
                (*loss).into(),
                (*pc1).into(),
                (*pc2).into(),
            ]);
        }
        let dims = if *scope == "whole" { rows[0].len() } else { range.len() };
        explained.push(vec![(*scope).into(), (dims as u64).into(), pca.explained[0].into(), pca.explained[1].into()]);
    }
    Table::from_rows(&["scope", "seed", "epoch", "loss", "pc1", "pc2"], projected.into_iter())?
        .write_csv(&ctx.output("projected.csv")?)?;
    Table::from_rows(&["scope", "dimensions", "pc1_share", "pc2_share"], explained.into_iter())?
        .write_csv(&ctx.output("explained.csv")?)?;
    let summary = finals.iter().map(|(seed, epoch, loss)| {
        vec![
            ID.into(),
            "1-30-20-1".into(),
            (*seed).into(),
            (param_count(&WIDTHS) as u64).into(),
            Cell::Int(*epoch as i64),
            (*loss).into(),
        ]
    });
    Table::from_rows(&["experiment", "model", "seed", "params", "epochs", "final_loss"], summary)?
        .write_csv(&ctx.output("summary.csv")?)
}
