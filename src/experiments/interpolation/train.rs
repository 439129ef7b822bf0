//! The training of `interpolation` (spec section 8): the end points, then every θ(α) evaluated.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::analysis::Table;
use crate::engine::StageContext;
use crate::nn::classify::{DeviceSplit, evaluate};
use crate::nn::{Activation, Compute, Mlp};
use crate::training::mnist::train_and_record_mlp;
use crate::training::mnist_inputs::MnistInputs;
use crate::training::sweep::{read_f32s, write_f32s};

pub const ID: &str = "interpolation";
pub const WIDTHS: [usize; 4] = [784, 20, 40, 10];

#[derive(Serialize, Deserialize)]
pub struct InterpolateParams {
    pub lr: f64,
    pub alphas: Vec<f64>,
    pub train_subset: Option<usize>,
    pub test_subset: Option<usize>,
}

pub fn train(ctx: &StageContext) -> Result<()> {
    let trained = train_and_record_mlp(ctx)?;
    write_f32s(&ctx.output("weights.f32")?, &trained.model.flat())
}

/// θ(α) = (1-α)·θ1 + α·θ2 for every α, each evaluated on the full sets.
pub fn interpolate(ctx: &StageContext) -> Result<()> {
    let p: InterpolateParams = ctx.params()?;
    let (theta1, theta2) = (read_f32s(ctx.input("theta1.f32")?)?, read_f32s(ctx.input("theta2.f32")?)?);
    let (train, test) = MnistInputs::load(ctx)?;
    let (train, test) =
        (train.head(p.train_subset.unwrap_or(usize::MAX)), test.head(p.test_subset.unwrap_or(usize::MAX)));
    let device = Compute::for_stage(ctx)?.device()?;
    let (train, test) = (DeviceSplit::new(&train, &device), DeviceSplit::new(&test, &device));
    ctx.progress.set_total(p.alphas.len() as u64);
    let mut rows = Vec::new();
    for (i, &alpha) in p.alphas.iter().enumerate() {
        let theta: Vec<f32> =
            theta1.iter().zip(&theta2).map(|(a, b)| ((1.0 - alpha) * *a as f64 + alpha * *b as f64) as f32).collect();
        let model = Mlp::from_flat(&WIDTHS, Activation::Relu, &theta, &device);
        let (tr, te) = (evaluate(&model, &train, 1000), evaluate(&model, &test, 1000));
        rows.push(vec![
            p.lr.into(),
            alpha.into(),
            tr.loss.into(),
            tr.accuracy.into(),
            te.loss.into(),
            te.accuracy.into(),
        ]);
        ctx.progress.update(i as u64 + 1, || format!("alpha {alpha:.2}"));
    }
    Table::from_rows(&["lr", "alpha", "train_loss", "train_acc", "test_loss", "test_acc"], rows.into_iter())?
        .write_csv(&ctx.output("interpolation.csv")?)
}
