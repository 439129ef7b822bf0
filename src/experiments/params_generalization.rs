//! Spec section 7, "Number of parameters vs generalisation": ten 784-h1-h2-10 ReLU MLPs from
//! 1,645 to 952,410 parameters, Adam lr 1e-3, batch 500, 30 epochs; final loss and accuracy on the
//! full training and test sets (the original used the last mini-batch for the losses). Each model
//! (and seed) is its own stage, so they run in parallel and cache separately.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::analysis::Table;
use crate::engine::{Stage, StageContext, StageKind};
use crate::experiments::{Built, MlpTraining, MnistInputs, report_input, train_and_record_mlp};
use crate::nn::mlp::param_count;

pub const ID: &str = "params_generalization";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Hidden widths [h1, h2] of each model.
    #[serde(default = "default_models")]
    pub models: Vec<[usize; 2]>,
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_lr")]
    pub lr: f64,
    #[serde(default)]
    pub train_subset: Option<usize>,
    #[serde(default)]
    pub test_subset: Option<usize>,
    /// Full-set evaluation after every this many epochs and after the last. The experiment
    /// reports final-epoch values only (spec section 7); the curve is a by-product, and
    /// evaluating 70,000 images after every epoch was a third of the largest models' time.
    #[serde(default = "default_eval_every")]
    pub eval_every: usize,
    #[serde(default)]
    pub after: Vec<String>,
}

fn default_models() -> Vec<[usize; 2]> {
    vec![[2, 5], [4, 6], [10, 20], [20, 40], [50, 80], [100, 120], [180, 100], [400, 200], [600, 300], [800, 400]]
}
fn default_seeds() -> Vec<u64> {
    vec![0]
}
fn default_epochs() -> usize {
    30
}
fn default_batch() -> usize {
    500
}
fn default_lr() -> f64 {
    1e-3
}
fn default_eval_every() -> usize {
    5
}

impl Settings {
    pub fn validate(&self) -> Result<()> {
        if self.models.is_empty() || self.seeds.is_empty() || self.epochs == 0 || self.eval_every == 0 {
            bail!("at least one model, one seed, one epoch, and eval_every at least 1");
        }
        if self.models.iter().any(|[a, b]| *a == 0 || *b == 0) {
            bail!("hidden widths must be at least 1");
        }
        Ok(())
    }
}

/// The original's final-epoch accuracies (%), train and test, by hidden widths (spec section 7).
pub const REFERENCE: [([usize; 2], f64, f64); 10] = [
    ([2, 5], 40.7583, 40.14),
    ([4, 6], 85.9433, 85.99),
    ([10, 20], 94.8050, 93.97),
    ([20, 40], 97.3583, 96.27),
    ([50, 80], 99.1150, 97.37),
    ([100, 120], 99.9033, 97.79),
    ([180, 100], 99.99, 98.03),
    ([400, 200], 100.0, 98.16),
    ([600, 300], 100.0, 98.26),
    ([800, 400], 100.0, 98.50),
];

static TRAIN: StageKind = StageKind::numeric(
    "params_generalization.train",
    &["data", "nn", "experiments", "experiments/params_generalization"],
    train,
);
static ANALYZE: StageKind =
    StageKind::plain("params_generalization.analyze", &["analysis", "experiments/params_generalization"], analyze);
static PLOT: StageKind =
    StageKind::plain("params_generalization.plot", &["plot", "analysis"], crate::plot::params_generalization::figures);

pub fn widths(hidden: [usize; 2]) -> Vec<usize> {
    vec![784, hidden[0], hidden[1], 10]
}

pub fn stages(settings: &Settings, mnist: &MnistInputs) -> Built {
    let mut analyze = Stage::new(&ANALYZE, &[], &()).publish(ID);
    let mut out = Vec::new();
    for &hidden in &settings.models {
        for &seed in &settings.seeds {
            let training = MlpTraining {
                widths: widths(hidden),
                seed,
                epochs: settings.epochs,
                batch_size: settings.batch_size,
                lr: settings.lr,
                train_subset: settings.train_subset,
                test_subset: settings.test_subset,
                random_labels: None,
                stop_at_train_accuracy: None,
                evaluate_every: settings.eval_every,
            };
            let name = format!("{}x{}", hidden[0], hidden[1]);
            let run = training.stage(&TRAIN, &[("hidden", name.clone()), ("seed", seed.to_string())], mnist);
            analyze = analyze.input(format!("{name}.{seed}/curve.csv"), &run, "curve.csv");
            out.push(run);
        }
    }
    let plot = Stage::new(&PLOT, &[], &()).input("summary.csv", &analyze, "summary.csv").publish(ID);
    let report = vec![
        report_input(&analyze, "summary.csv"),
        report_input(&plot, "loss.png"),
        report_input(&plot, "accuracy.png"),
    ];
    out.extend([analyze, plot]);
    Built { stages: out, report }
}

fn train(ctx: &StageContext) -> Result<()> {
    train_and_record_mlp(ctx).map(|_| ())
}

fn analyze(ctx: &StageContext) -> Result<()> {
    let mut rows = Vec::new();
    for (name, path) in &ctx.inputs {
        let tag = name.trim_end_matches("/curve.csv");
        let (hidden, seed) = tag.split_once('.').expect("tag is HxW.seed");
        let (h1, h2) = hidden.split_once('x').expect("hidden is HxW");
        let hidden = [h1.parse::<usize>()?, h2.parse::<usize>()?];
        let curve = Table::read_csv(path)?;
        let (train_loss, test_loss, train_acc, test_acc) =
            (curve.last("train_loss")?, curve.last("test_loss")?, curve.last("train_acc")?, curve.last("test_acc")?);
        rows.push((
            param_count(&widths(hidden)),
            vec![
                ID.into(),
                format!("784-{}-{}-10", hidden[0], hidden[1]).into(),
                seed.parse::<u64>()?.into(),
                (param_count(&widths(hidden)) as u64).into(),
                (curve.last("epoch")? as u64).into(),
                train_loss.into(),
                train_acc.into(),
                test_loss.into(),
                test_acc.into(),
                (test_loss - train_loss).into(),
                (train_acc - test_acc).into(),
            ],
        ));
    }
    rows.sort_by_key(|(params, _)| *params);
    Table::from_rows(
        &[
            "experiment",
            "model",
            "seed",
            "params",
            "epochs",
            "train_loss",
            "train_acc",
            "test_loss",
            "test_acc",
            "loss_gap",
            "acc_gap",
        ],
        rows.into_iter().map(|(_, r)| r),
    )?
    .write_csv(&ctx.output("summary.csv")?)
}
