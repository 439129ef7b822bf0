//! Helpers of batched sweeps (many small trainings of one shape as one stacked model) and of
//! full-batch regression runs, and the flat weight files stages hand each other.

use anyhow::{Result, bail};

use crate::engine::StageContext;
use crate::engine::checkpoint::Interrupted;
use crate::nn::snapshot::Snapshot;
use crate::nn::{Activation, Compute, Init, Mlp};

/// A flat f32 vector as little-endian bytes (weights handed between stages).
pub fn write_f32s(path: &std::path::Path, values: &[f32]) -> Result<()> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    Ok(std::fs::write(path, bytes)?)
}

pub fn read_f32s(path: &std::path::Path) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path)?;
    if bytes.len() % 4 != 0 {
        bail!("{}: {} bytes is not a whole number of f32", path.display(), bytes.len());
    }
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
}

/// The params of every instance of a batch (see `Runner::Batch`), checked to agree on `group`:
/// what their stages were grouped by, which the batched code relies on being equal.
pub fn batch_params<P: serde::de::DeserializeOwned>(
    ctxs: &[StageContext],
    group: impl Fn(&P) -> String,
) -> Result<Vec<P>> {
    let runs: Vec<P> = ctxs.iter().map(|ctx| ctx.params()).collect::<Result<_>>()?;
    if runs.iter().any(|run| group(run) != group(&runs[0])) {
        bail!("{}: a batch mixes settings its runs must share", ctxs[0].stage.kind.name);
    }
    Ok(runs)
}

/// Saves each member's state at its own checkpoint. When the process was asked to stop, every
/// member is saved before the stop is returned.
pub fn save_members<'a, 'c: 'a>(
    states: impl IntoIterator<Item = (&'a StageContext<'c>, Result<Snapshot>)>,
) -> Result<()> {
    let mut stop = None;
    for (ctx, snapshot) in states {
        match ctx.checkpoint.save(&snapshot?.to_bytes()?) {
            Err(e) if e.is::<Interrupted>() => stop = Some(e),
            other => other?,
        }
    }
    stop.map_or(Ok(()), Err)
}

/// The one file every instance of a batch reads as `name` (data the runs share).
pub fn shared_input<'a>(ctxs: &'a [StageContext], name: &str) -> Result<&'a std::path::Path> {
    let path = ctxs[0].input(name)?;
    if ctxs.iter().any(|ctx| ctx.input(name).ok() != Some(path)) {
        bail!("{}: a batch mixes `{name}` inputs its runs must share", ctxs[0].stage.kind.name);
    }
    Ok(path)
}

/// A full-batch regression run on the stage's `data` input (`x,y` CSV): the data as column
/// tensors on the training device, a seeded PyTorch-initialised MLP and PyTorch's Adam.
pub struct FullBatch {
    pub x: burn::prelude::Tensor<2>,
    pub y: burn::prelude::Tensor<2>,
    pub model: Mlp,
    pub optimizer: crate::nn::optim::Adam,
}

impl FullBatch {
    pub fn setup(
        ctx: &StageContext,
        widths: &[usize],
        activation: Activation,
        seed: u64,
        weight_decay: f32,
    ) -> Result<FullBatch> {
        let (xs, ys) = crate::data::read_xy(ctx.input("data")?)?;
        let device = Compute::for_stage(ctx)?.training_device()?;
        let model = Mlp::new(widths, activation, &mut Init::new(seed), &device);
        let (x, y) = (crate::nn::column(&xs, &device), crate::nn::column(&ys, &device));
        Ok(FullBatch { x, y, model, optimizer: crate::nn::optim::Adam::new(weight_decay) })
    }
}
