//! What the experiments' training stages share: the MNIST inputs, the MNIST training loop, batched
//! sweeps' helpers and full-batch regression. Nothing here draws or reports, so an edit of a figure
//! or of the report never reaches a training's key.

pub mod mnist;
pub mod mnist_inputs;
pub mod sweep;
