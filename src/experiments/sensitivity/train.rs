//! The training of `sensitivity` (spec section 9): one MLP per batch size, then its input sensitivity.

use anyhow::Result;
use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

use crate::engine::StageContext;
use crate::nn::classify::{DeviceSplit, cross_entropy};
use crate::nn::{Mlp, values};
use crate::training::mnist::{MlpTraining, train_and_record_mlp};

pub const ID: &str = "sensitivity";
pub const WIDTHS: [usize; 4] = [784, 20, 20, 10];

#[derive(Serialize, Deserialize)]
pub struct RunResult {
    pub batch_size: usize,
    pub seed: u64,
    pub epochs: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub test_loss: f64,
    pub test_acc: f64,
    pub sensitivity: f64,
    pub loss_input_grad: f64,
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

pub fn train(ctx: &StageContext) -> Result<()> {
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
    let training = ctx.params::<MlpTraining>()?;
    let result = RunResult {
        batch_size: training.batch_size,
        seed: training.seed,
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
