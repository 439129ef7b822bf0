//! Spec section 9, "Flatness vs generalisation, part 2", as the assignment intends: the 784-20-20-10
//! ReLU MLP (16,330 parameters) trained with batch sizes 5, 25, 125, 500 and 1000 (Adam lr 1e-3,
//! 10 epochs); for each, full-set loss and accuracy, and the sensitivity of Novak et al. (2018):
//! the Frobenius norm of the Jacobian of the softmax output with respect to the input, averaged over
//! the test set. Also the norm of the loss gradient with respect to the input, averaged likewise.
//!
//! The original's "sensitivity" was the mean per-tensor norm of the *parameter* gradient of the
//! last training mini-batch.

mod analyze;
mod plot;
mod report;
mod settings;
mod train;

pub use self::settings::{REFERENCE, Settings};
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
        if self.batch_sizes.is_empty() || self.batch_sizes.contains(&0) || self.epochs == 0 || self.seeds.is_empty() {
            bail!("at least one batch size (each at least 1), one seed and one epoch");
        }
        Ok(())
    }

    fn after(&self) -> &[String] {
        &self.after
    }

    fn stages(&self, mnist: &MnistInputs) -> Built {
        let mut analyze = Stage::new(&ANALYZE, &[], &()).publish(ID);
        let mut out = Vec::new();
        for &batch in &self.batch_sizes {
            for &seed in &self.seeds {
                let training = MlpTraining::plain(WIDTHS.to_vec(), seed, (self.epochs, batch), self.lr)
                    .subsets((self.train_subset, self.test_subset));
                let run = training.stage(&TRAIN, &[("batch", batch.to_string()), ("seed", seed.to_string())], mnist);
                analyze = analyze.input(format!("{batch}/{seed}/run.json"), &run, "run.json");
                out.push(run);
            }
        }
        let plot = Stage::new(&PLOT, &[], &()).input("summary.csv", &analyze, "summary.csv").publish(ID);
        let mut report = vec![
            report_input(&analyze, "summary.csv"),
            report_input(&plot, "loss_sensitivity.png"),
            report_input(&plot, "accuracy_sensitivity.png"),
        ];
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
        Some("test_acc")
    }

    fn summary_keys(&self) -> &'static [&'static str] {
        &["model", "variant", "batch_size", "seed"]
    }
}

static TRAIN: StageKind = StageKind::numeric("sensitivity.train", train::train);

static ANALYZE: StageKind = StageKind::plain("sensitivity.analyze", analyze::analyze);

static PLOT: StageKind = StageKind::plain("sensitivity.plot", plot::figures);
