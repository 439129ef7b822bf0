//! The data of `min_ratio`, generated once and read by every run.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::data::{self, synth};
use crate::engine::StageContext;

#[derive(Serialize, Deserialize)]
pub struct DataParams {
    pub seed: u64,
    pub samples: usize,
}

pub fn generate(ctx: &StageContext) -> Result<()> {
    let DataParams { seed, samples } = ctx.params()?;
    let (xs, ys) = synth::cosine_data(samples, seed);
    data::write_xy(&ctx.output("data.csv")?, &xs, &ys)
}
