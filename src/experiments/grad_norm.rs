//! Spec section 4, "Gradient norm during training": the deep, narrow 1-5-10-10-10-10-10-5-1 ReLU
//! network (571 parameters) fitted by full-batch Adam (lr 1e-3) with MSE to sign(sin(5πx)) on
//! 200 points of [-1, 1], 2000 iterations. Per iteration: the loss and the L2 norm of the gradient
//! over every parameter, both at the pre-step weights.
//!
//! Such a net can die (constant output, gradient exactly 0); several seeds run, each is plotted,
//! and dead runs are flagged in the summary instead of hidden.

use anyhow::{Result, bail};
use burn::optim::GradientsParams;
use serde::{Deserialize, Serialize};

use crate::analysis::{Cell, Table, write_columns};
use crate::data::{self, synth};
use crate::engine::{Stage, StageContext, StageKind};
use crate::experiments::{Built, FullBatch, report_input};
use crate::nn::flat::norm;
use crate::nn::{self, Activation, loss::mse, mlp::param_count};

pub const ID: &str = "grad_norm";
pub const WIDTHS: [usize; 9] = [1, 5, 10, 10, 10, 10, 10, 5, 1];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    #[serde(default = "default_lr")]
    pub lr: f64,
    #[serde(default)]
    pub after: Vec<String>,
}

fn default_seeds() -> Vec<u64> {
    vec![0, 1, 2]
}
fn default_epochs() -> usize {
    2000
}
fn default_lr() -> f64 {
    1e-3
}

impl Settings {
    pub fn validate(&self) -> Result<()> {
        if self.seeds.is_empty() || self.epochs == 0 {
            bail!("at least one seed and one epoch");
        }
        Ok(())
    }
}

static DATA: StageKind = StageKind::plain("grad_norm.data", &["data", "experiments/grad_norm"], generate);
static TRAIN: StageKind = StageKind::numeric("grad_norm.train", &["data", "nn", "experiments/grad_norm"], train);
static ANALYZE: StageKind = StageKind::plain("grad_norm.analyze", &["analysis", "experiments/grad_norm"], analyze);
static PLOT: StageKind = StageKind::plain("grad_norm.plot", &["plot", "analysis"], crate::plot::grad_norm::figures);

#[derive(Serialize, Deserialize)]
struct TrainParams {
    seed: u64,
    epochs: usize,
    lr: f64,
}

pub fn stages(settings: &Settings) -> Built {
    let data = Stage::new(&DATA, &[], &());
    let mut analyze = Stage::new(&ANALYZE, &[], &()).publish(ID);
    let mut out = Vec::new();
    for &seed in &settings.seeds {
        let params = TrainParams { seed, epochs: settings.epochs, lr: settings.lr };
        let work = (crate::nn::mlp::param_count(&WIDTHS) * synth::grad_norm_data().0.len()) as u64;
        let run = Stage::new(&TRAIN, &[("seed", seed.to_string())], &params)
            .input("data", &data, "data.csv")
            .with_work(work)
            .with_steps(settings.epochs as u64);
        analyze = analyze.input(format!("{seed}/curve.csv"), &run, "curve.csv");
        out.push(run);
    }
    let plot = Stage::new(&PLOT, &[], &()).input("curves.csv", &analyze, "curves.csv").publish(ID);
    let report = vec![
        report_input(&analyze, "summary.csv"),
        report_input(&analyze, "curves.csv"),
        report_input(&plot, "grad_norm.png"),
    ];
    out.extend([data, analyze, plot]);
    Built { stages: out, report }
}

fn generate(ctx: &StageContext) -> Result<()> {
    let (xs, ys) = synth::grad_norm_data();
    data::write_xy(&ctx.output("data.csv")?, &xs, &ys)
}

fn train(ctx: &StageContext) -> Result<()> {
    let p: TrainParams = ctx.params()?;
    let FullBatch { x, y, mut model, mut optimizer } = FullBatch::setup(ctx, &WIDTHS, Activation::Relu, p.seed, 0.0)?;
    let (mut losses, mut norms) = (Vec::with_capacity(p.epochs), Vec::with_capacity(p.epochs));
    ctx.progress.set_total(p.epochs as u64);
    for epoch in 0..p.epochs {
        let loss = mse(model.forward(x.clone()), y.clone());
        let grads = loss.backward();
        norms.push(norm(&model.flat_grad(&grads)) as f32);
        let grads = GradientsParams::from_grads(grads, &model);
        model = optimizer.step(p.lr, model, grads);
        losses.push(nn::scalar(loss));
        ctx.progress.update(epoch as u64 + 1, || format!("loss {:.4} |g| {:.4}", losses[epoch], norms[epoch]));
    }
    let epochs: Vec<f32> = (0..p.epochs).map(|e| e as f32).collect();
    write_columns(&ctx.output("curve.csv")?, &[("epoch", &epochs), ("loss", &losses), ("grad_norm", &norms)])
}

/// The first epoch from which the gradient is exactly zero to the end (a dead network), if any.
pub fn dead_from(norms: &[f64]) -> Option<usize> {
    let alive = norms.iter().rposition(|&n| n != 0.0);
    match alive {
        None => Some(0),
        Some(last) if last + 1 < norms.len() => Some(last + 1),
        Some(_) => None,
    }
}

fn analyze(ctx: &StageContext) -> Result<()> {
    let mut curves = Vec::new();
    let mut rows = Vec::new();
    for (name, path) in &ctx.inputs {
        let seed: u64 = name.trim_end_matches("/curve.csv").parse()?;
        let curve = Table::read_csv(path)?;
        let (losses, norms) = (curve.floats("loss")?, curve.floats("grad_norm")?);
        let (min_at, min_norm) =
            norms.iter().enumerate().fold((0, f64::INFINITY), |a, (i, &n)| if n < a.1 { (i, n) } else { a });
        let dead = dead_from(&norms);
        rows.push(vec![
            ID.into(),
            "1-5-10-10-10-10-10-5-1".into(),
            seed.into(),
            (param_count(&WIDTHS) as u64).into(),
            (losses.len() as u64).into(),
            (*losses.last().unwrap()).into(),
            (*norms.last().unwrap()).into(),
            min_norm.into(),
            (min_at as u64).into(),
            dead.is_some().into(),
            dead.map_or(Cell::Int(-1), |e| Cell::Int(e as i64)),
        ]);
        curves.push(curve.with_seed(seed)?);
    }
    Table::from_rows(
        &[
            "experiment",
            "model",
            "seed",
            "params",
            "epochs",
            "final_loss",
            "final_grad_norm",
            "min_grad_norm",
            "min_grad_norm_epoch",
            "dead",
            "dead_from_epoch",
        ],
        rows.into_iter(),
    )?
    .write_csv(&ctx.output("summary.csv")?)?;
    Table::concat(curves)?.write_csv(&ctx.output("curves.csv")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_runs_are_found_from_their_first_zero_gradient_to_the_end() {
        assert_eq!(dead_from(&[1.0, 0.5, 0.0, 0.0]), Some(2));
        assert_eq!(dead_from(&[1.0, 0.0, 0.5]), None, "a zero in the middle is not death");
        assert_eq!(dead_from(&[0.0, 0.0]), Some(0));
        assert_eq!(dead_from(&[1.0]), None);
    }
}
