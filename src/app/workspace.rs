//! Where a command works (the configuration, the cache, the artifacts) and what it plans from
//! them: the configuration loaded, its stage graph, and the run it is compared with (the run
//! history in the store).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::config::{self, Config, Loaded};
use crate::engine::placement::{Environment, Split};
use crate::engine::run_log::RunEntry;
use crate::engine::scheduler::RunOptions;
use crate::engine::status::status;
use crate::engine::{Graph, Store, hash_bytes, run_log};
use crate::nn::Compute;
use crate::nn::backend::Backend;
use crate::study;
use crate::study::report::Previous;

/// Where things live and which configuration to use.
#[derive(Clone, Debug)]
pub struct Workspace {
    pub config: PathBuf,
    pub cache: PathBuf,
    pub artifacts: PathBuf,
    /// Downloaded inputs (MNIST), kept outside the store.
    pub data: PathBuf,
    pub profile: Option<String>,
    pub overrides: Vec<String>,
}

/// The loaded configuration and its graph; building it writes nothing.
pub struct Plan {
    pub loaded: Loaded,
    pub graph: Graph,
    pub env: Environment,
}

impl Workspace {
    /// The plan of this workspace's configuration; its report compares with the run that
    /// preceded this configuration's first run, when the store holds its results.
    pub fn plan(&self) -> Result<Plan> {
        let loaded = config::load(&self.config, self.profile.as_deref(), &self.overrides)?;
        let previous = previous_run(self, &loaded.config);
        self.build_plan(loaded, previous.as_ref())
    }

    /// The plan of a configuration loaded by other means (another file, a git revision, the run
    /// log), compared with nothing.
    pub fn plan_of(&self, loaded: Loaded) -> Result<Plan> {
        self.build_plan(loaded, None)
    }

    fn build_plan(&self, loaded: Loaded, previous: Option<&study::report::Previous>) -> Result<Plan> {
        let compute = Compute::from_settings(loaded.config.pipeline.backend, &loaded.config.pipeline.device)
            .with_context(|| format!("{}: [pipeline]", self.config.display()))?;
        let (backend, device) = compute.class();
        let graph = Graph::new(study::build(&loaded, previous)?)?;
        // `auto` with a GPU: each stage goes where its work per step pays (pipeline.gpu_min_work).
        // Small stages run on flex, not on libtorch's CPU side: on tiny networks flex's steps are
        // cheaper (bench/results/head-to-head-2026-11-26/), and it is always built in.
        let pipeline = &loaded.config.pipeline;
        let split = (pipeline.device == "auto" && device.starts_with("cuda")).then(|| Split {
            min_work: pipeline.gpu_min_work,
            small: (Backend::Flex.name().to_string(), "cpu".to_string()),
        });
        Ok(Plan { loaded, graph, env: Environment { backend, device, split } })
    }
}

impl Plan {
    /// How the scheduler runs this plan's `selected` stages: `jobs` at once on `cores` threads.
    pub(super) fn run_options(
        &self,
        ws: &Workspace,
        (jobs, cores): (usize, usize),
        selected: Vec<bool>,
        verbose: bool,
    ) -> RunOptions {
        let pipeline = &self.loaded.config.pipeline;
        RunOptions {
            jobs,
            cores,
            env: self.env.clone(),
            selected,
            verbose,
            data_dir: ws.data.clone(),
            max_batch: pipeline.max_batch,
            accelerator_slots: pipeline.gpu_slots,
            // 0 (or inf) sets no interval: stages save only when a signal asks the run to stop.
            checkpoint_every: std::time::Duration::try_from_secs_f64(pipeline.checkpoint_every_s)
                .ok()
                .filter(|every| !every.is_zero()),
            remote: None,
            compute: true,
        }
    }
}

/// The configuration as the run log keeps it (where jobs ran and results are shared left out),
/// and its hash: two runs of one configuration have the same.
pub fn logged_config(config: &Config) -> Result<(Value, String)> {
    let value = serde_json::to_value(crate::config::result_config(config))?;
    let hash = hash_bytes(&serde_json::to_vec(&value)?);
    Ok((value, hash))
}

/// An experiment's report inputs in the store: name -> (blake3, object path).
pub(super) type StoredInputs = BTreeMap<String, (String, PathBuf)>;

