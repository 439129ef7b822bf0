//! The `[experiments.grad_norm]` section of pipeline.toml: the settings and their defaults (the
//! original study's hyper-parameters).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub seeds: crate::experiments::seeds::Seeds,
    pub epochs: usize,
    pub lr: f64,
    pub after: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            seeds: crate::experiments::seeds::Seeds(vec![0, 1, 2]),
            epochs: 2000,
            lr: 1e-3,
            after: Default::default(),
        }
    }
}
