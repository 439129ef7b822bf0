//! PyTorch-default initialisation from our own seeded generator.
//!
//! `nn.Linear(in, out)` and `nn.Conv2d` draw W and b from U(-1/sqrt(fan_in), +1/sqrt(fan_in)).
//! We draw from a ChaCha generator seeded per run, so a run's weights depend on its seed alone
//! (not on which thread or in which order runs execute), and parameter ids are numbered in order
//! so that weight snapshots are byte-identical across runs.

use crate::rng::SeededRng;
use burn::module::{Param, ParamId};
use burn::nn::Linear;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use rand::{Rng, SeedableRng};

pub struct Init {
    rng: SeededRng,
    next_id: u64,
}

impl Init {
    pub fn new(seed: u64) -> Init {
        Init { rng: SeededRng::seed_from_u64(seed), next_id: 1 }
    }

    /// `count` draws from U(-bound, bound).
    pub fn uniform(&mut self, count: usize, bound: f32) -> Vec<f32> {
        (0..count).map(|_| self.rng.random_range(-bound..bound)).collect()
    }

    /// A trainable parameter with the next id (created on `device`, normally an autodiff device).
    pub fn param<const D: usize>(&mut self, values: Vec<f32>, shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
        let id = ParamId::from(self.next_id);
        self.next_id += 1;
        let tensor = Tensor::<D>::from_data(TensorData::new(values, shape), device);
        let tensor = if device.is_autodiff() { tensor.require_grad() } else { tensor };
        Param::initialized(id, tensor)
    }

    /// `nn.Linear(d_in, d_out)` as PyTorch initialises it. burn stores W as `[d_in, d_out]`.
    pub fn linear(&mut self, d_in: usize, d_out: usize, device: &Device) -> Linear {
        let bound = 1.0 / (d_in as f32).sqrt();
        let w = self.uniform(d_in * d_out, bound);
        let b = self.uniform(d_out, bound);
        Linear { weight: self.param(w, [d_in, d_out], device), bias: Some(self.param(b, [d_out], device)) }
    }
}

impl Init {
    /// `nn.Conv2d(c_in, c_out, k)` as PyTorch initialises it: W and b from U(-1/sqrt(fan_in), ..),
    /// fan_in = c_in * k * k. Stride 1, no padding.
    pub fn conv2d(&mut self, c_in: usize, c_out: usize, k: usize, device: &Device) -> Conv2d {
        let mut conv = Conv2dConfig::new([c_in, c_out], [k, k]).init(device);
        let fan_in = c_in * k * k;
        let bound = 1.0 / (fan_in as f32).sqrt();
        let w = self.uniform(c_out * fan_in, bound);
        let b = self.uniform(c_out, bound);
        conv.weight = self.param(w, [c_out, c_in, k, k], device);
        conv.bias = Some(self.param(b, [c_out], device));
        conv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_follows_pytorch_bounds_and_is_reproducible() {
        let device = Device::flex();
        let layer = Init::new(7).linear(4, 300, &device);
        let w = crate::nn::values(layer.weight.val());
        let b = crate::nn::values(layer.bias.as_ref().unwrap().val());
        // 1/sqrt(4) = 0.5 for both W and b; 1200 draws fill the interval.
        assert!(w.iter().chain(&b).all(|v| v.abs() < 0.5));
        assert!(w.iter().any(|v| *v > 0.45) && w.iter().any(|v| *v < -0.45));
        let mean = w.iter().sum::<f32>() / w.len() as f32;
        let var = w.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / w.len() as f32;
        // Var of U(-a, a) is a^2/3 = 0.0833.
        assert!((var - 0.0833).abs() < 0.01, "{var}");
        let again = Init::new(7).linear(4, 300, &device);
        assert_eq!(w, crate::nn::values(again.weight.val()));
    }
}
