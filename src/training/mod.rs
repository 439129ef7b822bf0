//! What the experiments' training stages share: the MNIST inputs, the MNIST training loop, batched
//! sweeps' helpers and full-batch regression. Nothing here draws or reports, so an edit of a figure
//! or of the report never reaches a training's key.

pub mod mnist;
pub mod mnist_inputs;
pub mod sweep;

/// The training state the stage saved at its checkpoint, if there is one (for a batch, each
/// member's own).
pub fn saved_snapshot(ctx: &crate::engine::StageContext) -> anyhow::Result<Option<crate::nn::snapshot::Snapshot>> {
    ctx.checkpoint.load().map(|bytes| crate::nn::snapshot::Snapshot::from_bytes(&bytes)).transpose()
}
