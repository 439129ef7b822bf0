//! Spec section 7, "Number of parameters vs generalisation": ten 784-h1-h2-10 ReLU MLPs from
//! 1,645 to 952,410 parameters, Adam lr 1e-3, batch 500, 30 epochs; final loss and accuracy on the
//! full training and test sets (the original used the last mini-batch for the losses). Each model
//! (and seed) is its own stage, so they run in parallel and cache separately.

mod analyze;
mod plot;
mod report;
mod train;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

pub use self::train::{ID, widths};
use crate::engine::{Stage, StageKind};
use crate::experiments::experiment::{Tables, figure_inputs};
use crate::experiments::{Built, Experiment, report_input};
use crate::report::Section;
use crate::training::mnist::MlpTraining;
use crate::training::mnist_inputs::MnistInputs;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Hidden widths [h1, h2] of each model.
    pub models: Vec<[usize; 2]>,
    pub seeds: crate::experiments::seeds::Seeds,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub train_subset: Option<usize>,
    pub test_subset: Option<usize>,
    /// Full-set evaluation after every this many epochs and after the last. The experiment
    /// reports final-epoch values only (spec section 7); the curve is a by-product, and
    /// evaluating 70,000 images after every epoch was a third of the largest models' time.
    pub eval_every: usize,
    pub after: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            models: vec![
                [2, 5],
                [4, 6],
                [10, 20],
                [20, 40],
                [50, 80],
                [100, 120],
                [180, 100],
                [400, 200],
                [600, 300],
                [800, 400],
            ],
            seeds: crate::experiments::seeds::Seeds(vec![0]),
            epochs: 30,
            batch_size: 500,
            lr: 1e-3,
            train_subset: Default::default(),
            test_subset: Default::default(),
            eval_every: 5,
            after: Default::default(),
        }
    }
}

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
