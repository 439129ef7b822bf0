//! Spec section 4, "Gradient norm during training": the deep, narrow 1-5-10-10-10-10-10-5-1 ReLU
//! network (571 parameters) fitted by full-batch Adam (lr 1e-3) with MSE to sign(sin(5πx)) on
//! 200 points of [-1, 1], 2000 iterations. Per iteration: the loss and the L2 norm of the gradient
//! over every parameter, both at the pre-step weights.
//!
//! Such a net can die (constant output, gradient exactly 0); several seeds run, each is plotted,
//! and dead runs are flagged in the summary instead of hidden.

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

use self::train::TrainParams;
pub use self::train::{ID, WIDTHS};
use crate::data::synth;
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
        if self.seeds.is_empty() || self.epochs == 0 {
            bail!("at least one seed and one epoch");
        }
        Ok(())
    }

    fn after(&self) -> &[String] {
        &self.after
    }

    fn stages(&self, _mnist: &MnistInputs) -> Built {
        let data = Stage::new(&DATA, &[], &());
        let mut analyze = Stage::new(&ANALYZE, &[], &()).publish(ID);
        let mut out = Vec::new();
        for &seed in &self.seeds {
            let params = TrainParams { seed, epochs: self.epochs, lr: self.lr };
            let work = (crate::nn::mlp::param_count(&WIDTHS) * synth::grad_norm_data().0.len()) as u64;
            let run = Stage::new(&TRAIN, &[("seed", seed.to_string())], &params)
                .input("data", &data, "data.csv")
                .with_work(work)
                .with_steps(self.epochs as u64);
            analyze = analyze.input(format!("{seed}/curve.csv"), &run, "curve.csv");
            out.push(run);
        }
        let plot = Stage::new(&PLOT, &[], &()).input("curves.csv", &analyze, "curves.csv").publish(ID);
        let mut report = vec![
            report_input(&analyze, "summary.csv"),
            report_input(&analyze, "curves.csv"),
            report_input(&plot, "grad_norm.png"),
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

static DATA: StageKind = StageKind::plain("grad_norm.data", data::generate);

static TRAIN: StageKind = StageKind::numeric("grad_norm.train", train::train);

static ANALYZE: StageKind = StageKind::plain("grad_norm.analyze", analyze::analyze);

static PLOT: StageKind = StageKind::plain("grad_norm.plot", plot::figures);
