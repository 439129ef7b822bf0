//! The study's experiments, one file each, and the report stage that gathers them.

pub mod grad_norm;
pub mod min_ratio;
pub mod mnist_cnn;
pub mod sim_functions;
pub mod weights_pca;

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::config::{Loaded, MnistSource};
use crate::data::mnist as mnist_files;
use crate::data::mnist::{FetchOptions, Split};
use crate::engine::{InputRef, Stage, StageContext, StageKind};
use crate::report::{self, ReportHeader};

/// The stages of one experiment and the outputs its report section reads.
pub struct Built {
    pub stages: Vec<Stage>,
    pub report: Vec<InputRef>,
}

/// A report input: output `output` of `stage`, seen by the section under the same name.
pub fn report_input(stage: &Stage, output: &str) -> InputRef {
    InputRef { name: output.to_string(), stage: stage.id.clone(), output: output.to_string() }
}

/// Every experiment id the configuration may name, in report order.
pub const IDS: &[&str] = &[sim_functions::ID, mnist_cnn::ID, weights_pca::ID, grad_norm::ID, min_ratio::ID];

static REPORT: StageKind = StageKind::plain(
    "report",
    &["report", "analysis", "experiments", "experiments/sim_functions", "experiments/mnist_cnn"],
    write_report,
);

#[derive(Serialize, Deserialize)]
struct ReportParams {
    config: crate::config::Config,
}

/// All stage instances of the configuration, the report last.
pub fn build(loaded: &Loaded) -> Result<Vec<Stage>> {
    let config = &loaded.config;
    let mut built: BTreeMap<&str, (Built, Vec<String>)> = BTreeMap::new();
    let mnist = MnistInputs::new(&config.data.mnist);
    if let Some(s) = &config.experiments.weights_pca {
        built.insert(weights_pca::ID, (weights_pca::stages(s), s.after.clone()));
    }
    if let Some(s) = &config.experiments.grad_norm {
        built.insert(grad_norm::ID, (grad_norm::stages(s), s.after.clone()));
    }
    if let Some(s) = &config.experiments.min_ratio {
        built.insert(min_ratio::ID, (min_ratio::stages(s), s.after.clone()));
    }
    if let Some(s) = &config.experiments.mnist_cnn {
        built.insert(mnist_cnn::ID, (mnist_cnn::stages(s, &mnist), s.after.clone()));
    }
    if let Some(s) = &config.experiments.sim_functions {
        built.insert(sim_functions::ID, (sim_functions::stages(s), s.after.clone()));
    }
    let ids: BTreeMap<&str, Vec<String>> =
        built.iter().map(|(id, (b, _))| (*id, b.stages.iter().map(|s| s.id.clone()).collect())).collect();
    let mut stages = Vec::new();
    let mut report = Stage::new(&REPORT, &[], &ReportParams { config: config.clone() }).publish("");
    for (id, (b, after)) in built {
        let origin = loaded.origins.get(&format!("experiments.{id}.after")).cloned();
        let mut ordering = Vec::new();
        for other in &after {
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
        for input in b.report {
            report.inputs.push(InputRef { name: format!("{id}/{}", input.name), ..input });
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
        bail!(
            "{}: no experiment is configured (add a section such as [experiments.sim_functions])",
            loaded.file.display()
        );
    }
    stages.push(report);
    Ok(stages)
}

fn write_report(ctx: &StageContext) -> Result<()> {
    let ReportParams { config } = ctx.params()?;
    let for_experiment = |id: &str| -> BTreeMap<String, std::path::PathBuf> {
        let prefix = format!("{id}/");
        ctx.inputs.iter().filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k.to_string(), v.clone()))).collect()
    };
    let mut sections = Vec::new();
    if let Some(s) = &config.experiments.sim_functions {
        sections.push(report::sim_functions::section(&for_experiment(sim_functions::ID), s)?);
    }
    if let Some(s) = &config.experiments.mnist_cnn {
        sections.push(report::mnist_cnn::section(&for_experiment(mnist_cnn::ID), s)?);
    }
    if let Some(s) = &config.experiments.weights_pca {
        sections.push(report::weights_pca::section(&for_experiment(weights_pca::ID), s)?);
    }
    if let Some(s) = &config.experiments.grad_norm {
        sections.push(report::grad_norm::section(&for_experiment(grad_norm::ID), s)?);
    }
    if let Some(s) = &config.experiments.min_ratio {
        sections.push(report::min_ratio::section(&for_experiment(min_ratio::ID), s)?);
    }
    let header = ReportHeader {
        backend: format!("{:?}", config.pipeline.backend).to_lowercase(),
        device: config.pipeline.device.clone(),
        config_hash: crate::engine::hash_bytes(&serde_json::to_vec(&config)?),
    };
    report::write(&header, &sections, &ctx.output("report.md")?, &ctx.output("report.html")?)
}

static MNIST_FETCH: StageKind = StageKind::plain("mnist.fetch", &["data"], fetch_mnist);

/// The MNIST files as a stage: fetched (or found) in `data/mnist/`, verified, then stored, so that
/// every experiment reads the same verified bytes and their keys depend on them.
pub struct MnistInputs {
    fetch: Stage,
}

#[derive(Serialize, Deserialize)]
struct FetchParams {
    /// (name, SHA-256 of the uncompressed file): the content, hence the key.
    files: Vec<(String, String)>,
}

impl MnistInputs {
    pub fn new(source: &MnistSource) -> MnistInputs {
        let files = mnist_files::FILES.iter().map(|f| (f.name.to_string(), f.sha256.to_string())).collect();
        MnistInputs { fetch: Stage::new(&MNIST_FETCH, &[], &FetchParams { files }).unkeyed(source) }
    }

    /// `stage` with the four files as inputs, named as on the mirrors.
    pub fn feed(&self, stage: Stage) -> Stage {
        mnist_files::FILES.iter().fold(stage, |s, f| s.input(f.name, &self.fetch, f.name))
    }

    /// The training and test splits of a stage fed by [`MnistInputs::feed`].
    pub fn load(ctx: &StageContext) -> Result<(Split, Split)> {
        let train = mnist_files::load_split(
            ctx.input(mnist_files::TRAIN_IMAGES.name)?,
            ctx.input(mnist_files::TRAIN_LABELS.name)?,
        )?;
        let test = mnist_files::load_split(
            ctx.input(mnist_files::TEST_IMAGES.name)?,
            ctx.input(mnist_files::TEST_LABELS.name)?,
        )?;
        Ok((train, test))
    }
}

fn fetch_mnist(ctx: &StageContext) -> Result<()> {
    let source: MnistSource = ctx.unkeyed()?;
    let opts = FetchOptions {
        timeout: std::time::Duration::from_secs(source.timeout_s),
        attempts: source.attempts,
        ..FetchOptions::default()
    };
    let paths = mnist_files::ensure_all(&ctx.data_dir.join("mnist"), &source.mirrors, &opts)?;
    for (file, path) in mnist_files::FILES.iter().zip(paths) {
        std::fs::copy(&path, ctx.output(file.name)?)?;
    }
    Ok(())
}
