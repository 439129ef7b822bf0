//! Spec section 7, "Number of parameters vs generalisation": ten 784-h1-h2-10 ReLU MLPs from
//! 1,645 to 952,410 parameters, Adam lr 1e-3, batch 500, 30 epochs; final loss and accuracy on the
//! full training and test sets (the original used the last mini-batch for the losses). Each model
//! (and seed) is its own stage, so they run in parallel and cache separately.

mod analyze;
mod plot;
mod report;
mod settings;
mod train;

pub use self::settings::{REFERENCE, Settings};
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};

pub use self::train::{ID, widths};
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
        if self.models.is_empty() || self.seeds.is_empty() || self.epochs == 0 || self.eval_every == 0 {
            bail!("at least one model, one seed, one epoch, and eval_every at least 1");
        }
        if self.models.iter().any(|[a, b]| *a == 0 || *b == 0) {
            bail!("hidden widths must be at least 1");
        }
        Ok(())
    }

    fn after(&self) -> &[String] {
        &self.after
    }

    fn stages(&self, mnist: &MnistInputs) -> Built {
        let mut analyze = Stage::new(&ANALYZE, &[], &()).publish(ID);
        let mut out = Vec::new();
        for &hidden in &self.models {
            for &seed in &self.seeds {
                let training = MlpTraining {
                    evaluate_every: self.eval_every,
                    ..MlpTraining::plain(widths(hidden), seed, (self.epochs, self.batch_size), self.lr)
                }
                .subsets((self.train_subset, self.test_subset));
                let name = format!("{}x{}", hidden[0], hidden[1]);
                let run = training.stage(&TRAIN, &[("hidden", name.clone()), ("seed", seed.to_string())], mnist);
                analyze = analyze.input(format!("{name}.{seed}/curve.csv"), &run, "curve.csv");
                out.push(run);
            }
        }
        let plot = Stage::new(&PLOT, &[], &()).input("summary.csv", &analyze, "summary.csv").publish(ID);
        let mut report = vec![
            report_input(&analyze, "summary.csv"),
            report_input(&plot, "loss.png"),
            report_input(&plot, "accuracy.png"),
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
}

static TRAIN: StageKind = StageKind::numeric("params_generalization.train", train::train);

static ANALYZE: StageKind = StageKind::plain("params_generalization.analyze", analyze::analyze);

static PLOT: StageKind = StageKind::plain("params_generalization.plot", plot::figures);
