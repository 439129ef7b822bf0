//! Models, initialisation, optimiser and losses, matching PyTorch's defaults (spec section 0).

pub mod backend;
pub mod classify;
pub mod cnn;
pub mod conv_block;
pub mod flat;
pub mod flex_buffers;
pub mod full_batch;
pub mod host_mlp;
pub mod init;
pub mod leaky_relu;
pub mod loss;
pub mod mlp;
pub mod optim;
pub mod shape;
pub mod snapshot;
pub mod sparse_input;
pub mod stacked;

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
    tensor.into_data().convert::<f32>().try_to_vec::<f32>().expect("float tensor")
}

/// A scalar tensor's value.
pub fn scalar(tensor: Tensor<1>) -> f32 {
    values(tensor)[0]
}

/// Inverted dropout (`nn.Dropout(p)` in train mode) with a mask from our own seeded generator,
/// so that runs are reproducible whatever else runs at the same time.
pub fn dropout(x: Tensor<2>, p: f32, rng: &mut crate::rng::SeededRng) -> Tensor<2> {
    use rand::Rng;
    let dims = x.dims();
    let device = x.device();
    let keep = 1.0 - p;
    let mask: Vec<f32> =
        (0..dims[0] * dims[1]).map(|_| if rng.random::<f32>() < keep { 1.0 / keep } else { 0.0 }).collect();
    x * Tensor::from_data(TensorData::new(mask, dims), &device)
}
