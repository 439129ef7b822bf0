//! Models, initialisation, optimiser and losses, matching PyTorch's defaults (spec section 0).

pub mod backend;
pub mod init;
pub mod loss;
pub mod mlp;
pub mod optim;

pub use backend::Compute;
pub use init::Init;
pub use mlp::{Activation, Mlp};

use burn::prelude::*;

/// A column tensor `[n, 1]` from values.
pub fn column(values: &[f32], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len(), 1]), device)
}

/// The values of a tensor, flattened row-major.
pub fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("float tensor")
}

/// A scalar tensor's value.
pub fn scalar(tensor: Tensor<1>) -> f32 {
    values(tensor)[0]
}
