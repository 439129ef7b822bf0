//! The study as a whole: every configured experiment's stages, then the report stage that gathers
//! their sections, checks the original's claims and says what ran.

pub mod claims;
pub mod diff;
pub mod report;

use anyhow::Result;

use crate::config::Loaded;
use crate::engine::Stage;
use crate::experiments;

/// All stage instances of the configuration, the report last (compared with `previous`, when given).
pub fn build(loaded: &Loaded, previous: Option<&report::Previous>) -> Result<Vec<Stage>> {
    let config = &loaded.config;
    let (mut stages, inputs) =
        experiments::build(&config.experiments, &config.data.mnist, &loaded.origins, &loaded.file)?;
    let mut report = report::stage(config, previous);
    report.inputs.extend(inputs);
    stages.push(report);
    Ok(stages)
}
