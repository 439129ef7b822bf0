//! The study's experiments, one file each, and the report stage that gathers them.

pub mod grad_norm;
pub mod interpolation;
pub mod min_ratio;
pub mod mnist_cnn;
pub mod params_generalization;
pub mod random_labels;
pub mod sensitivity;
pub mod sim_functions;
pub mod weights_pca;

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::config::{Loaded, MnistSource};
use crate::data::mnist as mnist_files;
use crate::data::mnist::{FetchOptions, Split};
use crate::engine::{InputRef, Stage, StageContext, StageKind};
use crate::nn::classify::{self, DeviceSplit, EpochMetrics, FitOptions};
use crate::nn::{Activation, Compute, Init, Mlp};
use crate::report;

/// The stages of one experiment and the outputs its report section reads.
pub struct Built {
    pub stages: Vec<Stage>,
    pub report: Vec<InputRef>,
}

/// A report input: output `output` of `stage`, seen by the section under the same name.
pub fn report_input(stage: &Stage, output: &str) -> InputRef {
    InputRef { name: output.to_string(), stage: stage.id.clone(), output: output.to_string() }
}

/// Every experiment id the configuration may name, in report order.
pub const IDS: &[&str] = &[
    sim_functions::ID,
    mnist_cnn::ID,
    weights_pca::ID,
    grad_norm::ID,
    min_ratio::ID,
    random_labels::ID,
    params_generalization::ID,
    interpolation::ID,
    sensitivity::ID,
];

/// All stage instances of the configuration, the report last.
pub fn build(loaded: &Loaded) -> Result<Vec<Stage>> {
    let config = &loaded.config;
    let mut built: BTreeMap<&str, (Built, Vec<String>)> = BTreeMap::new();
    let mnist = MnistInputs::new(&config.data.mnist);
    if let Some(s) = &config.experiments.weights_pca {
        built.insert(weights_pca::ID, (weights_pca::stages(s), s.after.clone()));
    }
    if let Some(s) = &config.experiments.grad_norm {
        built.insert(grad_norm::ID, (grad_norm::stages(s), s.after.clone()));
    }
    if let Some(s) = &config.experiments.min_ratio {
        built.insert(min_ratio::ID, (min_ratio::stages(s), s.after.clone()));
    }
    if let Some(s) = &config.experiments.random_labels {
        built.insert(random_labels::ID, (random_labels::stages(s, &mnist), s.after.clone()));
    }
    if let Some(s) = &config.experiments.params_generalization {
        built.insert(params_generalization::ID, (params_generalization::stages(s, &mnist), s.after.clone()));
    }
    if let Some(s) = &config.experiments.interpolation {
        built.insert(interpolation::ID, (interpolation::stages(s, &mnist), s.after.clone()));
    }
    if let Some(s) = &config.experiments.sensitivity {
        built.insert(sensitivity::ID, (sensitivity::stages(s, &mnist), s.after.clone()));
    }
    if let Some(s) = &config.experiments.mnist_cnn {
        built.insert(mnist_cnn::ID, (mnist_cnn::stages(s, &mnist), s.after.clone()));
    }
    if let Some(s) = &config.experiments.sim_functions {
        built.insert(sim_functions::ID, (sim_functions::stages(s), s.after.clone()));
    }
    let ids: BTreeMap<&str, Vec<String>> =
        built.iter().map(|(id, (b, _))| (*id, b.stages.iter().map(|s| s.id.clone()).collect())).collect();
    let mut stages = Vec::new();
    let mut report = report::stage::stage(config);
    for (id, (b, after)) in built {
        let origin = loaded.origins.get(&format!("experiments.{id}.after")).cloned();
        let mut ordering = Vec::new();
        for other in &after {
            match ids.get(other.as_str()) {
                Some(list) => ordering.extend(list.iter().cloned()),
                None if IDS.contains(&other.as_str()) => {
                    bail!("{}: `after` names {other}, which is not configured", origin.clone().unwrap_or_default())
                }
                None => bail!(
                    "{}: `after` names unknown experiment `{other}` (known: {})",
                    origin.clone().unwrap_or_default(),
                    IDS.join(", ")
                ),
            }
        }
        for input in b.report {
            report.inputs.push(InputRef { name: format!("{id}/{}", input.name), ..input });
        }
        for mut stage in b.stages {
            stage.after = ordering.clone();
            stage.after_origin = origin.clone();
            stages.push(stage);
        }
    }
    if stages.iter().any(|s| s.inputs.iter().any(|i| i.stage == mnist.fetch.id)) {
        stages.push(mnist.fetch);
    }
    if stages.is_empty() {
        bail!(
            "{}: no experiment is configured (add a section such as [experiments.sim_functions])",
            loaded.file.display()
        );
    }
    stages.push(report);
    Ok(stages)
}

