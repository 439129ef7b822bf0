//! The runs of `min_ratio` (spec section 5): train, minimise the gradient norm, take the Hessian.

use anyhow::{Result, bail};
use burn::prelude::Device;
use serde::{Deserialize, Serialize};

use crate::analysis::linalg::{
    hessian_fd, hvp_from, hvp_probes, matmul, minimal_ratio, solve_damped, symmetric_eigenvalues,
};
use crate::analysis::write_columns;
use crate::data;
use crate::engine::StageContext;
use crate::nn::flat::{FlatAdam, MseObjective, norm};
use crate::nn::{Activation, Compute, Init, Mlp, mlp::param_count};
use crate::training::sweep::{batch_params, shared_input};

pub const ID: &str = "min_ratio";
pub const WIDTHS: [usize; 4] = [1, 12, 6, 1];

#[derive(Clone, Serialize, Deserialize)]
pub struct RunParams {
    pub seed: u64,
    pub epochs: usize,
    pub lr: f32,
    pub norm_lr: f32,
    pub norm_adam_steps: usize,
    pub norm_lm_steps: usize,
    pub grad_norm_target: f64,
    pub fd_step: f32,
    pub eigen_tolerance: f64,
}

impl RunParams {
    /// Gradient evaluations at most: training, three per Adam step on ‖∇L‖² (one plus two HVP
    /// probes), a Hessian of 2n probes per Levenberg–Marquardt step, and the final Hessian.
    pub fn gradient_evaluations(&self) -> u64 {
        let probes = 2 * param_count(&WIDTHS) as u64;
        self.epochs as u64 + 3 * self.norm_adam_steps as u64 + (self.norm_lm_steps as u64 + 1) * probes
    }

    /// Everything but the seed: the runs of one batch must agree on it.
    pub fn group(&self) -> String {
        serde_json::to_string(&RunParams { seed: 0, ..self.clone() }).expect("params serialise")
    }
}

/// One run's result (`run.json`).
#[derive(Serialize, Deserialize)]
pub struct RunResult {
    pub seed: u64,
    /// MSE after the ordinary training phase.
    pub train_loss: f64,
    /// The original's y axis: sum of the per-epoch training losses / 1000.
    pub original_metric: f64,
    pub grad_norm_after_training: f64,
    /// MSE and gradient norm at the point the Hessian is taken.
    pub loss: f64,
    pub grad_norm: f64,
    pub reached: bool,
    pub norm_steps: usize,
    pub ratio: f64,
    pub positive: usize,
    pub near_zero: usize,
    pub negative: usize,
    pub eig_min: f64,
    pub eig_max: f64,
}

/// Where one run's minimisation of ‖∇L‖² ended: the point with the smallest gradient norm seen,
/// that norm, and the steps taken.
pub struct Minimised {
    pub theta: Vec<f32>,
    pub grad_norm: f64,
    pub steps: usize,
}

/// Minimises ‖∇L‖² from each of `starts` by Adam on 2·H·∇L (finite-difference HVP), all runs in
/// lockstep so that each step is two batched passes (the gradients, then the HVP probes) however
/// many runs there are; a run leaves when it reaches `target` or `max_steps`. Each run's numbers
/// are those it would get alone.
pub fn minimise_grad_norm(
    objective: &MseObjective,
    starts: &[Vec<f32>],
    lr: f32,
    max_steps: usize,
    target: f64,
    fd_step: f32,
    mut progress: impl FnMut(usize, f64),
) -> Vec<Minimised> {
    let mut thetas = starts.to_vec();
    let mut adams: Vec<FlatAdam> = starts.iter().map(|t| FlatAdam::new(lr, 0.0, t.len())).collect();
    let mut best: Vec<Minimised> =
        starts.iter().map(|t| Minimised { theta: t.clone(), grad_norm: f64::INFINITY, steps: 0 }).collect();
    let mut active: Vec<usize> = (0..starts.len()).collect();
    let mut steps = 0;
    while !active.is_empty() {
        let current: Vec<Vec<f32>> = active.iter().map(|&r| thetas[r].clone()).collect();
        let grads = objective.grads(&current);
        let mut going = Vec::new();
        for (&r, g) in active.iter().zip(grads) {
            let g_norm = norm(&g);
            if g_norm < best[r].grad_norm {
                best[r].grad_norm = g_norm;
                best[r].theta.clone_from(&thetas[r]);
            }
            best[r].steps = steps;
            if !(g_norm < target || steps == max_steps) {
                going.push((r, g));
            }
        }
        progress(steps, best[active[0]].grad_norm);
        let probes: Vec<Vec<f32>> = going.iter().flat_map(|(r, g)| hvp_probes(&thetas[*r], g, fd_step)).collect();
        let mut probe_grads = objective.grads(&probes).into_iter();
        for (r, g) in &going {
            let mine: Vec<Vec<f32>> = probe_grads.by_ref().take(if norm(g) == 0.0 { 0 } else { 2 }).collect();
            let direction: Vec<f32> = hvp_from(&mine, g, fd_step).iter().map(|v| 2.0 * v).collect();
            adams[*r].step(&mut thetas[*r], &direction);
        }
        active = going.into_iter().map(|(r, _)| r).collect();
        steps += 1;
    }
    best
}

