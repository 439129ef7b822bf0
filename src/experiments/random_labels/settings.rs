//! The `[experiments.random_labels]` section of pipeline.toml: the settings and their defaults (the
//! original study's hyper-parameters).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub seeds: crate::experiments::seeds::Seeds,
    pub train_subset: Option<usize>,
    pub test_subset: Option<usize>,
    pub batch_size: usize,
    pub lr: f64,
    pub max_epochs: usize,
    pub stop_at_train_accuracy: f64,
    pub after: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            seeds: crate::experiments::seeds::Seeds(vec![0, 1, 2]),
            train_subset: Some(10_000),
            test_subset: Default::default(),
            batch_size: 50,
            lr: 1e-3,
            max_epochs: 300,
            stop_at_train_accuracy: 0.9,
            after: Default::default(),
        }
    }
}
