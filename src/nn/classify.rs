//! Classification on MNIST-like data: batches, cross-entropy, accuracy, full-set evaluation, and
//! the epoch loop shared by every MNIST experiment.

use crate::rng::SeededRng;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::seq::SliceRandom;

use super::optim::Adam;
use crate::data::mnist::{PIXELS, Split};

/// `nn.CrossEntropyLoss()` with class targets: mean over the batch of -log_softmax(z)[y].
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [n, _] = logits.dims();
    let picked = log_softmax(logits, 1).gather(1, targets.reshape([n, 1]));
    picked.mean().neg()
}

/// A split held on the device once, so a batch is an index gather, not a copy from the host.
pub struct DeviceSplit {
    pub images: Tensor<2>,
    pub labels: Tensor<1, Int>,
    pub len: usize,
}

impl DeviceSplit {
    pub fn new(split: &Split, device: &Device) -> DeviceSplit {
        let len = split.len();
        let images = Tensor::from_data(TensorData::new(split.images.clone(), [len, PIXELS]), device);
        let labels = Tensor::from_data(
            TensorData::new(split.labels.iter().map(|&l| l as i64).collect::<Vec<_>>(), [len]),
            device,
        );
        DeviceSplit { images, labels, len }
    }

    /// Row indices as a tensor on this split's device (one upload serves a whole epoch).
    pub fn indices(&self, indices: &[usize]) -> Tensor<1, Int> {
        let device = self.images.device();
        Tensor::<1, Int>::from_data(
            TensorData::new(indices.iter().map(|&i| i as i64).collect::<Vec<_>>(), [indices.len()]),
            &device,
        )
    }

    /// The rows at `idx` (a tensor from [`DeviceSplit::indices`], or a slice of one).
    pub fn gather(&self, idx: Tensor<1, Int>) -> (Tensor<2>, Tensor<1, Int>) {
        (self.images.clone().select(0, idx.clone()), self.labels.clone().select(0, idx))
    }

    /// The same data without autodiff tracking (no copy), for evaluation with `model.valid()`.
    pub fn inner(&self) -> DeviceSplit {
        DeviceSplit { images: self.images.clone().inner(), labels: self.labels.clone().inner(), len: self.len }
    }

    /// Contiguous rows `start..end` (evaluation, no shuffling).
    pub fn range(&self, start: usize, end: usize) -> (Tensor<2>, Tensor<1, Int>) {
        (self.images.clone().slice(start..end), self.labels.clone().slice(start..end))
    }
}

/// A model the shared loops can train and evaluate.
pub trait Classifier: Module + Sized {
    /// Logits; `rng` is given in training mode (dropout), `None` in evaluation mode.
    fn logits(&self, images: Tensor<2>, rng: Option<&mut SeededRng>) -> Tensor<2>;
}

/// Mean cross-entropy and accuracy (0-1) over a whole split, in evaluation mode.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub loss: f64,
    pub accuracy: f64,
}

/// Pass the model in evaluation mode (`model.valid()`), so no autodiff graph is built.
///
/// Nothing is read back until the end: on a GPU, reading a value waits for every queued launch,
/// so a read per batch would stall the queue (and every other stage sharing the device).
pub fn evaluate(model: &impl Classifier, data: &DeviceSplit, batch: usize) -> Metrics {
    let (mut losses, mut hits, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    let mut start = 0;
    while start < data.len {
        let end = (start + batch).min(data.len);
        let (x, y) = data.range(start, end);
        let logits = model.logits(x, None);
        losses.push(cross_entropy(logits.clone(), y.clone()));
        hits.push(logits.argmax(1).reshape([end - start]).equal(y).int().sum());
        sizes.push(end - start);
        start = end;
    }
    if losses.is_empty() {
        return Metrics { loss: f64::NAN, accuracy: f64::NAN };
    }
    let losses = super::values(Tensor::cat(losses, 0));
    let correct: i64 = Tensor::cat(hits, 0).into_data().convert::<i64>().iter::<i64>().sum();
    let loss_sum: f64 = losses.iter().zip(&sizes).map(|(&l, &n)| l as f64 * n as f64).sum();
    Metrics { loss: loss_sum / data.len as f64, accuracy: correct as f64 / data.len as f64 }
}

/// One epoch of mini-batch training with a fresh seeded permutation (drop_last = false). Returns
/// the mean of the mini-batch losses.
pub fn train_epoch<M: Classifier>(
    mut model: M,
    optimizer: &mut Adam,
    lr: f64,
    data: &DeviceSplit,
    batch: usize,
    rng: &mut SeededRng,
    mut on_step: impl FnMut(usize),
) -> (M, f64) {
    let mut order: Vec<usize> = (0..data.len).collect();
    order.shuffle(rng);
    // One upload of the epoch's order and one read of its losses: no step waits for the device.
    let order = data.indices(&order);
    let steps = data.len.div_ceil(batch);
    let mut losses = Vec::with_capacity(steps);
    for step in 0..steps {
        let (x, y) = data.gather(order.clone().slice(step * batch..((step + 1) * batch).min(data.len)));
        let logits = model.logits(x, Some(rng));
        let loss = cross_entropy(logits, y);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(lr, model, grads);
        losses.push(loss.inner());
        on_step(step);
    }
    let sum: f64 = super::values(Tensor::cat(losses, 0)).iter().map(|&l| l as f64).sum();
    (model, sum / steps as f64)
}

/// One epoch's record: the mean mini-batch loss during the epoch, then full-set metrics after it.
#[derive(Clone, Debug)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub mean_batch_loss: f64,
    pub train: Metrics,
    pub test: Metrics,
}

