//! The `[experiments.sim_functions]` section of pipeline.toml: the settings and their defaults (the
//! original study's hyper-parameters).

use super::model::Model;
use crate::data::synth::Function;
use serde::{Deserialize, Serialize};

/// `[experiments.sim_functions]` in pipeline.toml. Defaults are the original's.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub seeds: crate::experiments::seeds::Seeds,
    pub functions: Vec<Function>,
    pub models: Vec<Model>,
    pub lr: f64,
    pub weight_decay: f32,
    pub max_epochs: usize,
    /// The stopping rule: loss below `stop_loss` and the last two changes below `stop_delta`,
    /// checked only after epoch `stop_after_epoch`.
    pub stop_loss: f32,
    pub stop_delta: f32,
    pub stop_after_epoch: usize,
    /// Experiments whose stages must finish before this one's start (ordering only).
    pub after: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            seeds: crate::experiments::seeds::Seeds(vec![0, 1, 2]),
            functions: vec![Function::F1, Function::F2],
            models: vec![Model::M1, Model::M2, Model::M3],
            lr: 1e-3,
            weight_decay: 1e-4,
            max_epochs: 20000,
            stop_loss: 1e-3,
            stop_delta: 1e-5,
            stop_after_epoch: 5,
            after: Default::default(),
        }
    }
}
