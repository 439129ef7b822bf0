//! The MSE of a small MLP on fixed data as a function of its flat parameter vector: what
//! min_ratio minimises the gradient norm of, and what its Hessians are taken of.

use burn::prelude::*;

use super::Activation;
use super::host_mlp::HostMlp;
use super::stacked::{StackedMlp, member_flats};

/// MSE of an MLP on fixed data, as a function of the flat parameter vector; many vectors are
/// evaluated in one batched pass (a [`StackedMlp`] of them), and one vector is a batch of one, so
/// a vector's numbers never depend on what else is evaluated with it.
pub struct MseObjective {
    pub widths: Vec<usize>,
    pub activation: Activation,
    /// `[1, N, 1]` on the plain device, repeated per member.
    x: Tensor<3>,
    y: Tensor<3>,
    device: Device,
    /// When set, the objective is computed by [`HostMlp`] instead of burn (see
    /// [`MseObjective::on_host`]).
    host: Option<HostMlp>,
}

impl MseObjective {
    /// `device` must be an autodiff device.
    pub fn new(widths: &[usize], activation: Activation, xs: &[f32], ys: &[f32], device: &Device) -> MseObjective {
        let plain = device.clone().inner();
        let tensor = |v: &[f32]| Tensor::<3>::from_data(TensorData::new(v.to_vec(), [1, v.len(), 1]), &plain);
        MseObjective {
            widths: widths.to_vec(),
            activation,
            x: tensor(xs),
            y: tensor(ys),
            device: device.clone(),
            host: None,
        }
    }

    /// The same objective computed on the host by [`HostMlp`], one network at a time: for the
    /// flex backend, where burn's tiny products cost more than their arithmetic. (libtorch keeps
    /// burn's path, and with it its own kernels and device.)
    pub fn on_host(mut self) -> MseObjective {
        let column = |t: &Tensor<3>| super::values(t.clone());
        self.host = Some(HostMlp::new(&self.widths, self.activation, &column(&self.x), &column(&self.y)));
        self
    }

    /// The loss and gradient at each of `thetas`, in one batched pass.
    pub fn losses_and_grads(&self, thetas: &[Vec<f32>]) -> Vec<(f32, Vec<f32>)> {
        if thetas.is_empty() {
            return Vec::new();
        }
        if let Some(host) = &self.host {
            return thetas.iter().map(|theta| host.loss_and_grad(theta)).collect();
        }
        let r = thetas.len();
        let stack = StackedMlp::from_flats(&self.widths, self.activation, thetas, &self.device);
        let step = stack.mse_and_grads(&self.x.clone().repeat_dim(0, r), &self.y.clone().repeat_dim(0, r));
        super::values(step.losses).into_iter().zip(member_flats(step.grads, r)).collect()
    }

    pub fn grads(&self, thetas: &[Vec<f32>]) -> Vec<Vec<f32>> {
        self.losses_and_grads(thetas).into_iter().map(|(_, g)| g).collect()
    }

    /// The loss and its gradient at `theta`.
    pub fn loss_and_grad(&self, theta: &[f32]) -> (f32, Vec<f32>) {
        self.losses_and_grads(&[theta.to_vec()]).pop().expect("one result per vector")
    }

    pub fn grad(&self, theta: &[f32]) -> Vec<f32> {
        self.loss_and_grad(theta).1
    }
}
