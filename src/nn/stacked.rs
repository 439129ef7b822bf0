//! A batched sweep's model: R independent MLPs of one shape trained as one.
//!
//! Member r's layer l is W[r] (`[in, out]`, as burn's `Linear` stores it) and b[r] (`[1, out]`),
//! stacked into `[R, in, out]` and `[R, 1, out]`; the forward pass is one batched matrix product
//! per layer, so one launch serves every member. Members never interact: the loss is the sum of
//! the members' own losses, so each member's gradient is the one it would have alone, and Adam is
//! elementwise. On flex a member computes bit for bit the same numbers whatever else shares its
//! batch (the batched product runs the same kernel on every slice; see the tests), which is what
//! lets the scheduler fuse stage instances without touching their keys; on libtorch it agrees to
//! rounding (its batched kernels may sum in another order for another batch size, as it may for
//! another thread count).

use burn::prelude::*;

use super::optim::{AdamMoments, MomentsOnHost};

use super::{Activation, Init, Mlp, mlp::param_count};

pub struct StackedMlp {
    widths: Vec<usize>,
    activation: Activation,
    /// Per layer, on the plain (non-autodiff) device: W `[R, in, out]`, then b `[R, 1, out]`.
    params: Vec<Tensor<3>>,
    members: usize,
}

impl StackedMlp {
    /// One member per seed, each initialised exactly as `Mlp::new(widths, activation,
    /// &mut Init::new(seed), ..)` would be.
    pub fn new(widths: &[usize], activation: Activation, seeds: &[u64], device: &Device) -> StackedMlp {
        StackedMlp::from_flats(widths, activation, &initial_flats(widths, activation, seeds, device), device)
    }

    /// Members with these parameters (each in the order of [`Mlp::flat`]).
    pub fn from_flats(widths: &[usize], activation: Activation, flats: &[Vec<f32>], device: &Device) -> StackedMlp {
        let device = device.clone().inner();
        let r = flats.len();
        assert!(r > 0, "a stack needs a member");
        assert!(flats.iter().all(|f| f.len() == param_count(widths)), "flat vector length");
        let mut params = Vec::new();
        let mut at = 0;
        for w in widths.windows(2) {
            let (n_w, n_b) = (w[0] * w[1], w[1]);
            let gather =
                |from: usize, len: usize| flats.iter().flat_map(|f| f[from..from + len].iter().copied()).collect();
            params.push(Tensor::from_data(TensorData::new(gather(at, n_w), [r, w[0], w[1]]), &device));
            params.push(Tensor::from_data(TensorData::new(gather(at + n_w, n_b), [r, 1, w[1]]), &device));
            at += n_w + n_b;
        }
        StackedMlp { widths: widths.to_vec(), activation, params, members: r }
    }

    pub fn members(&self) -> usize {
        self.members
    }

    /// `x` `[R, N, in]` -> `[R, N, out]` with the given parameters (these, or autodiff copies).
    fn forward_with(&self, params: &[Tensor<3>], x: Tensor<3>) -> Tensor<3> {
        let last = params.len() / 2 - 1;
        params.chunks(2).enumerate().fold(x, |x, (l, wb)| {
            let y = x.matmul(wb[0].clone()) + wb[1].clone();
            if l < last { self.activation.apply(y) } else { y }
        })
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.forward_with(&self.params, x)
    }

    /// Every member's MSE against `y` (`[R]`), the outputs it came from, and the gradient of each
    /// member's MSE for its own parameters (in the order of the stacked tensors). `x` and `y` are
    /// plain tensors `[R, N, ·]`.
    pub fn mse_and_grads(&self, x: &Tensor<3>, y: &Tensor<3>) -> Step {
        let tracked: Vec<Tensor<3>> =
            self.params.iter().map(|p| Tensor::from_inner(p.clone()).require_grad()).collect();
        let output = self.forward_with(&tracked, Tensor::from_inner(x.clone()));
        let losses = member_mse(output.clone(), Tensor::from_inner(y.clone()));
        let grads = losses.clone().sum().backward();
        let grads = tracked.iter().map(|p| p.grad(&grads).unwrap_or_else(|| p.clone().inner().zeros_like())).collect();
        Step { losses: losses.inner(), output: output.inner(), grads }
    }

