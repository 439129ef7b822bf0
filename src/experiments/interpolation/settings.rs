//! The `[experiments.interpolation]` section of pipeline.toml: the settings and their defaults (the
//! original study's hyper-parameters).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub seed: u64,
    pub batch_sizes: [usize; 2],
    pub lrs: Vec<f64>,
    pub epochs: usize,
    pub alpha_range: [f64; 2],
    pub alpha_points: usize,
    pub train_subset: Option<usize>,
    pub test_subset: Option<usize>,
    pub after: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            seed: Default::default(),
            batch_sizes: [64, 1024],
            lrs: vec![1e-3, 1e-2],
            epochs: 10,
            alpha_range: [-1.0, 2.0],
            alpha_points: 31,
            train_subset: Default::default(),
            test_subset: Default::default(),
            after: Default::default(),
        }
    }
}
