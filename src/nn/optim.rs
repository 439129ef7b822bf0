//! Adam as `torch.optim.Adam` does it: betas (0.9, 0.999), eps 1e-8, bias correction, and
//! *coupled* L2 weight decay (g <- g + wd * theta before the moments), PyTorch's `weight_decay`.
//!
//! All of a module's parameters are updated at once: their gradients are concatenated into one
//! flat vector, the moments live flat, and each parameter takes its slice of one update. burn's
//! own Adam updates parameter by parameter (a dozen tensor operations and a state lookup each);
//! for the study's small networks those per-tensor costs, not the arithmetic, were the step's
//! cost on libtorch (PyTorch's Adam updates its parameters together with multi-tensor kernels),
//! and on a GPU each is a kernel launch.
//!
//! The moments' update is one backend operation ([`AdamBackend`]): burn's composition of it is a
//! dozen element-wise passes, each a fresh buffer, and for the study's largest MLP (952k
//! parameters, params_generalization) those passes were a fifth of a training step on flex (perf).
//! On flex it is one pass that writes both moments and the update in place, with burn's
//! composition's bits (each operation rounded to f32 in the same order; tested).
//!
//! On flex the step goes further: each parameter is updated in its own buffer, over its slice of
//! the flat moments ([`AdamBackend::adam_step_slice`]), so that no flat gradient is gathered and no
//! flat update is written and subtracted (for the 952k-parameter MLP those were three passes over
//! 4 MB per step). Elsewhere (libtorch, where each operation is a kernel call) the flat path
//! stays. Both give the same bits.

// burn-tch is deprecated upstream; see conv_block.rs.
#![cfg_attr(feature = "tch", allow(deprecated))]

use std::collections::HashMap;
use std::ops::Range;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;

use super::flex_buffers;

pub struct Adam {
    weight_decay: f32,
    /// Each parameter's range in the flat vectors, fixed at the first step.
    layout: HashMap<ParamId, Range<usize>>,
    /// Created at the first step, when the flat size is known.
    moments: Option<AdamMoments<1>>,
    /// Whether the parameters step in their own buffers ([`updates_in_place`]), decided at the
    /// first step from the module's device (a visit of the whole module, not repeated).
    in_place: Option<bool>,
}

impl Adam {
    pub fn new(weight_decay: f32) -> Adam {
        Adam { weight_decay, layout: HashMap::new(), moments: None, in_place: None }
    }

    /// One update of every parameter of `module` that has a gradient in `grads`.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        let in_place = match self.in_place {
            Some(in_place) => in_place,
            None => {
                let Some(device) = module.devices().into_iter().next() else { return module };
                *self.in_place.insert(updates_in_place(&device))
            }
        };
        self.step_by(in_place, lr, module, grads)
    }

    /// [`Adam::step`], each parameter in its own buffer (`in_place`) or through the flat
    /// gradient and update.
    fn step_by<M: Module>(&mut self, in_place: bool, lr: f64, module: M, mut grads: GradientsParams) -> M {
        let with_values = self.weight_decay > 0.0 && !in_place;
        let mut flat = Flatten { grads: &mut grads, with_values, ids: Vec::new(), grad: Vec::new(), value: Vec::new() };
        module.visit(&mut flat);
        let Flatten { ids, grad, value, .. } = flat;
        if grad.is_empty() {
            return module;
        }
        if self.layout.is_empty() {
            let mut offset = 0;
            for (id, g) in ids.iter().zip(&grad) {
                let n = g.dims()[0];
                self.layout.insert(*id, offset..offset + n);
                offset += n;
            }
        }
        assert!(
            ids.len() == self.layout.len() && ids.iter().zip(&grad).all(|(id, g)| self.layout[id].len() == g.dims()[0]),
            "Adam: the parameters with gradients changed between steps"
        );

        if in_place {
            let total: usize = grad.iter().map(|g| g.dims()[0]).sum();
            let moments =
                self.moments.get_or_insert_with(|| AdamMoments::zeros_like(&Tensor::empty([total], &grad[0].device())));
            let coefficients = moments.next_coefficients(lr);
            let grads = ids.into_iter().zip(grad).collect();
            return module.map(&mut StepInPlace {
                layout: &self.layout,
                grads,
                moments,
                coefficients,
                weight_decay: self.weight_decay,
            });
        }
        let mut g = Tensor::cat(grad, 0);
        if with_values {
            g = g + Tensor::cat(value, 0) * self.weight_decay;
        }
        let update = self.moments.get_or_insert_with(|| AdamMoments::zeros_like(&g)).update(lr, g);
        module.map(&mut Apply { layout: &self.layout, update })
    }

    /// Its state, to checkpoint: both moments (in the module's parameter order) and the step
    /// count; `None` before the first step.
    pub fn state(&self) -> Option<MomentsOnHost> {
        self.moments.as_ref().map(AdamMoments::to_host)
    }

    /// An Adam that continues from `state` on `device`. The layout is set again at the next step
    /// from the module's parameter order, which is the order the moments were saved in.
    pub fn resume(weight_decay: f32, state: Option<MomentsOnHost>, device: &Device) -> Adam {
        let moments = state.map(|s| {
            let n = s.m.len();
            AdamMoments::from_host(s, [n], device)
        });
        Adam { weight_decay, layout: HashMap::new(), moments, in_place: None }
    }
}

