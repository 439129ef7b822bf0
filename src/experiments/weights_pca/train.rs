//! The training of `weights_pca` (spec section 3): the 8 runs as one batch, parameters recorded.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::analysis::write_columns;
use crate::data;
use crate::engine::StageContext;
use crate::nn::stacked::{StackedAdam, StackedMlp, member_columns};
use crate::nn::{self, Activation, Compute, mlp::param_count};
use crate::training::sweep::{batch_params, shared_input};

pub const ID: &str = "weights_pca";
pub const WIDTHS: [usize; 4] = [1, 30, 20, 1];

#[derive(Serialize, Deserialize)]
pub struct TrainParams {
    pub seed: u64,
    pub epochs: usize,
    pub lr: f64,
    pub snapshot_every: usize,
}

impl TrainParams {
    /// Everything but the seed: the runs of one batch must agree on it.
    pub fn group(&self) -> String {
        format!("{}:{}:{}", self.epochs, self.lr, self.snapshot_every)
    }
}

/// Trains the runs of `ctxs` (their own seeds, one data set) as one stacked model; writes each
/// run's `path.csv`: epoch, pre-step loss, then every parameter (p0, p1, ...) as they were before
/// that epoch's step, every `snapshot_every` epochs (epochs 3, 6, ... 300).
pub fn train(ctxs: &[StageContext]) -> Result<()> {
    let runs: Vec<TrainParams> = batch_params(ctxs, TrainParams::group)?;
    let p = &runs[0];
    let (xs, ys) = data::read_xy(shared_input(ctxs, "data")?)?;
    let device = Compute::for_stage(&ctxs[0])?.training_device()?;
    let r = runs.len();
    let (x, y) = (member_columns(&vec![xs.as_slice(); r], &device)?, member_columns(&vec![ys.as_slice(); r], &device)?);
    let seeds: Vec<u64> = runs.iter().map(|run| run.seed).collect();
    let mut model = StackedMlp::new(&WIDTHS, Activation::Relu, &seeds, &device);
    let mut optimizer = StackedAdam::new(p.lr, 0.0, model.params_mut());
    let mut columns: Vec<Vec<Vec<f32>>> = vec![vec![Vec::new(); 2 + param_count(&WIDTHS)]; r];
    ctxs[0].progress.set_total(p.epochs as u64);
    for epoch in 1..=p.epochs {
        let snapshot = (epoch % p.snapshot_every == 0).then(|| model.flats());
        let step = model.mse_and_grads(&x, &y);
        optimizer.step(model.params_mut(), step.grads);
        // Losses are read only where they are recorded: a read waits for the device.
        if let Some(flats) = snapshot {
            let losses = nn::values(step.losses);
            for ((run, flat), loss) in columns.iter_mut().zip(flats).zip(losses) {
                run[0].push(epoch as f32);
                run[1].push(loss);
                for (k, v) in flat.into_iter().enumerate() {
                    run[2 + k].push(v);
                }
            }
        }
        ctxs[0].progress.update(epoch as u64, || format!("{r} runs"));
    }
    let names: Vec<String> = ["epoch".to_string(), "loss".to_string()]
        .into_iter()
        .chain((0..param_count(&WIDTHS)).map(|k| format!("p{k}")))
        .collect();
    for (ctx, run) in ctxs.iter().zip(&columns) {
        let named: Vec<(&str, &[f32])> = names.iter().map(String::as_str).zip(run.iter().map(Vec::as_slice)).collect();
        write_columns(&ctx.output("path.csv")?, &named)?;
    }
    Ok(())
}
