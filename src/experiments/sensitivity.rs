//! Spec section 9, "Flatness vs generalisation, part 2", as the assignment intends: the 784-20-20-10
//! ReLU MLP (16,330 parameters) trained with batch sizes 5, 25, 125, 500 and 1000 (Adam lr 1e-3,
//! 10 epochs); for each, full-set loss and accuracy, and the sensitivity of Novak et al. (2018):
//! the Frobenius norm of the Jacobian of the softmax output with respect to the input, averaged over
//! the test set. Also the norm of the loss gradient with respect to the input, averaged likewise.
//!
//! The original's "sensitivity" was the mean per-tensor norm of the *parameter* gradient of the
//! last training mini-batch.

use anyhow::{Result, bail};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

use crate::analysis::Table;
use crate::engine::{Stage, StageContext, StageKind};
use crate::experiments::{Built, MlpTraining, MnistInputs, report_input, train_and_record_mlp};
use crate::nn::classify::{DeviceSplit, cross_entropy};
use crate::nn::{Mlp, mlp::param_count, values};

pub const ID: &str = "sensitivity";
pub const WIDTHS: [usize; 4] = [784, 20, 20, 10];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "default_batches")]
    pub batch_sizes: Vec<usize>,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    #[serde(default = "default_lr")]
    pub lr: f64,
    #[serde(default)]
    pub train_subset: Option<usize>,
    #[serde(default)]
    pub test_subset: Option<usize>,
    #[serde(default)]
    pub after: Vec<String>,
}

fn default_batches() -> Vec<usize> {
    vec![5, 25, 125, 500, 1000]
}
fn default_epochs() -> usize {
    10
}
fn default_lr() -> f64 {
    1e-3
}

impl Settings {
    pub fn validate(&self) -> Result<()> {
        if self.batch_sizes.is_empty() || self.batch_sizes.contains(&0) || self.epochs == 0 {
            bail!("at least one batch size (each at least 1) and one epoch");
        }
        Ok(())
    }
}

/// The original's printed accuracies (%) by batch size (spec section 9): (batch, train, test).
pub const REFERENCE: [(usize, f64, f64); 5] =
    [(5, 96.7833, 95.47), (25, 96.63, 95.95), (125, 95.535, 94.80), (500, 94.5417, 94.33), (1000, 92.6333, 92.92)];

static TRAIN: StageKind =
    StageKind::numeric("sensitivity.train", &["data", "nn", "experiments", "experiments/sensitivity"], train);
static ANALYZE: StageKind = StageKind::plain("sensitivity.analyze", &["analysis", "experiments/sensitivity"], analyze);
static PLOT: StageKind = StageKind::plain("sensitivity.plot", &["plot", "analysis"], crate::plot::sensitivity::figures);

#[derive(Serialize, Deserialize)]
struct RunResult {
    batch_size: usize,
    epochs: usize,
    train_loss: f64,
    train_acc: f64,
    test_loss: f64,
    test_acc: f64,
    sensitivity: f64,
    loss_input_grad: f64,
}

pub fn stages(settings: &Settings, mnist: &MnistInputs) -> Built {
    let mut analyze = Stage::new(&ANALYZE, &[], &()).publish(ID);
    let mut out = Vec::new();
    for &batch in &settings.batch_sizes {
        let training = MlpTraining {
            widths: WIDTHS.to_vec(),
            seed: settings.seed,
            epochs: settings.epochs,
            batch_size: batch,
            lr: settings.lr,
            train_subset: settings.train_subset,
            test_subset: settings.test_subset,
            random_labels: None,
            stop_at_train_accuracy: None,
            evaluate_every: 1,
        };
        let run = training.stage(&TRAIN, &[("batch", batch.to_string())], mnist);
        analyze = analyze.input(format!("{batch}/run.json"), &run, "run.json");
        out.push(run);
    }
    let plot = Stage::new(&PLOT, &[], &()).input("summary.csv", &analyze, "summary.csv").publish(ID);
    let report = vec![
        report_input(&analyze, "summary.csv"),
        report_input(&plot, "loss_sensitivity.png"),
        report_input(&plot, "accuracy_sensitivity.png"),
    ];
    out.extend([analyze, plot]);
    Built { stages: out, report }
}

/// Per sample of a batch: ‖∂softmax(f(x))/∂x‖_F (one backward pass per class: samples are
/// independent, so the gradient of the batch sum of class k's probability holds each sample's row
/// k of its Jacobian) and ‖∂ℓ(f(x), y)/∂x‖ (the gradient of the summed per-sample losses).
pub fn input_sensitivity(model: &Mlp, images: Tensor<2>, labels: Tensor<1, Int>) -> (Vec<f64>, Vec<f64>) {
    let frozen = model.clone().no_grad();
    let [n, d] = images.dims();
    let mut squares = vec![0.0f64; n];
    let classes = frozen.forward_images(images.clone().detach()).dims()[1];
    for k in 0..classes {
        let x = images.clone().detach().require_grad();
        let p = softmax(frozen.forward_images(x.clone()), 1);
        let grads = p.slice([0..n, k..k + 1]).sum().backward();
        let gx = values(x.grad(&grads).expect("the input requires grad"));
        for (i, row) in gx.chunks(d).enumerate() {
            squares[i] += row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
        }
    }
    let jacobian = squares.iter().map(|s| s.sqrt()).collect();
    let x = images.detach().require_grad();
    let loss_sum = cross_entropy(frozen.forward_images(x.clone()), labels) * (n as f32);
    let gx = values(x.grad(&loss_sum.backward()).expect("the input requires grad"));
    let loss_grad = gx.chunks(d).map(|row| row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt()).collect();
    (jacobian, loss_grad)
}

