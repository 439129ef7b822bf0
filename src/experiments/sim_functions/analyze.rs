//! The analysis of `sim_functions`: every run's losses and predictions gathered into the summary,
//! the loss curves over seeds and the prediction bands.

use std::collections::BTreeMap;

use anyhow::Result;

use super::model::{Model, RunReport};
use super::train::ID;
use crate::analysis::Table;
use crate::data::{self, synth::Function};
use crate::engine::StageContext;

/// Epochs at which the spec prints the original's losses.
pub const CHECKPOINTS: [usize; 8] = [500, 1000, 2000, 3000, 5000, 10000, 15000, 20000];

/// C2 reads which model is highest from this epoch on (0-based, as the curves count).
pub const LATE_FROM_EPOCH: f32 = 1000.0;

/// One run's training curve: one loss per epoch, from epoch 0.
#[derive(Clone, Debug)]
pub struct Curve {
    pub function: Function,
    pub model: Model,
    pub seed: u64,
    pub epochs: Vec<f32>,
    pub losses: Vec<f32>,
}

impl Curve {
    /// Extends a run that stopped (its stopping rule met) to `last_epoch`, holding its final loss:
    /// a run that converged counts with the loss it converged to for the rest of the axis, so the
    /// mean over seeds does not jump up where one stops (survivor bias).
    pub fn hold_final(&mut self, last_epoch: f32) {
        let (Some(&end), Some(&loss)) = (self.epochs.last(), self.losses.last()) else { return };
        let mut epoch = end + 1.0;
        while epoch <= last_epoch {
            self.epochs.push(epoch);
            self.losses.push(loss);
            epoch += 1.0;
        }
    }

    fn table(&self) -> Result<Table> {
        let labels = [("function", self.function.name()), ("model", self.model.name())];
        Table::from_columns(&[("epoch", &self.epochs), ("loss", &self.losses)])?
            .with_labels(&labels)?
            .with_seed(self.seed)
    }
}

/// Per run, what the curve claims (C1, C2) read, computed among the runs of its function and seed
/// (curves held to one axis): θ, the lowest loss every model of that seed reaches; the epochs until
/// the run first reaches it; and the share of epochs from [`LATE_FROM_EPOCH`] on at which its loss is
/// above every other model's (NaN where the axis ends before).
#[derive(Clone, Debug, PartialEq)]
pub struct Convergence {
    pub function: Function,
    pub model: Model,
    pub seed: u64,
    pub theta: f64,
    pub epochs_to_theta: f64,
    pub highest_share_late: f64,
}

/// [`Convergence`] of each of `runs`, which share a function and a seed and are held to one axis.
pub fn convergence(runs: &[&Curve]) -> Vec<Convergence> {
    let lowest = |c: &Curve| c.losses.iter().copied().fold(f32::INFINITY, f32::min);
    let theta = runs.iter().map(|c| lowest(c)).fold(f32::NEG_INFINITY, f32::max);
    let late: Vec<usize> =
        runs.first().map_or(Vec::new(), |c| (0..c.epochs.len()).filter(|&k| c.epochs[k] >= LATE_FROM_EPOCH).collect());
    runs.iter()
        .enumerate()
        .map(|(i, run)| {
            let reach = run.losses.iter().position(|&l| l <= theta).map_or(f64::NAN, |k| run.epochs[k] as f64 + 1.0);
            let highest = late
                .iter()
                .filter(|&&k| runs.iter().enumerate().all(|(j, other)| j == i || run.losses[k] > other.losses[k]))
                .count();
            let share = if late.is_empty() || runs.len() < 2 { f64::NAN } else { highest as f64 / late.len() as f64 };
            Convergence {
                function: run.function,
                model: run.model,
                seed: run.seed,
                theta: theta as f64,
                epochs_to_theta: reach,
                highest_share_late: share,
            }
        })
        .collect()
}

