//! The training of `sim_functions` (spec section 1): data, and every run of a model as one batch.

use std::collections::BTreeMap;

use anyhow::Result;
use burn::module::Module;
use burn::prelude::Device;
use serde::{Deserialize, Serialize};

use super::model::{Model, RunReport};
use crate::analysis;
use crate::data::{self, synth::Function};
use crate::engine::StageContext;
use crate::nn::backend::Backend;
use crate::nn::full_batch::{AdamSettings, HostStack, MemberStack, Members, Start, TensorStack};
use crate::nn::optim::MomentsOnHost;
use crate::nn::snapshot::Snapshot;
use crate::nn::{Activation, Compute, Mlp};
use crate::training::saved_snapshot;
use crate::training::sweep::{batch_params, save_members};

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
/// a run that meets the stopping rule leaves the stack and writes its outputs then. Each run saves
/// its state at its checkpoint as the stack goes; runs found saved resume from there (runs saved
/// at different epochs, having been in different batches, train as one stack per epoch).
pub fn train(ctxs: &[StageContext]) -> Result<()> {
    let runs: Vec<TrainParams> = batch_params(ctxs, TrainParams::group)?;
    let data: Vec<Xy> = ctxs.iter().map(|ctx| data::read_xy(ctx.input("data")?)).collect::<Result<_>>()?;
    let compute = Compute::for_stage(&ctxs[0])?;
    let device = compute.training_device()?;
    let max_epochs = runs.iter().map(|p| p.max_epochs).max().unwrap_or(0);
    ctxs[0].progress.set_total(max_epochs as u64);
    let mut by_epoch: BTreeMap<usize, Vec<(usize, Option<RunState>)>> = BTreeMap::new();
    for (run, ctx) in ctxs.iter().enumerate() {
        match saved_snapshot(ctx)?.map(RunState::from_snapshot).transpose()? {
            Some(RunState { finished: Some(prediction), losses, params, .. }) => {
                let member = Mlp::from_flat(runs[run].model.widths(), ACTIVATION, &params, &device);
                write_run(ctx, &runs[run], &data[run].0, &losses, &prediction, member)?;
                ctx.checkpoint.resumed(&format!("finished at epoch {} before the stop", losses.len()));
            }
            saved => by_epoch.entry(saved.as_ref().map_or(0, |s| s.losses.len())).or_default().push((run, saved)),
        }
    }
    for (epoch, members) in by_epoch {
        if epoch > 0 {
            let others = members.len() - 1;
            ctxs[members[0].0]
                .checkpoint
                .resumed(&format!("at epoch {} of {max_epochs}, with {others} other runs", epoch + 1));
        }
        train_stack(ctxs, (&runs, &data), members, (compute.backend, &device))?;
    }
    Ok(())
}

const ACTIVATION: Activation = Activation::LeakyRelu;

/// A run's data: inputs and targets.
type Xy = (Vec<f32>, Vec<f32>);

/// Trains `members` (runs of `ctxs`, fresh or saved at one epoch) as one stack to their ends.
fn train_stack(
    ctxs: &[StageContext],
    (runs, data): (&[TrainParams], &[Xy]),
    members: Vec<(usize, Option<RunState>)>,
    (backend, device): (Backend, &Device),
) -> Result<()> {
    let first = &runs[members[0].0];
    let start = members[0].1.as_ref().map_or(0, |s| s.losses.len());
    let max_epochs = members.iter().map(|(run, _)| runs[*run].max_epochs).max().unwrap_or(0);
    // Row i of the stack is run active[i].
    let Stack { mut active, mut losses, networks: mut stack } = begin_stack(runs, data, members, (backend, device))?;
    let widths = first.model.widths();
    // Runs that left the stack since the last save: saved as finished at the next one.
    let mut unsaved: Vec<(usize, RunState)> = Vec::new();
    for epoch in start..max_epochs {
        let epoch_losses = stack.epoch();
        let mut finished = Vec::new();
        for (row, &run) in active.iter().enumerate() {
            losses[run].push(epoch_losses[row]);
            // The original returns the last forward pass, which precedes the last step.
            if should_stop(&losses[run], &runs[run]) || epoch + 1 == runs[run].max_epochs {
                finished.push(row);
            }
        }
        ctxs[0].progress.update(epoch as u64 + 1, || format!("{} runs, loss {:.5}", active.len(), epoch_losses[0]));
        let due = ctxs[active[0]].checkpoint.due();
        let flats = (!finished.is_empty() || due).then(|| stack.flats());
        if !finished.is_empty() {
            let flats = flats.as_ref().expect("read above");
            for (&row, prediction) in finished.iter().zip(stack.last_outputs(&finished)) {
                let run = active[row];
                let member = Mlp::from_flat(widths, ACTIVATION, &flats[row], device);
                write_run(&ctxs[run], &runs[run], &data[run].0, &losses[run], &prediction, member)?;
                let state = RunState {
                    losses: losses[run].clone(),
                    params: flats[row].clone(),
                    adam: None,
                    finished: Some(prediction),
                };
                unsaved.push((run, state));
            }
        }
        let rows: Vec<usize> = (0..active.len()).filter(|r| !finished.contains(r)).collect();
        if rows.is_empty() {
            break;
        }
        if let Some(flats) = flats.filter(|_| due) {
            let moments = stack.moments();
            let training = rows.iter().map(|&row| {
                let state = RunState {
                    losses: losses[active[row]].clone(),
                    params: flats[row].clone(),
                    adam: Some(moments[row].clone()),
                    finished: None,
                };
                (active[row], state)
            });
            let states: Vec<(usize, RunState)> = unsaved.drain(..).chain(training).collect();
            save_members(states.into_iter().map(|(run, state)| (&ctxs[run], state.to_snapshot())))?;
        }
        if finished.is_empty() {
            continue;
        }
        stack.keep(&rows);
        active = rows.iter().map(|&r| active[r]).collect();
    }
    Ok(())
}

