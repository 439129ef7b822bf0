//! The data of `weights_pca`, generated once and read by every run.

use anyhow::Result;

use crate::data::{self, synth};
use crate::engine::StageContext;

pub fn generate(ctx: &StageContext) -> Result<()> {
    let (xs, ys) = synth::sample(synth::Function::F1);
    data::write_xy(&ctx.output("data.csv")?, &xs, &ys)
}
