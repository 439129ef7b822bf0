//! Spec section 8, "Flatness vs generalisation, part 1", as the assignment intends: the
//! 784-20-40-10 ReLU MLP (16,950 parameters) is trained from the same seed with batch 64 (θ1) and
//! batch 1024 (θ2), Adam, 10 epochs, once at lr 1e-3 and once at lr 1e-2; then every weight and
//! bias is interpolated, θ(α) = (1-α)·θ1 + α·θ2, on a grid of α over [-1, 2], and at each α the
//! cross-entropy and accuracy are measured on the full training and test sets.
//!
//! The original interpolated two integers (the parameter counts) and plotted the two models'
//! per-epoch curves against α: no interpolation took place.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::analysis::{Cell, Table};
use crate::engine::{Stage, StageContext, StageKind};
use crate::experiments::{Built, MlpTraining, MnistInputs, read_f32s, report_input, train_and_record_mlp, write_f32s};
use crate::nn::classify::{DeviceSplit, evaluate};
use crate::nn::{Activation, Compute, Mlp};

pub const ID: &str = "interpolation";
pub const WIDTHS: [usize; 4] = [784, 20, 40, 10];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_batches")]
    pub batch_sizes: [usize; 2],
    #[serde(default = "default_lrs")]
    pub lrs: Vec<f64>,
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    #[serde(default = "default_alpha_range")]
    pub alpha_range: [f64; 2],
    #[serde(default = "default_alpha_points")]
    pub alpha_points: usize,
    #[serde(default)]
    pub train_subset: Option<usize>,
    #[serde(default)]
    pub test_subset: Option<usize>,
    #[serde(default)]
    pub after: Vec<String>,
}

fn default_batches() -> [usize; 2] {
    [64, 1024]
}
fn default_lrs() -> Vec<f64> {
    vec![1e-3, 1e-2]
}
fn default_epochs() -> usize {
    10
}
fn default_alpha_range() -> [f64; 2] {
    [-1.0, 2.0]
}
fn default_alpha_points() -> usize {
    31
}

impl Settings {
    pub fn validate(&self) -> Result<()> {
        if self.lrs.is_empty() || self.epochs == 0 || self.batch_sizes.contains(&0) {
            bail!("at least one lr, one epoch, and batches of at least one");
        }
        if self.alpha_points < 2 || self.alpha_range[0] >= self.alpha_range[1] {
            bail!("alpha_points >= 2 and alpha_range = [low, high] with low < high");
        }
        Ok(())
    }

    pub fn alphas(&self) -> Vec<f64> {
        let [a, b] = self.alpha_range;
        (0..self.alpha_points).map(|i| a + (b - a) * i as f64 / (self.alpha_points - 1) as f64).collect()
    }
}

static TRAIN: StageKind =
    StageKind::numeric("interpolation.train", &["data", "nn", "experiments", "experiments/interpolation"], train);
static INTERPOLATE: StageKind = StageKind::numeric(
    "interpolation.interpolate",
    &["data", "nn", "experiments", "experiments/interpolation"],
    interpolate,
);
static ANALYZE: StageKind =
    StageKind::plain("interpolation.analyze", &["analysis", "experiments/interpolation"], analyze);
static PLOT: StageKind =
    StageKind::plain("interpolation.plot", &["plot", "analysis"], crate::plot::interpolation::figures);

#[derive(Serialize, Deserialize)]
struct InterpolateParams {
    lr: f64,
    alphas: Vec<f64>,
    train_subset: Option<usize>,
    test_subset: Option<usize>,
}

pub fn lr_label(lr: f64) -> String {
    format!("{lr}")
}

