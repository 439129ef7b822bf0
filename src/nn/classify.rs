//! Classification on MNIST-like data: batches, cross-entropy, accuracy, full-set evaluation, and
//! the epoch loop shared by every MNIST experiment.

use crate::rng::SeededRng;
use anyhow::ensure;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::{AllocationProperty, Bytes, DType};
use rand::seq::SliceRandom;

use super::optim::Adam;
use super::snapshot::{RngPosition, Snapshot, module_values, with_module_values};
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
    /// On the host the images tensor reads the split's own pixels (copied only if written to).
    pub fn new(split: &Split, device: &Device) -> DeviceSplit {
        let len = split.len();
        let pixels = Bytes::from_shared(split.image_bytes(), AllocationProperty::Native);
        let images = Tensor::from_data(TensorData::from_bytes(pixels, [len, PIXELS], DType::F32), device);
        let labels = Tensor::from_data(
            TensorData::new(split.labels().iter().map(|&l| l as i64).collect::<Vec<_>>(), [len]),
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

/// A training in progress: mini-batch epochs, each a fresh seeded permutation (drop_last =
/// false), with full-set evaluations between them. It can stop after any step and be saved
/// ([`Fit::snapshot`]); restored, it goes on exactly as if it had not stopped.
pub struct Fit<M> {
    model: Option<M>,
    optimizer: Adam,
    rng: SeededRng,
    /// Epochs completed, and steps completed of the current one.
    epoch: usize,
    step: usize,
    /// The current epoch's order (empty between epochs).
    order: Vec<usize>,
    /// The current epoch's mini-batch losses read back at a save, then those still on the device.
    losses_read: Vec<f32>,
    losses: Vec<Tensor<1>>,
    history: Vec<EpochMetrics>,
    finished: bool,
}

/// Where a [`Fit`] stands, for messages.
pub struct FitPosition {
    pub epoch: usize,
    pub step: usize,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct FitState {
    epoch: usize,
    step: usize,
    finished: bool,
    rng: RngPosition,
}

impl<M: Classifier> Fit<M> {
    /// A training of `model` from its first step; `rng` shuffles (and draws dropout masks).
    pub fn new(model: M, optimizer: Adam, rng: SeededRng) -> Fit<M> {
        Fit {
            model: Some(model),
            optimizer,
            rng,
            epoch: 0,
            step: 0,
            order: Vec::new(),
            losses_read: Vec::new(),
            losses: Vec::new(),
            history: Vec::new(),
            finished: false,
        }
    }

    pub fn position(&self) -> FitPosition {
        FitPosition { epoch: self.epoch, step: self.step }
    }

    /// Trains until the end (true), or until `pause()` says to stop after a step or an epoch
    /// (false: call again to go on). `progress(epoch, step, steps_per_epoch, last)` is called
    /// after each step and each evaluation.
    pub fn run(
        &mut self,
        (train, test): (&DeviceSplit, &DeviceSplit),
        opts: &FitOptions,
        mut progress: impl FnMut(usize, usize, usize, Option<&EpochMetrics>),
        mut pause: impl FnMut() -> bool,
    ) -> bool {
        let steps = train.len.div_ceil(opts.batch);
        while !self.finished && self.epoch < opts.epochs {
            let epoch = self.epoch;
            let history = self.history.last().cloned();
            let paused = self.train_steps(train, (opts.batch, opts.lr), |step| {
                progress(epoch, step, steps, history.as_ref());
                pause()
            });
            if paused {
                return false;
            }
            self.end_epoch(train, test, opts, steps);
            progress(self.epoch, 0, steps, self.history.last());
            if !self.finished && self.epoch < opts.epochs && pause() {
                return false;
            }
        }
        self.finished = true;
        true
    }

    /// The rest of the current epoch's steps (shuffling first at its start), asking `pause(step)`
    /// after each; true when it paused.
    fn train_steps(
        &mut self,
        train: &DeviceSplit,
        (batch, lr): (usize, f64),
        mut pause: impl FnMut(usize) -> bool,
    ) -> bool {
        let steps = train.len.div_ceil(batch);
        if self.step == 0 {
            self.order = (0..train.len).collect();
            self.order.shuffle(&mut self.rng);
        }
        if self.step == steps {
            return false;
        }
        // One upload of the epoch's order and one read of its losses: no step waits.
        let order = train.indices(&self.order);
        let mut model = self.model.take().expect("a model between steps");
        let mut paused = false;
        while self.step < steps && !paused {
            let rows = self.step * batch..((self.step + 1) * batch).min(train.len);
            let (x, y) = train.gather(order.clone().slice(rows));
            let loss = cross_entropy(model.logits(x, Some(&mut self.rng)), y);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = self.optimizer.step(lr, model, grads);
            self.losses.push(loss.inner());
            self.step += 1;
            paused = pause(self.step);
        }
        self.model = Some(model);
        paused
    }

    /// The mean of the epoch's mini-batch losses, then the full-set evaluation if one is due.
    fn end_epoch(&mut self, train: &DeviceSplit, test: &DeviceSplit, opts: &FitOptions, steps: usize) {
        let mean_batch_loss = self.take_loss_sum() / steps as f64;
        self.epoch += 1;
        self.step = 0;
        self.order.clear();
        let last = self.epoch == opts.epochs;
        let stopping_rule = opts.stop_at_train_accuracy.is_some();
        if !(last || stopping_rule || self.epoch.is_multiple_of(opts.evaluate_every.max(1))) {
            return;
        }
        let frozen = self.model.as_ref().expect("a model between steps").valid();
        let metrics = EpochMetrics {
            epoch: self.epoch,
            mean_batch_loss,
            train: evaluate(&frozen, &train.inner(), opts.eval_batch),
            test: evaluate(&frozen, &test.inner(), opts.eval_batch),
        };
        self.finished = opts.stop_at_train_accuracy.is_some_and(|t| metrics.train.accuracy >= t);
        self.history.push(metrics);
    }

    /// Moves the epoch's losses still on the device to the host (one read for all of them).
    fn read_losses(&mut self) {
        if !self.losses.is_empty() {
            let read = super::values(Tensor::cat(std::mem::take(&mut self.losses), 0));
            self.losses_read.extend(read);
        }
    }

    /// The sum of the epoch's mini-batch losses, in step order; they are cleared.
    fn take_loss_sum(&mut self) -> f64 {
        self.read_losses();
        self.losses_read.drain(..).map(|l| l as f64).sum()
    }

    /// The trained model and its history (the evaluated epochs).
    pub fn finish(self) -> (M, Vec<EpochMetrics>) {
        (self.model.expect("a model between steps"), self.history)
    }

    /// Everything the training needs to go on: parameters, Adam's moments and step, the
    /// generator's position, the epoch's order and losses so far, the history.
    pub fn snapshot(&mut self) -> anyhow::Result<Snapshot> {
        self.read_losses();
        let state =
            FitState { epoch: self.epoch, step: self.step, finished: self.finished, rng: RngPosition::of(&self.rng) };
        let mut snapshot = Snapshot::new(&state)?;
        snapshot.put_f32("params", &module_values(self.model.as_ref().expect("a model between steps")));
        if let Some(adam) = self.optimizer.state() {
            snapshot.put_adam(&adam);
        }
        snapshot.put_u32("order", &self.order.iter().map(|&i| i as u32).collect::<Vec<_>>());
        snapshot.put_f32("losses", &self.losses_read);
        let column = |f: fn(&EpochMetrics) -> f64| self.history.iter().map(f).collect::<Vec<_>>();
        snapshot.put_f64("history_epoch", &column(|m| m.epoch as f64));
        snapshot.put_f64("history_mean_batch_loss", &column(|m| m.mean_batch_loss));
        snapshot.put_f64("history_train_loss", &column(|m| m.train.loss));
        snapshot.put_f64("history_train_accuracy", &column(|m| m.train.accuracy));
        snapshot.put_f64("history_test_loss", &column(|m| m.test.loss));
        snapshot.put_f64("history_test_accuracy", &column(|m| m.test.accuracy));
        Ok(snapshot)
    }

    /// The training `snapshot` saved, continued with `model` (any model of the same shape, on
    /// the training `device`) and an Adam of `weight_decay`.
    pub fn restore(model: M, weight_decay: f32, snapshot: &Snapshot, device: &Device) -> anyhow::Result<Fit<M>> {
        let state: FitState = snapshot.state()?;
        let model = with_module_values(model, &snapshot.f32s("params")?)?;
        let epochs = snapshot.f64s("history_epoch")?;
        let columns = [
            snapshot.f64s("history_mean_batch_loss")?,
            snapshot.f64s("history_train_loss")?,
            snapshot.f64s("history_train_accuracy")?,
            snapshot.f64s("history_test_loss")?,
            snapshot.f64s("history_test_accuracy")?,
        ];
        ensure!(columns.iter().all(|c| c.len() == epochs.len()), "the checkpoint's history is ragged");
        let history = (0..epochs.len())
            .map(|i| EpochMetrics {
                epoch: epochs[i] as usize,
                mean_batch_loss: columns[0][i],
                train: Metrics { loss: columns[1][i], accuracy: columns[2][i] },
                test: Metrics { loss: columns[3][i], accuracy: columns[4][i] },
            })
            .collect();
        Ok(Fit {
            model: Some(model),
            optimizer: Adam::resume(weight_decay, snapshot.adam()?, device),
            rng: state.rng.restore()?,
            epoch: state.epoch,
            step: state.step,
            order: snapshot.u32s("order")?.into_iter().map(|i| i as usize).collect(),
            losses_read: snapshot.f32s("losses")?,
            losses: Vec::new(),
            history,
            finished: state.finished,
        })
    }
}

/// One epoch of mini-batch training, without evaluation (the benchmarks' unit): the model and the
/// mean of its mini-batch losses.
pub fn train_epoch<M: Classifier>(
    model: M,
    optimizer: &mut Adam,
    lr: f64,
    data: &DeviceSplit,
    batch: usize,
    rng: &mut SeededRng,
    mut on_step: impl FnMut(usize),
) -> (M, f64) {
    let mut fit = Fit::new(model, std::mem::replace(optimizer, Adam::new(0.0)), rng.clone());
    fit.train_steps(data, (batch, lr), |step| {
        on_step(step - 1);
        false
    });
    let mean = fit.take_loss_sum() / fit.step as f64;
    (*optimizer, *rng) = (fit.optimizer, fit.rng);
    (fit.model.expect("a model after the epoch"), mean)
}

/// Trains for `opts.epochs` without stopping (see [`Fit`]): the trained model and its history.
pub fn fit<M: Classifier>(
    model: M,
    optimizer: Adam,
    (train, test): (&DeviceSplit, &DeviceSplit),
    opts: &FitOptions,
    rng: SeededRng,
) -> (M, Vec<EpochMetrics>) {
    let mut fit = Fit::new(model, optimizer, rng);
    fit.run((train, test), opts, |_, _, _, _| {}, || false);
    fit.finish()
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
        let images: Vec<f32> =
            (0..30 * PIXELS).map(|_| if rng.random_bool(0.2) { rng.random::<f32>() } else { 0.0 }).collect();
        let split = Split::new(images, (0..30).map(|i| (i % 10) as u8).collect());
        let data = DeviceSplit::new(&split, &device);
        let run = |evaluate_every: usize, stop_at_train_accuracy: Option<f64>| {
            let model = Mlp::new(&[PIXELS, 8, 10], Activation::Relu, &mut Init::new(1), &device);
            let opts =
                FitOptions { epochs: 5, batch: 10, lr: 1e-2, eval_batch: 16, stop_at_train_accuracy, evaluate_every };
            fit(model, Adam::new(0.0), (&data, &data), &opts, SeededRng::seed_from_u64(9)).1
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

    /// A training stopped after any step or epoch, saved to bytes, and restored into a model of
    /// other weights ends with the same bits as one never stopped: parameters, history, losses.
    #[test]
    fn a_training_resumed_from_its_snapshots_ends_bit_for_bit_as_an_uninterrupted_one() {
        resumed_training_matches(Device::flex().autodiff(), None);
    }

    /// On libtorch a resumed training continues from the same saved numbers; its kernels agree
    /// with the uninterrupted run's to rounding (the agreement test's mnist_cnn tolerance).
    #[cfg(feature = "tch")]
    #[test]
    #[allow(deprecated)]
    fn on_libtorch_a_resumed_training_agrees_with_an_uninterrupted_one() {
        resumed_training_matches(Device::libtorch().autodiff(), Some((1e-4, 1e-5)));
    }

    /// `tolerance`: `None` for the same bits, else (relative, absolute).
    fn resumed_training_matches(device: Device, tolerance: Option<(f64, f64)>) {
        use crate::nn::cnn::{Cnn, CnnShape};
        use crate::nn::{Activation, Init, Mlp};
        use rand::{Rng, SeedableRng};
        let mut rng = SeededRng::seed_from_u64(5);
        let images: Vec<f32> =
            (0..45 * PIXELS).map(|_| if rng.random_bool(0.3) { rng.random::<f32>() } else { 0.0 }).collect();
        let split = Split::new(images, (0..45).map(|i| (i * 7 % 10) as u8).collect());
        let data = DeviceSplit::new(&split, &device);
        // 45 images in batches of 10: four full steps and a short one per epoch.
        let opts = FitOptions {
            epochs: 4,
            batch: 10,
            lr: 3e-3,
            eval_batch: 16,
            stop_at_train_accuracy: None,
            evaluate_every: 2,
        };
        let agree = move |got: &[f64], want: &[f64], what: &str| {
            assert_eq!(got.len(), want.len(), "{what}");
            for (g, w) in got.iter().zip(want) {
                match tolerance {
                    None => assert_eq!(g.to_bits(), w.to_bits(), "{what}: {g} vs {w}"),
                    Some((rel, abs)) => assert!((g - w).abs() <= abs + rel * w.abs(), "{what}: {g} vs {w}"),
                }
            }
        };
        let history = |h: &[EpochMetrics]| -> Vec<f64> {
            h.iter()
                .flat_map(|m| {
                    [m.epoch as f64, m.mean_batch_loss, m.train.loss, m.train.accuracy, m.test.loss, m.test.accuracy]
                })
                .collect()
        };
        // The parameters and the history of a resumed run against the uninterrupted one's.
        type Compare<'a> = &'a dyn Fn((Vec<f32>, &[EpochMetrics]), (Vec<f32>, &[EpochMetrics]), usize);
        fn check<M: Classifier + Clone>(
            fresh: impl Fn(u64) -> M,
            (data, opts, weight_decay): (&DeviceSplit, &FitOptions, f32),
            compare: Compare,
        ) {
            let device = data.images.device();
            let reference = fit(fresh(1), Adam::new(weight_decay), (data, data), opts, SeededRng::seed_from_u64(9));
            // Stop after every k-th step or epoch boundary, each time through bytes.
            for every in [1, 2, 3, 7] {
                let mut fit = Fit::new(fresh(1), Adam::new(weight_decay), SeededRng::seed_from_u64(9));
                let (mut calls, mut stops) = (0, 0);
                while !fit.run(
                    (data, data),
                    opts,
                    |_, _, _, _| {},
                    || {
                        calls += 1;
                        calls % every == 0
                    },
                ) {
                    stops += 1;
                    let bytes = fit.snapshot().unwrap().to_bytes().unwrap();
                    let snapshot = Snapshot::from_bytes(&bytes).unwrap();
                    fit = Fit::restore(fresh(2), weight_decay, &snapshot, &device).unwrap();
                }
                assert!(stops >= 20 / every, "every {every}: stopped {stops} times");
                let (model, history) = fit.finish();
                compare((module_values(&model), &history), (module_values(&reference.0), &reference.1), every);
            }
        }
        let compare = |(params, h): (Vec<f32>, &[EpochMetrics]), (want, wh): (Vec<f32>, &[EpochMetrics]), every| {
            let wide = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<_>>();
            agree(&wide(params), &wide(want), &format!("every {every}: parameters"));
            agree(&history(h), &history(wh), &format!("every {every}: history"));
        };
        let mlp = |seed| Mlp::new(&[PIXELS, 8, 10], Activation::Relu, &mut Init::new(seed), &device);
        check(mlp, (&data, &opts, 0.0), &compare);
        // A CNN with dropout (drawn from the same generator) and weight decay.
        let shape = CnnShape { convs: vec![(2, 5)], head: vec![2 * 12 * 12, 6, 10], dropout: Some((0, 0.25)) };
        let cnn = |seed| Cnn::new(&shape, &mut Init::new(seed), &device);
        check(cnn, (&data, &opts, 1e-4), &compare);
    }
}
