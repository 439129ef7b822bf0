//! The study's experiments, one folder each (settings and stage wiring in `mod.rs`; data,
//! training, analysis, figures and report section in files of their own), and the one list of
//! them: configuration sections, the stage graph and the report's sections all come from it, so
//! adding an experiment is one folder and one line below.

pub mod baselines;
mod experiment;
pub mod seeds;

// Declared here rather than by `registry!` so that `cargo fmt` (which does not expand macros)
// reaches their files; `registry!` below names each again (it fails to compile without the
// module), and a test checks that every folder is registered.
pub mod grad_norm;
pub mod interpolation;
pub mod min_ratio;
pub mod mnist_cnn;
pub mod params_generalization;
pub mod random_labels;
pub mod sensitivity;
pub mod sim_functions;
pub mod weights_pca;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

pub use self::experiment::{Built, Experiment, SUMMARY, report_input};
use crate::data::mnist::MnistSource;
use crate::engine::{InputRef, Stage};
use crate::training::mnist_inputs::MnistInputs;

/// Declares every experiment: its optional `[experiments.<id>]` section, its place in
/// the report (the order listed).
macro_rules! registry {
    ($($id:ident),* $(,)?) => {
        /// One optional section per experiment: a missing section means the experiment does not run.
        #[derive(Clone, Debug, Default, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Experiments {
            $(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $id: Option<$id::Settings>,
            )*
        }

        /// Every experiment id the configuration may name, in report order.
        pub const IDS: &[&str] = &[$(stringify!($id)),*];

        impl Experiments {
            /// The configured experiments, in report order.
            pub fn configured(&self) -> Vec<&dyn Experiment> {
                let mut out: Vec<&dyn Experiment> = Vec::new();
                $(
                    if let Some(settings) = &self.$id {
                        out.push(settings);
                    }
                )*
                out
            }
        }
    };
}

registry!(
    sim_functions,
    mnist_cnn,
    weights_pca,
    grad_norm,
    min_ratio,
    random_labels,
    params_generalization,
    interpolation,
    sensitivity,
);

impl Experiments {
    /// Every configured section's own checks, each error naming its section.
    pub fn validate(&self) -> Result<()> {
        for experiment in self.configured() {
            experiment.validate().map_err(|e| e.context(format!("in [experiments.{}]", experiment.id())))?;
        }
        Ok(())
    }
}

/// Where in the configuration file each key was written (`experiments.<id>.after` ->
/// `pipeline.toml:LINE:COL`), for errors found after parsing.
pub type Origins = BTreeMap<String, String>;

/// Every stage instance of the configured experiments (MNIST's fetch included when one reads it),
/// and the inputs the report reads from them, named `<id>/<output>`.
pub fn build(
    experiments: &Experiments,
    mnist_source: &MnistSource,
    origins: &Origins,
    file: &Path,
) -> Result<(Vec<Stage>, Vec<InputRef>)> {
    let mnist = MnistInputs::new(mnist_source);
    let built: BTreeMap<&str, (Built, &dyn Experiment)> =
        experiments.configured().into_iter().map(|e| (e.id(), (e.stages(&mnist), e))).collect();
    let ids: BTreeMap<&str, Vec<String>> =
        built.iter().map(|(id, (b, _))| (*id, b.stages.iter().map(|s| s.id.clone()).collect())).collect();
    let mut stages = Vec::new();
    let mut report = Vec::new();
    for (id, (b, experiment)) in built {
        let origin = origins.get(&format!("experiments.{id}.after")).cloned();
        let mut ordering = Vec::new();
        for other in experiment.after() {
            match ids.get(other.as_str()) {
                Some(list) => ordering.extend(list.iter().cloned()),
                None if IDS.contains(&other.as_str()) => {
                    bail!("{}: `after` names {other}, which is not configured", origin.clone().unwrap_or_default())
                }
                None => bail!(
                    "{}: `after` names unknown experiment `{other}` (known: {})",
                    origin.clone().unwrap_or_default(),
                    IDS.join(", ")
                ),
            }
        }
        // A table both a section and a figure read is one input.
        for input in b.report {
            let input = InputRef { name: format!("{id}/{}", input.name), ..input };
            match report.iter().find(|r: &&InputRef| r.name == input.name) {
                None => report.push(input),
                Some(same) if same.stage == input.stage && same.output == input.output => {}
                Some(other) => bail!("{id} names two report inputs {}: {other:?} and {input:?}", input.name),
            }
        }
        for mut stage in b.stages {
            stage.after = ordering.clone();
            stage.after_origin = origin.clone();
            stages.push(stage);
        }
    }
    if stages.iter().any(|s| s.inputs.iter().any(|i| i.stage == mnist.fetch.id)) {
        stages.push(mnist.fetch);
    }
    if stages.is_empty() {
        bail!("{}: no experiment is configured (add a section such as [experiments.sim_functions])", file.display());
    }
    Ok((stages, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_experiment_answers_to_its_name() {
        let all: Experiments = serde_json::from_value(serde_json::Value::Object(
            IDS.iter().map(|id| (id.to_string(), serde_json::json!({}))).collect(),
        ))
        .unwrap();
        let ids: Vec<&str> = all.configured().iter().map(|e| e.id()).collect();
        assert_eq!(ids, IDS, "a section's name is its experiment's id, in report order");
        all.validate().unwrap();
        let (stages, report) =
            build(&all, &MnistSource::default(), &Origins::new(), Path::new("pipeline.toml")).unwrap();
        for id in IDS {
            assert!(stages.iter().any(|s| s.id.starts_with(&format!("{id}."))), "{id} has no stage");
            assert!(report.iter().any(|i| i.name == format!("{id}/{SUMMARY}")), "{id} gives the report no summary");
            assert!(all.configured().iter().any(|e| e.id() == *id && e.headline().is_some()), "{id} has no headline");
        }
    }

    #[test]
    fn every_experiment_folder_is_declared_and_registered() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/experiments");
        let mut folders: Vec<String> = std::fs::read_dir(&here)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("mod.rs").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        folders.sort();
        let mut registered: Vec<String> = IDS.iter().map(|s| s.to_string()).collect();
        registered.sort();
        assert_eq!(folders, registered, "an experiment folder missing from `registry!` (or the reverse)");
    }
}
