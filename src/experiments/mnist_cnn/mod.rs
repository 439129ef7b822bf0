//! Spec section 2, "Train on actual task": three CNNs of about 25k parameters on MNIST.
//!
//! CNN1: conv(1->10, k4), pool, conv(10->20, k4), pool, fc 320-50 (dropout 0.25)-100-10.
//! CNN2: the same convs, fc 320-50-50-40-30-10. CNN3: conv(1->10, k5), pool, conv(10->15, k5),
//! pool, fc 240-84-10. ReLU everywhere but the output. Batch 500 reshuffled every epoch (seeded),
//! Adam lr 1e-3 with coupled L2 1e-4, cross-entropy, 15 epochs, pixels in [0, 1].
//!
//! Unlike the original (step-100 running values), every metric is the full training set and the
//! full test set, in evaluation mode, after every epoch.

mod analyze;
pub mod model;
mod plot;
mod report;
mod settings;
mod train;

pub use self::settings::Settings;
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};

pub use self::model::Model;
pub use self::train::ID;
use self::train::TrainParams;
use crate::engine::{Stage, StageKind};
use crate::experiments::experiment::{Tables, figure_inputs};
use crate::experiments::{Built, Experiment, report_input};
use crate::report::Section;
use crate::training::mnist_inputs::MnistInputs;

impl Experiment for Settings {
    fn id(&self) -> &'static str {
        ID
    }

    fn validate(&self) -> Result<()> {
        if self.seeds.is_empty() || self.models.is_empty() {
            bail!("seeds and models must each name at least one");
        }
        if self.epochs == 0 || self.batch_size == 0 {
            bail!("epochs and batch_size must be at least 1");
        }
        if self.train_subset == Some(0) || self.test_subset == Some(0) {
            bail!("a subset of 0 images trains nothing");
        }
        Ok(())
    }

    fn after(&self) -> &[String] {
        &self.after
    }

    fn stages(&self, mnist: &MnistInputs) -> Built {
        let mut out = Vec::new();
        let mut analyze = Stage::new(&ANALYZE, &[], &()).publish(ID);
        for &model in &self.models {
            for &seed in &self.seeds {
                let params = TrainParams {
                    model,
                    seed,
                    epochs: self.epochs,
                    batch_size: self.batch_size,
                    lr: self.lr,
                    weight_decay: self.weight_decay,
                    train_subset: self.train_subset,
                    test_subset: self.test_subset,
                };
                let run = mnist.feed(
                    Stage::new(&TRAIN, &[("model", model.name().into()), ("seed", seed.to_string())], &params)
                        .with_work(model.shape().macs_per_image() * self.batch_size as u64)
                        .with_steps(
                            (self.epochs
                                * self
                                    .train_subset
                                    .unwrap_or(crate::data::mnist::TRAIN_IMAGES_COUNT)
                                    .div_ceil(self.batch_size)) as u64,
                        ),
                );
                let tag = format!("{}.{seed}", model.name());
                analyze = analyze.input(format!("{tag}/run.json"), &run, "run.json").input(
                    format!("{tag}/curve.csv"),
                    &run,
                    "curve.csv",
                );
                out.push(run);
            }
        }
        let plot = Stage::new(&PLOT, &[], &()).input("curves.csv", &analyze, "curves.csv").publish(ID);
        let mut report = vec![
            report_input(&analyze, "summary.csv"),
            report_input(&plot, "loss.png"),
            report_input(&plot, "accuracy.png"),
        ];
        out.push(analyze);
        report.extend(figure_inputs(&plot));
        out.push(plot);
        Built { stages: out, report }
    }

    fn figures(&self, tables: &Tables) -> Result<Vec<crate::plot::Figure>> {
        plot::charts(tables)
    }

    fn section(&self, inputs: &BTreeMap<String, PathBuf>) -> Result<Section> {
        report::section(inputs, self)
    }

    fn headline(&self) -> Option<&'static str> {
        Some("test_acc")
    }
}

// One thread each: a second thread makes a batch-500 step slower here (bench/results/mnist-2026-11-26/), so
// CNN runs go side by side instead.
static TRAIN: StageKind = StageKind::numeric("mnist_cnn.train", train::train);

static ANALYZE: StageKind = StageKind::plain("mnist_cnn.analyze", analyze::analyze);

static PLOT: StageKind = StageKind::plain("mnist_cnn.plot", plot::figures);
