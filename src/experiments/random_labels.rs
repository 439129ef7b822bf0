//! Spec section 6, "Can a network fit random labels?", as the assignment intends: the training
//! labels are replaced by seeded uniform random digits (the test labels stay true), and the
//! 784-120-120-16-10 ReLU MLP (110,826 parameters, Adam lr 1e-3, batch 50) trains until it has
//! memorised them (training accuracy on the random labels >= `stop_at_train_accuracy`) or
//! `max_epochs` pass. Every epoch: loss and accuracy on the full training set (random labels) and
//! the full test set (true labels).
//!
//! Memorisation needs capacity relative to the number of random labels: the default trains on the
//! first 10,000 images (an independent PyTorch re-run reached 90 % in about 100 epochs there, and
//! only 21.8 % after 30 epochs on all 60,000). The original ran 30 epochs on all images and also
//! randomised the test labels.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::analysis::Table;
use crate::engine::{Stage, StageContext, StageKind};
use crate::experiments::{Built, MlpTraining, MnistInputs, report_input, train_and_record_mlp};
use crate::nn::mlp::param_count;

pub const ID: &str = "random_labels";
pub const WIDTHS: [usize; 5] = [784, 120, 120, 16, 10];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    #[serde(default = "default_train_subset")]
    pub train_subset: Option<usize>,
    #[serde(default)]
    pub test_subset: Option<usize>,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_lr")]
    pub lr: f64,
    #[serde(default = "default_max_epochs")]
    pub max_epochs: usize,
    #[serde(default = "default_stop")]
    pub stop_at_train_accuracy: f64,
    #[serde(default)]
    pub after: Vec<String>,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}
fn default_train_subset() -> Option<usize> {
    Some(10_000)
}
fn default_batch() -> usize {
    50
}
fn default_lr() -> f64 {
    1e-3
}
fn default_max_epochs() -> usize {
    300
}
fn default_stop() -> f64 {
    0.9
}

impl Settings {
    pub fn validate(&self) -> Result<()> {
        if self.seeds.is_empty() || self.max_epochs == 0 || self.batch_size == 0 {
            bail!("at least one seed, one epoch and a batch of one");
        }
        if !(0.0..=1.0).contains(&self.stop_at_train_accuracy) {
            bail!("stop_at_train_accuracy is a fraction between 0 and 1");
        }
        Ok(())
    }
}

static TRAIN: StageKind =
    StageKind::numeric("random_labels.train", &["data", "nn", "experiments", "experiments/random_labels"], train);
static ANALYZE: StageKind =
    StageKind::plain("random_labels.analyze", &["analysis", "experiments/random_labels"], analyze);
static PLOT: StageKind =
    StageKind::plain("random_labels.plot", &["plot", "analysis"], crate::plot::random_labels::figures);

pub fn stages(settings: &Settings, mnist: &MnistInputs) -> Built {
    let mut analyze = Stage::new(&ANALYZE, &[], &()).publish(ID);
    let mut out = Vec::new();
    for &seed in &settings.seeds {
        let training = MlpTraining {
            widths: WIDTHS.to_vec(),
            seed,
            epochs: settings.max_epochs,
            batch_size: settings.batch_size,
            lr: settings.lr,
            train_subset: settings.train_subset,
            test_subset: settings.test_subset,
            // The labels' own stream, so that changing the model's seed keeps the task.
            random_labels: Some(seed.wrapping_add(1_000_003)),
            stop_at_train_accuracy: Some(settings.stop_at_train_accuracy),
            evaluate_every: 1,
        };
        let run = training.stage(&TRAIN, &[("seed", seed.to_string())], mnist);
        analyze = analyze.input(format!("{seed}/curve.csv"), &run, "curve.csv");
        out.push(run);
    }
    let plot = Stage::new(&PLOT, &[], &()).input("curves.csv", &analyze, "curves.csv").publish(ID);
    let report = vec![report_input(&analyze, "summary.csv"), report_input(&plot, "random_labels.png")];
    out.extend([analyze, plot]);
    Built { stages: out, report }
}

fn train(ctx: &StageContext) -> Result<()> {
    train_and_record_mlp(ctx).map(|_| ())
}

fn analyze(ctx: &StageContext) -> Result<()> {
    let mut curves = Vec::new();
    let mut rows = Vec::new();
    for (name, path) in &ctx.inputs {
        let seed: u64 = name.trim_end_matches("/curve.csv").parse()?;
        let curve = Table::read_csv(path)?;
        rows.push(vec![
            ID.into(),
            "784-120-120-16-10".into(),
            seed.into(),
            (param_count(&WIDTHS) as u64).into(),
            (curve.height() as u64).into(),
            curve.last("train_loss")?.into(),
            curve.last("train_acc")?.into(),
            curve.last("test_loss")?.into(),
            curve.last("test_acc")?.into(),
        ]);
        curves.push(curve.with_seed(seed)?);
    }
    Table::from_rows(
        &["experiment", "model", "seed", "params", "epochs", "train_loss", "train_acc", "test_loss", "test_acc"],
        rows.into_iter(),
    )?
    .write_csv(&ctx.output("summary.csv")?)?;
    Table::concat(curves)?.write_csv(&ctx.output("curves.csv")?)
}