/// Adam's moments read back from the device (flattened), and its step count.
#[derive(Clone)]
pub struct MomentsOnHost {
    pub m: Vec<f32>,
    pub v: Vec<f32>,
    pub t: i32,
}

/// torch.optim.Adam's state for parameters laid out in one tensor (the update is element-wise,
/// so any layout serves): both moments and the step count. [`Adam`] keeps a flat vector of them,
/// [`super::stacked::StackedAdam`] a row per member of a stack.
pub struct AdamMoments<const D: usize> {
    m: Tensor<D>,
    v: Tensor<D>,
    t: i32,
}

impl<const D: usize> AdamMoments<D> {
    const BETAS: (f64, f64) = (0.9, 0.999);
    const EPS: f64 = 1e-8;

    /// Zero moments for parameters shaped like `params`.
    pub fn zeros_like(params: &Tensor<D>) -> Self {
        AdamMoments { m: params.zeros_like(), v: params.zeros_like(), t: 0 }
    }

    /// What to subtract from the parameters for gradient `g` (coupled weight decay already in it)
    /// at learning rate `lr`: bias-corrected, eps added to the corrected root of v, as PyTorch.
    pub fn update(&mut self, lr: f64, g: Tensor<D>) -> Tensor<D> {
        let coefficients = self.next_coefficients(lr);
        let (m, v) = self.take();
        let (m, v, update) = <Dispatch as AdamBackend>::adam_update(
            m.into_dispatch(),
            v.into_dispatch(),
            g.into_dispatch(),
            coefficients,
        );
        self.m = Tensor::from_dispatch(m);
        self.v = Tensor::from_dispatch(v);
        Tensor::from_dispatch(update)
    }

    /// The next step's scalars at learning rate `lr` (counting the step).
    fn next_coefficients(&mut self, lr: f64) -> AdamCoefficients {
        self.t += 1;
        let (b1, b2) = Self::BETAS;
        // Each coefficient as burn rounds an f64 scalar for an f32 tensor.
        AdamCoefficients {
            beta1: b1 as f32,
            one_minus_beta1: (1.0 - b1) as f32,
            beta2: b2 as f32,
            one_minus_beta2: (1.0 - b2) as f32,
            bias2_sqrt: (1.0 - b2.powi(self.t)).sqrt() as f32,
            eps: Self::EPS as f32,
            step_size: (lr / (1.0 - b1.powi(self.t))) as f32,
        }
    }

    /// Both moments, moved out (empty tensors left behind), so that flex owns the buffers alone
    /// and writes them in place.
    fn take(&mut self) -> (Tensor<D>, Tensor<D>) {
        let device = self.m.device();
        let empty = || Tensor::<D>::empty([0; D], &device);
        (std::mem::replace(&mut self.m, empty()), std::mem::replace(&mut self.v, empty()))
    }

    /// The step (with `coefficients`, the step already counted) of one parameter whose moments are
    /// `offset..offset + n` of the flat ones: `value` minus its update, for gradient `g` (`[n]`)
    /// and coupled weight decay `weight_decay` (none unless positive).
    fn step_slice<const P: usize>(
        &mut self,
        value: Tensor<P>,
        g: Tensor<1>,
        offset: usize,
        weight_decay: f32,
        coefficients: AdamCoefficients,
    ) -> Tensor<P> {
        let (m, v) = self.take();
        let (value, m, v) = <Dispatch as AdamBackend>::adam_step_slice(
            value.into_dispatch(),
            g.into_dispatch(),
            m.into_dispatch(),
            v.into_dispatch(),
            offset,
            weight_decay,
            coefficients,
        );
        self.m = Tensor::from_dispatch(m);
        self.v = Tensor::from_dispatch(v);
        Tensor::from_dispatch(value)
    }

