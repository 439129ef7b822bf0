//! Spec section 1, "Simulate a function": three networks of (almost) equal size fitted to
//! f1(x) = sin(5πx)/(5πx) and f2(x) = sign(sin(5πx)) on 300 points of [-1.5, 1.5).
//!
//! Stages: `data[function]` -> `train[function, model, seed]` -> `analyze` -> `plot[function]`.
//! Training is full batch, Adam (lr 1e-3, coupled L2 1e-4), MSE, up to 20000 epochs, with the
//! original's stopping rule: stop after epoch t > 5 when L_t < 1e-3 and the last two loss changes
//! are both below 1e-5.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use burn::module::Module;
use serde::{Deserialize, Serialize};

use crate::analysis::{self, Table};
use crate::data::{self, synth::Function};
use crate::engine::{Stage, StageContext, StageKind};
use crate::experiments::{Built, batch_params, report_input};
use crate::nn::stacked::{StackedAdam, StackedMlp, member_columns, select_rows};
use crate::nn::{self, Activation, Compute, mlp::param_count};

pub const ID: &str = "sim_functions";

/// `[experiments.sim_functions]` in pipeline.toml. Defaults are the original's.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    #[serde(default = "default_functions")]
    pub functions: Vec<Function>,
    #[serde(default = "default_models")]
    pub models: Vec<Model>,
    #[serde(default = "default_lr")]
    pub lr: f64,
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f32,
    #[serde(default = "default_max_epochs")]
    pub max_epochs: usize,
    /// The stopping rule: loss below `stop_loss` and the last two changes below `stop_delta`,
    /// checked only after epoch `stop_after_epoch`.
    #[serde(default = "default_stop_loss")]
    pub stop_loss: f32,
    #[serde(default = "default_stop_delta")]
    pub stop_delta: f32,
    #[serde(default = "default_stop_after_epoch")]
    pub stop_after_epoch: usize,
    /// Experiments whose stages must finish before this one's start (ordering only).
    #[serde(default)]
    pub after: Vec<String>,
}

fn default_seeds() -> Vec<u64> {
    vec![0, 1, 2]
}
fn default_functions() -> Vec<Function> {
    vec![Function::F1, Function::F2]
}
fn default_models() -> Vec<Model> {
    vec![Model::M1, Model::M2, Model::M3]
}
fn default_lr() -> f64 {
    1e-3
}
fn default_weight_decay() -> f32 {
    1e-4
}
fn default_max_epochs() -> usize {
    20000
}
fn default_stop_loss() -> f32 {
    1e-3
}
fn default_stop_delta() -> f32 {
    1e-5
}
fn default_stop_after_epoch() -> usize {
    5
}

impl Settings {
    pub fn validate(&self) -> Result<()> {
        if self.seeds.is_empty() || self.functions.is_empty() || self.models.is_empty() {
            bail!("seeds, functions and models must each name at least one");
        }
        if self.max_epochs == 0 {
            bail!("max_epochs must be at least 1");
        }
        if self.lr.is_nan() || self.lr <= 0.0 {
            bail!("lr must be positive");
        }
        Ok(())
    }
}

/// The three networks of the spec, leaky ReLU after every hidden layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// "deep": 1-5-10-10-10-10-10-5-1, 571 parameters.
    M1,
    /// 1-10-18-15-4-1, 572 parameters.
    M2,
    /// "shallow": 1-190-1, 571 parameters.
    M3,
}

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Model::M1 => "m1",
            Model::M2 => "m2",
            Model::M3 => "m3",
        }
    }

    pub fn widths(self) -> &'static [usize] {
        match self {
            Model::M1 => &[1, 5, 10, 10, 10, 10, 10, 5, 1],
            Model::M2 => &[1, 10, 18, 15, 4, 1],
            Model::M3 => &[1, 190, 1],
        }
    }

    pub fn label(self) -> String {
        format!(
            "{} ({} layers, {} params)",
            self.name().to_uppercase(),
            self.widths().len() - 1,
            param_count(self.widths())
        )
    }
}

