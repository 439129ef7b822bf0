//! The MNIST training loop the classification experiments share: PyTorch's Adam, seeded
//! reshuffles, full-set evaluation, per-epoch history.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::mnist_inputs::MnistInputs;
use crate::analysis::{Cell, Table};
use crate::data::mnist::Split;
use crate::engine::{Stage, StageContext, StageKind};
use crate::nn::classify::{self, DeviceSplit, EpochMetrics, Fit, FitOptions, FitPosition};
use crate::nn::optim::Adam;
use crate::nn::{Activation, Compute, Init, Mlp};
use crate::rng::SeededRng;

/// Per-epoch metrics as CSV: epoch, mean_batch_loss, train_loss, train_acc, test_loss, test_acc.
pub fn write_history(path: &std::path::Path, history: &[EpochMetrics]) -> Result<()> {
    Table::from_records(
        history,
        &[
            ("epoch", &|m| Cell::Int(m.epoch as i64)),
            ("mean_batch_loss", &|m| m.mean_batch_loss.into()),
            ("train_loss", &|m| m.train.loss.into()),
            ("train_acc", &|m| m.train.accuracy.into()),
            ("test_loss", &|m| m.test.loss.into()),
            ("test_acc", &|m| m.test.accuracy.into()),
        ],
    )?
    .write_csv(path)
}

/// A run's final full-set metrics: the last row of the `curve.csv` [`write_history`] wrote.
pub struct FinalMetrics {
    /// Rows of the curve (one per evaluation), and the epoch of the last.
    pub evaluations: usize,
    pub last_epoch: f64,
    pub train_loss: f64,
    pub train_acc: f64,
    pub test_loss: f64,
    pub test_acc: f64,
}

impl FinalMetrics {
    pub fn of(curve: &Table) -> Result<FinalMetrics> {
        Ok(FinalMetrics {
            evaluations: curve.height(),
            last_epoch: curve.last("epoch")?,
            train_loss: curve.last("train_loss")?,
            train_acc: curve.last("train_acc")?,
            test_loss: curve.last("test_loss")?,
            test_acc: curve.last("test_acc")?,
        })
    }
}

/// An MLP (ReLU) trained on MNIST by Adam with cross-entropy: what the generalisation experiments
/// share. Full-set train and test metrics after every `evaluate_every` epochs and the last.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MlpTraining {
    pub widths: Vec<usize>,
    pub seed: u64,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub train_subset: Option<usize>,
    pub test_subset: Option<usize>,
    /// Replace the training labels by uniform random ones drawn from this seed (test labels stay).
    pub random_labels: Option<u64>,
    pub stop_at_train_accuracy: Option<f64>,
    pub evaluate_every: usize,
}

impl MlpTraining {
    /// A run on the true labels to the last epoch, with full-set metrics after every epoch; the
    /// experiments that differ say how (`MlpTraining { evaluate_every: 5, ..plain }`).
    pub fn plain(widths: Vec<usize>, seed: u64, (epochs, batch_size): (usize, usize), lr: f64) -> MlpTraining {
        MlpTraining {
            widths,
            seed,
            epochs,
            batch_size,
            lr,
            train_subset: None,
            test_subset: None,
            random_labels: None,
            stop_at_train_accuracy: None,
            evaluate_every: 1,
        }
    }

    /// On the first `train` training and `test` test images only (all when `None`).
    pub fn subsets(self, (train, test): (Option<usize>, Option<usize>)) -> MlpTraining {
        MlpTraining { train_subset: train, test_subset: test, ..self }
    }

    /// The train stage of `kind` with these params, fed MNIST, declaring its work per step
    /// (forward multiply-accumulates) for device placement.
    pub fn stage(&self, kind: &'static StageKind, labels: &[(&str, String)], mnist: &MnistInputs) -> Stage {
        let work = (crate::nn::mlp::param_count(&self.widths) * self.batch_size) as u64;
        let images = self.train_subset.unwrap_or(crate::data::mnist::TRAIN_IMAGES_COUNT);
        let steps = (self.epochs * images.div_ceil(self.batch_size)) as u64;
        mnist.feed(Stage::new(kind, labels, self).with_work(work).with_steps(steps))
    }
}

