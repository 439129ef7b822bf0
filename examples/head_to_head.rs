//! `make bench` part: the study's training workloads, timed per step on one thread, for the
//! head-to-head with PyTorch (`bench/pytorch/workloads.py` trains exactly the same ones).
//!
//! Usage: `head_to_head [flex|tch] [cpu|cuda:N] [NAME_PART]`. Prints `workload<TAB>steps<TAB>seconds`
//! lines; with `NAME_PART`, only the workloads whose name contains it (to profile one).
//! Every workload: the study's architecture, PyTorch-default init, Adam (lr 1e-3), a warm-up of a
//! few steps, then `steps` timed optimiser steps on a fixed slice of the data, three times over:
//! the fastest round is printed (other work on a shared machine only ever slows a round down).
//! The `_eval` workloads time the full-set evaluation instead (batches of 1000, no autodiff).

use std::time::Instant;

use burn::optim::GradientsParams;
use rand::SeedableRng;
use repro::data::mnist::{self, FetchOptions};
use repro::experiments::mnist_cnn::Model;
use repro::nn::backend::Backend;
use repro::nn::classify::{self, DeviceSplit};
use repro::nn::cnn::Cnn;
use repro::nn::stacked::{StackedAdam, StackedMlp, member_columns};
use repro::nn::{Activation, Compute, Init, Mlp, loss::mse, optim};
use repro::rng::SeededRng;

fn main() -> anyhow::Result<()> {
    repro::tune_allocator();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let backend = match args.first().map(String::as_str).unwrap_or("flex") {
        "tch" => Backend::Tch,
        _ => Backend::Flex,
    };
    let device_name = args.get(1).cloned().unwrap_or_else(|| "cpu".into());
    let device = Compute::from_settings(backend, &device_name)?.training_device()?;
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    one.install(|| -> anyhow::Result<()> {
        // One thread on libtorch too (it would otherwise use every core), like PyTorch's side.
        repro::nn::backend::limit_tch_threads(1);
        // As every numeric stage does (`Compute::for_stage`).
        repro::nn::backend::flush_subnormals();
        full_batch("full_batch_mlp_571", &[1, 5, 10, 10, 10, 10, 10, 5, 1], Activation::LeakyRelu, 300, 1e-4, &device);
        full_batch("full_batch_mlp_109", &[1, 12, 6, 1], Activation::Relu, 1000, 0.0, &device);
        // Batched sweeps: R runs as one stacked model; `steps` counts run-steps (R per launch).
        for members in [1, 8, 64] {
            let sim_m1 = [1, 5, 10, 10, 10, 10, 10, 5, 1];
            stacked(&format!("full_batch_mlp_571_x{members}"), &sim_m1, Activation::LeakyRelu, 300, members, &device);
            stacked(&format!("sim_m3_191_x{members}"), &[1, 190, 1], Activation::LeakyRelu, 300, members, &device);
            stacked(
                &format!("full_batch_mlp_109_x{members}"),
                &[1, 12, 6, 1],
                Activation::Relu,
                1000,
                members,
                &device,
            );
        }
        let dir = std::path::Path::new("target/bench-data/mnist");
        mnist::ensure_all(dir, &mnist::with_env_mirror(&mnist::default_mirrors()), &FetchOptions::default())?;
        let train = mnist::load_split(&dir.join(mnist::TRAIN_IMAGES.name), &dir.join(mnist::TRAIN_LABELS.name))?;
        for (batch, steps) in [(5, 1000), (64, 300), (500, 60), (1024, 40)] {
            let net = Mlp::new(&[784, 20, 20, 10], Activation::Relu, &mut Init::new(0), &device);
            classifier(&format!("mnist_mlp_16k_b{batch}"), net, &train, batch, steps, &device);
        }
        let net = Mlp::new(&[784, 800, 400, 10], Activation::Relu, &mut Init::new(0), &device);
        classifier("mnist_mlp_952k_b500", net.clone(), &train, 500, 20, &device);
        evaluation("mnist_mlp_952k_eval_b1000", &net, &train, &device);
        for model in [Model::Cnn1, Model::Cnn2, Model::Cnn3] {
            let net = Cnn::new(&model.shape(), &mut Init::new(0), &device);
            classifier(&format!("{}_b500", model.name()), net.clone(), &train, 500, 40, &device);
            evaluation(&format!("{}_eval_b1000", model.name()), &net, &train, &device);
        }
        Ok(())
    })
}

/// Whether the command line's third argument (a part of a workload's name), if any, selects `name`.
fn wanted(name: &str) -> bool {
    std::env::args().nth(3).is_none_or(|part| name.contains(&part))
}

