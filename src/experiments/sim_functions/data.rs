//! The data of `sim_functions`, generated once and read by every run.

use anyhow::Result;

use super::model::DataParams;
use crate::data;
use crate::engine::StageContext;

pub fn generate(ctx: &StageContext) -> Result<()> {
    let DataParams { function } = ctx.params()?;
    let (xs, ys) = data::synth::sample(function);
    data::write_xy(&ctx.output("data.csv")?, &xs, &ys)
}
