//! Spec section 1, "Simulate a function": three networks of (almost) equal size fitted to
//! f1(x) = sin(5πx)/(5πx) and f2(x) = sign(sin(5πx)) on 300 points of [-1.5, 1.5).
//!
//! Stages: `data[function]` -> `train[function, model, seed]` -> `analyze` -> `plot[function]`.
//! Training is full batch, Adam (lr 1e-3, coupled L2 1e-4), MSE, up to 20000 epochs, with the
//! original's stopping rule: stop after epoch t > 5 when L_t < 1e-3 and the last two loss changes
//! are both below 1e-5.

mod analyze;
mod data;
pub mod model;
mod plot;
mod report;
mod settings;
mod train;

pub use self::settings::Settings;
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};

use self::model::DataParams;
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
        if self.seeds.is_empty() || self.functions.is_empty() || self.models.is_empty() {
            bail!("seeds, functions and models must each name at least one");
        }
        if self.max_epochs == 0 {
            bail!("max_epochs must be at least 1");
        }
        if self.lr.is_nan() || self.lr <= 0.0 {
            bail!("lr must be positive");
        }
        Ok(())
    }

    fn after(&self) -> &[String] {
        &self.after
    }

    fn stages(&self, _mnist: &MnistInputs) -> Built {
        let mut out = Vec::new();
        let mut analyze = Stage::new(&ANALYZE, &[], &()).publish(ID);
        for &function in &self.functions {
            let data = Stage::new(&DATA, &[("function", function.name().into())], &DataParams { function });
            for &model in &self.models {
                for &seed in &self.seeds {
                    let params = TrainParams {
                        function,
                        model,
                        seed,
                        lr: self.lr,
                        weight_decay: self.weight_decay,
                        max_epochs: self.max_epochs,
                        stop_loss: self.stop_loss,
                        stop_delta: self.stop_delta,
                        stop_after_epoch: self.stop_after_epoch,
                    };
                    let labels = [
                        ("function", function.name().into()),
                        ("model", model.name().into()),
                        ("seed", seed.to_string()),
                    ];
                    let work = (crate::nn::mlp::param_count(model.widths()) * crate::data::synth::grid().len()) as u64;
                    let group = params.group();
                    let run = Stage::new(&TRAIN, &labels, &params)
                        .input("data", &data, "data.csv")
                        .with_work(work)
                        .with_steps(self.max_epochs as u64)
                        .batch_group(group);
                    let tag = format!("{}.{}.{seed}", function.name(), model.name());
                    analyze = analyze
                        .input(format!("{tag}/run.json"), &run, "run.json")
                        .input(format!("{tag}/loss.csv"), &run, "loss.csv")
                        .input(format!("{tag}/prediction.csv"), &run, "prediction.csv");
                    out.push(run);
                }
            }
            analyze = analyze.input(format!("{}/data.csv", function.name()), &data, "data.csv");
            out.push(data);
        }
        // The loss curves and predictions feed the claims table too.
        let mut report = [
            "summary.csv",
            "loss_checkpoints.csv",
            "loss_curves.csv",
            "predictions.csv",
            "convergence.csv",
            "edge_error.csv",
        ]
        .iter()
        .map(|name| report_input(&analyze, name))
        .collect::<Vec<_>>();
        for &function in &self.functions {
            let plot = Stage::new(&PLOT, &[("function", function.name().into())], &DataParams { function })
                .input("loss_curves.csv", &analyze, "loss_curves.csv")
                .input("predictions.csv", &analyze, "predictions.csv")
                .publish(ID);
            for figure in ["target", "loss", "predictions"] {
                report.push(report_input(&plot, &format!("{figure}_{}.png", function.name())));
            }
            report.extend(figure_inputs(&plot));
            out.push(plot);
        }
        out.push(analyze);
        Built { stages: out, report }
    }

    fn section(&self, inputs: &BTreeMap<String, PathBuf>) -> Result<Section> {
        report::section(inputs, self)
    }

    fn figures(&self, tables: &Tables) -> Result<Vec<crate::plot::Figure>> {
        let mut figures = Vec::new();
        for &function in &self.functions {
            figures.extend(plot::charts(tables, function)?);
        }
        Ok(figures)
    }

    fn headline(&self) -> Option<&'static str> {
        Some("final_loss")
    }

    fn summary_keys(&self) -> &'static [&'static str] {
        &["function", "model", "seed"]
    }
}

static DATA: StageKind = StageKind::plain("sim_functions.data", data::generate);

// Seeds and functions of one model train as one stacked model (a batched sweep).
static TRAIN: StageKind = StageKind::numeric_batched("sim_functions.train", train::train);

static ANALYZE: StageKind = StageKind::plain("sim_functions.analyze", analyze::analyze);

static PLOT: StageKind = StageKind::plain("sim_functions.plot", plot::figures);