    /// The moments flattened on the host, and the step count.
    pub fn to_host(&self) -> MomentsOnHost {
        MomentsOnHost { m: super::values(self.m.clone()), v: super::values(self.v.clone()), t: self.t }
    }

    /// Moments of shape `dims` from `state` (as [`AdamMoments::to_host`] flattened them).
    pub fn from_host(state: MomentsOnHost, dims: [usize; D], device: &Device) -> Self {
        let device = device.clone().inner();
        let tensor = |values: Vec<f32>| Tensor::<D>::from_data(TensorData::new(values, dims), &device);
        AdamMoments { m: tensor(state.m), v: tensor(state.v), t: state.t }
    }

    /// The length of the first dimension (a stack's members).
    pub fn rows(&self) -> usize {
        self.m.dims()[0]
    }

    /// Applies `f` to both moments (e.g. to keep some members' rows).
    pub fn map(&mut self, f: impl Fn(Tensor<D>) -> Tensor<D>) {
        self.m = f(self.m.clone());
        self.v = f(self.v.clone());
    }
}

/// Adam's scalars at one step, each an f32 as burn would round it.
#[derive(Clone, Copy, Debug)]
pub struct AdamCoefficients {
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    /// sqrt(1 - beta2^t)
    bias2_sqrt: f32,
    eps: f32,
    /// lr / (1 - beta1^t)
    step_size: f32,
}

#[backend_extension(Flex, LibTorch: cfg(feature = "tch"), Autodiff)]
pub trait AdamBackend: Backend {
    /// Adam's moments after gradient `g`, and the update: `(m', v', u)` with
    /// `m' = m b1 + g (1 - b1)`, `v' = v b2 + g² (1 - b2)`, `u = m' / (sqrt(v') / bias2_sqrt + eps) · step_size`.
    /// This default body is burn's composition (libtorch).
    fn adam_update(
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        g: FloatTensor<Self>,
        c: AdamCoefficients,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let m = Self::float_add(
            Self::float_mul_scalar(m, c.beta1.into()),
            Self::float_mul_scalar(g.clone(), c.one_minus_beta1.into()),
        );
        let g_squared = Self::float_mul(g.clone(), g);
        let v = Self::float_add(
            Self::float_mul_scalar(v, c.beta2.into()),
            Self::float_mul_scalar(g_squared, c.one_minus_beta2.into()),
        );
        let denominator = Self::float_add_scalar(
            Self::float_div_scalar(Self::float_sqrt(v.clone()), c.bias2_sqrt.into()),
            c.eps.into(),
        );
        let update = Self::float_mul_scalar(Self::float_div(m.clone(), denominator), c.step_size.into());
        (m, v, update)
    }

    /// One parameter's step: `value` (`n` entries, any shape) minus its update, for gradient `g`
    /// (`[n]`) with coupled weight decay `weight_decay` (none unless positive), whose moments are
    /// `m[offset..offset + n]` and `v[..]` of the flat ones; returns `(value', m', v')`. Each entry
    /// has the bits of the flat path (`adam_update` on the gathered gradient, then the
    /// subtraction). This default body is that path's composition on the one slice.
    fn adam_step_slice(
        value: FloatTensor<Self>,
        g: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        offset: usize,
        weight_decay: f32,
        c: AdamCoefficients,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let n = g.shape().num_elements();
        let slice = [burn::tensor::Slice::new(offset as isize, Some((offset + n) as isize), 1)];
        let shape = value.shape();
        let g = if weight_decay > 0.0 {
            let flat_value = Self::float_reshape(value.clone(), [n].into());
            Self::float_add(g, Self::float_mul_scalar(flat_value, weight_decay.into()))
        } else {
            g
        };
        let (m_part, v_part) = (Self::float_slice(m.clone(), &slice), Self::float_slice(v.clone(), &slice));
        let (m_part, v_part, update) = Self::adam_update(m_part, v_part, g, c);
        let value = Self::float_sub(value, Self::float_reshape(update, shape));
        (value, Self::float_slice_assign(m, &slice, m_part), Self::float_slice_assign(v, &slice, v_part))
    }
}

