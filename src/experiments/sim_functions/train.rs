//! The training of `sim_functions` (spec section 1): data, and every run of a model as one batch.

use anyhow::Result;
use burn::module::Module;
use serde::{Deserialize, Serialize};

use super::model::{Model, RunReport};
use crate::analysis;
use crate::data::{self, synth::Function};
use crate::engine::StageContext;
use crate::nn::stacked::{StackedAdam, StackedMlp, member_columns, select_rows};
use crate::nn::{self, Activation, Compute};
use crate::training::sweep::batch_params;

pub const ID: &str = "sim_functions";

#[derive(Serialize, Deserialize)]
pub struct TrainParams {
    pub function: Function,
    pub model: Model,
    pub seed: u64,
    pub lr: f64,
    pub weight_decay: f32,
    pub max_epochs: usize,
    pub stop_loss: f32,
    pub stop_delta: f32,
    pub stop_after_epoch: usize,
}

impl TrainParams {
    /// What the runs of one batch must agree on: the model and the optimiser (each run has its
    /// own function, seed and stopping rule).
    pub fn group(&self) -> String {
        format!("{}:{}", self.model.name(), serde_json::json!([self.lr, self.weight_decay]))
    }
}

/// The original's stopping rule on the losses recorded so far (`losses[t]` is epoch t's).
fn should_stop(losses: &[f32], p: &TrainParams) -> bool {
    let t = losses.len() - 1;
    t > p.stop_after_epoch
        && losses[t] < p.stop_loss
        && (losses[t - 2] - losses[t - 1]).abs() < p.stop_delta
        && (losses[t - 1] - losses[t]).abs() < p.stop_delta
}

/// Trains every run of `ctxs` (one model, their own functions and seeds) as one stacked model;
/// a run that meets the stopping rule leaves the stack and writes its outputs then.
pub fn train(ctxs: &[StageContext]) -> Result<()> {
    let runs: Vec<TrainParams> = batch_params(ctxs, TrainParams::group)?;
    let first = &runs[0];
    let data: Vec<(Vec<f32>, Vec<f32>)> =
        ctxs.iter().map(|ctx| data::read_xy(ctx.input("data")?)).collect::<Result<_>>()?;
    let device = Compute::for_stage(&ctxs[0])?.training_device()?;
    let mut x = member_columns(&data.iter().map(|(xs, _)| xs.as_slice()).collect::<Vec<_>>(), &device)?;
    let mut y = member_columns(&data.iter().map(|(_, ys)| ys.as_slice()).collect::<Vec<_>>(), &device)?;
    let n = data[0].0.len();
    let seeds: Vec<u64> = runs.iter().map(|p| p.seed).collect();
    let mut model = StackedMlp::new(first.model.widths(), Activation::LeakyRelu, &seeds, &device);
    let mut optimizer = StackedAdam::new(first.lr, first.weight_decay, model.params_mut());
    let max_epochs = runs.iter().map(|p| p.max_epochs).max().unwrap_or(0);
    ctxs[0].progress.set_total(max_epochs as u64);

    // Row i of the stack is run active[i].
    let mut active: Vec<usize> = (0..runs.len()).collect();
    let mut losses: Vec<Vec<f32>> = vec![Vec::with_capacity(max_epochs); runs.len()];
    for epoch in 0..max_epochs {
        let step = model.mse_and_grads(&x, &y);
        optimizer.step(model.params_mut(), step.grads);
        let epoch_losses = nn::values(step.losses);
        let mut finished = Vec::new();
        for (row, &run) in active.iter().enumerate() {
            losses[run].push(epoch_losses[row]);
            // The original returns the last forward pass, which precedes the last step.
            if should_stop(&losses[run], &runs[run]) || epoch + 1 == runs[run].max_epochs {
                finished.push(row);
            }
        }
        ctxs[0].progress.update(epoch as u64 + 1, || format!("{} runs, loss {:.5}", active.len(), epoch_losses[0]));
        if finished.is_empty() {
            continue;
        }
        let outputs = nn::values(step.output);
        let flats = model.flats();
        for &row in &finished {
            let run = active[row];
            let prediction = outputs[row * n..(row + 1) * n].to_vec();
            let member = model.member(&flats[row], &device);
            write_run(&ctxs[run], &runs[run], &data[run].0, &losses[run], &prediction, member)?;
        }
        let rows: Vec<usize> = (0..active.len()).filter(|r| !finished.contains(r)).collect();
        if rows.is_empty() {
            break;
        }
        model.keep(&rows);
        optimizer.keep(&rows);
        x = select_rows(x, &rows);
        y = select_rows(y, &rows);
        active = rows.iter().map(|&r| active[r]).collect();
    }
    Ok(())
}

/// One run's outputs: `run.json`, `loss.csv`, `prediction.csv`, `weights.bpk`.
fn write_run(
    ctx: &StageContext,
    p: &TrainParams,
    xs: &[f32],
    losses: &[f32],
    prediction: &[f32],
    model: crate::nn::Mlp,
) -> Result<()> {
    let report = RunReport {
        function: p.function,
        model: p.model,
        seed: p.seed,
        params: model.num_params(),
        epochs: losses.len(),
        stopped_early: losses.len() < p.max_epochs,
        final_loss: *losses.last().unwrap(),
        min_loss: losses.iter().cloned().fold(f32::INFINITY, f32::min),
    };
    std::fs::write(ctx.output("run.json")?, serde_json::to_vec_pretty(&report)?)?;
    let epochs: Vec<f32> = (0..losses.len()).map(|e| e as f32).collect();
    analysis::write_columns(&ctx.output("loss.csv")?, &[("epoch", &epochs), ("loss", losses)])?;
    analysis::write_columns(&ctx.output("prediction.csv")?, &[("x", xs), ("prediction", prediction)])?;
    let weights = model.into_record().into_bytes().map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::write(ctx.output("weights.bpk")?, &*weights)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::mlp::param_count;

    fn params() -> TrainParams {
        TrainParams {
            function: Function::F1,
            model: Model::M1,
            seed: 0,
            lr: 1e-3,
            weight_decay: 0.0,
            max_epochs: 100,
            stop_loss: 1e-3,
            stop_delta: 1e-5,
            stop_after_epoch: 5,
        }
    }

    #[test]
    fn stopping_rule_is_the_originals() {
        let p = params();
        let flat = [5e-4f32; 7];
        assert!(should_stop(&flat, &p), "t = 6 > 5, small and flat");
        assert!(!should_stop(&flat[..6], &p), "t = 5 is not > 5");
        let mut moving = flat;
        moving[5] = 5.2e-4; // |L4 - L5| = 2e-5 > 1e-5
        assert!(!should_stop(&moving, &p));
        let high = [2e-3f32; 8];
        assert!(!should_stop(&high, &p), "loss above 1e-3");
    }

    #[test]
    fn models_have_the_specs_parameter_counts() {
        let counts: Vec<usize> = [Model::M1, Model::M2, Model::M3].iter().map(|m| param_count(m.widths())).collect();
        assert_eq!(counts, [571, 572, 571]);
    }
}
