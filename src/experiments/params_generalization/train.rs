//! The training of `params_generalization`: one MNIST MLP per stage, through the shared MNIST loop.

use anyhow::Result;

use crate::engine::StageContext;
use crate::training::mnist::train_and_record_mlp;

pub const ID: &str = "params_generalization";

pub fn widths(hidden: [usize; 2]) -> Vec<usize> {
    vec![784, hidden[0], hidden[1], 10]
}

pub fn train(ctx: &StageContext) -> Result<()> {
    train_and_record_mlp(ctx).map(|_| ())
}