impl AdamBackend for Flex {
    fn adam_update(
        m: FlexTensor,
        v: FlexTensor,
        g: FlexTensor,
        c: AdamCoefficients,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (mut m, mut v, mut g) =
            (flex_buffers::owned_exact(m), flex_buffers::owned_exact(v), flex_buffers::owned_exact(g));
        assert!(
            m.layout().shape() == g.layout().shape() && v.layout().shape() == g.layout().shape(),
            "Adam: moments shaped as the gradient"
        );
        let (ms, vs, gs) = (m.storage_mut::<f32>(), v.storage_mut::<f32>(), g.storage_mut::<f32>());
        for ((m, v), g) in ms.iter_mut().zip(vs.iter_mut()).zip(gs.iter_mut()) {
            *g = adam_entry(m, v, *g, &c);
        }
        (m, v, g)
    }

    fn adam_step_slice(
        value: FlexTensor,
        g: FlexTensor,
        m: FlexTensor,
        v: FlexTensor,
        offset: usize,
        weight_decay: f32,
        c: AdamCoefficients,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (mut value, mut m, mut v) =
            (flex_buffers::owned_exact(value), flex_buffers::owned_exact(m), flex_buffers::owned_exact(v));
        let g = flex_buffers::contiguous(&g);
        let gs = flex_buffers::f32s(&g);
        let n = gs.len();
        assert!(
            value.layout().shape().num_elements() == n && m.layout().shape() == v.layout().shape(),
            "Adam: a parameter shaped as its gradient, moments shaped alike"
        );
        let (xs, ms, vs) = (value.storage_mut::<f32>(), m.storage_mut::<f32>(), v.storage_mut::<f32>());
        let (ms, vs) = (&mut ms[offset..offset + n], &mut vs[offset..offset + n]);
        let entries = xs.iter_mut().zip(ms.iter_mut()).zip(vs.iter_mut()).zip(gs);
        if weight_decay > 0.0 {
            for (((x, m), v), &g) in entries {
                *x -= adam_entry(m, v, g + *x * weight_decay, &c);
            }
        } else {
            for (((x, m), v), &g) in entries {
                *x -= adam_entry(m, v, g, &c);
            }
        }
        (value, m, v)
    }
}

/// One entry's moments after gradient `g`, and its update: the composition's operations, in its
/// order, each rounded to f32 (no fused multiply-add).
#[inline(always)]
fn adam_entry(m: &mut f32, v: &mut f32, g: f32, c: &AdamCoefficients) -> f32 {
    *m = *m * c.beta1 + g * c.one_minus_beta1;
    *v = *v * c.beta2 + (g * g) * c.one_minus_beta2;
    (*m / (v.sqrt() / c.bias2_sqrt + c.eps)) * c.step_size
}

/// Whether parameters on `device` take [`Adam`]'s step in their own buffers (flex) rather than
/// through the flat gradient and update (each a single operation, which a device that launches
/// kernels prefers).
fn updates_in_place(device: &Device) -> bool {
    device.clone().inner() == Device::flex()
}

#[cfg(feature = "tch")]
impl AdamBackend for burn::backend::LibTorch {}

#[cfg(feature = "tch")]
impl<C: CheckpointStrategy> AdamBackend for Autodiff<burn::backend::LibTorch, C> {}

// The moments live on the inner backend; autodiff over flex composes, as libtorch does.
impl<C: CheckpointStrategy> AdamBackend for Autodiff<Flex, C> {}

/// Collects, in the module's order, each parameter with a gradient: its id, its gradient and,
/// `with_values` (for weight decay), its value (both flattened, on the inner backend).
struct Flatten<'a> {
    grads: &'a mut GradientsParams,
    with_values: bool,
    ids: Vec<ParamId>,
    grad: Vec<Tensor<1>>,
    value: Vec<Tensor<1>>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            let n = grad.shape().num_elements();
            self.ids.push(param.id);
            self.grad.push(grad.reshape([n]));
            if self.with_values {
                self.value.push(param.val().inner().reshape([n]));
            }
        }
    }
}

/// Subtracts each parameter's slice of the flat update, keeping the parameter's autodiff state.
struct Apply<'a> {
    layout: &'a HashMap<ParamId, Range<usize>>,
    update: Tensor<1>,
}

impl ModuleMapper for Apply<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(range) = self.layout.get(&param.id).cloned() else { return param };
        let update = self.update.clone();
        param.map(|value| {
            let shape = value.shape();
            keeping_autodiff_state(value, |inner| inner - update.slice(range).reshape(shape))
        })
    }
}

