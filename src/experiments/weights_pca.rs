//! Spec section 3, "Visualise the optimisation process", as the assignment intends: 8 training
//! runs of a 1-30-20-1 ReLU network (701 parameters) with MSE on f1(x) = sin(5πx)/(5πx) (the
//! section-1 grid), full-batch Adam lr 1e-3, 300 epochs, every parameter (weights and biases)
//! recorded every 3 epochs; PCA to 2-D fitted jointly over all runs, for the whole model and for
//! the second layer.
//!
//! The original trained with a one-output cross-entropy, which is identically zero: its weights
//! never moved and its plots show 8 static points labelled 0.0.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::analysis::linalg::pca2;
use crate::analysis::{Cell, Table, write_columns};
use crate::data::{self, synth};
use crate::engine::{Stage, StageContext, StageKind};
use crate::experiments::{Built, batch_params, report_input, shared_input};
use crate::nn::flat::layer_ranges;
use crate::nn::stacked::{StackedAdam, StackedMlp, member_columns};
use crate::nn::{self, Activation, Compute, mlp::param_count};

pub const ID: &str = "weights_pca";
pub const WIDTHS: [usize; 4] = [1, 30, 20, 1];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Record the parameters every this many epochs.
    #[serde(default = "default_every")]
    pub snapshot_every: usize,
    /// The layer shown on its own (1-based; 2 = the 30x20 hidden layer).
    #[serde(default = "default_layer")]
    pub layer: usize,
    #[serde(default)]
    pub after: Vec<String>,
}

fn default_seeds() -> Vec<u64> {
    (0..8).collect()
}
fn default_epochs() -> usize {
    300
}
fn default_lr() -> f64 {
    1e-3
}
fn default_every() -> usize {
    3
}
fn default_layer() -> usize {
    2
}

impl Settings {
    pub fn validate(&self) -> Result<()> {
        if self.seeds.len() < 2 {
            bail!("PCA over runs needs at least two seeds");
        }
        if self.snapshot_every == 0 || self.epochs < self.snapshot_every {
            bail!("snapshot_every must be between 1 and epochs");
        }
        if self.layer == 0 || self.layer > WIDTHS.len() - 1 {
            bail!("layer must be between 1 and {}", WIDTHS.len() - 1);
        }
        Ok(())
    }
}

static DATA: StageKind = StageKind::plain("weights_pca.data", &["data", "experiments/weights_pca"], generate);
// The seeds train as one stacked model (a batched sweep).
static TRAIN: StageKind =
    StageKind::numeric_batched("weights_pca.train", &["data", "nn", "experiments/weights_pca"], train);
static ANALYZE: StageKind =
    StageKind::numeric("weights_pca.analyze", &["analysis", "nn", "experiments/weights_pca"], analyze);
static PLOT: StageKind = StageKind::plain("weights_pca.plot", &["plot", "analysis"], crate::plot::weights_pca::figures);

#[derive(Serialize, Deserialize)]
struct TrainParams {
    seed: u64,
    epochs: usize,
    lr: f64,
    snapshot_every: usize,
}

impl TrainParams {
    /// Everything but the seed: the runs of one batch must agree on it.
    fn group(&self) -> String {
        format!("{}:{}:{}", self.epochs, self.lr, self.snapshot_every)
    }
}

#[derive(Serialize, Deserialize)]
pub struct AnalyzeParams {
    pub layer: usize,
}

pub fn stages(settings: &Settings) -> Built {
    let data = Stage::new(&DATA, &[], &());
    let mut analyze = Stage::new(&ANALYZE, &[], &AnalyzeParams { layer: settings.layer }).publish(ID);
    let mut out = Vec::new();
    for &seed in &settings.seeds {
        let params =
            TrainParams { seed, epochs: settings.epochs, lr: settings.lr, snapshot_every: settings.snapshot_every };
        let run = Stage::new(&TRAIN, &[("seed", seed.to_string())], &params)
            .input("data", &data, "data.csv")
            .with_work((param_count(&WIDTHS) * synth::grid().len()) as u64)
            .with_steps(settings.epochs as u64)
            .batch_group(params.group());
        analyze = analyze.input(format!("{seed}/path.csv"), &run, "path.csv");
        out.push(run);
    }
    let plot = Stage::new(&PLOT, &[], &())
        .input("projected.csv", &analyze, "projected.csv")
        .input("explained.csv", &analyze, "explained.csv")
        .publish(ID);
    let report = vec![
        report_input(&analyze, "summary.csv"),
        report_input(&analyze, "explained.csv"),
        report_input(&plot, "whole.png"),
        report_input(&plot, "layer.png"),
    ];
    out.extend([data, analyze, plot]);
    Built { stages: out, report }
}

fn generate(ctx: &StageContext) -> Result<()> {
    let (xs, ys) = synth::sample(synth::Function::F1);
    data::write_xy(&ctx.output("data.csv")?, &xs, &ys)
}

/// Trains the runs of `ctxs` (their own seeds, one data set) as one stacked model; writes each
/// run's `path.csv`: epoch, pre-step loss, then every parameter (p0, p1, ...) as they were before
/// that epoch's step, every `snapshot_every` epochs (epochs 3, 6, ... 300).
fn train(ctxs: &[StageContext]) -> Result<()> {
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

/// Joint PCA over every snapshot of every run, for the whole model and for one layer.
fn analyze(ctx: &StageContext) -> Result<()> {
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
