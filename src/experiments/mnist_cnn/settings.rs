//! The `[experiments.mnist_cnn]` section of pipeline.toml: the settings and their defaults (the
//! original study's hyper-parameters).

use super::model::Model;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub seeds: crate::experiments::seeds::Seeds,
    pub models: Vec<Model>,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f32,
    /// Train on the first N training images only (all when absent).
    pub train_subset: Option<usize>,
    /// Evaluate on the first N test images only (all when absent).
    pub test_subset: Option<usize>,
    pub after: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            seeds: crate::experiments::seeds::Seeds(vec![1]),
            models: vec![Model::Cnn1, Model::Cnn2, Model::Cnn3],
            epochs: 15,
            batch_size: 500,
            lr: 1e-3,
            weight_decay: 1e-4,
            train_subset: Default::default(),
            test_subset: Default::default(),
            after: Default::default(),
        }
    }
}