const CODE_TRAIN: &[&str] = &["data", "nn", "experiments/sim_functions"];

static DATA: StageKind = StageKind::plain("sim_functions.data", &["data", "experiments/sim_functions"], generate);
// Seeds and functions of one model train as one stacked model (a batched sweep).
static TRAIN: StageKind = StageKind::numeric_batched("sim_functions.train", CODE_TRAIN, train);
static ANALYZE: StageKind =
    StageKind::plain("sim_functions.analyze", &["analysis", "experiments/sim_functions"], analyze);
// The figures also use the model labels defined here.
static PLOT: StageKind = StageKind::plain(
    "sim_functions.plot",
    &["plot", "analysis", "experiments/sim_functions"],
    crate::plot::sim_functions::figures,
);

#[derive(Serialize, Deserialize)]
pub struct DataParams {
    pub function: Function,
}

#[derive(Serialize, Deserialize)]
struct TrainParams {
    function: Function,
    model: Model,
    seed: u64,
    lr: f64,
    weight_decay: f32,
    max_epochs: usize,
    stop_loss: f32,
    stop_delta: f32,
    stop_after_epoch: usize,
}

impl TrainParams {
    /// What the runs of one batch must agree on: the model and the optimiser (each run has its
    /// own function, seed and stopping rule).
    fn group(&self) -> String {
        format!("{}:{}", self.model.name(), serde_json::json!([self.lr, self.weight_decay]))
    }
}

/// What one training run reports (written as `run.json`).
#[derive(Serialize, Deserialize)]
struct RunReport {
    function: Function,
    model: Model,
    seed: u64,
    params: usize,
    epochs: usize,
    stopped_early: bool,
    final_loss: f32,
    min_loss: f32,
}

/// The stage instances for `settings`, and what the report reads from them.
pub fn stages(settings: &Settings) -> Built {
    let mut out = Vec::new();
    let mut analyze = Stage::new(&ANALYZE, &[], &()).publish(ID);
    for &function in &settings.functions {
        let data = Stage::new(&DATA, &[("function", function.name().into())], &DataParams { function });
        for &model in &settings.models {
            for &seed in &settings.seeds {
                let params = TrainParams {
                    function,
                    model,
                    seed,
                    lr: settings.lr,
                    weight_decay: settings.weight_decay,
                    max_epochs: settings.max_epochs,
                    stop_loss: settings.stop_loss,
                    stop_delta: settings.stop_delta,
                    stop_after_epoch: settings.stop_after_epoch,
                };
                let labels =
                    [("function", function.name().into()), ("model", model.name().into()), ("seed", seed.to_string())];
                let work = (crate::nn::mlp::param_count(model.widths()) * crate::data::synth::grid().len()) as u64;
                let group = params.group();
                let run = Stage::new(&TRAIN, &labels, &params)
                    .input("data", &data, "data.csv")
                    .with_work(work)
                    .with_steps(settings.max_epochs as u64)
                    .batch_group(group);
                let tag = format!("{}.{}.{seed}", function.name(), model.name());
                analyze = analyze
                    .input(format!("{tag}/run.json"), &run, "run.json")
                    .input(format!("{tag}/loss.csv"), &run, "loss.csv")
                    .input(format!("{tag}/prediction.csv"), &run, "prediction.csv");
                out.push(run);
            }
        }
        analyze = analyze.input(format!("{}/data.csv", function.name()), &data, "data.csv");
        out.push(data);
    }
    // The loss curves and predictions feed the claims table too.
    let mut report = ["summary.csv", "loss_checkpoints.csv", "loss_curves.csv", "predictions.csv"]
        .iter()
        .map(|name| report_input(&analyze, name))
        .collect::<Vec<_>>();
    for &function in &settings.functions {
        let plot = Stage::new(&PLOT, &[("function", function.name().into())], &DataParams { function })
            .input("loss_curves.csv", &analyze, "loss_curves.csv")
            .input("predictions.csv", &analyze, "predictions.csv")
            .publish(ID);
        for figure in ["target", "loss", "predictions"] {
            report.push(report_input(&plot, &format!("{figure}_{}.png", function.name())));
        }
        out.push(plot);
    }
    out.push(analyze);
    Built { stages: out, report }
}