/// The trained model, its history, and the (sliced) splits it saw.
pub struct TrainedMlp {
    pub model: Mlp,
    pub history: Vec<EpochMetrics>,
    pub train: Split,
    pub test: Split,
}

pub fn train_mnist_mlp(ctx: &StageContext, t: &MlpTraining) -> Result<TrainedMlp> {
    use rand::{Rng, SeedableRng};
    let (train, test) = MnistInputs::load(ctx)?;
    let mut train = train.head(t.train_subset.unwrap_or(usize::MAX));
    let test = test.head(t.test_subset.unwrap_or(usize::MAX));
    if let Some(seed) = t.random_labels {
        let mut rng = crate::rng::SeededRng::seed_from_u64(seed);
        let labels = (0..train.len()).map(|_| rng.random_range(0..10u8)).collect();
        train = train.relabeled(labels);
    }
    let device = Compute::for_stage(ctx)?.training_device()?;
    let model = Mlp::new(&t.widths, Activation::Relu, &mut Init::new(t.seed), &device);
    let opts = FitOptions {
        epochs: t.epochs,
        batch: t.batch_size,
        lr: t.lr,
        eval_batch: 1000,
        stop_at_train_accuracy: t.stop_at_train_accuracy,
        evaluate_every: t.evaluate_every,
    };
    let (model, history) = fit_on_mnist(ctx, model, (&train, &test), t.seed, 0.0, &opts)?;
    Ok(TrainedMlp { model, history, train, test })
}

/// Trains `model` (built on the training device) with PyTorch's Adam and seeded reshuffles,
/// evaluating the full `splits` after every epoch, with a progress bar per step. The training
/// saves itself at the stage's checkpoint as it goes and, given one for its key, resumes from it.
pub fn fit_on_mnist<M: classify::Classifier>(
    ctx: &StageContext,
    model: M,
    (train, test): (&Split, &Split),
    seed: u64,
    weight_decay: f32,
    opts: &FitOptions,
) -> Result<(M, Vec<EpochMetrics>)> {
    use rand::SeedableRng;
    let device = Compute::for_stage(ctx)?.training_device()?;
    let (train_data, test_data) = (DeviceSplit::new(train, &device), DeviceSplit::new(test, &device));
    let steps = train_data.len.div_ceil(opts.batch);
    let mut fit = match super::saved_snapshot(ctx)? {
        Some(saved) => {
            let fit = Fit::restore(model, weight_decay, &saved, &device)?;
            let FitPosition { epoch, step } = fit.position();
            ctx.checkpoint.resumed(&match step {
                0 => format!("at epoch {} of {}", epoch + 1, opts.epochs),
                _ => format!("at epoch {} of {}, step {step} of {steps}", epoch + 1, opts.epochs),
            });
            fit
        }
        // Shuffling and dropout draw from their own stream, so they do not depend on the model's size.
        None => Fit::new(model, Adam::new(weight_decay), SeededRng::seed_from_u64(seed ^ 0x5eed_da7a)),
    };
    ctx.progress.set_total((opts.epochs * steps) as u64);
    let progress = |epoch: usize, step: usize, _: usize, last: Option<&EpochMetrics>| {
        ctx.progress.update((epoch * steps + step) as u64, || match last {
            Some(m) => format!(
                "epoch {}/{} train acc {:.2}% test acc {:.2}%",
                epoch + 1,
                opts.epochs,
                100.0 * m.train.accuracy,
                100.0 * m.test.accuracy
            ),
            None => format!("epoch {}/{}", epoch + 1, opts.epochs),
        });
    };
    while !fit.run((&train_data, &test_data), opts, progress, || ctx.checkpoint.due()) {
        ctx.checkpoint.save(&fit.snapshot()?.to_bytes()?)?;
    }
    Ok(fit.finish())
}

/// The train stage of an MNIST-MLP experiment: trains per the stage's [`MlpTraining`] params and
/// writes the per-epoch `curve.csv`; returns the result for any further outputs.
pub fn train_and_record_mlp(ctx: &StageContext) -> Result<TrainedMlp> {
    let training: MlpTraining = ctx.params()?;
    let trained = train_mnist_mlp(ctx, &training)?;
    write_history(&ctx.output("curve.csv")?, &trained.history)?;
    Ok(trained)
}
