//! Adam as `torch.optim.Adam` does it.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, ModuleOptimizer};

/// betas (0.9, 0.999), eps 1e-8 (burn's default is 1e-5), bias correction on, and *coupled* L2
/// weight decay (g <- g + wd * theta before the moments), which is PyTorch's `weight_decay`.
pub fn adam(weight_decay: f32) -> ModuleOptimizer {
    let decay = (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay));
    AdamConfig::new().with_beta_1(0.9).with_beta_2(0.999).with_epsilon(1e-8).with_weight_decay(decay).init()
}
