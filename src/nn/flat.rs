//! Parameters as one flat vector: for PCA of weights, gradient norms, Hessians by finite
//! differences, and optimisers that work on the vector (the gradient-norm phase of min_ratio).

use burn::prelude::*;
use burn::tensor::Gradients;

use super::{Activation, Init, Mlp};

impl Mlp {
    /// Every parameter: per layer, W row-major as burn stores it (`[in, out]`), then b.
    pub fn flat(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.num_params());
        for layer in &self.layers {
            out.extend(super::values(layer.weight.val()));
            out.extend(super::values(layer.bias.as_ref().expect("layers have biases").val()));
        }
        out
    }

    /// The gradient of every parameter, in the order of [`Mlp::flat`].
    pub fn flat_grad(&self, grads: &Gradients) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.num_params());
        for layer in &self.layers {
            let w = layer.weight.val();
            let b = layer.bias.as_ref().expect("layers have biases").val();
            let dims = w.dims();
            out.extend(w.grad(grads).map(super::values).unwrap_or_else(|| vec![0.0; dims[0] * dims[1]]));
            out.extend(b.grad(grads).map(super::values).unwrap_or_else(|| vec![0.0; dims[1]]));
        }
        out
    }

    /// A network with these widths and parameters `flat` (the order of [`Mlp::flat`]).
    pub fn from_flat(widths: &[usize], activation: Activation, flat: &[f32], device: &Device) -> Mlp {
        assert_eq!(flat.len(), super::mlp::param_count(widths), "flat vector length");
        let mut init = Init::new(0);
        let mut at = 0;
        let mut layers = Vec::new();
        for w in widths.windows(2) {
            let (n_w, n_b) = (w[0] * w[1], w[1]);
            let weight = init.param(flat[at..at + n_w].to_vec(), [w[0], w[1]], device);
            let bias = init.param(flat[at + n_w..at + n_w + n_b].to_vec(), [w[1]], device);
            at += n_w + n_b;
            layers.push(burn::nn::Linear { weight, bias: Some(bias) });
        }
        Mlp { layers, activation }
    }
}

pub fn norm(v: &[f32]) -> f64 {
    v.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>().sqrt()
}

/// Adam on a flat vector, exactly as `torch.optim.Adam` (f32, bias correction, coupled L2).
#[derive(Clone)]
pub struct FlatAdam {
    pub lr: f32,
    pub betas: (f32, f32),
    pub eps: f32,
    pub weight_decay: f32,
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl FlatAdam {
    pub fn new(lr: f32, weight_decay: f32, n: usize) -> FlatAdam {
        FlatAdam { lr, betas: (0.9, 0.999), eps: 1e-8, weight_decay, m: vec![0.0; n], v: vec![0.0; n], t: 0 }
    }

    /// Its moments and step count, to checkpoint.
    pub fn state(&self) -> super::optim::MomentsOnHost {
        super::optim::MomentsOnHost { m: self.m.clone(), v: self.v.clone(), t: self.t }
    }

    /// An Adam of `lr` and `weight_decay` that goes on from `state`.
    pub fn resume(lr: f32, weight_decay: f32, state: super::optim::MomentsOnHost) -> FlatAdam {
        FlatAdam { m: state.m, v: state.v, t: state.t, ..FlatAdam::new(lr, weight_decay, 0) }
    }

    pub fn step(&mut self, theta: &mut [f32], grad: &[f32]) {
        self.t += 1;
        let (b1, b2) = self.betas;
        let bc1 = 1.0 - b1.powi(self.t);
        let bc2 = 1.0 - b2.powi(self.t);
        for i in 0..theta.len() {
            let g = grad[i] + self.weight_decay * theta[i];
            self.m[i] = b1 * self.m[i] + (1.0 - b1) * g;
            self.v[i] = b2 * self.v[i] + (1.0 - b2) * g * g;
            let denom = (self.v[i].sqrt() / bc2.sqrt()) + self.eps;
            theta[i] -= self.lr / bc1 * self.m[i] / denom;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::objective::MseObjective;
    use crate::nn::shape::layer_ranges;

    #[test]
    fn flat_round_trip_and_layer_ranges() {
        let device = Device::flex();
        let widths = [1, 3, 2, 1];
        let mlp = Mlp::new(&widths, Activation::Relu, &mut Init::new(3), &device);
        let flat = mlp.flat();
        assert_eq!(flat.len(), 6 + 8 + 3);
        let back = Mlp::from_flat(&widths, Activation::Relu, &flat, &device);
        assert_eq!(back.flat(), flat);
        assert_eq!(layer_ranges(&widths), [0..6, 6..14, 14..17]);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let device = Device::flex().autodiff();
        let widths = [1, 4, 1];
        let xs = [-1.0f32, -0.3, 0.2, 0.9];
        let ys = [0.5f32, -0.2, 0.1, 0.7];
        let objective = MseObjective::new(&widths, Activation::LeakyRelu, &xs, &ys, &device);
        let theta = Mlp::new(&widths, Activation::LeakyRelu, &mut Init::new(11), &device).flat();
        let (_, grad) = objective.loss_and_grad(&theta);
        let h = 1e-2f32;
        for i in 0..theta.len() {
            let (mut plus, mut minus) = (theta.clone(), theta.clone());
            plus[i] += h;
            minus[i] -= h;
            let fd = (objective.loss_and_grad(&plus).0 - objective.loss_and_grad(&minus).0) / (2.0 * h);
            assert!((fd - grad[i]).abs() < 2e-3, "param {i}: autodiff {} vs fd {fd}", grad[i]);
        }
    }

    #[test]
    fn flat_adam_first_steps_match_a_hand_computation() {
        // First Adam step moves every coordinate by lr * sign(g) (bias correction makes m/sqrt(v) = g/|g|).
        let mut adam = FlatAdam::new(0.1, 0.0, 2);
        let mut theta = [1.0f32, -2.0];
        adam.step(&mut theta, &[0.5, -3.0]);
        assert!((theta[0] - 0.9).abs() < 1e-6 && (theta[1] + 1.9).abs() < 1e-6, "{theta:?}");
        // Second step with g = (0.5, 1.0): m = (0.095, -0.17)/0.19, v = (0.0002495, 0.0099910)/0.001999.
        adam.step(&mut theta, &[0.5, 1.0]);
        let m1 = (0.9 * 0.05 + 0.1 * 0.5) / (1.0 - 0.81);
        let v1: f64 = (0.999 * 0.00025 + 0.001 * 0.25) / (1.0 - 0.998001);
        let expected0 = 0.9 - 0.1 * m1 / (v1.sqrt() + 1e-8);
        assert!((theta[0] as f64 - expected0).abs() < 1e-5, "{} vs {expected0}", theta[0]);
    }
}
