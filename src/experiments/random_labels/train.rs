//! The training of `random_labels`: one MNIST MLP per stage, through the shared MNIST loop.

use anyhow::Result;

use crate::engine::StageContext;
use crate::training::mnist::train_and_record_mlp;

pub const ID: &str = "random_labels";
pub const WIDTHS: [usize; 5] = [784, 120, 120, 16, 10];

pub fn train(ctx: &StageContext) -> Result<()> {
    train_and_record_mlp(ctx).map(|_| ())
}
