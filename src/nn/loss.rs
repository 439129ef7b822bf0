//! Losses as PyTorch defines them.

use burn::prelude::*;

/// `nn.MSELoss()`: mean over all elements.
pub fn mse(prediction: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    (prediction - target).square().mean()
}