/// Which of a plan's results are in the store.
pub(super) struct Stored {
    /// Per configured experiment, its report inputs when every one is in the store.
    pub inputs: BTreeMap<String, Option<StoredInputs>>,
    /// Stages not in the store (stale), in execution order.
    pub missing: Vec<String>,
}

pub(super) fn stored(plan: &Plan, store: Option<&Store>) -> Stored {
    let graph = &plan.graph;
    let statuses = status(graph, store, &plan.env, &vec![true; graph.stages().len()], None);
    let records: BTreeMap<&str, Option<&str>> =
        statuses.iter().map(|s| (s.stage.as_str(), (!s.stale).then_some(s.key.as_deref()).flatten())).collect();
    let mut inputs: BTreeMap<String, Option<StoredInputs>> = BTreeMap::new();
    let report = graph.find("report").map(|i| graph.stage(i));
    for input in report.map_or(&[][..], |r| &r.inputs[..]) {
        let Some((id, name)) = input.name.split_once('/') else { continue };
        let path =
            records.get(input.stage.as_str()).copied().flatten().and_then(|key| store?.record(key)).and_then(|r| {
                let object = r.outputs.get(&input.output)?;
                Some((object.hash.clone(), store?.object_path(&object.hash)))
            });
        let slot = inputs.entry(id.to_string()).or_insert_with(|| Some(BTreeMap::new()));
        match (slot.as_mut(), path) {
            (Some(map), Some(path)) => {
                map.insert(name.to_string(), path);
            }
            _ => *slot = None,
        }
    }
    Stored { inputs, missing: statuses.into_iter().filter(|s| s.stale).map(|s| s.stage).collect() }
}

impl Stored {
    /// Experiment `id`'s report inputs by name, when all are in the store.
    pub(super) fn inputs_of(&self, id: &str) -> Option<BTreeMap<String, PathBuf>> {
        let inputs = self.inputs.get(id)?.as_ref()?;
        Some(inputs.iter().map(|(name, (_, path))| (name.clone(), path.clone())).collect())
    }
}

/// A configuration the run log kept, loaded as if from its file.
pub(super) fn logged(entry: &RunEntry) -> Result<Loaded> {
    let config: Config = serde_json::from_value(entry.config.clone())
        .context("the run log's configuration no longer parses (written by another version?)")?;
    Ok(Loaded {
        config,
        origins: Default::default(),
        file: PathBuf::from(&entry.file),
        hash: entry.config_hash.clone(),
    })
}

/// `the run of 2026-12-02 16:59 UTC (pipeline.toml --profile quick)`.
pub(super) fn run_label(entry: &RunEntry) -> String {
    let mut words = vec![entry.file.clone()];
    if let Some(p) = &entry.profile {
        words.push(format!("--profile {p}"));
    }
    words.extend(entry.overrides.iter().map(|o| format!("-s {o}")));
    format!("the run of {} ({})", utc(entry.started), words.join(" "))
}

/// What the report compares with: the run that preceded this configuration's first run (the
/// newest in the log, for a configuration not run yet), with its tables that the store holds
/// (none: no comparison). Fixed at the first run, so that running other configurations never
/// makes this one's report stale, and going back to a configuration finds it complete;
/// `repro diff` compares with anything. Quiet on purpose: a log written by another version, or a
/// previous run since collected, only drops the section.
fn previous_run(ws: &Workspace, config: &Config) -> Option<Previous> {
    let store = Store::open_existing(&ws.cache)?;
    let (_, this_hash) = logged_config(config).ok()?;
    let log = run_log::read(&ws.cache);
    let first_own = log.entries.iter().position(|e| e.config_hash == this_hash).unwrap_or(log.entries.len());
    let entry = log.entries[..first_own].last()?;
    let plan = ws.plan_of(logged(entry).ok()?).ok()?;
    let stored = stored(&plan, Some(&store));
    let mut inputs = BTreeMap::new();
    for (id, found) in &stored.inputs {
        for (name, (hash, _)) in found.iter().flatten().filter(|(name, _)| name.ends_with(".csv")) {
            inputs.insert(format!("{id}/{name}"), hash.clone());
        }
    }
    (!inputs.is_empty()).then(|| Previous { label: run_label(entry), config: plan.loaded.config, inputs })
}

pub(super) fn utc(seconds: f64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(seconds.max(0.0));
    let text = humantime::format_rfc3339_seconds(at).to_string();
    // 2026-12-02T16:40:12Z -> 2026-12-02 16:40 UTC
    format!("{} {} UTC", &text[..10], &text[11..16])
}
