//! The `[experiments.min_ratio]` section of pipeline.toml: the settings and their defaults (the
//! original study's hyper-parameters).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Run seeds: a list, or a range written "0..100".
    pub seeds: crate::experiments::seeds::Seeds,
    /// The seed of the one shared data draw.
    pub data_seed: u64,
    pub samples: usize,
    pub epochs: usize,
    pub lr: f32,
    /// ‖∇L‖² is minimised first by Adam on its gradient 2·H·∇L (finite-difference HVP) for up to
    /// `norm_adam_steps`, then by Levenberg–Marquardt for up to `norm_lm_steps` (the Hessian as
    /// the Jacobian of ∇L); either phase may be 0, and both stop at `grad_norm_target`.
    pub norm_lr: f32,
    pub norm_adam_steps: usize,
    pub norm_lm_steps: usize,
    /// Where LM stalls short of `grad_norm_target`: Adam steps on L itself (lr 1e-3) before LM
    /// tries again, up to three rounds (0: never).
    pub norm_retrain_steps: usize,
    pub grad_norm_target: f64,
    /// A critical point explaining less than this share of the targets' variance is trivial.
    pub trivial_below_r2: f64,
    /// Step of the central differences (Hessian-vector products and the Hessian).
    pub fd_step: f32,
    pub eigen_tolerance: f64,
    pub after: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            seeds: crate::experiments::seeds::Seeds((0..100).collect()),
            data_seed: Default::default(),
            samples: 1000,
            epochs: 3000,
            lr: 1e-2,
            norm_lr: 1e-2,
            norm_adam_steps: 2000,
            norm_lm_steps: 20,
            norm_retrain_steps: 3000,
            grad_norm_target: 1e-2,
            trivial_below_r2: 0.1,
            fd_step: 1e-3,
            eigen_tolerance: 1e-4,
            after: Default::default(),
        }
    }
}
