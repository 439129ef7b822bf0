//! The `[experiments.sensitivity]` section of pipeline.toml: the settings and their defaults (the
//! original study's hyper-parameters).

use serde::{Deserialize, Serialize};

/// The original's printed accuracies (%) by batch size (spec section 9): (batch, train, test).
pub const REFERENCE: [(usize, f64, f64); 5] =
    [(5, 96.7833, 95.47), (25, 96.63, 95.95), (125, 95.535, 94.80), (500, 94.5417, 94.33), (1000, 92.6333, 92.92)];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub batch_sizes: Vec<usize>,
    /// One training per batch size and seed: the claims on this sweep compare accuracies a few
    /// tenths of a point apart, which one seed cannot settle.
    pub seeds: crate::experiments::seeds::Seeds,
    pub epochs: usize,
    pub lr: f64,
    pub train_subset: Option<usize>,
    pub test_subset: Option<usize>,
    pub after: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            batch_sizes: vec![5, 25, 125, 500, 1000],
            seeds: crate::experiments::seeds::Seeds(vec![0, 1, 2]),
            epochs: 10,
            lr: 1e-3,
            train_subset: Default::default(),
            test_subset: Default::default(),
            after: Default::default(),
        }
    }
}
