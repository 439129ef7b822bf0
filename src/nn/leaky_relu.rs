//! Leaky ReLU (PyTorch's default slope, 0.01) as one backend operation.
//!
//! Why its own operation: burn composes leaky ReLU from a comparison, a scaled copy and a
//! `mask_where`, and its autodiff takes the gradient through two more `mask_where`s and a scaling.
//! On flex `mask_where` selects element by element behind a branch, which a sign pattern as
//! random as a hidden layer's mispredicts half the time: in sim_functions (leaky ReLU after every
//! hidden layer of small, full-batch networks) it took a quarter of the CPU time (perf,
//! bench/results/compare-2026-12-02/). Here the forward and backward passes are one branch-free pass each.
//!
//! The numbers are burn's composition's, bit for bit (tests below): `x < 0 ? slope * x : x`
//! forward, and backward the sum burn's two gradient paths form, `g + 0` where `x >= 0` and
//! `0 + slope * g` where `x < 0` (the added zero is what turns a gradient of -0 into +0 there).
//! On libtorch the operation is burn's own.

#![cfg_attr(feature = "tch", allow(deprecated))]

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::prelude::*;

use super::flex_buffers;

/// `nn.LeakyReLU()`'s negative slope.
pub const SLOPE: f32 = 0.01;

#[backend_extension(Flex, LibTorch: cfg(feature = "tch"), Autodiff)]
pub trait LeakyReluBackend: Backend {
    /// Leaky ReLU of slope [`SLOPE`]; this default body is burn's (libtorch, and autodiff over it).
    fn leaky_relu_default_slope(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::leaky_relu(x, SLOPE.into())
    }
}

/// Leaky ReLU of slope [`SLOPE`] on `x`, any shape.
pub fn leaky_relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as LeakyReluBackend>::leaky_relu_default_slope(x.into_dispatch()))
}

impl LeakyReluBackend for Flex {
    fn leaky_relu_default_slope(x: FlexTensor) -> FlexTensor {
        kernel::forward(&x)
    }
}

#[cfg(feature = "tch")]
impl LeakyReluBackend for burn::backend::LibTorch {}

#[cfg(feature = "tch")]
impl<C: CheckpointStrategy> LeakyReluBackend for Autodiff<burn::backend::LibTorch, C> {}

impl<C: CheckpointStrategy> LeakyReluBackend for Autodiff<Flex, C> {
    fn leaky_relu_default_slope(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let out = kernel::forward(x.primitive());
        match LeakyReluBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            // The input's sign decides the gradient; a flex tensor's clone shares its buffer.
            OpsKind::Tracked(prep) => prep.finish(x.primitive().clone(), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

#[derive(Debug)]
struct LeakyReluBackward;

impl Backward<Flex, 1> for LeakyReluBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, kernel::backward(&ops.state, &grad));
        }
    }
}

mod kernel {
    use super::*;

    pub fn forward(x: &FlexTensor) -> FlexTensor {
        let x = flex_buffers::contiguous(x);
        let out = flex_buffers::f32s(&x).iter().map(|&v| if v < 0.0 { v * SLOPE } else { v }).collect();
        flex_buffers::tensor_like(out, &x)
    }

    pub fn backward(x: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
        let (x, grad) = (flex_buffers::contiguous(x), flex_buffers::contiguous(grad));
        assert_eq!(x.layout().shape(), grad.layout().shape(), "leaky ReLU gradient of another shape");
        let dx = flex_buffers::f32s(&x)
            .iter()
            .zip(flex_buffers::f32s(&grad))
            .map(|(&v, &g)| if v < 0.0 { 0.0 + g * SLOPE } else { g + 0.0 })
            .collect();
        flex_buffers::tensor_like(dx, &x)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::activation;

    use super::*;
    use crate::nn::values;

    /// Inputs with both zeros, tiny and huge values of both signs, and NaN.
    fn inputs() -> Vec<f32> {
        let mut v = vec![0.0, -0.0, 1e-40, -1e-40, f32::MIN_POSITIVE, -3.5, 2.25, 1e30, -1e30, f32::NAN];
        let mut s = 0x9e37_79b9u32;
        for _ in 0..203 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            v.push((s as f32 / u32::MAX as f32 - 0.5) * 8.0);
        }
        v
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Forward values and input gradient (for an upstream gradient `upstream`) of `f` on autodiff flex.
    fn run(f: fn(Tensor<2>) -> Tensor<2>, x: &[f32], upstream: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let device = Device::flex().autodiff();
        let shape = [x.len() / 11, 11];
        let xt = Tensor::<2>::from_data(TensorData::new(x.to_vec(), shape), &device).require_grad();
        let up = Tensor::<2>::from_data(TensorData::new(upstream.to_vec(), shape), &device);
        let y = f(xt.clone());
        let grads = (y.clone() * up).sum().backward();
        (values(y), values(xt.grad(&grads).expect("x takes part")))
    }

    #[test]
    fn matches_burns_composition_bit_for_bit_forward_and_backward() {
        let x: Vec<f32> = inputs().into_iter().take(209).collect();
        // Upstream gradients with zeros of both signs where the input is negative and positive.
        let mut up: Vec<f32> = x.iter().rev().map(|v| v * 0.7 + 0.1).collect();
        up[0] = -0.0;
        up[3] = -0.0;
        up[5] = 0.0;
        let (ours_y, ours_dx) = run(leaky_relu, &x, &up);
        let (burn_y, burn_dx) = run(|t| activation::leaky_relu(t, SLOPE as f64), &x, &up);
        assert_eq!(bits(&ours_y), bits(&burn_y), "forward");
        assert_eq!(bits(&ours_dx), bits(&burn_dx), "backward");
        // And against the definition: slope on the negative side, identity elsewhere.
        assert_eq!(ours_y[5], -3.5 * SLOPE);
        assert_eq!(ours_y[6], 2.25);
        assert_eq!(ours_dx[5], up[5] * SLOPE + 0.0);
        assert_eq!(ours_dx[6], up[6]);
        assert!(ours_y[9].is_nan());
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x: Vec<f32> = inputs().into_iter().skip(10).take(110).collect();
        let up = vec![1.0; x.len()];
        let (_, dx) = run(leaky_relu, &x, &up);
        for (i, (&v, &d)) in x.iter().zip(&dx).enumerate() {
            let h = 1e-3f32;
            let fd = (lr(v + h) - lr(v - h)) / (2.0 * h);
            if v.abs() > 2.0 * h {
                assert!((fd - d).abs() < 1e-3, "x[{i}] = {v}: {d} vs finite difference {fd}");
            }
        }
        fn lr(v: f32) -> f32 {
            if v < 0.0 { v * SLOPE } else { v }
        }
    }
}
