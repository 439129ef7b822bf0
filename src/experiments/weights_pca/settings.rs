//! The `[experiments.weights_pca]` section of pipeline.toml: the settings and their defaults (the
//! original study's hyper-parameters).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub seeds: crate::experiments::seeds::Seeds,
    pub epochs: usize,
    pub lr: f64,
    /// Record the parameters every this many epochs.
    pub snapshot_every: usize,
    /// The layer shown on its own (1-based; 2 = the 30x20 hidden layer).
    pub layer: usize,
    pub after: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            seeds: (0..8).collect(),
            epochs: 300,
            lr: 1e-3,
            snapshot_every: 3,
            layer: 2,
            after: Default::default(),
        }
    }
}