    /// Member r's parameters in the order of [`Mlp::flat`], for every member (one read per tensor).
    pub fn flats(&self) -> Vec<Vec<f32>> {
        member_flats(self.params.clone(), self.members)
    }

    /// Member r as a plain network (for snapshots in the format a single run writes).
    pub fn member(&self, flat: &[f32], device: &Device) -> Mlp {
        Mlp::from_flat(&self.widths, self.activation, flat, device)
    }

    /// Keeps only the members at `rows` (in that order): finished members stop costing work.
    pub fn keep(&mut self, rows: &[usize]) {
        for p in &mut self.params {
            *p = select_rows(p.clone(), rows);
        }
        self.members = rows.len();
    }

    pub fn params_mut(&mut self) -> &mut [Tensor<3>] {
        &mut self.params
    }
}

/// One network's parameters per seed, in the order of [`Mlp::flat`], each initialised exactly as
/// `Mlp::new(widths, activation, &mut Init::new(seed), ..)` would be.
pub fn initial_flats(widths: &[usize], activation: Activation, seeds: &[u64], device: &Device) -> Vec<Vec<f32>> {
    seeds.iter().map(|&seed| Mlp::new(widths, activation, &mut Init::new(seed), device).flat()).collect()
}

/// Per member, the values of stacked tensors (parameters or their gradients) in the order of
/// [`Mlp::flat`]: member r's slice of each tensor in turn.
pub fn member_flats(tensors: Vec<Tensor<3>>, members: usize) -> Vec<Vec<f32>> {
    let values: Vec<Vec<f32>> = tensors.into_iter().map(super::values).collect();
    (0..members)
        .map(|r| {
            values
                .iter()
                .flat_map(|t| {
                    let per = t.len() / members;
                    t[r * per..(r + 1) * per].iter().copied()
                })
                .collect()
        })
        .collect()
}

/// What one forward and backward pass of a stack gives.
pub struct Step {
    /// Each member's MSE, `[R]`.
    pub losses: Tensor<1>,
    /// `[R, N, out]`.
    pub output: Tensor<3>,
    pub grads: Vec<Tensor<3>>,
}

/// Mean of the squared error over each member's elements (`nn.MSELoss()` per member): `[R]`.
pub fn member_mse(prediction: Tensor<3>, target: Tensor<3>) -> Tensor<1> {
    let [r, n, k] = prediction.dims();
    (prediction - target).square().reshape([r, n * k]).mean_dim(1).reshape([r])
}

/// Per-member data as `[R, N, 1]` on the plain device of `device`: member r's N values are
/// `columns[r]`. Every member must have as many values.
pub fn member_columns(columns: &[&[f32]], device: &Device) -> anyhow::Result<Tensor<3>> {
    let n = columns.first().map_or(0, |c| c.len());
    if columns.iter().any(|c| c.len() != n) {
        anyhow::bail!("members of a stack need data of one size");
    }
    let values = columns.iter().flat_map(|c| c.iter().copied()).collect();
    Ok(Tensor::from_data(TensorData::new(values, [columns.len(), n, 1]), &device.clone().inner()))
}

/// Rows `rows` of dimension 0.
pub fn select_rows<const D: usize>(t: Tensor<D>, rows: &[usize]) -> Tensor<D> {
    let device = t.device();
    let indices: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    t.select(0, Tensor::<1, Int>::from_data(TensorData::new(indices, [rows.len()]), &device))
}

/// Adam on stacked tensors, exactly as `torch.optim.Adam` (coupled L2, bias correction). As
/// [`crate::nn::optim::Adam`], every parameter in one pass: the moments are `[R, N]` (a row per
/// member, N parameters each), so a member's arithmetic is the same whatever shares its batch.
pub struct StackedAdam {
    lr: f64,
    weight_decay: f32,
    moments: AdamMoments<2>,
}