#[derive(Clone, Debug)]
pub struct FitOptions {
    /// The most epochs to train.
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub eval_batch: usize,
    /// Stop after the first epoch whose full-set training accuracy reaches this (0-1).
    pub stop_at_train_accuracy: Option<f64>,
    /// Evaluate the full sets after every this many epochs, and always after the last (and after
    /// every epoch where a stopping rule needs the accuracy). 1: every epoch.
    pub evaluate_every: usize,
}

/// Trains for `opts.epochs`, evaluating the full train and test sets (evaluation mode) after every
/// `opts.evaluate_every` epochs and after the last; the history holds the evaluated epochs.
/// `progress(epoch, step, steps_per_epoch, last)` is called after each step.
pub fn fit<M: Classifier>(
    mut model: M,
    optimizer: &mut Adam,
    train: &DeviceSplit,
    test: &DeviceSplit,
    opts: &FitOptions,
    rng: &mut SeededRng,
    mut progress: impl FnMut(usize, usize, usize, Option<&EpochMetrics>),
) -> (M, Vec<EpochMetrics>) {
    let (train_eval, test_eval) = (train.inner(), test.inner());
    let steps = train.len.div_ceil(opts.batch);
    let mut history: Vec<EpochMetrics> = Vec::with_capacity(opts.epochs);
    for epoch in 0..opts.epochs {
        let (trained, mean_batch_loss) = train_epoch(model, optimizer, opts.lr, train, opts.batch, rng, |step| {
            progress(epoch, step + 1, steps, history.last())
        });
        model = trained;
        let last = epoch + 1 == opts.epochs;
        let stopping_rule = opts.stop_at_train_accuracy.is_some();
        if !(last || stopping_rule || (epoch + 1) % opts.evaluate_every.max(1) == 0) {
            continue;
        }
        let frozen = model.valid();
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            mean_batch_loss,
            train: evaluate(&frozen, &train_eval, opts.eval_batch),
            test: evaluate(&frozen, &test_eval, opts.eval_batch),
        };
        let done = opts.stop_at_train_accuracy.is_some_and(|t| metrics.train.accuracy >= t);
        history.push(metrics);
        progress(epoch + 1, 0, steps, history.last());
        if done {
            break;
        }
    }
    (model, history)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_matches_a_hand_computation() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0], [2, 3]), &device);
        let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![2i64, 0], [2]), &device);
        let got = super::super::scalar(cross_entropy(logits, targets)) as f64;
        // -log softmax: row 1 at class 2: log(e^1 + e^2 + e^3) - 3; row 2: log 3.
        let row1 = (1f64.exp() + 2f64.exp() + 3f64.exp()).ln() - 3.0;
        let expected = (row1 + 3f64.ln()) / 2.0;
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    }

    /// Evaluating less often records fewer epochs, always the last, and changes nothing of the
    /// training: the last epoch's metrics are the same as when every epoch is evaluated.
    #[test]
    fn evaluating_every_few_epochs_keeps_the_last_and_the_training() {
        use crate::nn::{Activation, Init, Mlp};
        use rand::{Rng, SeedableRng};
        let device = Device::flex().autodiff();
        let mut rng = SeededRng::seed_from_u64(3);
        let images = (0..30 * PIXELS).map(|_| if rng.random_bool(0.2) { rng.random::<f32>() } else { 0.0 }).collect();
        let split = Split { images, labels: (0..30).map(|i| (i % 10) as u8).collect() };
        let data = DeviceSplit::new(&split, &device);
        let run = |evaluate_every: usize, stop_at_train_accuracy: Option<f64>| {
            let model = Mlp::new(&[PIXELS, 8, 10], Activation::Relu, &mut Init::new(1), &device);
            let opts =
                FitOptions { epochs: 5, batch: 10, lr: 1e-2, eval_batch: 16, stop_at_train_accuracy, evaluate_every };
            let mut rng = SeededRng::seed_from_u64(9);
            fit(model, &mut Adam::new(0.0), &data, &data, &opts, &mut rng, |_, _, _, _| {}).1
        };
        let epochs = |history: &[EpochMetrics]| history.iter().map(|m| m.epoch).collect::<Vec<_>>();
        let (every, sparse) = (run(1, None), run(2, None));
        assert_eq!(epochs(&every), [1, 2, 3, 4, 5]);
        assert_eq!(epochs(&sparse), [2, 4, 5]);
        let (a, b) = (every.last().unwrap(), sparse.last().unwrap());
        assert_eq!(
            (a.train.loss, a.test.accuracy, a.mean_batch_loss),
            (b.train.loss, b.test.accuracy, b.mean_batch_loss)
        );
        // A stopping rule reads every epoch's accuracy (here it never stops: 200 %).
        assert_eq!(epochs(&run(2, Some(2.0))), [1, 2, 3, 4, 5]);
    }
}