pub fn analyze(ctx: &StageContext) -> Result<()> {
    let Runs { runs, mut curves, predictions, mut edges } = read_runs(ctx)?;
    let runs: Vec<&RunReport> = runs.values().collect();
    let mut summary = Table::from_records(
        &runs,
        &[
            ("experiment", &|_| ID.into()),
            ("function", &|r| r.function.name().into()),
            ("model", &|r| r.model.name().into()),
            ("seed", &|r| r.seed.into()),
            ("params", &|r| (r.params as u64).into()),
            ("epochs", &|r| (r.epochs as u64).into()),
            ("stopped_early", &|r| r.stopped_early.into()),
            ("final_loss", &|r| r.final_loss.into()),
            ("min_loss", &|r| r.min_loss.into()),
        ],
    )?;
    summary.write_csv(&ctx.output("summary.csv")?)?;

    write_convergence(ctx, &mut curves)?;

    let curves = Table::concat(curves.iter().map(Curve::table).collect::<Result<_>>()?)?;
    curves.band(&["function", "model", "epoch"], "loss")?.write_csv(&ctx.output("loss_curves.csv")?)?;
    let checkpoints: Vec<f64> = CHECKPOINTS.iter().map(|&e| (e - 1) as f64).collect();
    curves
        .filter_in("epoch", &checkpoints)?
        .band(&["function", "model", "epoch"], "loss")?
        .write_csv(&ctx.output("loss_checkpoints.csv")?)?;
    Table::concat(predictions)?
        .band(&["function", "model", "x", "target"], "prediction")?
        .write_csv(&ctx.output("predictions.csv")?)?;
    edges.sort_by_key(|&(function, model, seed, _)| (function, model, seed));
    Table::from_records(
        &edges,
        &[
            ("function", &|r| r.0.name().into()),
            ("model", &|r| r.1.name().into()),
            ("seed", &|r| r.2.into()),
            ("edge_mse", &|r| r.3.into()),
        ],
    )?
    .write_csv(&ctx.output("edge_error.csv")?)?;
    Ok(())
}

/// What every run left: its report, loss curve, prediction (with the target) and edge error.
struct Runs {
    runs: BTreeMap<(Function, Model, u64), RunReport>,
    curves: Vec<Curve>,
    predictions: Vec<Table>,
    edges: Vec<(Function, Model, u64, f64)>,
}

fn read_runs(ctx: &StageContext) -> Result<Runs> {
    let mut runs: BTreeMap<(Function, Model, u64), RunReport> = BTreeMap::new();
    let mut curves = Vec::new();
    let mut predictions = Vec::new();
    let mut edges = Vec::new();
    for (name, path) in &ctx.inputs {
        let Some(tag) = name.strip_suffix("/run.json") else {
            continue;
        };
        let run: RunReport = serde_json::from_slice(&std::fs::read(path)?)?;
        let labels = [("function", run.function.name()), ("model", run.model.name())];
        let loss = Table::read_csv(ctx.input(&format!("{tag}/loss.csv"))?)?;
        let as_f32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
        curves.push(Curve {
            function: run.function,
            model: run.model,
            seed: run.seed,
            epochs: as_f32(loss.floats("epoch")?),
            losses: as_f32(loss.floats("loss")?),
        });
        let (xs, target) = data::read_xy(ctx.input(&format!("{}/data.csv", run.function.name()))?)?;
        let pred = Table::read_csv(ctx.input(&format!("{tag}/prediction.csv"))?)?;
        let error = edge_mse(&xs, &target, &pred.floats("prediction")?);
        edges.push((run.function, run.model, run.seed, error));
        predictions.push(
            pred.with_column("target", &target)?.with_column("x", &xs)?.with_labels(&labels)?.with_seed(run.seed)?,
        );
        runs.insert((run.function, run.model, run.seed), run);
    }
    Ok(Runs { runs, curves, predictions, edges })
}

/// Holds every curve's final loss to the end of its function's axis (a run that stopped counts
/// with its final loss), then writes `convergence.csv` ([`Convergence`] per function, seed and
/// model) from them.
fn write_convergence(ctx: &StageContext, curves: &mut [Curve]) -> Result<()> {
    // Every run of a function on one axis: to the last epoch any of them trained.
    let mut ends: BTreeMap<Function, f32> = BTreeMap::new();
    for c in curves.iter() {
        let end = ends.entry(c.function).or_insert(f32::NEG_INFINITY);
        *end = end.max(c.epochs.last().copied().unwrap_or(0.0));
    }
    for c in curves.iter_mut() {
        c.hold_final(ends[&c.function]);
    }
    let mut groups: BTreeMap<(Function, u64), Vec<&Curve>> = BTreeMap::new();
    for c in curves.iter() {
        groups.entry((c.function, c.seed)).or_default().push(c);
    }
    let rows: Vec<Convergence> = groups.values().flat_map(|runs| convergence(runs)).collect();
    Table::from_records(
        &rows,
        &[
            ("function", &|r| r.function.name().into()),
            ("model", &|r| r.model.name().into()),
            ("seed", &|r| r.seed.into()),
            ("theta", &|r| r.theta.into()),
            ("epochs_to_theta", &|r| r.epochs_to_theta.into()),
            ("highest_share_late", &|r| r.highest_share_late.into()),
        ],
    )?
    .write_csv(&ctx.output("convergence.csv")?)?;
    Ok(())
}