pub fn stages(settings: &Settings, mnist: &MnistInputs) -> Built {
    let mut analyze = Stage::new(&ANALYZE, &[], &()).publish(ID);
    let mut out = Vec::new();
    for &lr in &settings.lrs {
        let runs: Vec<Stage> = settings
            .batch_sizes
            .iter()
            .map(|&batch| {
                let training = MlpTraining {
                    widths: WIDTHS.to_vec(),
                    seed: settings.seed,
                    epochs: settings.epochs,
                    batch_size: batch,
                    lr,
                    train_subset: settings.train_subset,
                    test_subset: settings.test_subset,
                    random_labels: None,
                    stop_at_train_accuracy: None,
                    evaluate_every: 1,
                };
                training.stage(&TRAIN, &[("lr", lr_label(lr)), ("batch", batch.to_string())], mnist)
            })
            .collect();
        let params = InterpolateParams {
            lr,
            alphas: settings.alphas(),
            train_subset: settings.train_subset,
            test_subset: settings.test_subset,
        };
        let interp = mnist.feed(
            Stage::new(&INTERPOLATE, &[("lr", lr_label(lr))], &params)
                .input("theta1.f32", &runs[0], "weights.f32")
                .input("theta2.f32", &runs[1], "weights.f32"),
        );
        analyze = analyze.input(format!("{}/interpolation.csv", lr_label(lr)), &interp, "interpolation.csv");
        for (run, batch) in runs.iter().zip(settings.batch_sizes) {
            analyze = analyze.input(format!("{}/{batch}/curve.csv", lr_label(lr)), run, "curve.csv");
        }
        out.extend(runs);
        out.push(interp);
    }
    let plot = Stage::new(&PLOT, &[], &()).input("interpolation.csv", &analyze, "interpolation.csv").publish(ID);
    let mut report = vec![report_input(&analyze, "summary.csv"), report_input(&analyze, "interpolation.csv")];
    for &lr in &settings.lrs {
        report.push(report_input(&plot, &format!("interpolation_lr{}.png", lr_label(lr))));
    }
    out.extend([analyze, plot]);
    Built { stages: out, report }
}

fn train(ctx: &StageContext) -> Result<()> {
    let trained = train_and_record_mlp(ctx)?;
    write_f32s(&ctx.output("weights.f32")?, &trained.model.flat())
}

/// θ(α) = (1-α)·θ1 + α·θ2 for every α, each evaluated on the full sets.
fn interpolate(ctx: &StageContext) -> Result<()> {
    let p: InterpolateParams = ctx.params()?;
    let (theta1, theta2) = (read_f32s(ctx.input("theta1.f32")?)?, read_f32s(ctx.input("theta2.f32")?)?);
    let (train, test) = MnistInputs::load(ctx)?;
    let (train, test) =
        (train.head(p.train_subset.unwrap_or(usize::MAX)), test.head(p.test_subset.unwrap_or(usize::MAX)));
    let device = Compute::for_stage(ctx)?.device()?;
    let (train, test) = (DeviceSplit::new(&train, &device), DeviceSplit::new(&test, &device));
    ctx.progress.set_total(p.alphas.len() as u64);
    let mut rows = Vec::new();
    for (i, &alpha) in p.alphas.iter().enumerate() {
        let theta: Vec<f32> =
            theta1.iter().zip(&theta2).map(|(a, b)| ((1.0 - alpha) * *a as f64 + alpha * *b as f64) as f32).collect();
        let model = Mlp::from_flat(&WIDTHS, Activation::Relu, &theta, &device);
        let (tr, te) = (evaluate(&model, &train, 1000), evaluate(&model, &test, 1000));
        rows.push(vec![
            p.lr.into(),
            alpha.into(),
            tr.loss.into(),
            tr.accuracy.into(),
            te.loss.into(),
            te.accuracy.into(),
        ]);
        ctx.progress.update(i as u64 + 1, || format!("alpha {alpha:.2}"));
    }
    Table::from_rows(&["lr", "alpha", "train_loss", "train_acc", "test_loss", "test_acc"], rows.into_iter())?
        .write_csv(&ctx.output("interpolation.csv")?)
}

fn analyze(ctx: &StageContext) -> Result<()> {
    let mut curves = Vec::new();
    let mut rows = Vec::new();
    for (name, path) in &ctx.inputs {
        if let Some(tag) = name.strip_suffix("/curve.csv") {
            let (lr, batch) = tag.split_once('/').expect("lr/batch");
            let curve = Table::read_csv(path)?;
            rows.push(vec![
                ID.into(),
                "784-20-40-10".into(),
                format!("lr {lr} batch {batch}").into(),
                Cell::Float(lr.parse()?),
                batch.parse::<u64>()?.into(),
                (curve.height() as u64).into(),
                curve.last("train_loss")?.into(),
                curve.last("train_acc")?.into(),
                curve.last("test_loss")?.into(),
                curve.last("test_acc")?.into(),
            ]);
        } else {
            curves.push(Table::read_csv(path)?);
        }
    }
    Table::from_rows(
        &[
            "experiment",
            "model",
            "variant",
            "lr",
            "batch_size",
            "epochs",
            "train_loss",
            "train_acc",
            "test_loss",
            "test_acc",
        ],
        rows.into_iter(),
    )?
    .write_csv(&ctx.output("summary.csv")?)?;
    Table::concat(curves)?.write_csv(&ctx.output("interpolation.csv")?)
}
