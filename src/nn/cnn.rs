//! Small convolutional classifiers for 28x28 images: conv blocks (conv, ReLU, 2x2 max-pool) then a
//! fully connected head, as the spec's CNN1-3.

use crate::rng::SeededRng;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::conv_block::conv_relu_pool;
use super::{Init, dropout};

#[derive(Module, Debug)]
pub struct Cnn {
    /// Each followed by ReLU and a 2x2 max-pool ([`conv_relu_pool`]).
    convs: Vec<Conv2d>,
    fcs: Vec<Linear>,
    /// Dropout probability after hidden layer `dropout_after` of the head (CNN1's 0.25).
    #[module(skip)]
    dropout: Option<(usize, f32)>,
}

/// The shape of a [`Cnn`]: channels and kernel sizes of the conv blocks, widths of the head.
#[derive(Clone, Debug)]
pub struct CnnShape {
    /// (out_channels, kernel) per conv block; the input has one channel.
    pub convs: Vec<(usize, usize)>,
    /// Head widths, starting with the flattened conv output.
    pub head: Vec<usize>,
    pub dropout: Option<(usize, f32)>,
}

impl CnnShape {
    pub fn param_count(&self) -> usize {
        let mut channels = 1;
        let mut total = 0;
        for &(out, k) in &self.convs {
            total += out * channels * k * k + out;
            channels = out;
        }
        total + super::mlp::param_count(&self.head)
    }

    /// Forward multiply-accumulates for one 28x28 image: each conv over its valid output, then
    /// the 2x2 pool halves the side; then the head's matrix products.
    pub fn macs_per_image(&self) -> u64 {
        let (mut side, mut channels, mut total) = (28usize, 1usize, 0usize);
        for &(out, k) in &self.convs {
            let valid = side + 1 - k;
            total += valid * valid * out * channels * k * k;
            side = valid / 2;
            channels = out;
        }
        (total + self.head.windows(2).map(|w| w[0] * w[1]).sum::<usize>()) as u64
    }
}

impl Cnn {
    pub fn new(shape: &CnnShape, init: &mut Init, device: &Device) -> Cnn {
        let mut channels = 1;
        let mut convs = Vec::new();
        for &(out, k) in &shape.convs {
            convs.push(init.conv2d(channels, out, k, device));
            channels = out;
        }
        let fcs = shape.head.windows(2).map(|w| init.linear(w[0], w[1], device)).collect();
        Cnn { convs, fcs, dropout: shape.dropout }
    }

    /// Logits for images `[n, 784]`. Dropout is applied only when `rng` is given (training).
    pub fn forward(&self, images: Tensor<2>, mut rng: Option<&mut SeededRng>) -> Tensor<2> {
        let [n, _] = images.dims();
        let mut x: Tensor<4> = images.reshape([n, 1, 28, 28]);
        for conv in &self.convs {
            x = conv_relu_pool(x, conv);
        }
        let [n, c, h, w] = x.dims();
        let mut y: Tensor<2> = x.reshape([n, c * h * w]);
        let last = self.fcs.len() - 1;
        for (i, fc) in self.fcs.iter().enumerate() {
            y = fc.forward(y);
            if i < last {
                y = relu(y);
                if let (Some((after, p)), Some(rng)) = (self.dropout, rng.as_deref_mut())
                    && after == i
                {
                    y = dropout(y, p, rng);
                }
            }
        }
        y
    }
}

impl super::classify::Classifier for Cnn {
    fn logits(&self, images: Tensor<2>, rng: Option<&mut SeededRng>) -> Tensor<2> {
        self.forward(images, rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_per_image_match_the_spec_compute_budget() {
        // Spec section 12: 381k-405k MACs per sample for the three CNNs. CNN1 by hand: conv 1->10
        // k4 on 28x28: 25*25*10*16 = 100,000; pool to 12; conv 10->20 k4: 9*9*20*10*16 = 259,200;
        // pool to 4; head 320*50 + 50*100 + 100*10 = 22,000.
        let cnn1 = CnnShape { convs: vec![(10, 4), (20, 4)], head: vec![320, 50, 100, 10], dropout: None };
        assert_eq!(cnn1.macs_per_image(), 381_200);
        let cnn3 = CnnShape { convs: vec![(10, 5), (15, 5)], head: vec![240, 84, 10], dropout: None };
        assert_eq!(cnn3.macs_per_image(), 144_000 + 240_000 + 21_000);
    }

    #[test]
    fn shapes_and_counts() {
        let shape = CnnShape { convs: vec![(10, 5), (15, 5)], head: vec![240, 84, 10], dropout: None };
        assert_eq!(shape.param_count(), 25119);
        let device = Device::flex();
        let cnn = Cnn::new(&shape, &mut Init::new(0), &device);
        assert_eq!(cnn.num_params(), 25119);
        let out = cnn.forward(Tensor::zeros([3, 784], &device), None);
        assert_eq!(out.dims(), [3, 10]);
    }
}
