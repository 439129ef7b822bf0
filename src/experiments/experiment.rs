//! What every experiment gives the registry, and the pieces its stage wiring is made of.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use crate::engine::{InputRef, Stage};
use crate::report::Section;
use crate::training::mnist_inputs::MnistInputs;

/// An experiment, as its `[experiments.<id>]` settings: implemented by each experiment's
/// `Settings`, listed once in the registry (`experiments/mod.rs`).
pub trait Experiment {
    /// Its section name in pipeline.toml, its artifacts folder, its stage names' prefix.
    fn id(&self) -> &'static str;
    /// Checks the settings serde cannot (non-empty lists, positive rates).
    fn validate(&self) -> Result<()>;
    /// Experiments whose stages must finish before this one's start (ordering only).
    fn after(&self) -> &[String];
    /// Its stage instances, and what its report section reads from them.
    fn stages(&self, mnist: &MnistInputs) -> Built;
    /// Its report section, from the inputs it asked for in [`Experiment::stages`].
    fn section(&self, inputs: &BTreeMap<String, PathBuf>) -> Result<Section>;
    /// The columns of its `summary.csv` that name a row (one training run); the others, but
    /// `experiment`, are what the run measured. `seed` among them groups repetitions.
    fn summary_keys(&self) -> &'static [&'static str] {
        &["model", "seed"]
    }
    /// The measurement of its summary that `repro runs` shows (its mean over the rows).
    fn headline(&self) -> Option<&'static str> {
        None
    }
}

/// The report input every experiment's analysis provides: one row per run.
pub const SUMMARY: &str = "summary.csv";

/// The stages of one experiment and the outputs its report section reads.
pub struct Built {
    pub stages: Vec<Stage>,
    pub report: Vec<InputRef>,
}

/// A report input: output `output` of `stage`, seen by the section under the same name.
pub fn report_input(stage: &Stage, output: &str) -> InputRef {
    InputRef { name: output.to_string(), stage: stage.id.clone(), output: output.to_string() }
}