static MNIST_FETCH: StageKind = StageKind::plain("mnist.fetch", &["data"], fetch_mnist);

/// The MNIST files as a stage: fetched (or found) in `data/mnist/`, verified, then stored, so that
/// every experiment reads the same verified bytes and their keys depend on them.
pub struct MnistInputs {
    fetch: Stage,
}

#[derive(Serialize, Deserialize)]
struct FetchParams {
    /// (name, SHA-256 of the uncompressed file): the content, hence the key.
    files: Vec<(String, String)>,
}

impl MnistInputs {
    pub fn new(source: &MnistSource) -> MnistInputs {
        let files = mnist_files::FILES.iter().map(|f| (f.name.to_string(), f.sha256.to_string())).collect();
        MnistInputs { fetch: Stage::new(&MNIST_FETCH, &[], &FetchParams { files }).unkeyed(source) }
    }

    /// `stage` with the four files as inputs, named as on the mirrors.
    pub fn feed(&self, stage: Stage) -> Stage {
        mnist_files::FILES.iter().fold(stage, |s, f| s.input(f.name, &self.fetch, f.name))
    }

    /// The training and test splits of a stage fed by [`MnistInputs::feed`].
    pub fn load(ctx: &StageContext) -> Result<(Split, Split)> {
        let train = mnist_files::load_split(
            ctx.input(mnist_files::TRAIN_IMAGES.name)?,
            ctx.input(mnist_files::TRAIN_LABELS.name)?,
        )?;
        let test = mnist_files::load_split(
            ctx.input(mnist_files::TEST_IMAGES.name)?,
            ctx.input(mnist_files::TEST_LABELS.name)?,
        )?;
        Ok((train, test))
    }
}

fn fetch_mnist(ctx: &StageContext) -> Result<()> {
    let source: MnistSource = ctx.unkeyed()?;
    let opts = FetchOptions {
        timeout: std::time::Duration::from_secs(source.timeout_s),
        attempts: source.attempts,
        ..FetchOptions::default()
    };
    let mirrors = mnist_files::with_env_mirror(&source.mirrors);
    let paths = mnist_files::ensure_all(&ctx.data_dir.join("mnist"), &mirrors, &opts)?;
    for (file, path) in mnist_files::FILES.iter().zip(paths) {
        std::fs::copy(&path, ctx.output(file.name)?)?;
    }
    Ok(())
}