/// Minimises ½‖∇L‖² by Levenberg–Marquardt: the Jacobian of ∇L is the Hessian H (central
/// differences, one batched pass), so each step solves (H² + λI) δ = H ∇L and takes θ − δ if it
/// lowers ‖∇L‖ (then λ shrinks), else λ grows. Near a critical point of any index this converges
/// fast, where first-order descent on ‖∇L‖² crawls.
pub fn minimise_grad_norm_lm(
    objective: &MseObjective,
    theta: &[f32],
    max_steps: usize,
    target: f64,
    fd_step: f32,
    mut progress: impl FnMut(usize, f64),
) -> Minimised {
    let mut theta = theta.to_vec();
    let mut g = objective.grad(&theta);
    let mut g_norm = norm(&g);
    let mut lambda = 1e-3;
    let mut steps = 0;
    while steps < max_steps && g_norm >= target {
        progress(steps, g_norm);
        let h = hessian_fd(|t| objective.grads(t), &theta, fd_step);
        let h2 = matmul(&h, &h);
        let hg: Vec<f64> = h.iter().map(|row| row.iter().zip(&g).map(|(a, b)| a * *b as f64).sum()).collect();
        steps += 1;
        // Grow the damping until a step lowers the gradient norm (or give up on this point).
        let mut improved = false;
        for _ in 0..12 {
            let scale = h2.iter().enumerate().map(|(i, r)| r[i]).fold(0.0f64, f64::max).max(1e-12);
            if let Some(delta) = solve_damped(&h2, lambda * scale, &hg) {
                let trial: Vec<f32> = theta.iter().zip(&delta).map(|(t, d)| (*t as f64 - d) as f32).collect();
                let trial_g = objective.grad(&trial);
                let trial_norm = norm(&trial_g);
                if trial_norm < g_norm {
                    (theta, g, g_norm) = (trial, trial_g, trial_norm);
                    lambda = (lambda / 3.0).max(1e-12);
                    improved = true;
                    break;
                }
            }
            lambda *= 4.0;
        }
        if !improved {
            break;
        }
    }
    progress(steps, g_norm);
    Minimised { theta, grad_norm: g_norm, steps }
}

/// Every run of the batch (same data and settings, their own seeds): training and the Adam phase
/// of ‖∇L‖² in lockstep (batched passes), then per run Levenberg–Marquardt and the Hessian (each a
/// batched pass of its 2n probes).
pub fn run(ctxs: &[StageContext]) -> Result<()> {
    let runs: Vec<RunParams> = batch_params(ctxs, RunParams::group)?;
    let p = &runs[0];
    let (xs, ys) = data::read_xy(shared_input(ctxs, "data")?)?;
    let device: Device = Compute::for_stage(&ctxs[0])?.training_device()?;
    let objective = MseObjective::new(&WIDTHS, Activation::Relu, &xs, &ys, &device);
    let mut thetas: Vec<Vec<f32>> =
        runs.iter().map(|r| Mlp::new(&WIDTHS, Activation::Relu, &mut Init::new(r.seed), &device).flat()).collect();
    let progress = ctxs[0].progress;
    progress.set_total((p.epochs + p.norm_adam_steps + p.norm_lm_steps * runs.len()) as u64);

    let mut adams: Vec<FlatAdam> = thetas.iter().map(|t| FlatAdam::new(p.lr, 0.0, t.len())).collect();
    let mut loss_sums = vec![0.0f64; runs.len()];
    for epoch in 0..p.epochs {
        let steps = objective.losses_and_grads(&thetas);
        for (r, (loss, grad)) in steps.into_iter().enumerate() {
            loss_sums[r] += loss as f64;
            adams[r].step(&mut thetas[r], &grad);
        }
        progress.update(epoch as u64 + 1, || format!("training {} runs", runs.len()));
    }
    let trained = objective.losses_and_grads(&thetas);

    let adam_phase = minimise_grad_norm(
        &objective,
        &thetas,
        p.norm_lr,
        p.norm_adam_steps,
        p.grad_norm_target,
        p.fd_step,
        |step, n| progress.update((p.epochs + step) as u64, || format!("|g| {n:.2e}")),
    );
    for (r, ((ctx, run), after_adam)) in ctxs.iter().zip(&runs).zip(adam_phase).enumerate() {
        let at = (p.epochs + p.norm_adam_steps + r * p.norm_lm_steps) as u64;
        let lm = minimise_grad_norm_lm(
            &objective,
            &after_adam.theta,
            p.norm_lm_steps,
            p.grad_norm_target,
            p.fd_step,
            |step, n| progress.update(at + step as u64, || format!("run {}: |g| {n:.2e}", run.seed)),
        );
        let (train_loss, g) = &trained[r];
        finish(ctx, run, &objective, (*train_loss, norm(g), loss_sums[r]), after_adam.steps + lm.steps, lm)?;
    }
    Ok(())
}

