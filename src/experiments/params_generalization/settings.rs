//! The `[experiments.params_generalization]` section of pipeline.toml: the settings and their defaults (the
//! original study's hyper-parameters).

use serde::{Deserialize, Serialize};

/// The original's final-epoch accuracies (%), train and test, by hidden widths (spec section 7).
pub const REFERENCE: [([usize; 2], f64, f64); 10] = [
    ([2, 5], 40.7583, 40.14),
    ([4, 6], 85.9433, 85.99),
    ([10, 20], 94.8050, 93.97),
    ([20, 40], 97.3583, 96.27),
    ([50, 80], 99.1150, 97.37),
    ([100, 120], 99.9033, 97.79),
    ([180, 100], 99.99, 98.03),
    ([400, 200], 100.0, 98.16),
    ([600, 300], 100.0, 98.26),
    ([800, 400], 100.0, 98.50),
];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Hidden widths [h1, h2] of each model.
    pub models: Vec<[usize; 2]>,
    pub seeds: crate::experiments::seeds::Seeds,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub train_subset: Option<usize>,
    pub test_subset: Option<usize>,
    /// Full-set evaluation after every this many epochs and after the last. The experiment
    /// reports final-epoch values only (spec section 7); the curve is a by-product, and
    /// evaluating 70,000 images after every epoch was a third of the largest models' time.
    pub eval_every: usize,
    pub after: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            models: vec![
                [2, 5],
                [4, 6],
                [10, 20],
                [20, 40],
                [50, 80],
                [100, 120],
                [180, 100],
                [400, 200],
                [600, 300],
                [800, 400],
            ],
            seeds: crate::experiments::seeds::Seeds(vec![0]),
            epochs: 30,
            batch_size: 500,
            lr: 1e-3,
            train_subset: Default::default(),
            test_subset: Default::default(),
            eval_every: 5,
            after: Default::default(),
        }
    }
}
