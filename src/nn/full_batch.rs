//! Networks of one shape, each with its own data, trained together full-batch by Adam: one
//! epoch is one step of every member on all of its data. Two ways to compute it, one interface:
//!
//! - [`TensorStack`]: burn's tensors, every member in one stacked model ([`StackedMlp`]), one
//!   batched pass per epoch (libtorch, where a GPU or its batched kernels pay).
//! - [`HostStack`]: on the host, member by member ([`HostMlp`] and [`FlatAdam`]), for flex. For
//!   networks of a few hundred parameters on a few hundred points, burn's pass is a few dozen
//!   tensor operations on tiny matrices whose fixed costs are most of the epoch; the host pass
//!   keeps a member's whole epoch in the first-level cache.
//!
//! Either way members never interact, so a member's numbers do not depend on what else trains
//! beside it (which lets the scheduler batch stage instances without touching their keys). The two
//! differ from each other in the last bits (another summation order), as two BLAS libraries do.

use burn::prelude::*;

use super::Activation;
use super::flat::FlatAdam;
use super::host_mlp::HostMlp;
use super::optim::MomentsOnHost;
use super::stacked::{StackedAdam, StackedMlp, initial_flats, member_columns, select_rows};

/// Adam's settings, shared by every member.
#[derive(Clone, Copy, Debug)]
pub struct AdamSettings {
    pub lr: f64,
    pub weight_decay: f32,
}

/// What a stack's members share (shape and optimiser), and each member's data: inputs and
/// targets, one unit each.
pub struct Members<'a> {
    pub widths: &'a [usize],
    pub activation: Activation,
    pub adam: AdamSettings,
    pub data: Vec<(&'a [f32], &'a [f32])>,
}

/// Where members start: fresh from their seeds, or from saved parameters and Adam moments.
pub enum Start {
    Seeds(Vec<u64>),
    Saved(Vec<(Vec<f32>, MomentsOnHost)>),
}

/// Members trained together; row i is the i-th member still kept.
pub trait MemberStack {
    /// One epoch: every member's loss (MSE over its data) at its current parameters, then one
    /// Adam step on it.
    fn epoch(&mut self) -> Vec<f32>;
    /// The outputs (`[N]` per member, one output unit) of the forward pass behind the last
    /// epoch's losses, for the members at `rows`.
    fn last_outputs(&self, rows: &[usize]) -> Vec<Vec<f32>>;
    /// Every member's parameters now, in the order of [`Mlp::flat`].
    fn flats(&self) -> Vec<Vec<f32>>;
    /// Every member's Adam moments now, to checkpoint.
    fn moments(&self) -> Vec<MomentsOnHost>;
    /// Keeps only the members at `rows`, in that order.
    fn keep(&mut self, rows: &[usize]);
}

/// Every member in one stacked model on burn's tensors.
pub struct TensorStack {
    model: StackedMlp,
    optimizer: StackedAdam,
    x: Tensor<3>,
    y: Tensor<3>,
    last_output: Option<Tensor<3>>,
}

impl TensorStack {
    pub fn new(members: &Members, start: Start, device: &Device) -> anyhow::Result<TensorStack> {
        let Members { widths, activation, adam, ref data } = *members;
        let x = member_columns(&data.iter().map(|d| d.0).collect::<Vec<_>>(), device)?;
        let y = member_columns(&data.iter().map(|d| d.1).collect::<Vec<_>>(), device)?;
        let (model, optimizer) = match start {
            Start::Seeds(seeds) => {
                let mut model = StackedMlp::new(widths, activation, &seeds, device);
                let optimizer = StackedAdam::new(adam.lr, adam.weight_decay, model.params_mut());
                (model, optimizer)
            }
            Start::Saved(saved) => {
                let (flats, moments): (Vec<_>, Vec<_>) = saved.into_iter().unzip();
                let model = StackedMlp::from_flats(widths, activation, &flats, device);
                (model, StackedAdam::resume(adam.lr, adam.weight_decay, moments, device))
            }
        };
        Ok(TensorStack { model, optimizer, x, y, last_output: None })
    }
}

