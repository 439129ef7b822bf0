//! Fully connected networks: `in - h1 - ... - out`, an activation after every hidden layer.

use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

use super::Init;
use super::leaky_relu::leaky_relu;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    /// PyTorch's default negative slope, 0.01.
    LeakyRelu,
}

impl Activation {
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => relu(x),
            Activation::LeakyRelu => leaky_relu(x),
        }
    }

    /// The activation of one value, as [`Activation::apply`] computes it element-wise.
    pub fn apply_scalar(self, v: f32) -> f32 {
        match self {
            Activation::Relu => v.max(0.0),
            Activation::LeakyRelu if v < 0.0 => super::leaky_relu::SLOPE * v,
            Activation::LeakyRelu => v,
        }
    }
}

#[derive(Module, Debug)]
pub struct Mlp {
    pub(super) layers: Vec<Linear>,
    #[module(skip)]
    pub(super) activation: Activation,
}

impl Mlp {
    /// `widths` = [input, hidden..., output].
    pub fn new(widths: &[usize], activation: Activation, init: &mut Init, device: &Device) -> Mlp {
        let layers = widths.windows(2).map(|w| init.linear(w[0], w[1], device)).collect();
        Mlp { layers, activation }
    }

    pub fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        self.after_first_layer(self.layers[0].forward(input))
    }

    /// [`Mlp::forward`] on a batch of images: mostly zero pixels, which the first layer skips
    /// (see `nn::sparse_input`).
    pub fn forward_images(&self, images: Tensor<2>) -> Tensor<2> {
        self.after_first_layer(super::sparse_input::sparse_input_linear(images, &self.layers[0]))
    }

    /// The rest of the network from the first layer's output: an activation before every
    /// further layer.
    fn after_first_layer(&self, first: Tensor<2>) -> Tensor<2> {
        self.layers[1..].iter().fold(first, |y, layer| layer.forward(self.activation.apply(y)))
    }
}

impl super::classify::Classifier for Mlp {
    fn logits(&self, images: Tensor<2>, _rng: Option<&mut crate::rng::SeededRng>) -> Tensor<2> {
        self.forward_images(images)
    }
}

pub use super::shape::param_count;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::values;

    #[test]
    fn forward_matches_a_hand_computation() {
        let device = Device::flex();
        let mut init = Init::new(0);
        let mut mlp = Mlp::new(&[2, 2, 1], Activation::LeakyRelu, &mut init, &device);
        // Replace the weights with known ones: W1 = [[1, -1], [2, 0]] (in x out), b1 = [0, -10],
        // W2 = [[1], [1]], b2 = [0.5].
        let mut fixed = Init::new(0);
        mlp.layers[0].weight = fixed.param(vec![1.0, -1.0, 2.0, 0.0], [2, 2], &device);
        mlp.layers[0].bias = Some(fixed.param(vec![0.0, -10.0], [2], &device));
        mlp.layers[1].weight = fixed.param(vec![1.0, 1.0], [2, 1], &device);
        mlp.layers[1].bias = Some(fixed.param(vec![0.5], [1], &device));
        let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0], [1, 2]), &device);
        // h = [1*1 + 2*2, -1*1 + 0*2 - 10] = [5, -11] -> leaky -> [5, -0.11]; y = 5 - 0.11 + 0.5.
        let y = values(mlp.forward(x));
        assert!((y[0] - 5.39).abs() < 1e-5, "{y:?}");
    }

    #[test]
    fn parameter_counts_of_the_spec() {
        assert_eq!(param_count(&[1, 5, 10, 10, 10, 10, 10, 5, 1]), 571);
        assert_eq!(param_count(&[1, 10, 18, 15, 4, 1]), 572);
        assert_eq!(param_count(&[1, 190, 1]), 571);
        let device = Device::flex();
        let mlp = Mlp::new(&[1, 190, 1], Activation::Relu, &mut Init::new(1), &device);
        assert_eq!(mlp.num_params(), 571);
    }
}