fn generate(ctx: &StageContext) -> Result<()> {
    let DataParams { function } = ctx.params()?;
    let (xs, ys) = data::synth::sample(function);
    data::write_xy(&ctx.output("data.csv")?, &xs, &ys)
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
fn train(ctxs: &[StageContext]) -> Result<()> {
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

/// Epochs at which the spec prints the original's losses.
pub const CHECKPOINTS: [usize; 8] = [500, 1000, 2000, 3000, 5000, 10000, 15000, 20000];

fn analyze(ctx: &StageContext) -> Result<()> {
    let mut runs: BTreeMap<(Function, Model, u64), RunReport> = BTreeMap::new();
    let mut curves = Vec::new();
    let mut predictions = Vec::new();
    for (name, path) in &ctx.inputs {
        let Some(tag) = name.strip_suffix("/run.json") else {
            continue;
        };
        let run: RunReport = serde_json::from_slice(&std::fs::read(path)?)?;
        let labels = [("function", run.function.name()), ("model", run.model.name())];
        curves
            .push(Table::read_csv(ctx.input(&format!("{tag}/loss.csv"))?)?.with_labels(&labels)?.with_seed(run.seed)?);
        let (xs, target) = data::read_xy(ctx.input(&format!("{}/data.csv", run.function.name()))?)?;
        let pred = Table::read_csv(ctx.input(&format!("{tag}/prediction.csv"))?)?;
        predictions.push(
            pred.with_column("target", &target)?.with_column("x", &xs)?.with_labels(&labels)?.with_seed(run.seed)?,
        );
        runs.insert((run.function, run.model, run.seed), run);
    }

    let mut summary = Table::from_rows(
        &["experiment", "function", "model", "seed", "params", "epochs", "stopped_early", "final_loss", "min_loss"],
        runs.values().map(|r| {
            vec![
                ID.into(),
                r.function.name().into(),
                r.model.name().into(),
                r.seed.into(),
                (r.params as u64).into(),
                (r.epochs as u64).into(),
                r.stopped_early.into(),
                r.final_loss.into(),
                r.min_loss.into(),
            ]
        }),
    )?;
    summary.write_csv(&ctx.output("summary.csv")?)?;

    let curves = Table::concat(curves)?;
    curves.band(&["function", "model", "epoch"], "loss")?.write_csv(&ctx.output("loss_curves.csv")?)?;
    let checkpoints: Vec<f64> = CHECKPOINTS.iter().map(|&e| (e - 1) as f64).collect();
    curves
        .filter_in("epoch", &checkpoints)?
        .band(&["function", "model", "epoch"], "loss")?
        .write_csv(&ctx.output("loss_checkpoints.csv")?)?;
    Table::concat(predictions)?
        .band(&["function", "model", "x", "target"], "prediction")?
        .write_csv(&ctx.output("predictions.csv")?)?;
    Ok(())
}

/// The original's printed losses (spec section 1), at the epochs of [`CHECKPOINTS`].
pub const REFERENCE: [(&str, &str, [f32; 8]); 6] = [
    ("f1", "m1", [0.0519, 0.0037, 0.0024, 0.0023, 0.0013, 0.0013, 0.0012, 0.0010]),
    ("f1", "m2", [0.0036, 0.0018, 0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.0012]),
    ("f1", "m3", [0.0118, 0.0046, 0.0034, 0.0031, 0.0029, 0.0014, 0.0012, 0.0011]),
    ("f2", "m1", [0.9994, 0.6841, 0.1078, 0.0695, 0.0426, 0.0324, 0.0707, 0.0460]),
    ("f2", "m2", [0.9944, 0.6959, 0.3366, 0.2709, 0.1934, 0.1399, 0.1324, 0.1154]),
    ("f2", "m3", [0.9100, 0.6979, 0.4003, 0.2888, 0.2318, 0.2021, 0.1924, 0.1856]),
];

#[cfg(test)]
mod tests {
    use super::*;

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
