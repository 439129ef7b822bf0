//! The first layer of an MNIST MLP (784 -> width, batch 500 of real images, one thread), dense
//! (`nn::Linear`) against the sparse-input operation, by layer width: a training step's share
//! (forward, backward, weight gradient read) and an evaluation forward pass. Where
//! `nn::sparse_input`'s width threshold comes from (bench/results/sparse-first-layer-2026-11-27/).
//!
//! `cargo run --release --example sparse_first_layer [WIDTH...]`

use std::time::Instant;

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use repro::data::mnist::{self, FetchOptions};
use repro::nn::sparse_input::sparse_input_linear;

const BATCH: usize = 500;
const REPEATS: usize = 20;
const ROUNDS: usize = 5;

fn main() -> anyhow::Result<()> {
    repro::tune_allocator();
    let dir = std::path::Path::new("target/bench-data/mnist");
    mnist::ensure_all(dir, &mnist::with_env_mirror(&mnist::default_mirrors()), &FetchOptions::default())?;
    let train = mnist::load_split(&dir.join(mnist::TRAIN_IMAGES.name), &dir.join(mnist::TRAIN_LABELS.name))?;
    let widths: Vec<usize> = std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>()?;
    let widths = if widths.is_empty() { vec![10, 20, 50, 100, 128, 200, 400, 800] } else { widths };
    let device = Device::flex().autodiff();
    let images = TensorData::new(train.images()[..BATCH * mnist::PIXELS].to_vec(), [BATCH, mnist::PIXELS]);
    let x = Tensor::<2>::from_data(images, &device);
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    println!("width\ttrain dense ms\ttrain sparse ms\tforward dense ms\tforward sparse ms");
    one.install(|| {
        for width in widths {
            let layer = LinearConfig::new(mnist::PIXELS, width).init(&device);
            let [train_dense, train_sparse] = [false, true].map(|sparse| fastest(|| train_step(&x, &layer, sparse)));
            let [eval_dense, eval_sparse] = [false, true].map(|sparse| fastest(|| forward(&x, &layer, sparse)));
            println!("{width}\t{train_dense:.3}\t{train_sparse:.3}\t{eval_dense:.3}\t{eval_sparse:.3}");
        }
    });
    Ok(())
}

/// The fastest of a few rounds, ms per call.
fn fastest(mut call: impl FnMut()) -> f64 {
    (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            (0..REPEATS).for_each(|_| call());
            t.elapsed().as_secs_f64() * 1e3 / REPEATS as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn apply(x: Tensor<2>, layer: &Linear, sparse: bool) -> Tensor<2> {
    if sparse { sparse_input_linear(x, layer) } else { layer.forward(x) }
}

fn train_step(x: &Tensor<2>, layer: &Linear, sparse: bool) {
    let grads = apply(x.clone(), layer, sparse).sum().backward();
    let _ = layer.weight.val().grad(&grads).expect("the weight is tracked").into_data();
}

fn forward(x: &Tensor<2>, layer: &Linear, sparse: bool) {
    let _ = apply(x.clone().inner(), &layer.clone().valid(), sparse).into_data();
}
