//! The training of `mnist_cnn` (spec section 2): one CNN on MNIST per stage.

use anyhow::Result;
use burn::module::Module;
use serde::{Deserialize, Serialize};

use super::model::{Model, RunReport};
use crate::engine::StageContext;
use crate::nn::classify::FitOptions;
use crate::nn::cnn::Cnn;
use crate::nn::{Compute, Init};
use crate::training::mnist::{fit_on_mnist, write_history};
use crate::training::mnist_inputs::MnistInputs;

pub const ID: &str = "mnist_cnn";

#[derive(Serialize, Deserialize)]
pub struct TrainParams {
    pub model: Model,
    pub seed: u64,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f32,
    pub train_subset: Option<usize>,
    pub test_subset: Option<usize>,
}

pub fn train(ctx: &StageContext) -> Result<()> {
    let p: TrainParams = ctx.params()?;
    let (train_split, test_split) = MnistInputs::load(ctx)?;
    let train_split = train_split.head(p.train_subset.unwrap_or(usize::MAX));
    let test_split = test_split.head(p.test_subset.unwrap_or(usize::MAX));
    let device = Compute::for_stage(ctx)?.training_device()?;
    let model = Cnn::new(&p.model.shape(), &mut Init::new(p.seed), &device);
    let opts = FitOptions {
        epochs: p.epochs,
        batch: p.batch_size,
        lr: p.lr,
        eval_batch: 1000,
        stop_at_train_accuracy: None,
        evaluate_every: 1,
    };
    let (model, history) = fit_on_mnist(ctx, model, (&train_split, &test_split), p.seed, p.weight_decay, &opts)?;
    let last = history.last().expect("at least one epoch");
    let report = RunReport {
        model: p.model,
        seed: p.seed,
        params: model.num_params(),
        epochs: history.len(),
        train_loss: last.train.loss,
        train_acc: last.train.accuracy,
        test_loss: last.test.loss,
        test_acc: last.test.accuracy,
    };
    std::fs::write(ctx.output("run.json")?, serde_json::to_vec_pretty(&report)?)?;
    write_history(&ctx.output("curve.csv")?, &history)?;
    let weights = model.into_record().into_bytes().map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::write(ctx.output("weights.bpk")?, &*weights)?;
    Ok(())
}