/// The MSE of a prediction on the outer tenth of the x range at each end, where deep and shallow
/// fits of f2 differ most (claim C4).
pub fn edge_mse(xs: &[f32], target: &[f32], prediction: &[f64]) -> f64 {
    let (lo, hi) = xs.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let edge = 0.1 * (hi - lo);
    let squares: Vec<f64> = (0..xs.len())
        .filter(|&k| xs[k] <= lo + edge || xs[k] >= hi - edge)
        .map(|k| (prediction[k] - target[k] as f64).powi(2))
        .collect();
    squares.iter().sum::<f64>() / squares.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(model: Model, seed: u64, losses: &[f32]) -> Curve {
        let epochs = (0..losses.len()).map(|e| e as f32).collect();
        Curve { function: Function::F1, model, seed, epochs, losses: losses.to_vec() }
    }

    #[test]
    fn a_run_that_stops_early_holds_its_final_loss_and_the_mean_does_not_jump() {
        // Seed 0 converges at epoch 2; seed 1 trains on at a higher loss.
        let mut stopped = curve(Model::M1, 0, &[0.9, 0.5, 0.1]);
        let running = curve(Model::M1, 1, &[0.9, 0.6, 0.5, 0.45, 0.4]);
        stopped.hold_final(4.0);
        assert_eq!(stopped.epochs, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(stopped.losses, vec![0.9, 0.5, 0.1, 0.1, 0.1]);
        let both = Table::concat(vec![stopped.table().unwrap(), running.table().unwrap()]).unwrap();
        let band = both.band(&["function", "model", "epoch"], "loss").unwrap();
        let mean = band.floats("mean").unwrap();
        // Averaging only the runs still training, the mean would jump from 0.30 at epoch 2 to 0.45 at 3.
        let expected = [0.9, 0.55, 0.3, 0.275, 0.25];
        for (got, want) in mean.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{mean:?}");
        }
        assert!(mean.windows(2).all(|w| w[1] <= w[0]), "never up: {mean:?}");
        assert!(band.floats("n").unwrap().iter().all(|&n| n == 2.0));
    }

    #[test]
    fn edge_error_is_the_mse_on_the_outer_tenth_at_each_end() {
        // x = -1.25, -1.125, ..., 1.25 (exact in f32): the outer tenth of the span 2.5 is |x| ≥ 1,
        // three points at each end, where the prediction errs by 0.2; inside it errs by 5.
        let xs: Vec<f32> = (0..=20).map(|k| -1.25 + 0.125 * k as f32).collect();
        let target = vec![0.5f32; xs.len()];
        let prediction: Vec<f64> = xs.iter().map(|x| if x.abs() >= 1.0 { 0.7 } else { 5.5 }).collect();
        assert!((edge_mse(&xs, &target, &prediction) - 0.04).abs() < 1e-12);
    }

    #[test]
    fn convergence_is_read_per_seed_among_its_models() {
        let late = LATE_FROM_EPOCH as usize;
        // M1 reaches 0.2 at epoch 10 and stays; M3 never goes below 0.2 and is above M1 late on.
        let m1: Vec<f32> = (0..late + 10).map(|e| if e < 10 { 1.0 } else { 0.1 }).collect();
        let m3: Vec<f32> = (0..late + 10).map(|e| if e < 500 { 1.0 } else { 0.2 }).collect();
        let (m1, m3) = (curve(Model::M1, 7, &m1), curve(Model::M3, 7, &m3));
        let rows = convergence(&[&m1, &m3]);
        assert_eq!(rows[0].theta, 0.2f32 as f64, "the lowest loss both reach");
        assert_eq!((rows[0].epochs_to_theta, rows[1].epochs_to_theta), (11.0, 501.0));
        assert_eq!((rows[0].highest_share_late, rows[1].highest_share_late), (0.0, 1.0));
        // Alone, or on an axis that ends before the late epochs, there is no late share to read.
        assert!(convergence(&[&m1])[0].highest_share_late.is_nan());
        let short = curve(Model::M3, 7, &[1.0, 0.5]);
        assert!(convergence(&[&curve(Model::M1, 7, &[1.0, 0.2]), &short])[1].highest_share_late.is_nan());
    }
}