fn train(ctx: &StageContext) -> Result<()> {
    let trained = train_and_record_mlp(ctx)?;
    let device = trained.model.devices()[0].clone();
    let test = DeviceSplit::new(&trained.test, &device);
    let (mut jac, mut grad) = (0.0, 0.0);
    let mut start = 0;
    while start < test.len {
        let end = (start + 500).min(test.len);
        let (x, y) = test.range(start, end);
        let (j, g) = input_sensitivity(&trained.model, x, y);
        jac += j.iter().sum::<f64>();
        grad += g.iter().sum::<f64>();
        start = end;
    }
    let last = trained.history.last().expect("at least one epoch");
    let result = RunResult {
        batch_size: ctx.params::<MlpTraining>()?.batch_size,
        epochs: trained.history.len(),
        train_loss: last.train.loss,
        train_acc: last.train.accuracy,
        test_loss: last.test.loss,
        test_acc: last.test.accuracy,
        sensitivity: jac / test.len as f64,
        loss_input_grad: grad / test.len as f64,
    };
    std::fs::write(ctx.output("run.json")?, serde_json::to_vec_pretty(&result)?)?;
    Ok(())
}

fn analyze(ctx: &StageContext) -> Result<()> {
    let mut runs: Vec<RunResult> =
        ctx.inputs.values().map(|p| Ok(serde_json::from_slice(&std::fs::read(p)?)?)).collect::<Result<_>>()?;
    runs.sort_by_key(|r| r.batch_size);
    let rows = runs.iter().map(|r| {
        vec![
            ID.into(),
            "784-20-20-10".into(),
            format!("batch {}", r.batch_size).into(),
            (r.batch_size as u64).into(),
            (param_count(&WIDTHS) as u64).into(),
            (r.epochs as u64).into(),
            r.train_loss.into(),
            r.train_acc.into(),
            r.test_loss.into(),
            r.test_acc.into(),
            r.sensitivity.into(),
            r.loss_input_grad.into(),
        ]
    });
    Table::from_rows(
        &[
            "experiment",
            "model",
            "variant",
            "batch_size",
            "params",
            "epochs",
            "train_loss",
            "train_acc",
            "test_loss",
            "test_acc",
            "sensitivity",
            "loss_input_grad",
        ],
        rows,
    )?
    .write_csv(&ctx.output("summary.csv")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Activation, Init};

    #[test]
    fn sensitivity_matches_finite_differences() {
        let device = Device::flex().autodiff();
        let widths = [4, 5, 3];
        let model = Mlp::new(&widths, Activation::LeakyRelu, &mut Init::new(2), &device);
        let xs = [0.3f32, -0.7, 0.1, 0.9, -0.2, 0.4, 0.8, -0.5];
        let images = Tensor::<2>::from_data(TensorData::new(xs.to_vec(), [2, 4]), &device);
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![2i64, 0], [2]), &device);
        let (jac, grad) = input_sensitivity(&model, images, labels);

        let probs = |x: &[f32]| -> Vec<f64> {
            let t = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [1, 4]), &device);
            values(softmax(model.forward(t), 1)).iter().map(|v| *v as f64).collect()
        };
        let h = 1e-2f32;
        for (i, label) in [(0usize, 2usize), (1, 0)] {
            let x = &xs[4 * i..4 * i + 4];
            let (mut frob, mut loss_grad) = (0.0, 0.0);
            for j in 0..4 {
                let (mut up, mut down) = (x.to_vec(), x.to_vec());
                up[j] += h;
                down[j] -= h;
                let (pu, pd) = (probs(&up), probs(&down));
                for c in 0..3 {
                    frob += ((pu[c] - pd[c]) / (2.0 * h as f64)).powi(2);
                }
                loss_grad += ((-pu[label].ln() + pd[label].ln()) / (2.0 * h as f64)).powi(2);
            }
            assert!(
                (jac[i] - frob.sqrt()).abs() < 1e-3 * frob.sqrt().max(1.0),
                "sample {i}: {} vs {}",
                jac[i],
                frob.sqrt()
            );
            assert!(
                (grad[i] - loss_grad.sqrt()).abs() < 1e-3 * loss_grad.sqrt().max(1.0),
                "sample {i}: {} vs {}",
                grad[i],
                loss_grad.sqrt()
            );
        }
    }
}
