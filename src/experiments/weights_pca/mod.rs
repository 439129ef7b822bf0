//! Spec section 3, "Visualise the optimisation process", as the assignment intends: 8 training
//! runs of a 1-30-20-1 ReLU network (701 parameters) with MSE on f1(x) = sin(5πx)/(5πx) (the
//! section-1 grid), full-batch Adam lr 1e-3, 300 epochs, every parameter (weights and biases)
//! recorded every 3 epochs; PCA to 2-D fitted jointly over all runs, for the whole model and for
//! the second layer.
//!
//! The original trained with a one-output cross-entropy, which is identically zero: its weights
//! never moved and its plots show 8 static points labelled 0.0.

mod analyze;
mod data;
mod plot;
mod report;
mod settings;
mod train;

pub use self::settings::Settings;
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};

use self::analyze::AnalyzeParams;
use self::train::TrainParams;
pub use self::train::{ID, WIDTHS};
use crate::data::synth;
use crate::engine::{Stage, StageKind};
use crate::experiments::experiment::{Tables, figure_inputs};
use crate::experiments::{Built, Experiment, report_input};
use crate::nn::mlp::param_count;
use crate::report::Section;
use crate::training::mnist_inputs::MnistInputs;

impl Experiment for Settings {
    fn id(&self) -> &'static str {
        ID
    }

    fn validate(&self) -> Result<()> {
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

    fn after(&self) -> &[String] {
        &self.after
    }

    fn stages(&self, _mnist: &MnistInputs) -> Built {
        let data = Stage::new(&DATA, &[], &());
        let mut analyze = Stage::new(&ANALYZE, &[], &AnalyzeParams { layer: self.layer }).publish(ID);
        let mut out = Vec::new();
        for &seed in &self.seeds {
            let params = TrainParams { seed, epochs: self.epochs, lr: self.lr, snapshot_every: self.snapshot_every };
            let run = Stage::new(&TRAIN, &[("seed", seed.to_string())], &params)
                .input("data", &data, "data.csv")
                .with_work((param_count(&WIDTHS) * synth::grid().len()) as u64)
                .with_steps(self.epochs as u64)
                .batch_group(params.group());
            analyze = analyze.input(format!("{seed}/path.csv"), &run, "path.csv");
            out.push(run);
        }
        let plot = Stage::new(&PLOT, &[], &())
            .input("projected.csv", &analyze, "projected.csv")
            .input("explained.csv", &analyze, "explained.csv")
            .publish(ID);
        let mut report = vec![
            report_input(&analyze, "summary.csv"),
            report_input(&analyze, "explained.csv"),
            report_input(&plot, "whole.png"),
            report_input(&plot, "layer.png"),
        ];
        report.extend(figure_inputs(&plot));
        out.extend([data, analyze, plot]);
        Built { stages: out, report }
    }

    fn figures(&self, tables: &Tables) -> Result<Vec<crate::plot::Figure>> {
        plot::charts(tables)
    }

    fn section(&self, inputs: &BTreeMap<String, PathBuf>) -> Result<Section> {
        report::section(inputs, self)
    }

    fn headline(&self) -> Option<&'static str> {
        Some("final_loss")
    }
}

static DATA: StageKind = StageKind::plain("weights_pca.data", data::generate);

// The seeds train as one stacked model (a batched sweep).
static TRAIN: StageKind = StageKind::numeric_batched("weights_pca.train", train::train);

static ANALYZE: StageKind = StageKind::numeric("weights_pca.analyze", analyze::analyze);

static PLOT: StageKind = StageKind::plain("weights_pca.plot", plot::figures);