/// Per-epoch metrics as CSV: epoch, mean_batch_loss, train_loss, train_acc, test_loss, test_acc.
pub fn write_history(path: &std::path::Path, history: &[EpochMetrics]) -> Result<()> {
    use crate::analysis::{Cell, Table};
    let rows = history.iter().map(|m| {
        vec![
            Cell::Int(m.epoch as i64),
            m.mean_batch_loss.into(),
            m.train.loss.into(),
            m.train.accuracy.into(),
            m.test.loss.into(),
            m.test.accuracy.into(),
        ]
    });
    Table::from_rows(&["epoch", "mean_batch_loss", "train_loss", "train_acc", "test_loss", "test_acc"], rows)?
        .write_csv(path)
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
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        train.labels = (0..train.len()).map(|_| rng.random_range(0..10u8)).collect();
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
/// evaluating the full `splits` after every epoch, with a progress bar per step.
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
    let mut optimizer = crate::nn::optim::Adam::new(weight_decay);
    let (train_data, test_data) = (DeviceSplit::new(train, &device), DeviceSplit::new(test, &device));
    // Shuffling and dropout draw from their own stream, so they do not depend on the model's size.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed_da7a);
    let steps = train_data.len.div_ceil(opts.batch);
    ctx.progress.set_total((opts.epochs * steps) as u64);
    Ok(classify::fit(model, &mut optimizer, &train_data, &test_data, opts, &mut rng, |epoch, step, _, last| {
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
    }))
}

/// The train stage of an MNIST-MLP experiment: trains per the stage's [`MlpTraining`] params and
/// writes the per-epoch `curve.csv`; returns the result for any further outputs.
pub fn train_and_record_mlp(ctx: &StageContext) -> Result<TrainedMlp> {
    let training: MlpTraining = ctx.params()?;
    let trained = train_mnist_mlp(ctx, &training)?;
    write_history(&ctx.output("curve.csv")?, &trained.history)?;
    Ok(trained)
}

/// A flat f32 vector as little-endian bytes (weights handed between stages).
pub fn write_f32s(path: &std::path::Path, values: &[f32]) -> Result<()> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Ok(std::fs::write(path, bytes)?)
}

pub fn read_f32s(path: &std::path::Path) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path)?;
    if bytes.len() % 4 != 0 {
        bail!("{}: {} bytes is not a whole number of f32", path.display(), bytes.len());
    }
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
}

/// The params of every instance of a batch (see `Runner::Batch`), checked to agree on `group`:
/// what their stages were grouped by, which the batched code relies on being equal.
pub fn batch_params<P: serde::de::DeserializeOwned>(
    ctxs: &[StageContext],
    group: impl Fn(&P) -> String,
) -> Result<Vec<P>> {
    let runs: Vec<P> = ctxs.iter().map(|ctx| ctx.params()).collect::<Result<_>>()?;
    if runs.iter().any(|run| group(run) != group(&runs[0])) {
        bail!("{}: a batch mixes settings its runs must share", ctxs[0].stage.kind.name);
    }
    Ok(runs)
}

/// The one file every instance of a batch reads as `name` (data the runs share).
pub fn shared_input<'a>(ctxs: &'a [StageContext], name: &str) -> Result<&'a std::path::Path> {
    let path = ctxs[0].input(name)?;
    if ctxs.iter().any(|ctx| ctx.input(name).ok() != Some(path)) {
        bail!("{}: a batch mixes `{name}` inputs its runs must share", ctxs[0].stage.kind.name);
    }
    Ok(path)
}

/// A full-batch regression run on the stage's `data` input (`x,y` CSV): the data as column
/// tensors on the training device, a seeded PyTorch-initialised MLP and PyTorch's Adam.
pub struct FullBatch {
    pub x: burn::prelude::Tensor<2>,
    pub y: burn::prelude::Tensor<2>,
    pub model: Mlp,
    pub optimizer: crate::nn::optim::Adam,
}

impl FullBatch {
    pub fn setup(
        ctx: &StageContext,
        widths: &[usize],
        activation: Activation,
        seed: u64,
        weight_decay: f32,
    ) -> Result<FullBatch> {
        let (xs, ys) = crate::data::read_xy(ctx.input("data")?)?;
        let device = Compute::for_stage(ctx)?.training_device()?;
        let model = Mlp::new(widths, activation, &mut Init::new(seed), &device);
        let (x, y) = (crate::nn::column(&xs, &device), crate::nn::column(&ys, &device));
        Ok(FullBatch { x, y, model, optimizer: crate::nn::optim::Adam::new(weight_decay) })
    }
}
