//! What every experiment gives the registry, and the pieces its stage wiring is made of.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use crate::analysis::Table;
use crate::engine::{InputRef, Stage, StageContext};
use crate::plot::Figure;
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
    /// Its figures, drawn from `tables` as its plot stages draw them (the report draws them again
    /// from a previous run's tables, to show its curves faintly behind this run's).
    fn figures(&self, tables: &Tables) -> Result<Vec<Figure>>;
    /// The measurement of its summary that `repro runs` shows (its mean over the rows).
    fn headline(&self) -> Option<&'static str> {
        None
    }
}

/// The tables a figure is drawn from, by input name: a plot stage's inputs, or the report's view
/// of the same tables (this run's, or a previous run's).
pub type Tables = BTreeMap<String, PathBuf>;

/// Reads the table `name` of `tables`.
pub fn table(tables: &Tables, name: &str) -> Result<Table> {
    Table::read_csv(crate::report::input(tables, name)?)
}

/// A plot stage's work: its figures, drawn from its inputs, written as its outputs.
pub fn render_figures(ctx: &StageContext, figures: Vec<Figure>) -> Result<()> {
    for figure in figures {
        figure.render(&ctx.output(&figure.name)?)?;
    }
    Ok(())
}

/// The report inputs that let the report draw `plot`'s figures again (see
/// [`Experiment::figures`]): each of its inputs under the name the plot stage reads it by.
pub fn figure_inputs(plot: &Stage) -> Vec<InputRef> {
    plot.inputs.clone()
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