impl StackedAdam {
    pub fn new(lr: f64, weight_decay: f32, params: &[Tensor<3>]) -> StackedAdam {
        StackedAdam { lr, weight_decay, moments: AdamMoments::zeros_like(&flat_rows(params.to_vec())) }
    }

    pub fn step(&mut self, params: &mut [Tensor<3>], grads: Vec<Tensor<3>>) {
        let mut g = flat_rows(grads);
        if self.weight_decay > 0.0 {
            g = g + flat_rows(params.to_vec()) * self.weight_decay;
        }
        let update = self.moments.update(self.lr, g);
        let mut offset = 0;
        for p in params.iter_mut() {
            let [r, a, b] = p.dims();
            let slice = update.clone().slice([0..r, offset..offset + a * b]).reshape([r, a, b]);
            *p = p.clone() - slice;
            offset += a * b;
        }
    }

    /// Each member's moments (its row of each) and the step count they share, to checkpoint.
    pub fn member_states(&self) -> Vec<MomentsOnHost> {
        let MomentsOnHost { m, v, t } = self.moments.to_host();
        let rows = |all: &[f32]| all.chunks(all.len() / self.members().max(1)).map(<[f32]>::to_vec).collect::<Vec<_>>();
        rows(&m).into_iter().zip(rows(&v)).map(|(m, v)| MomentsOnHost { m, v, t }).collect()
    }

    /// Members that go on from `states` (saved by [`StackedAdam::member_states`] at one step
    /// count), in that order.
    pub fn resume(lr: f64, weight_decay: f32, states: Vec<MomentsOnHost>, device: &Device) -> StackedAdam {
        let r = states.len();
        assert!(r > 0 && states.iter().all(|s| s.t == states[0].t), "members resumed together share a step");
        let t = states[0].t;
        let (m, v): (Vec<Vec<f32>>, Vec<Vec<f32>>) = states.into_iter().map(|s| (s.m, s.v)).unzip();
        let state = MomentsOnHost { m: m.concat(), v: v.concat(), t };
        let per_member = state.m.len() / r;
        StackedAdam { lr, weight_decay, moments: AdamMoments::from_host(state, [r, per_member], device) }
    }

    fn members(&self) -> usize {
        self.moments.rows()
    }

    /// Keeps the moments of the members at `rows` (see [`StackedMlp::keep`]).
    pub fn keep(&mut self, rows: &[usize]) {
        self.moments.map(|t| select_rows(t, rows));
    }
}