/// The stack of `members` (run, state saved at a later epoch if any) as they start: the runs
/// in row order, every run's losses so far, and the networks on `backend`.
fn begin_stack(
    runs: &[TrainParams],
    data: &[Xy],
    members: Vec<(usize, Option<RunState>)>,
    (backend, device): (Backend, &Device),
) -> Result<Stack> {
    let first = &runs[members[0].0];
    let start = members[0].1.as_ref().map_or(0, |s| s.losses.len());
    let active: Vec<usize> = members.iter().map(|(run, _)| *run).collect();
    let mut losses: Vec<Vec<f32>> = vec![Vec::new(); runs.len()];
    let begin = if start == 0 {
        Start::Seeds(active.iter().map(|&run| runs[run].seed).collect())
    } else {
        let mut saved = Vec::new();
        for (run, state) in members {
            let state = state.expect("a run saved at a later epoch");
            losses[run] = state.losses;
            saved.push((state.params, state.adam.expect("a run still training has moments")));
        }
        Start::Saved(saved)
    };
    let stacked = Members {
        widths: first.model.widths(),
        activation: ACTIVATION,
        adam: AdamSettings { lr: first.lr, weight_decay: first.weight_decay },
        data: active.iter().map(|&run| (&data[run].0[..], &data[run].1[..])).collect(),
    };
    // On flex the networks train on the host, one after another (see `nn::full_batch`).
    let stack: Box<dyn MemberStack> = match backend {
        Backend::Flex => Box::new(HostStack::new(&stacked, begin, device)),
        Backend::Tch => Box::new(TensorStack::new(&stacked, begin, device)?),
    };
    Ok(Stack { active, losses, networks: stack })
}

/// A stack as it starts: row i is run `active[i]`; `losses` is indexed by run.
struct Stack {
    active: Vec<usize>,
    losses: Vec<Vec<f32>>,
    networks: Box<dyn MemberStack>,
}

/// A run's state at a checkpoint: its losses so far and parameters, then Adam's moments while it
/// trains, or the prediction it finished with.
struct RunState {
    losses: Vec<f32>,
    params: Vec<f32>,
    adam: Option<MomentsOnHost>,
    finished: Option<Vec<f32>>,
}

impl RunState {
    fn to_snapshot(&self) -> Result<Snapshot> {
        let mut snapshot = Snapshot::new(&())?;
        snapshot.put_f32("losses", &self.losses);
        snapshot.put_f32("params", &self.params);
        if let Some(adam) = &self.adam {
            snapshot.put_adam(adam);
        }
        if let Some(prediction) = &self.finished {
            snapshot.put_f32("prediction", prediction);
        }
        Ok(snapshot)
    }

    fn from_snapshot(snapshot: Snapshot) -> Result<RunState> {
        let adam = snapshot.adam()?;
        let finished = if adam.is_none() { Some(snapshot.f32s("prediction")?) } else { None };
        Ok(RunState { losses: snapshot.f32s("losses")?, params: snapshot.f32s("params")?, adam, finished })
    }
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
