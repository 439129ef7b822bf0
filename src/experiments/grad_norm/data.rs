//! The data of `grad_norm`, generated once and read by every run.

use anyhow::Result;

use crate::data::{self, synth};
use crate::engine::StageContext;

pub fn generate(ctx: &StageContext) -> Result<()> {
    let (xs, ys) = synth::grad_norm_data();
    data::write_xy(&ctx.output("data.csv")?, &xs, &ys)
}
