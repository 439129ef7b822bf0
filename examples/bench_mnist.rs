//! `make bench` part: MNIST load time and CNN training throughput on the default backend.
//! Run with `cargo run --release --example bench_mnist` (MNIST via MNIST_MIRROR or the mirrors).

use std::time::Instant;

use rand::SeedableRng;
use repro::data::mnist::{self, FetchOptions};
use repro::experiments::mnist_cnn::Model;
use repro::nn::classify::{self, DeviceSplit};
use repro::nn::cnn::Cnn;
use repro::nn::{Activation, Init, Mlp, optim};
use repro::rng::SeededRng;

fn main() -> anyhow::Result<()> {
    let dir = std::path::Path::new("target/bench-data/mnist");
    mnist::ensure_all(dir, &mnist::with_env_mirror(&mnist::default_mirrors()), &FetchOptions::default())?;
    let t = Instant::now();
    let train = mnist::load_split(&dir.join(mnist::TRAIN_IMAGES.name), &dir.join(mnist::TRAIN_LABELS.name))?;
    let test = mnist::load_split(&dir.join(mnist::TEST_IMAGES.name), &dir.join(mnist::TEST_LABELS.name))?;
    let device = burn::prelude::Device::flex().autodiff();
    let (train_d, test_d) = (DeviceSplit::new(&train, &device), DeviceSplit::new(&test, &device));
    println!("| MNIST load (parse 70000 images + labels, to tensors) | {:.3} s |", t.elapsed().as_secs_f64());
    drop((train_d, test_d));

    let steps = 20;
    let batch = 500;
    for threads in [1, std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
        for model in [Model::Cnn1, Model::Cnn2, Model::Cnn3] {
            pool.install(|| {
                repro::nn::backend::flush_subnormals();
                let mut net = Cnn::new(&model.shape(), &mut Init::new(0), &device);
                let mut opt = optim::Adam::new(1e-4);
                let mut rng = SeededRng::seed_from_u64(0);
                // Fresh tensors, not slices of the full set: a gather from a slice copies the slice.
                let sub = DeviceSplit::new(&train.clone().head(batch * steps), &device);
                // One warm-up epoch of a few steps, then the timed one.
                let warm = DeviceSplit::new(&train.clone().head(batch * 2), &device);
                net = classify::train_epoch(net, &mut opt, 1e-3, &warm, batch, &mut rng, |_| {}).0;
                let t = Instant::now();
                let _ = classify::train_epoch(net, &mut opt, 1e-3, &sub, batch, &mut rng, |_| {});
                let secs = t.elapsed().as_secs_f64();
                println!(
                    "| {} training, batch {batch}, {threads} thread(s) | {:.0} images/s ({:.1} ms/step) |",
                    model.name(),
                    (batch * steps) as f64 / secs,
                    1000.0 * secs / steps as f64
                );
            });
        }
    }
    // Per-step overhead: the sensitivity experiment's MLP at batch 5 takes 12,000 steps an epoch.
    // One thread, as the pipeline runs it (each stage on a pool of its budget).
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    one.install(|| {
        repro::nn::backend::flush_subnormals();
        mlp_steps(&train, &device)
    });
    Ok(())
}

fn mlp_steps(train: &mnist::Split, device: &burn::prelude::Device) {
    for batch in [5, 64, 1024] {
        let mut net = Mlp::new(&[784, 20, 20, 10], Activation::Relu, &mut Init::new(0), device);
        let mut opt = optim::Adam::new(0.0);
        let mut rng = SeededRng::seed_from_u64(0);
        let steps = if batch == 5 { 2000 } else { 200 };
        let n = (batch * steps).min(train.len());
        let sub = DeviceSplit::new(&train.clone().head(n), device);
        net = classify::train_epoch(net, &mut opt, 1e-3, &sub, batch, &mut rng, |_| {}).0;
        let t = Instant::now();
        let _ = classify::train_epoch(net, &mut opt, 1e-3, &sub, batch, &mut rng, |_| {});
        let secs = t.elapsed().as_secs_f64();
        let taken = n.div_ceil(batch);
        println!(
            "| MLP 784-20-20-10 training, batch {batch}, 1 thread | {:.0} steps/s ({:.3} ms/step) |",
            taken as f64 / secs,
            1000.0 * secs / taken as f64
        );
    }
}
