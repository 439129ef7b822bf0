//! The runs of `min_ratio` (spec section 5): train, minimise the gradient norm, take the Hessian.

use anyhow::{Context, Result, bail};
use burn::prelude::Device;
use serde::{Deserialize, Serialize};

use super::piecewise::{self, PiecewiseMse};
use crate::analysis::linalg::{hvp_from, hvp_probes, matmul, minimal_ratio, solve_damped, symmetric_eigenvalues};
use crate::analysis::write_columns;
use crate::data;
use crate::engine::StageContext;
use crate::nn::backend::Backend;
use crate::nn::flat::{FlatAdam, norm};
use crate::nn::objective::MseObjective;
use crate::nn::snapshot::Snapshot;
use crate::nn::{Activation, Compute, Init, Mlp, mlp::param_count};
use crate::training::saved_snapshot;
use crate::training::sweep::{batch_params, save_members, shared_input};

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
    pub norm_retrain_steps: usize,
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
    /// The original's y axis, 0.1 × the mean per-epoch training loss (its sum over 100 epochs / 1000).
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
#[derive(Clone)]
pub struct Minimised {
    pub theta: Vec<f32>,
    pub grad_norm: f64,
    pub steps: usize,
}

/// Minimises ‖∇L‖² from each of `starts` by Adam on 2·H·∇L (finite-difference HVP), all runs in
/// lockstep so that each step is two batched passes (the gradients, then the HVP probes) however
/// many runs there are; a run leaves when it reaches `target` or `max_steps`. Each run's numbers
/// are those it would get alone. (The stage drives [`Descent`] itself, to save between steps.)
#[cfg(test)]
pub fn minimise_grad_norm(
    objective: &MseObjective,
    starts: &[Vec<f32>],
    lr: f32,
    (max_steps, target, fd_step): (usize, f64, f32),
    mut progress: impl FnMut(usize, f64),
) -> Vec<Minimised> {
    let mut descent = Descent::new(starts, lr);
    while descent.step(objective, (max_steps, target, fd_step)) {
        progress(descent.steps, descent.best[descent.active[0]].grad_norm);
    }
    descent.best
}

/// [`minimise_grad_norm`] as a state that goes a step at a time, so it can stop and be saved
/// between steps; runs resumed from the same step go on together.
pub struct Descent {
    pub thetas: Vec<Vec<f32>>,
    pub adams: Vec<FlatAdam>,
    pub best: Vec<Minimised>,
    /// The runs still descending.
    pub active: Vec<usize>,
    /// Steps taken by the runs still descending.
    pub steps: usize,
}

impl Descent {
    #[cfg(test)]
    pub fn new(starts: &[Vec<f32>], lr: f32) -> Descent {
        Descent {
            thetas: starts.to_vec(),
            adams: starts.iter().map(|t| FlatAdam::new(lr, 0.0, t.len())).collect(),
            best: starts.iter().map(|t| Minimised { theta: t.clone(), grad_norm: f64::INFINITY, steps: 0 }).collect(),
            active: (0..starts.len()).collect(),
            steps: 0,
        }
    }

    /// One step of every active run; false when none is left.
    pub fn step(&mut self, objective: &MseObjective, (max_steps, target, fd_step): (usize, f64, f32)) -> bool {
        if self.active.is_empty() {
            return false;
        }
        let current: Vec<Vec<f32>> = self.active.iter().map(|&r| self.thetas[r].clone()).collect();
        let grads = objective.grads(&current);
        let mut going = Vec::new();
        for (&r, g) in self.active.iter().zip(grads) {
            let g_norm = norm(&g);
            let best = &mut self.best[r];
            if g_norm < best.grad_norm {
                best.grad_norm = g_norm;
                best.theta.clone_from(&self.thetas[r]);
            }
            best.steps = self.steps;
            if !(g_norm < target || self.steps == max_steps) {
                going.push((r, g));
            }
        }
        let probes: Vec<Vec<f32>> = going.iter().flat_map(|(r, g)| hvp_probes(&self.thetas[*r], g, fd_step)).collect();
        let mut probe_grads = objective.grads(&probes).into_iter();
        for (r, g) in &going {
            let mine: Vec<Vec<f32>> = probe_grads.by_ref().take(if norm(g) == 0.0 { 0 } else { 2 }).collect();
            let direction: Vec<f32> = hvp_from(&mine, g, fd_step).iter().map(|v| 2.0 * v).collect();
            self.adams[*r].step(&mut self.thetas[*r], &direction);
        }
        self.active = going.into_iter().map(|(r, _)| r).collect();
        self.steps += 1;
        !self.active.is_empty()
    }
}