impl MemberStack for TensorStack {
    fn epoch(&mut self) -> Vec<f32> {
        let step = self.model.mse_and_grads(&self.x, &self.y);
        self.optimizer.step(self.model.params_mut(), step.grads);
        self.last_output = Some(step.output);
        super::values(step.losses)
    }

    fn last_outputs(&self, rows: &[usize]) -> Vec<Vec<f32>> {
        let output = self.last_output.clone().expect("an epoch before its outputs");
        let n = output.dims()[1];
        let values = super::values(output);
        rows.iter().map(|&r| values[r * n..(r + 1) * n].to_vec()).collect()
    }

    fn flats(&self) -> Vec<Vec<f32>> {
        self.model.flats()
    }

    fn moments(&self) -> Vec<MomentsOnHost> {
        self.optimizer.member_states()
    }

    fn keep(&mut self, rows: &[usize]) {
        self.model.keep(rows);
        self.optimizer.keep(rows);
        self.x = select_rows(self.x.clone(), rows);
        self.y = select_rows(self.y.clone(), rows);
        self.last_output = self.last_output.take().map(|o| select_rows(o, rows));
    }
}

/// Every member on the host, one after another.
pub struct HostStack {
    members: Vec<HostMember>,
}

struct HostMember {
    objective: HostMlp,
    theta: Vec<f32>,
    /// The parameters the last epoch's loss was taken at (before its step).
    before_step: Vec<f32>,
    adam: FlatAdam,
}

impl HostStack {
    /// As [`TensorStack::new`]; fresh members start as the stacked model would (burn's
    /// initialisation on `device`, read back).
    pub fn new(members: &Members, start: Start, device: &Device) -> HostStack {
        let Members { widths, activation, adam, ref data } = *members;
        let saved: Vec<(Vec<f32>, Option<MomentsOnHost>)> = match start {
            Start::Seeds(seeds) => {
                initial_flats(widths, activation, &seeds, device).into_iter().map(|f| (f, None)).collect()
            }
            Start::Saved(saved) => saved.into_iter().map(|(f, m)| (f, Some(m))).collect(),
        };
        assert_eq!(saved.len(), data.len(), "one data set per member");
        let lr = adam.lr as f32;
        let members = saved
            .into_iter()
            .zip(data)
            .map(|((theta, moments), &(xs, ys))| HostMember {
                objective: HostMlp::new(widths, activation, xs, ys),
                adam: match moments {
                    Some(state) => FlatAdam::resume(lr, adam.weight_decay, state),
                    None => FlatAdam::new(lr, adam.weight_decay, theta.len()),
                },
                before_step: theta.clone(),
                theta,
            })
            .collect();
        HostStack { members }
    }
}

impl MemberStack for HostStack {
    fn epoch(&mut self) -> Vec<f32> {
        self.members
            .iter_mut()
            .map(|m| {
                let (loss, grad) = m.objective.loss_and_grad(&m.theta);
                m.before_step.copy_from_slice(&m.theta);
                m.adam.step(&mut m.theta, &grad);
                loss
            })
            .collect()
    }

    fn last_outputs(&self, rows: &[usize]) -> Vec<Vec<f32>> {
        rows.iter().map(|&r| self.members[r].objective.outputs(&self.members[r].before_step)).collect()
    }

    fn flats(&self) -> Vec<Vec<f32>> {
        self.members.iter().map(|m| m.theta.clone()).collect()
    }

    fn moments(&self) -> Vec<MomentsOnHost> {
        self.members.iter().map(|m| m.adam.state()).collect()
    }