/// Stacked `[R, a, b]` tensors side by side as `[R, sum of a*b]`: one row per member.
fn flat_rows(tensors: Vec<Tensor<3>>) -> Tensor<2> {
    Tensor::cat(
        tensors
            .into_iter()
            .map(|t| {
                let [r, a, b] = t.dims();
                t.reshape([r, a * b])
            })
            .collect(),
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::flat::FlatAdam;
    use crate::nn::loss::mse;

    fn data(r: usize, n: usize, shift: f32) -> (Vec<f32>, Vec<f32>) {
        let xs: Vec<f32> = (0..r * n).map(|i| -1.0 + 2.0 * (i % n) as f32 / n as f32).collect();
        let ys = xs.iter().enumerate().map(|(i, x)| (3.0 * x + shift * (i / n) as f32).sin()).collect();
        (xs, ys)
    }

    fn tensor3(values: &[f32], shape: [usize; 3], device: &Device) -> Tensor<3> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
    }

    #[test]
    fn each_member_gets_its_own_loss_and_gradient() {
        let device = Device::flex().autodiff();
        let widths = [1, 6, 4, 1];
        let (n, seeds) = (25, [3u64, 8, 21]);
        let (xs, ys) = data(seeds.len(), n, 0.7);
        let stack = StackedMlp::new(&widths, Activation::LeakyRelu, &seeds, &device);
        let plain = device.clone().inner();
        let step = stack.mse_and_grads(&tensor3(&xs, [3, n, 1], &plain), &tensor3(&ys, [3, n, 1], &plain));
        let losses = crate::nn::values(step.losses);
        // Independent reference: each member alone, its flat gradient from the single-network code.
        let grads: Vec<Vec<f32>> = step.grads.into_iter().map(crate::nn::values).collect();
        for (r, &seed) in seeds.iter().enumerate() {
            let alone = Mlp::new(&widths, Activation::LeakyRelu, &mut Init::new(seed), &device);
            let (x, y) = (
                crate::nn::column(&xs[r * n..(r + 1) * n], &device),
                crate::nn::column(&ys[r * n..(r + 1) * n], &device),
            );
            let loss = mse(alone.forward(x), y);
            let grad = alone.flat_grad(&loss.backward());
            let loss = crate::nn::scalar(loss);
            assert!((losses[r] - loss).abs() < 1e-6, "member {r}: {} vs {loss}", losses[r]);
            let ours: Vec<f32> = grads
                .iter()
                .flat_map(|t| {
                    let per = t.len() / seeds.len();
                    t[r * per..(r + 1) * per].to_vec()
                })
                .collect();
            for (i, (a, b)) in ours.iter().zip(&grad).enumerate() {
                assert!((a - b).abs() < 1e-5, "member {r} param {i}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn stacked_adam_is_flat_adam_per_element() {
        let device = Device::flex();
        let theta = [0.5f32, -1.0, 2.0, 0.25];
        let grads = [[0.1f32, -0.3, 0.0, 2.0], [-0.2, 0.4, 0.05, -1.0]];
        let mut params = vec![tensor3(&theta, [2, 1, 2], &device)];
        let mut stacked = StackedAdam::new(1e-2, 1e-3, &params);
        let mut flat = FlatAdam::new(1e-2, 1e-3, 4);
        let mut reference = theta;
        for g in grads {
            stacked.step(&mut params, vec![tensor3(&g, [2, 1, 2], &device)]);
            flat.step(&mut reference, &g);
        }
        let ours = crate::nn::values(params[0].clone());
        for (a, b) in ours.iter().zip(&reference) {
            assert!((a - b).abs() < 1e-7, "{ours:?} vs {reference:?}");
        }
    }

    /// The contract that lets the scheduler fuse: a member computes the same numbers in a batch of
    /// three as alone, and after its neighbours are dropped: bit for bit when `exact`, else to
    /// within `1e-5` relative (libtorch's batched kernels may round differently by batch size).
    fn same_numbers_whatever_shares_the_batch(device: Device, exact: bool) {
        let plain = device.clone().inner();
        let widths = [1, 5, 5, 1];
        let n = 40;
        let train = |seeds: &[u64], drop_after: Option<usize>| -> Vec<Vec<f32>> {
            let r = seeds.len();
            let (xs, ys) = data(r, n, 0.0);
            let (mut x, mut y) = (tensor3(&xs, [r, n, 1], &plain), tensor3(&ys, [r, n, 1], &plain));
            let mut stack = StackedMlp::new(&widths, Activation::Relu, seeds, &device);
            let mut adam = StackedAdam::new(1e-2, 1e-4, &stack.params);
            for step in 0..30 {
                if drop_after == Some(step) {
                    // Keep only the last member, as when the others have finished.
                    let rows = [stack.members() - 1];
                    stack.keep(&rows);
                    adam.keep(&rows);
                    (x, y) = (select_rows(x, &rows), select_rows(y, &rows));
                }
                let s = stack.mse_and_grads(&x, &y);
                adam.step(stack.params_mut(), s.grads);
            }
            stack.flats()
        };
        let alone = train(&[7], None);
        for other in [&train(&[1, 2, 7], None)[2], &train(&[1, 2, 7], Some(10))[0]] {
            if exact {
                assert_eq!(other, &alone[0]);
            } else {
                for (a, b) in other.iter().zip(&alone[0]) {
                    assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn a_member_computes_the_same_bits_whatever_shares_its_batch() {
        same_numbers_whatever_shares_the_batch(Device::flex().autodiff(), true);
    }

    #[cfg(feature = "tch")]
    #[test]
    #[allow(deprecated)]
    fn on_libtorch_a_member_agrees_to_rounding() {
        same_numbers_whatever_shares_the_batch(Device::libtorch().autodiff(), false);
    }
}