fn full_batch(name: &str, widths: &[usize], act: Activation, n: usize, wd: f32, device: &burn::prelude::Device) {
    if !wanted(name) {
        return;
    }
    let xs: Vec<f32> = (0..n).map(|i| -1.5 + 3.0 * i as f32 / n as f32).collect();
    let ys: Vec<f32> = xs.iter().map(|x| (5.0 * std::f32::consts::PI * x).cos()).collect();
    let (x, y) = (repro::nn::column(&xs, device), repro::nn::column(&ys, device));
    let mut model = Mlp::new(widths, act, &mut Init::new(0), device);
    let mut opt = optim::Adam::new(wd);
    let mut step = |model: Mlp| {
        let loss = mse(model.forward(x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        opt.step(1e-3, model, grads)
    };
    for _ in 0..20 {
        model = step(model);
    }
    let steps = 1000;
    let mut fastest = f64::INFINITY;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..steps {
            model = step(model);
        }
        // Reading a value waits for queued device work.
        let _ = repro::nn::values(model.forward(x.clone()));
        fastest = fastest.min(t.elapsed().as_secs_f64());
    }
    println!("{name}\t{steps}\t{fastest:.6}");
}

/// Timed rounds per workload; the fastest is printed.
const ROUNDS: usize = 3;

/// `members` copies of a full-batch MLP (seeds 0..members) trained as one stack.
fn stacked(name: &str, widths: &[usize], act: Activation, n: usize, members: usize, device: &burn::prelude::Device) {
    if !wanted(name) {
        return;
    }
    let xs: Vec<f32> = (0..n).map(|i| -1.5 + 3.0 * i as f32 / n as f32).collect();
    let ys: Vec<f32> = xs.iter().map(|x| (5.0 * std::f32::consts::PI * x).cos()).collect();
    let x = member_columns(&vec![xs.as_slice(); members], device).expect("one size");
    let y = member_columns(&vec![ys.as_slice(); members], device).expect("one size");
    let seeds: Vec<u64> = (0..members as u64).collect();
    let mut model = StackedMlp::new(widths, act, &seeds, device);
    let mut opt = StackedAdam::new(1e-3, 1e-4, model.params_mut());
    let step = |model: &mut StackedMlp, opt: &mut StackedAdam| {
        let s = model.mse_and_grads(&x, &y);
        opt.step(model.params_mut(), s.grads);
    };
    for _ in 0..20 {
        step(&mut model, &mut opt);
    }
    let launches = (2000 / members).max(20);
    let mut fastest = f64::INFINITY;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..launches {
            step(&mut model, &mut opt);
        }
        let _ = repro::nn::values(model.forward(x.clone()));
        fastest = fastest.min(t.elapsed().as_secs_f64());
    }
    println!("{name}\t{}\t{fastest:.6}", launches * members);
}

/// The full-set evaluation the experiments run after an epoch (`classify::evaluate`, batches of
/// 1000, no autodiff graph), on 10,000 training images; a "step" is one batch of 1000.
fn evaluation<M: classify::Classifier>(name: &str, net: &M, train: &mnist::Split, device: &burn::prelude::Device) {
    if !wanted(name) {
        return;
    }
    let frozen = net.valid();
    let data = DeviceSplit::new(&train.clone().head(10_000), device).inner();
    let _ = classify::evaluate(&frozen, &data, 1000);
    let mut fastest = f64::INFINITY;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let metrics = classify::evaluate(&frozen, &data, 1000);
        assert!(metrics.loss.is_finite());
        fastest = fastest.min(t.elapsed().as_secs_f64());
    }
    println!("{name}\t10\t{fastest:.6}");
}

fn classifier<M: classify::Classifier>(
    name: &str,
    mut net: M,
    train: &mnist::Split,
    batch: usize,
    steps: usize,
    device: &burn::prelude::Device,
) {
    if !wanted(name) {
        return;
    }
    let mut opt = optim::Adam::new(0.0);
    let mut rng = SeededRng::seed_from_u64(0);
    let warm = DeviceSplit::new(&train.clone().head(batch * 3), device);
    net = classify::train_epoch(net, &mut opt, 1e-3, &warm, batch, &mut rng, |_| {}).0;
    let data = DeviceSplit::new(&train.clone().head(batch * steps), device);
    let mut fastest = f64::INFINITY;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let (trained, loss) = classify::train_epoch(net, &mut opt, 1e-3, &data, batch, &mut rng, |_| {});
        assert!(loss.is_finite());
        fastest = fastest.min(t.elapsed().as_secs_f64());
        net = trained;
    }
    println!("{name}\t{steps}\t{fastest:.6}");
}