    fn keep(&mut self, rows: &[usize]) {
        let mut members: Vec<Option<HostMember>> = std::mem::take(&mut self.members).into_iter().map(Some).collect();
        self.members = rows.iter().map(|&r| members[r].take().expect("each row kept once")).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::mlp::param_count;

    const WIDTHS: [usize; 4] = [1, 6, 5, 1];

    /// Two members with data of their own (a sine and a kink).
    fn data() -> Vec<(Vec<f32>, Vec<f32>)> {
        let xs: Vec<f32> = (0..37).map(|i| -1.5 + 3.0 * i as f32 / 37.0).collect();
        let sine = xs.iter().map(|x| (3.0 * x).sin()).collect();
        let kink = xs.iter().map(|x| x.abs() - 0.5).collect();
        vec![(xs.clone(), sine), (xs, kink)]
    }

    fn slices(data: &[(Vec<f32>, Vec<f32>)]) -> Vec<(&[f32], &[f32])> {
        data.iter().map(|(x, y)| (&x[..], &y[..])).collect()
    }

    const ADAM: AdamSettings = AdamSettings { lr: 1e-2, weight_decay: 1e-3 };

    fn members(data: &[(Vec<f32>, Vec<f32>)]) -> Members<'_> {
        Members { widths: &WIDTHS, activation: Activation::LeakyRelu, adam: ADAM, data: slices(data) }
    }

    fn host(start: Start, data: &[(Vec<f32>, Vec<f32>)]) -> HostStack {
        HostStack::new(&members(data), start, &Device::flex())
    }

    fn close(a: &[f32], b: &[f32], tolerance: f32, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= tolerance * (1.0 + y.abs()), "{what}: {x} vs {y}");
        }
    }

    /// The host computes what the stacked tensors compute, to rounding: losses, outputs,
    /// parameters and moments after 40 epochs of two members with their own data.
    #[test]
    fn the_host_stack_trains_as_the_tensor_stack() {
        let data = data();
        let mut on_host = host(Start::Seeds(vec![3, 4]), &data);
        let mut tensors = TensorStack::new(&members(&data), Start::Seeds(vec![3, 4]), &Device::flex()).unwrap();
        assert_eq!(on_host.flats(), tensors.flats(), "the same initial parameters");
        for epoch in 0..40 {
            close(&on_host.epoch(), &tensors.epoch(), 1e-4, &format!("losses at epoch {epoch}"));
        }
        for (a, b) in on_host.last_outputs(&[1, 0]).iter().zip(tensors.last_outputs(&[1, 0])) {
            close(a, &b, 1e-4, "outputs");
        }
        for (a, b) in on_host.flats().iter().zip(tensors.flats()) {
            close(a, &b, 1e-4, "parameters");
            assert_eq!(a.len(), param_count(&WIDTHS));
        }
        for (a, b) in on_host.moments().iter().zip(tensors.moments()) {
            assert_eq!(a.t, 40);
            assert_eq!(a.t, b.t);
            close(&a.m, &b.m, 1e-3, "first moments");
        }
        // The last outputs are the forward pass behind the last losses: their MSE is that loss.
        let losses = on_host.epoch();
        let outputs = on_host.last_outputs(&[0, 1]);
        for ((out, (_, ys)), loss) in outputs.iter().zip(&data).zip(losses) {
            let mse = out.iter().zip(ys).map(|(o, y)| (o - y) * (o - y)).sum::<f32>() / ys.len() as f32;
            assert!((mse - loss).abs() <= 1e-5 * (1.0 + loss), "{mse} vs {loss}");
        }
    }

    /// A member's numbers do not depend on the others: dropping one midway, or saving and
    /// resuming, leaves the other's bits as if it had trained alone without a stop.
    #[test]
    fn members_are_independent_and_resume_exactly() {
        let data = data();
        let mut alone = host(Start::Seeds(vec![4]), &data[1..]);
        let mut pair = host(Start::Seeds(vec![3, 4]), &data);
        for _ in 0..15 {
            assert_eq!(alone.epoch()[0], pair.epoch()[1]);
        }
        pair.keep(&[1]);
        let saved = Start::Saved(pair.flats().into_iter().zip(pair.moments()).collect());
        let mut resumed = host(saved, &data[1..]);
        for _ in 0..15 {
            let loss = alone.epoch()[0];
            assert_eq!(loss, pair.epoch()[0]);
            assert_eq!(loss, resumed.epoch()[0]);
        }
        assert_eq!(alone.flats(), resumed.flats());
        assert_eq!(alone.last_outputs(&[0]), resumed.last_outputs(&[0]));
    }
}
