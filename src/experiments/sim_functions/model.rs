//! What `sim_functions`' stages say to each other: the three networks, a data stage's params, and
//! what one run reports. Shared by training, analysis and figures, so it reaches no training code.

use serde::{Deserialize, Serialize};

use crate::data::synth::Function;
use crate::nn::mlp::param_count;

/// The three networks of the spec, leaky ReLU after every hidden layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// "deep": 1-5-10-10-10-10-10-5-1, 571 parameters.
    M1,
    /// 1-10-18-15-4-1, 572 parameters.
    M2,
    /// "shallow": 1-190-1, 571 parameters.
    M3,
}

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Model::M1 => "m1",
            Model::M2 => "m2",
            Model::M3 => "m3",
        }
    }

    pub fn widths(self) -> &'static [usize] {
        match self {
            Model::M1 => &[1, 5, 10, 10, 10, 10, 10, 5, 1],
            Model::M2 => &[1, 10, 18, 15, 4, 1],
            Model::M3 => &[1, 190, 1],
        }
    }

    pub fn label(self) -> String {
        format!(
            "{} ({} layers, {} params)",
            self.name().to_uppercase(),
            self.widths().len() - 1,
            param_count(self.widths())
        )
    }
}

#[derive(Serialize, Deserialize)]
pub struct DataParams {
    pub function: Function,
}

/// What one training run reports (written as `run.json`).
#[derive(Serialize, Deserialize)]
pub struct RunReport {
    pub function: Function,
    pub model: Model,
    pub seed: u64,
    pub params: usize,
    pub epochs: usize,
    pub stopped_early: bool,
    pub final_loss: f32,
    pub min_loss: f32,
}
