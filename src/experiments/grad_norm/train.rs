//! The training of `grad_norm` (spec section 4): loss and gradient norm at every iteration.

use anyhow::Result;
use burn::optim::GradientsParams;
use serde::{Deserialize, Serialize};

use crate::analysis::write_columns;
use crate::engine::StageContext;
use crate::nn::flat::norm;
use crate::nn::{self, Activation, loss::mse};
use crate::training::sweep::FullBatch;

pub const ID: &str = "grad_norm";
pub const WIDTHS: [usize; 9] = [1, 5, 10, 10, 10, 10, 10, 5, 1];

#[derive(Serialize, Deserialize)]
pub struct TrainParams {
    pub seed: u64,
    pub epochs: usize,
    pub lr: f64,
}

pub fn train(ctx: &StageContext) -> Result<()> {
    let p: TrainParams = ctx.params()?;
    let FullBatch { x, y, mut model, mut optimizer } = FullBatch::setup(ctx, &WIDTHS, Activation::Relu, p.seed, 0.0)?;
    let (mut losses, mut norms) = (Vec::with_capacity(p.epochs), Vec::with_capacity(p.epochs));
    ctx.progress.set_total(p.epochs as u64);
    for epoch in 0..p.epochs {
        let loss = mse(model.forward(x.clone()), y.clone());
        let grads = loss.backward();
        norms.push(norm(&model.flat_grad(&grads)) as f32);
        let grads = GradientsParams::from_grads(grads, &model);
        model = optimizer.step(p.lr, model, grads);
        losses.push(nn::scalar(loss));
        ctx.progress.update(epoch as u64 + 1, || format!("loss {:.4} |g| {:.4}", losses[epoch], norms[epoch]));
    }
    let epochs: Vec<f32> = (0..p.epochs).map(|e| e as f32).collect();
    write_columns(&ctx.output("curve.csv")?, &[("epoch", &epochs), ("loss", &losses), ("grad_norm", &norms)])
}