/// Minimises ½‖∇L‖² by Levenberg–Marquardt in f64: the Jacobian of ∇L is the Hessian H, taken
/// exactly on the piece the point lies on ([`PiecewiseMse`]), so each step solves
/// (H² + λI) δ = H ∇L and takes θ − δ if it lowers ‖∇L‖ (then λ shrinks), else λ grows. Near a
/// critical point of any index this converges fast, where first-order descent on ‖∇L‖² crawls.
/// The point returned is rounded to f32, as the rest of the study holds parameters, and its
/// gradient norm is the one at the rounded point.
pub fn minimise_grad_norm_lm(
    exact: &PiecewiseMse,
    theta: &[f32],
    max_steps: usize,
    target: f64,
    fd_step: f64,
    mut progress: impl FnMut(usize, f64),
) -> Minimised {
    let mut theta: Vec<f64> = theta.iter().map(|&t| t as f64).collect();
    let (_, mut g, _) = exact.loss_and_grad(&theta);
    let mut g_norm = piecewise::norm(&g);
    let mut lambda = 1e-3;
    let mut steps = 0;
    while steps < max_steps && g_norm >= target {
        progress(steps, g_norm);
        let h = exact.hessian_across_kinks(&theta, fd_step);
        let h2 = matmul(&h, &h);
        let hg: Vec<f64> = h.iter().map(|row| row.iter().zip(&g).map(|(a, b)| a * b).sum()).collect();
        let scale = h2.iter().enumerate().map(|(i, r)| r[i]).fold(0.0f64, f64::max).max(1e-12);
        steps += 1;
        // Grow the damping until a step lowers the gradient norm (or give up on this point).
        let mut improved = false;
        for _ in 0..MAX_DAMPING_TRIES {
            if let Some(delta) = solve_damped(&h2, lambda * scale, &hg) {
                let trial: Vec<f64> = theta.iter().zip(&delta).map(|(t, d)| t - d).collect();
                let (_, trial_g, _) = exact.loss_and_grad(&trial);
                let trial_norm = piecewise::norm(&trial_g);
                if trial_norm < g_norm {
                    (theta, g, g_norm) = (trial, trial_g, trial_norm);
                    lambda = (lambda / 3.0).max(1e-15);
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
    let rounded: Vec<f32> = theta.iter().map(|&t| t as f32).collect();
    let grad_norm = exact.grad_norm(&rounded.iter().map(|&t| t as f64).collect::<Vec<f64>>());
    progress(steps, grad_norm);
    Minimised { theta: rounded, grad_norm, steps }
}

/// Levenberg–Marquardt from `start`; where it stalls short of the target, `norm_retrain_steps` of
/// Adam on L itself (lr [`RETRAIN_LR`]) and LM again, up to [`RETRAIN_ROUNDS`] times.
///
/// Why: minimising ‖∇L‖² also finds its own local minima where ∇L is not 0, and the runs LM could
/// not finish stall at such points, in smooth regions of L: the gradients sampled within 1e-4 of
/// them agree with theirs (the least norm of their convex hull is 0.95-1.00 of the point's norm,
/// bench/results/min_ratio-2026-12-07b/), so no kink holds them. Training on L leaves that trap
/// for the critical point of its basin, where LM converges.
fn reach_critical_point(
    exact: &PiecewiseMse,
    start: &[f32],
    p: &RunParams,
    mut progress: impl FnMut(usize, f64),
) -> Minimised {
    let (max_steps, target, fd_step) = (p.norm_lm_steps, p.grad_norm_target, p.fd_step as f64);
    let mut reached = minimise_grad_norm_lm(exact, start, max_steps, target, fd_step, &mut progress);
    for _ in 0..RETRAIN_ROUNDS {
        if reached.grad_norm < target || p.norm_retrain_steps == 0 {
            break;
        }
        let mut theta = reached.theta.clone();
        adam_on_loss(exact, &mut theta, RETRAIN_LR, p.norm_retrain_steps);
        let again = minimise_grad_norm_lm(exact, &theta, max_steps, target, fd_step, &mut progress);
        reached = Minimised { steps: reached.steps + p.norm_retrain_steps + again.steps, ..again };
    }
    reached
}

/// `steps` of Adam (lr `lr`, no weight decay) on L itself, its gradient in f64.
fn adam_on_loss(exact: &PiecewiseMse, theta: &mut [f32], lr: f32, steps: usize) {
    let mut adam = FlatAdam::new(lr, 0.0, theta.len());
    for _ in 0..steps {
        let wide: Vec<f64> = theta.iter().map(|&t| t as f64).collect();
        let grad: Vec<f32> = exact.loss_and_grad(&wide).1.iter().map(|&g| g as f32).collect();
        adam.step(theta, &grad);
    }
}

/// Rounds of training on L between LM attempts at most, and its learning rate (Adam's other
/// settings PyTorch's defaults): on the default runs one round of 3000 steps brings every
/// stalled run below the target (bench/results/min_ratio-2026-12-07b/).
const RETRAIN_ROUNDS: usize = 3;
const RETRAIN_LR: f32 = 1e-3;

/// Damping increases (each ×4) LM tries before it gives up on a point: from λ = 1e-3 of H²'s
/// largest diagonal entry to far past it, where the step is a tiny gradient step on ‖∇L‖².
const MAX_DAMPING_TRIES: usize = 20;

/// Every run of the batch (same data and settings, their own seeds): training and the Adam phase
/// of ‖∇L‖² in lockstep (batched passes), then per run Levenberg–Marquardt and the Hessian (each a
/// batched pass of its 2n probes). Every run saves where it stands at its checkpoint as the batch
/// goes; runs found saved resume there, those saved at one point going on together.
pub fn run(ctxs: &[StageContext]) -> Result<()> {
    let runs: Vec<RunParams> = batch_params(ctxs, RunParams::group)?;
    let p = &runs[0];
    let (xs, ys) = data::read_xy(shared_input(ctxs, "data")?)?;
    let compute = Compute::for_stage(&ctxs[0])?;
    let device: Device = compute.training_device()?;
    let objective = MseObjective::new(&WIDTHS, Activation::Relu, &xs, &ys, &device);
    // On flex the gradients are computed on the host, network by network (see `HostMlp`).
    let objective = if compute.backend == Backend::Flex { objective.on_host() } else { objective };
    let exact = PiecewiseMse::new(&WIDTHS, &xs, &ys);
    let mut members: Vec<Member> = Vec::with_capacity(runs.len());
    for (ctx, run) in ctxs.iter().zip(&runs) {
        members.push(match saved_snapshot(ctx)? {
            Some(saved) => Member::from_snapshot(&saved, p)?,
            None => Member::fresh(run, &device),
        });
    }
    say_resumed(ctxs, &members, p);
    ctxs[0].progress.set_total((p.epochs + p.norm_adam_steps + p.norm_lm_steps * runs.len()) as u64);
    train(ctxs, p, &objective, &mut members)?;
    descend(ctxs, p, &objective, &mut members)?;
    settle(ctxs, &runs, &exact, &mut members)
}

/// Says which runs resume from a checkpoint, and where, counted by where.
fn say_resumed(ctxs: &[StageContext], members: &[Member], p: &RunParams) {
    let resumed: Vec<String> = members.iter().filter_map(|m| m.phase.resumed_at(p)).collect();
    if !resumed.is_empty() {
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        resumed.iter().for_each(|at| *counts.entry(at).or_default() += 1);
        let said: Vec<String> = counts.iter().map(|(at, n)| format!("{n} run(s) {at}")).collect();
        ctxs[0].checkpoint.resumed(&said.join(", "));
    }
}

fn save(ctxs: &[StageContext], members: &[Member]) -> Result<()> {
    save_members(ctxs.iter().zip(members).map(|(ctx, m)| (ctx, m.to_snapshot())))
}

/// Training, in lockstep per epoch the runs were saved at; each run ends it descending.
fn train(ctxs: &[StageContext], p: &RunParams, objective: &MseObjective, members: &mut [Member]) -> Result<()> {
    let progress = ctxs[0].progress;
    while let Some(start) = members.iter().filter_map(|m| m.phase.training_epoch()).min() {
        let group: Vec<usize> =
            (0..members.len()).filter(|&r| members[r].phase.training_epoch() == Some(start)).collect();
        for epoch in start..p.epochs {
            let thetas: Vec<Vec<f32>> = group.iter().map(|&r| members[r].theta.clone()).collect();
            for (&r, (loss, grad)) in group.iter().zip(objective.losses_and_grads(&thetas)) {
                let m = &mut members[r];
                m.loss_sum += loss as f64;
                m.adam.step(&mut m.theta, &grad);
                m.phase = Phase::Training { epoch: epoch + 1 };
            }
            progress.update(epoch as u64 + 1, || format!("training {} runs", group.len()));
            if epoch + 1 < p.epochs && ctxs[group[0]].checkpoint.due() {
                save(ctxs, members)?;
            }
        }
        let thetas: Vec<Vec<f32>> = group.iter().map(|&r| members[r].theta.clone()).collect();
        for (&r, (loss, grad)) in group.iter().zip(objective.losses_and_grads(&thetas)) {
            let m = &mut members[r];
            let trained = Trained { loss, grad_norm: norm(&grad) };
            let best = Minimised { theta: m.theta.clone(), grad_norm: f64::INFINITY, steps: 0 };
            m.adam = FlatAdam::new(p.norm_lr, 0.0, m.theta.len());
            m.phase = Phase::Descending { step: Some(0), trained, best };
        }
    }

    Ok(())
}

/// The Adam phase of ‖∇L‖², in lockstep per step the runs were saved at.
fn descend(ctxs: &[StageContext], p: &RunParams, objective: &MseObjective, members: &mut [Member]) -> Result<()> {
    let progress = ctxs[0].progress;
    let limits = (p.norm_adam_steps, p.grad_norm_target, p.fd_step);
    while let Some(start) = members.iter().filter_map(|m| m.phase.descent_step()).min() {
        let group: Vec<usize> =
            (0..members.len()).filter(|&r| members[r].phase.descent_step() == Some(start)).collect();
        let mut descent = Descent {
            thetas: group.iter().map(|&r| members[r].theta.clone()).collect(),
            adams: group.iter().map(|&r| members[r].adam.clone()).collect(),
            best: group.iter().map(|&r| members[r].phase.best().clone()).collect(),
            active: (0..group.len()).collect(),
            steps: start,
        };
        // The descent holds the group's state while it runs; the members get it back to be saved,
        // and when it ends.
        let hand_back = |descent: &Descent, members: &mut [Member]| {
            let mut still = vec![false; group.len()];
            descent.active.iter().for_each(|&i| still[i] = true);
            for (i, &r) in group.iter().enumerate() {
                let m = &mut members[r];
                m.theta.clone_from(&descent.thetas[i]);
                m.adam.clone_from(&descent.adams[i]);
                let Phase::Descending { step, best, .. } = &mut m.phase else { unreachable!("descending") };
                *step = still[i].then_some(descent.steps);
                best.clone_from(&descent.best[i]);
            }
        };
        loop {
            let going = descent.step(objective, limits);
            progress.update((p.epochs + descent.steps) as u64, || {
                format!("|g| {:.2e}", descent.best[descent.active.first().copied().unwrap_or(0)].grad_norm)
            });
            if !going {
                hand_back(&descent, members);
                break;
            }
            if ctxs[group[0]].checkpoint.due() {
                hand_back(&descent, members);
                save(ctxs, members)?;
            }
        }
    }

    Ok(())
}

/// Per run, Levenberg–Marquardt from the best point, then the Hessian and the outputs (a run
/// done before a checkpoint writes what it saved).
fn settle(ctxs: &[StageContext], runs: &[RunParams], exact: &PiecewiseMse, members: &mut [Member]) -> Result<()> {
    let (p, progress) = (&runs[0], ctxs[0].progress);
    for (r, (ctx, run)) in ctxs.iter().zip(runs).enumerate() {
        if let Phase::Descending { step: None, trained, best } = &members[r].phase {
            let at = (p.epochs + p.norm_adam_steps + r * p.norm_lm_steps) as u64;
            let lm = reach_critical_point(exact, &best.theta, p, |step, n| {
                progress.update(at + step as u64, || format!("run {}: |g| {n:.2e}", run.seed))
            });
            let trained = (trained.loss, trained.grad_norm, members[r].loss_sum);
            finish(ctx, run, exact, trained, best.steps + lm.steps, lm)?;
            let outputs = OUTPUTS.map(|name| ctx.output(name).and_then(|path| Ok(std::fs::read(path)?)));
            let [run_json, eigenvalues] = outputs;
            members[r].phase = Phase::Done { run_json: run_json?, eigenvalues: eigenvalues? };
            if r + 1 < runs.len() && ctx.checkpoint.due() {
                save(ctxs, members)?;
            }
        } else if let Phase::Done { run_json, eigenvalues } = &members[r].phase {
            for (name, bytes) in OUTPUTS.iter().zip([run_json, eigenvalues]) {
                std::fs::write(ctx.output(name)?, bytes)?;
            }
        }
    }
    Ok(())
}

const OUTPUTS: [&str; 2] = ["run.json", "eigenvalues.csv"];

/// One run of a batch: its parameters, its Adam (the training's, then the descent's), the sum of
/// its training losses, and where it stands.
struct Member {
    theta: Vec<f32>,
    adam: FlatAdam,
    loss_sum: f64,
    phase: Phase,
}

/// The MSE and gradient norm a run's training ended with.
#[derive(Clone, Copy)]
struct Trained {
    loss: f32,
    grad_norm: f64,
}

enum Phase {
    /// `epoch` epochs trained.
    Training { epoch: usize },
    /// Descending ‖∇L‖² by Adam, `step` steps taken (`None`: it has left the descent).
    Descending { step: Option<usize>, trained: Trained, best: Minimised },
    /// Finished: its outputs.
    Done { run_json: Vec<u8>, eigenvalues: Vec<u8> },
}

impl Phase {
    fn training_epoch(&self) -> Option<usize> {
        match self {
            Phase::Training { epoch } => Some(*epoch),
            _ => None,
        }
    }

    fn descent_step(&self) -> Option<usize> {
        match self {
            Phase::Descending { step, .. } => *step,
            _ => None,
        }
    }

    fn best(&self) -> &Minimised {
        match self {
            Phase::Descending { best, .. } => best,
            _ => unreachable!("only a descending run has a best point"),
        }
    }

    /// Where a run resumes, for the message (`None` for a run that starts afresh).
    fn resumed_at(&self, p: &RunParams) -> Option<String> {
        match self {
            Phase::Training { epoch: 0 } => None,
            Phase::Training { epoch } => Some(format!("at epoch {} of {}", epoch + 1, p.epochs)),
            Phase::Descending { step: Some(step), .. } => {
                Some(format!("at step {} of {} on the gradient norm", step + 1, p.norm_adam_steps))
            }
            Phase::Descending { step: None, .. } => Some("at Levenberg–Marquardt".into()),
            Phase::Done { .. } => Some("finished".into()),
        }
    }
}

#[derive(Serialize, Deserialize)]
enum SavedPhase {
    Training { epoch: usize },
    Descending { step: Option<usize>, best_steps: usize },
    Done,
}

impl Member {
    fn fresh(run: &RunParams, device: &Device) -> Member {
        let theta = Mlp::new(&WIDTHS, Activation::Relu, &mut Init::new(run.seed), device).flat();
        let adam = FlatAdam::new(run.lr, 0.0, theta.len());
        Member { theta, adam, loss_sum: 0.0, phase: Phase::Training { epoch: 0 } }
    }

    fn to_snapshot(&self) -> Result<Snapshot> {
        let (saved, scalars) = match &self.phase {
            Phase::Training { epoch } => (SavedPhase::Training { epoch: *epoch }, vec![self.loss_sum]),
            Phase::Descending { step, trained, best } => (
                SavedPhase::Descending { step: *step, best_steps: best.steps },
                vec![self.loss_sum, trained.loss as f64, trained.grad_norm, best.grad_norm],
            ),
            Phase::Done { .. } => (SavedPhase::Done, Vec::new()),
        };
        let mut snapshot = Snapshot::new(&saved)?;
        snapshot.put_f64("scalars", &scalars);
        match &self.phase {
            Phase::Done { run_json, eigenvalues } => {
                snapshot.put_bytes("run_json", run_json);
                snapshot.put_bytes("eigenvalues", eigenvalues);
            }
            phase => {
                snapshot.put_f32("theta", &self.theta);
                snapshot.put_adam(&self.adam.state());
                if let Phase::Descending { best, .. } = phase {
                    snapshot.put_f32("best_theta", &best.theta);
                }
            }
        }
        Ok(snapshot)
    }

    fn from_snapshot(snapshot: &Snapshot, p: &RunParams) -> Result<Member> {
        let saved: SavedPhase = snapshot.state()?;
        let scalars = snapshot.f64s("scalars")?;
        let scalar = |i: usize| scalars.get(i).copied().context("a checkpoint short of its scalars");
        if let SavedPhase::Done = saved {
            let phase =
                Phase::Done { run_json: snapshot.bytes("run_json")?, eigenvalues: snapshot.bytes("eigenvalues")? };
            return Ok(Member { theta: Vec::new(), adam: FlatAdam::new(0.0, 0.0, 0), loss_sum: 0.0, phase });
        }
        let moments = snapshot.adam()?.context("a run still computing was saved without its optimiser")?;
        let (lr, phase) = match saved {
            SavedPhase::Training { epoch } => (p.lr, Phase::Training { epoch }),
            SavedPhase::Descending { step, best_steps } => {
                let trained = Trained { loss: scalar(1)? as f32, grad_norm: scalar(2)? };
                let best = Minimised { theta: snapshot.f32s("best_theta")?, grad_norm: scalar(3)?, steps: best_steps };
                (p.norm_lr, Phase::Descending { step, trained, best })
            }
            SavedPhase::Done => unreachable!("returned above"),
        };
        let adam = FlatAdam::resume(lr, 0.0, moments);
        Ok(Member { theta: snapshot.f32s("theta")?, adam, loss_sum: scalar(0)?, phase })
    }
}

/// The Hessian at the point reached and the run's outputs (`run.json`, `eigenvalues.csv`).
fn finish(
    ctx: &StageContext,
    p: &RunParams,
    exact: &PiecewiseMse,
    (train_loss, grad_norm_after_training, loss_sum): (f32, f64, f64),
    norm_steps: usize,
    reached: Minimised,
) -> Result<()> {
    let theta: Vec<f64> = reached.theta.iter().map(|&t| t as f64).collect();
    let loss = exact.loss_and_grad(&theta).0;
    let hessian = exact.hessian(&theta);
    let eigs = symmetric_eigenvalues(&hessian);
    if eigs.iter().any(|v| !v.is_finite()) {
        bail!("the Hessian's eigen-decomposition failed (non-finite eigenvalues)");
    }
    let tol = p.eigen_tolerance;
    let result = RunResult {
        seed: p.seed,
        train_loss: train_loss as f64,
        original_metric: 0.1 * loss_sum / p.epochs.max(1) as f64,
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
        let both = minimise_grad_norm(&objective, &[theta.clone(), other], 1e-3, (300, 1e-12, 1e-3), |_, _| {});
        let Minimised { theta: end_theta, grad_norm: end, steps } = &both[0];
        assert_eq!(*steps, 300);
        assert!(*end < 0.5 * start, "gradient norm {start} -> {end}");
        assert!((norm(&objective.grad(end_theta)) - end).abs() < 1e-9, "the best point is returned");
        // In lockstep with another run, a run ends exactly where it ends alone.
        let alone = minimise_grad_norm(&objective, std::slice::from_ref(&theta), 1e-3, (300, 1e-12, 1e-3), |_, _| {});
        assert_eq!(alone[0].theta, *end_theta);

        let exact = PiecewiseMse::new(&WIDTHS, &xs, &ys);
        let lm = minimise_grad_norm_lm(&exact, &theta, 30, 1e-4, 1e-3, |_, _| {});
        assert!(
            lm.grad_norm < 1e-2 * start,
            "Levenberg–Marquardt: gradient norm {start} -> {} in {} steps",
            lm.grad_norm,
            lm.steps
        );
        // The norm returned is the one at the f32 point returned, and the study's f32 gradient
        // agrees with it there to f32 rounding.
        let wide: Vec<f64> = lm.theta.iter().map(|&t| t as f64).collect();
        assert_eq!(exact.grad_norm(&wide), lm.grad_norm);
        assert!((norm(&objective.grad(&lm.theta)) - lm.grad_norm).abs() < 1e-5, "{}", norm(&objective.grad(&lm.theta)));
    }

    #[test]
    fn where_lm_stalls_training_on_the_loss_then_lm_reaches_a_critical_point() {
        let (xs, ys) = synth::cosine_data(300, 1);
        let exact = PiecewiseMse::new(&WIDTHS, &xs, &ys);
        let device = Device::flex().autodiff();
        let p = RunParams {
            seed: 0,
            epochs: 0,
            lr: 1e-2,
            norm_lr: 1e-2,
            norm_adam_steps: 0,
            norm_lm_steps: 20,
            norm_retrain_steps: 3000,
            grad_norm_target: 1e-2,
            fd_step: 1e-3,
            eigen_tolerance: 1e-4,
        };
        // Starts as the study makes them (a short training on L), until one that LM alone cannot
        // finish: the case the retraining exists for.
        let lm_alone =
            |theta: &[f32]| minimise_grad_norm_lm(&exact, theta, p.norm_lm_steps, p.grad_norm_target, 1e-3, |_, _| {});
        let (theta, alone) = (0..40)
            .map(|seed| {
                let mut theta = Mlp::new(&WIDTHS, Activation::Relu, &mut Init::new(seed), &device).flat();
                adam_on_loss(&exact, &mut theta, 1e-2, 300);
                let alone = lm_alone(&theta);
                (theta, alone)
            })
            .find(|(_, alone)| alone.grad_norm >= p.grad_norm_target)
            .expect("among 40 starts, one where LM alone stalls");
        let reached = reach_critical_point(&exact, &theta, &p, |_, _| {});
        assert!(reached.grad_norm < p.grad_norm_target, "{} -> {}", alone.grad_norm, reached.grad_norm);
        assert!(reached.steps >= alone.steps + p.norm_retrain_steps, "the retraining counts among the steps");
        // With retraining off, LM's point as it was.
        let off = reach_critical_point(&exact, &theta, &RunParams { norm_retrain_steps: 0, ..p.clone() }, |_, _| {});
        assert_eq!((off.theta, off.grad_norm), (alone.theta, alone.grad_norm));
    }
}