/// Takes each parameter's step in its own buffer ([`AdamMoments::step_slice`]), keeping the
/// parameter's autodiff state.
struct StepInPlace<'a> {
    layout: &'a HashMap<ParamId, Range<usize>>,
    grads: HashMap<ParamId, Tensor<1>>,
    moments: &'a mut AdamMoments<1>,
    coefficients: AdamCoefficients,
    weight_decay: f32,
}

impl ModuleMapper for StepInPlace<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(g) = self.grads.remove(&param.id) else { return param };
        let offset = self.layout[&param.id].start;
        param.map(|value| {
            keeping_autodiff_state(value, |inner| {
                self.moments.step_slice(inner, g, offset, self.weight_decay, self.coefficients)
            })
        })
    }
}

/// `value` replaced by `new(its inner tensor)`, still tracked (or not) and checkpointed as it was.
fn keeping_autodiff_state<const D: usize>(value: Tensor<D>, new: impl FnOnce(Tensor<D>) -> Tensor<D>) -> Tensor<D> {
    let require_grad = value.is_require_grad();
    let checkpointing = value.gradient_checkpointing_strategy();
    let mut updated = Tensor::from_inner(new(value.inner()));
    if let Some(strategy) = checkpointing {
        updated = updated.with_gradient_checkpointing_strategy(strategy);
    }
    if require_grad { updated.require_grad() } else { updated }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::flat::FlatAdam;
    use crate::nn::loss::mse;
    use crate::nn::{Activation, Init, Mlp};

    /// Ten steps on a small MLP equal the hand-checked flat Adam on the same gradients, parameter
    /// for parameter, with and without weight decay; the model's parameters stay trainable.
    #[test]
    fn equals_the_hand_checked_flat_adam() {
        let device = Device::flex().autodiff();
        let widths = [1, 6, 4, 1];
        let xs: Vec<f32> = (0..20).map(|i| i as f32 / 10.0 - 1.0).collect();
        let ys: Vec<f32> = xs.iter().map(|x| (3.0 * x).sin()).collect();
        let (x, y) = (crate::nn::column(&xs, &device), crate::nn::column(&ys, &device));
        for weight_decay in [0.0, 0.1] {
            let mut model = Mlp::new(&widths, Activation::Relu, &mut Init::new(3), &device);
            let mut theta = model.flat();
            let (mut ours, mut reference) = (Adam::new(weight_decay), FlatAdam::new(0.01, weight_decay, theta.len()));
            for _ in 0..10 {
                let loss_grads = mse(model.forward(x.clone()), y.clone()).backward();
                reference.step(&mut theta, &model.flat_grad(&loss_grads));
                model = ours.step(0.01, model.clone(), GradientsParams::from_grads(loss_grads, &model));
                for (a, b) in model.flat().iter().zip(&theta) {
                    assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "wd {weight_decay}: {a} vs {b}");
                }
            }
            assert!(model.flat() != Mlp::new(&widths, Activation::Relu, &mut Init::new(3), &device).flat());
            let grads = mse(model.forward(x.clone()), y.clone()).backward();
            assert!(model.flat_grad(&grads).iter().any(|&g| g != 0.0), "parameters still tracked");
        }
    }

    /// On flex, each parameter's step in its own buffer gives the flat path's bits (parameters and
    /// both moments), with and without weight decay, over steps whose gradients probe the
    /// rounding; the default body (burn's composition on a slice, through autodiff over flex)
    /// gives them too.
    #[test]
    fn the_step_in_place_has_the_flat_paths_bits() {
        let device = Device::flex().autodiff();
        let widths = [1, 6, 4, 1];
        let xs: Vec<f32> = (0..20).map(|i| i as f32 / 10.0 - 1.0).collect();
        let ys: Vec<f32> = xs.iter().map(|x| (3.0 * x).sin()).collect();
        let (x, y) = (crate::nn::column(&xs, &device), crate::nn::column(&ys, &device));
        let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for weight_decay in [0.0, 0.1] {
            let mut models = [(); 2].map(|_| Mlp::new(&widths, Activation::Relu, &mut Init::new(3), &device));
            let mut adams = [Adam::new(weight_decay), Adam::new(weight_decay)];
            for step in 0..6 {
                for (in_place, (model, adam)) in [true, false].into_iter().zip(models.iter_mut().zip(&mut adams)) {
                    let scale = if step % 2 == 0 { 1e3 } else { -1e-3 };
                    let grads = (mse(model.forward(x.clone()), y.clone()) * scale).backward();
                    let grads = GradientsParams::from_grads(grads, model);
                    *model = adam.step_by(in_place, 1e-2, model.clone(), grads);
                }
                assert_eq!(bits(&models[0].flat()), bits(&models[1].flat()), "wd {weight_decay}, step {step}");
            }
            let (a, b) = (adams[0].state().unwrap(), adams[1].state().unwrap());
            assert_eq!((bits(&a.m), bits(&a.v), a.t), (bits(&b.m), bits(&b.v), b.t), "wd {weight_decay}: moments");
            assert!(models[0].flat() != Mlp::new(&widths, Activation::Relu, &mut Init::new(3), &device).flat());
        }

        let n = 40;
        let values: Vec<f32> = (0..n).map(|i| (i as f32 - 20.0) * 0.37).collect();
        let g: Vec<f32> = (0..n).map(|i| if i % 7 == 0 { -0.0 } else { ((i * 13) % 11) as f32 - 5.0 }).collect();
        let run = |device: &Device| {
            let tensor = |values: &[f32], shape: [usize; 2]| {
                Tensor::<2>::from_data(TensorData::new(values.to_vec(), shape), device)
            };
            let mut moments = AdamMoments::zeros_like(&Tensor::<1>::zeros([n + 10], device));
            let mut value = tensor(&values, [5, 8]);
            for weight_decay in [0.0, 0.1] {
                let c = moments.next_coefficients(1e-3);
                value = moments.step_slice(
                    value,
                    Tensor::from_data(TensorData::new(g.clone(), [n]), device),
                    6,
                    weight_decay,
                    c,
                );
            }
            (crate::nn::values(value), moments.to_host())
        };
        let (in_place, composed) = (run(&Device::flex()), run(&Device::flex().autodiff()));
        assert_eq!(bits(&in_place.0), bits(&composed.0), "value");
        assert_eq!(bits(&in_place.1.m), bits(&composed.1.m), "first moment");
        assert_eq!(bits(&in_place.1.v), bits(&composed.1.v), "second moment");
        assert!(
            in_place.1.m[..6].iter().chain(&in_place.1.m[n + 6..]).all(|&m| m == 0.0),
            "outside the slice untouched"
        );
        assert!(in_place.0 != values);
    }

    /// Flex's one-pass update gives burn's composition's bits (the same operation through
    /// autodiff over flex, which composes), for moments and update, over several steps, on values
    /// that probe the rounding: zeros of both signs, subnormals, large and tiny magnitudes.
    #[test]
    fn the_one_pass_update_has_the_compositions_bits() {
        use rand::{Rng, SeedableRng};
        let mut rng = crate::rng::SeededRng::seed_from_u64(7);
        let mut g: Vec<f32> = vec![0.0, -0.0, 1e-40, -1e-40, 1e30, -1e30, 1e-20, 3.0];
        g.extend((0..997).map(|_| rng.random_range(-1.0f32..1.0) * 2.0_f32.powi(rng.random_range(-20..20))));
        let n = g.len();
        let run = |device: &Device| {
            let tensor = |values: Vec<f32>| Tensor::<2>::from_data(TensorData::new(values, [5, n / 5]), device);
            let mut moments = AdamMoments::zeros_like(&tensor(g.clone()));
            let mut updates = Vec::new();
            for step in 0..4 {
                let scaled: Vec<f32> =
                    g.iter().map(|v| v * (1.0 + step as f32) * if step % 2 == 0 { 1.0 } else { -0.5 }).collect();
                updates.push(crate::nn::values(moments.update(1e-3, tensor(scaled))));
            }
            let MomentsOnHost { m, v, t } = moments.to_host();
            (updates, m, v, t)
        };
        let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let (flex, composed) = (run(&Device::flex()), run(&Device::flex().autodiff()));
        assert_eq!(flex.3, 4);
        for (a, b) in flex.0.iter().zip(&composed.0) {
            assert_eq!(bits(a), bits(b), "update");
        }
        assert_eq!(bits(&flex.1), bits(&composed.1), "first moment");
        assert_eq!(bits(&flex.2), bits(&composed.2), "second moment");
        assert!(flex.0[3].iter().any(|&u| u != 0.0));
    }
}
