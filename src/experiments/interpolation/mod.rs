//! Spec section 8, "Flatness vs generalisation, part 1", as the assignment intends: the
//! 784-20-40-10 ReLU MLP (16,950 parameters) is trained from the same seed with batch 64 (θ1) and
//! batch 1024 (θ2), Adam, 10 epochs, once at lr 1e-3 and once at lr 1e-2; then every weight and
//! bias is interpolated, θ(α) = (1-α)·θ1 + α·θ2, on a grid of α over [-1, 2], and at each α the
//! cross-entropy and accuracy are measured on the full training and test sets.
//!
//! The original interpolated two integers (the parameter counts) and plotted the two models'
//! per-epoch curves against α: no interpolation took place.

mod analyze;
mod plot;
mod report;
mod settings;
mod train;

pub use self::settings::Settings;
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};

use self::plot::lr_label;
use self::train::InterpolateParams;
pub use self::train::{ID, WIDTHS};
use crate::engine::{Stage, StageKind};
use crate::experiments::experiment::{Tables, figure_inputs};
use crate::experiments::{Built, Experiment, report_input};
use crate::report::Section;
use crate::training::mnist::MlpTraining;
use crate::training::mnist_inputs::MnistInputs;

impl Settings {
    pub fn alphas(&self) -> Vec<f64> {
        let [a, b] = self.alpha_range;
        (0..self.alpha_points).map(|i| a + (b - a) * i as f64 / (self.alpha_points - 1) as f64).collect()
    }
}

impl Experiment for Settings {
    fn id(&self) -> &'static str {
        ID
    }

    fn validate(&self) -> Result<()> {
        if self.lrs.is_empty() || self.epochs == 0 || self.batch_sizes.contains(&0) {
            bail!("at least one lr, one epoch, and batches of at least one");
        }
        if self.alpha_points < 2 || self.alpha_range[0] >= self.alpha_range[1] {
            bail!("alpha_points >= 2 and alpha_range = [low, high] with low < high");
        }
        Ok(())
    }

    fn after(&self) -> &[String] {
        &self.after
    }

    fn stages(&self, mnist: &MnistInputs) -> Built {
        let mut analyze = Stage::new(&ANALYZE, &[], &()).publish(ID);
        let mut out = Vec::new();
        for &lr in &self.lrs {
            let runs: Vec<Stage> = self
                .batch_sizes
                .iter()
                .map(|&batch| {
                    let training = MlpTraining::plain(WIDTHS.to_vec(), self.seed, (self.epochs, batch), lr)
                        .subsets((self.train_subset, self.test_subset));
                    training.stage(&TRAIN, &[("lr", lr_label(lr)), ("batch", batch.to_string())], mnist)
                })
                .collect();
            let params = InterpolateParams {
                lr,
                alphas: self.alphas(),
                train_subset: self.train_subset,
                test_subset: self.test_subset,
            };
            let interp = mnist.feed(
                Stage::new(&INTERPOLATE, &[("lr", lr_label(lr))], &params)
                    .input("theta1.f32", &runs[0], "weights.f32")
                    .input("theta2.f32", &runs[1], "weights.f32"),
            );
            analyze = analyze.input(format!("{}/interpolation.csv", lr_label(lr)), &interp, "interpolation.csv");
            for (run, batch) in runs.iter().zip(self.batch_sizes) {
                analyze = analyze.input(format!("{}/{batch}/curve.csv", lr_label(lr)), run, "curve.csv");
            }
            out.extend(runs);
            out.push(interp);
        }
        let plot = Stage::new(&PLOT, &[], &()).input("interpolation.csv", &analyze, "interpolation.csv").publish(ID);
        let mut report = vec![report_input(&analyze, "summary.csv"), report_input(&analyze, "interpolation.csv")];
        for &lr in &self.lrs {
            report.push(report_input(&plot, &format!("interpolation_lr{}.png", lr_label(lr))));
        }
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

static TRAIN: StageKind = StageKind::numeric("interpolation.train", train::train);

static INTERPOLATE: StageKind = StageKind::numeric("interpolation.interpolate", train::interpolate);

static ANALYZE: StageKind = StageKind::plain("interpolation.analyze", analyze::analyze);

static PLOT: StageKind = StageKind::plain("interpolation.plot", plot::figures);
