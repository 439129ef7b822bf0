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

mod analyze;
mod plot;
mod report;
mod settings;
mod train;

pub use self::settings::Settings;
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};

pub use self::train::{ID, WIDTHS};
use crate::engine::{Stage, StageKind};
use crate::experiments::experiment::{Tables, figure_inputs};
use crate::experiments::{Built, Experiment, report_input};
use crate::report::Section;
use crate::training::mnist::MlpTraining;
use crate::training::mnist_inputs::MnistInputs;

impl Experiment for Settings {
    fn id(&self) -> &'static str {
        ID
    }

    fn validate(&self) -> Result<()> {
        if self.seeds.is_empty() || self.max_epochs == 0 || self.batch_size == 0 {
            bail!("at least one seed, one epoch and a batch of one");
        }
        if !(0.0..=1.0).contains(&self.stop_at_train_accuracy) {
            bail!("stop_at_train_accuracy is a fraction between 0 and 1");
        }
        Ok(())
    }

    fn after(&self) -> &[String] {
        &self.after
    }

    fn stages(&self, mnist: &MnistInputs) -> Built {
        let mut analyze = Stage::new(&ANALYZE, &[], &()).publish(ID);
        let mut out = Vec::new();
        for &seed in &self.seeds {
            let training = MlpTraining {
                // The labels' own stream, so that changing the model's seed keeps the task.
                random_labels: Some(seed.wrapping_add(1_000_003)),
                stop_at_train_accuracy: Some(self.stop_at_train_accuracy),
                ..MlpTraining::plain(WIDTHS.to_vec(), seed, (self.max_epochs, self.batch_size), self.lr)
            }
            .subsets((self.train_subset, self.test_subset));
            let run = training.stage(&TRAIN, &[("seed", seed.to_string())], mnist);
            analyze = analyze.input(format!("{seed}/curve.csv"), &run, "curve.csv");
            out.push(run);
        }
        let plot = Stage::new(&PLOT, &[], &()).input("curves.csv", &analyze, "curves.csv").publish(ID);
        let mut report = vec![report_input(&analyze, "summary.csv"), report_input(&plot, "random_labels.png")];
        report.extend(figure_inputs(&plot));
        out.extend([analyze, plot]);
        Built { stages: out, report }
    }

    fn figures(&self, tables: &Tables) -> Result<Vec<crate::plot::Figure>> {
        plot::charts(tables)
    }

    fn section(&self, inputs: &BTreeMap<String, PathBuf>) -> Result<Section> {
        report::section(inputs, self)
    }

    fn headline(&self) -> Option<&'static str> {
        Some("train_acc")
    }
}

static TRAIN: StageKind = StageKind::numeric("random_labels.train", train::train);

static ANALYZE: StageKind = StageKind::plain("random_labels.analyze", analyze::analyze);

static PLOT: StageKind = StageKind::plain("random_labels.plot", plot::figures);