/// The Hessian at the point reached and the run's outputs (`run.json`, `eigenvalues.csv`).
fn finish(
    ctx: &StageContext,
    p: &RunParams,
    objective: &MseObjective,
    (train_loss, grad_norm_after_training, loss_sum): (f32, f64, f64),
    norm_steps: usize,
    reached: Minimised,
) -> Result<()> {
    let loss = objective.loss_and_grad(&reached.theta).0 as f64;
    let hessian = hessian_fd(|t| objective.grads(t), &reached.theta, p.fd_step);
    let eigs = symmetric_eigenvalues(&hessian);
    if eigs.iter().any(|v| !v.is_finite()) {
        bail!("the Hessian's eigen-decomposition failed (non-finite eigenvalues)");
    }
    let tol = p.eigen_tolerance;
    let result = RunResult {
        seed: p.seed,
        train_loss: train_loss as f64,
        original_metric: loss_sum / 1000.0,
        grad_norm_after_training,
        loss,
        grad_norm: reached.grad_norm,
        reached: reached.grad_norm < p.grad_norm_target,
        norm_steps,
        ratio: minimal_ratio(&eigs, tol),
        positive: eigs.iter().filter(|&&l| l > tol).count(),
        near_zero: eigs.iter().filter(|&&l| l.abs() <= tol).count(),
        negative: eigs.iter().filter(|&&l| l < -tol).count(),
        eig_min: eigs[0],
        eig_max: *eigs.last().unwrap(),
    };
    std::fs::write(ctx.output("run.json")?, serde_json::to_vec_pretty(&result)?)?;
    let eigs32: Vec<f32> = eigs.iter().map(|&v| v as f32).collect();
    write_columns(&ctx.output("eigenvalues.csv")?, &[("eigenvalue", &eigs32)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synth;
    use burn::prelude::Device;

    #[test]
    fn the_gradient_norm_objective_lowers_the_gradient_norm() {
        let device = Device::flex().autodiff();
        let (xs, ys) = synth::cosine_data(200, 1);
        let objective = MseObjective::new(&WIDTHS, Activation::Relu, &xs, &ys, &device);
        let theta = Mlp::new(&WIDTHS, Activation::Relu, &mut Init::new(4), &device).flat();
        let start = norm(&objective.grad(&theta));
        let other = Mlp::new(&WIDTHS, Activation::Relu, &mut Init::new(5), &device).flat();
        let both = minimise_grad_norm(&objective, &[theta.clone(), other], 1e-3, 300, 1e-12, 1e-3, |_, _| {});
        let Minimised { theta: end_theta, grad_norm: end, steps } = &both[0];
        assert_eq!(*steps, 300);
        assert!(*end < 0.5 * start, "gradient norm {start} -> {end}");
        assert!((norm(&objective.grad(end_theta)) - end).abs() < 1e-9, "the best point is returned");
        // In lockstep with another run, a run ends exactly where it ends alone.
        let alone = minimise_grad_norm(&objective, std::slice::from_ref(&theta), 1e-3, 300, 1e-12, 1e-3, |_, _| {});
        assert_eq!(alone[0].theta, *end_theta);

        let lm = minimise_grad_norm_lm(&objective, &theta, 30, 1e-4, 1e-3, |_, _| {});
        assert!(
            lm.grad_norm < 1e-2 * start,
            "Levenberg–Marquardt: gradient norm {start} -> {} in {} steps",
            lm.grad_norm,
            lm.steps
        );
        assert!((norm(&objective.grad(&lm.theta)) - lm.grad_norm).abs() < 1e-9);
    }
}
