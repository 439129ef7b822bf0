//! `pipeline.toml` -> typed configuration, with profiles and `-s key=value` overrides.
//!
//! Every error names where it comes from: `pipeline.toml:LINE:COL` for the file (including keys
//! that a profile sets), or the `-s` argument for overrides. Nothing is written while loading.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use toml::de::{DeTable, DeValue};

pub use crate::data::mnist::MnistSource;
pub use crate::experiments::Experiments;
pub use crate::nn::backend::Backend;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub pipeline: PipelineSettings,
    #[serde(default)]
    pub data: DataSettings,
    #[serde(default)]
    pub experiments: Experiments,
    /// How `repro submit` asks a cluster scheduler for jobs (never part of a key).
    #[serde(default)]
    pub cluster: ClusterSettings,
    /// A shared cache behind the local one (never part of a key).
    #[serde(default)]
    pub remote: RemoteSettings,
}

/// `[remote]`: where results are shared (`repro push`/`pull`; `repro run` fetches and uploads).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteSettings {
    /// `s3://bucket/prefix`, `http(s)://host/path` or `file:///path`; the environment's
    /// `REPRO_REMOTE` wins over it (CI secrets). Unset or empty: no remote.
    pub url: Option<String>,
    /// S3-compatible services other than AWS: their endpoint (else `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// S3: the region (else `AWS_REGION` / `AWS_DEFAULT_REGION`).
    pub region: Option<String>,
    /// S3 credentials, better left to `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Fetch from the remote, never upload to it (as `repro run --remote-read-only`).
    pub read_only: bool,
    /// Transfers in flight at once.
    pub concurrency: usize,
    /// Per request; and to connect.
    pub timeout_s: f64,
    pub connect_timeout_s: f64,
    /// Retries of a failed request, with exponential backoff, within `retry_window_s`.
    pub retries: usize,
    pub retry_window_s: f64,
    /// Public keys (`NAME:BASE64`, as `repro keygen` prints them) whose signed records are used.
    pub trusted_keys: Vec<String>,
    /// Refuse records that no trusted key signed (the default). `false` takes them as found, and
    /// every command says so: any writer of the remote then decides the results.
    pub require_signatures: bool,
    /// No object larger than this is fetched (MiB).
    pub max_object_mb: u64,
}

impl Default for RemoteSettings {
    fn default() -> Self {
        RemoteSettings {
            url: None,
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            read_only: false,
            concurrency: 16,
            timeout_s: 60.0,
            connect_timeout_s: 5.0,
            retries: 3,
            retry_window_s: 15.0,
            trusted_keys: Vec::new(),
            require_signatures: true,
            max_object_mb: 1024,
        }
    }
}

/// `[cluster]`: Slurm programs, where job logs go, and resources per stage kind.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    pub sbatch: String,
    pub squeue: String,
    /// Asked by a job to requeue itself when its time limit is near (after it checkpointed).
    pub scontrol: String,
    /// Jobs are submitted with `--requeue` and `--signal=B:USR1@` this many seconds: warned that
    /// long before their time limit, they checkpoint, stop and requeue themselves.
    pub warn_before_end_s: u32,
    pub partition: Option<String>,
    pub account: Option<String>,
    /// Any other `sbatch` arguments, as written.
    pub sbatch_args: Vec<String>,
    /// Job logs, relative to the workspace (on the shared filesystem).
    pub logs: String,
    /// What every job asks for ...
    pub default: ResourceSettings,
    /// ... and per stage kind: a pattern (`mnist_cnn.train`, `*.train`) -> what those jobs ask for
    /// instead. The longest matching pattern wins.
    pub resources: std::collections::BTreeMap<String, ResourceSettings>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourceSettings {
    pub cpus: Option<u32>,
    /// Slurm syntax: `2G`, `500M`.
    pub mem: Option<String>,
    /// Slurm syntax: `01:00:00`.
    pub time: Option<String>,
    pub gpus: Option<u32>,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            sbatch: "sbatch".into(),
            squeue: "squeue".into(),
            scontrol: "scontrol".into(),
            warn_before_end_s: 120,
            partition: None,
            account: None,
            sbatch_args: Vec::new(),
            logs: "cluster-logs".into(),
            default: ResourceSettings::default(),
            resources: Default::default(),
        }
    }
}

impl ClusterSettings {
    /// What a job of stage kind `kind` asks for: 1 CPU, 2G, one hour, no GPU, then `default`, then
    /// the longest pattern in `resources` that matches the kind.
    pub fn resources_for(&self, kind: &str) -> crate::engine::cluster::Resources {
        let mut r = crate::engine::cluster::Resources { cpus: 1, mem: "2G".into(), time: "01:00:00".into(), gpus: 0 };
        let best = self
            .resources
            .iter()
            .filter(|(pattern, _)| crate::engine::graph::matches(pattern, kind))
            .max_by_key(|(pattern, _)| pattern.len());
        for s in std::iter::once(&self.default).chain(best.map(|(_, s)| s)) {
            r.cpus = s.cpus.unwrap_or(r.cpus);
            r.mem = s.mem.clone().unwrap_or(r.mem);
            r.time = s.time.clone().unwrap_or(r.time);
            r.gpus = s.gpus.unwrap_or(r.gpus);
        }
        r
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSettings {
    #[serde(default)]
    pub mnist: MnistSource,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineSettings {
    /// `flex` (pure-Rust CPU, always built) or `tch` (libtorch; needs `--features tch`).
    pub backend: Backend,
    /// `cpu`, or for tch `auto` / `cuda:N`.
    pub device: String,
    /// With `device = "auto"` and a GPU: stages doing fewer multiply-accumulates per step than
    /// this run on flex on the CPU. A burn-tch step on a GPU costs about the same whatever its size
    /// up to the study's largest MLP (launches dominate), while flex's cost grows with the work;
    /// the default is where the two met in the GPU head-to-head (bench/gpu/, bench/results/gpu-2026-11-27/),
    /// and CPU slots are plentiful on such machines. The study's CNNs are far above it (`repro
    /// dag` prints every stage's work per step).
    pub gpu_min_work: u64,
    /// The most instances of a batching stage kind (seed sweeps) fused into one batched
    /// execution when more stages are ready than can run at once; 1 turns fusion off. Results do
    /// not depend on it (each instance computes as it would alone), so it is not in any key.
    pub max_batch: usize,
    /// With `device = "auto"` and a GPU: slots of `-j` that CPU stages leave free while GPU stages
    /// wait for their inputs, so the GPU starts as soon as MNIST is there.
    pub gpu_slots: usize,
    /// Long trainings save their state after this many seconds of work, and again after each
    /// further interval, so a killed or preempted run resumes where it was (0: only when a signal
    /// asks the run to stop). Not in any key: a resumed stage produces what an uninterrupted one
    /// does.
    pub checkpoint_every_s: f64,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            backend: Backend::Flex,
            device: "cpu".into(),
            gpu_min_work: 20_000_000,
            max_batch: 256,
            gpu_slots: 4,
            checkpoint_every_s: 10.0,
        }
    }
}

/// The configuration, plus where in the file some keys were written (for later error messages).
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    /// Dotted key path -> `file:line`, for keys whose errors are found after parsing (`after`).
    pub origins: BTreeMap<String, String>,
    pub file: PathBuf,
    /// blake3 of the effective configuration (after profile and overrides), for provenance.
    pub hash: String,
}

/// Reads `file`, applies `profile` (a table under `[profiles.NAME]`) and then `overrides`.
pub fn load(file: &Path, profile: Option<&str>, overrides: &[String]) -> Result<Loaded> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    parse(&text, file, profile, overrides)
}

pub fn parse(text: &str, file: &Path, profile: Option<&str>, overrides: &[String]) -> Result<Loaded> {
    let name = file.display().to_string();
    let at = |span: Option<std::ops::Range<usize>>| match span {
        Some(s) => location(&name, text, s.start),
        None => name.clone(),
    };
    let mut root = DeTable::parse(text).map_err(|e| anyhow!("{}: {}", at(e.span()), e.message()))?;
    let profiles = root.get_mut().remove("profiles");
    if let Some(name) = profile {
        let profiles = profiles.as_ref().and_then(|p| p.get_ref().as_table());
        let chosen = profiles.and_then(|p| p.get(name)).ok_or_else(|| {
            let known: Vec<String> =
                profiles.map(|p| p.keys().map(|k| k.get_ref().to_string()).collect()).unwrap_or_default();
            anyhow!(
                "{}: no profile named `{name}` (defined: {})",
                at(None),
                if known.is_empty() { "none".into() } else { known.join(", ") }
            )
        })?;
        let DeValue::Table(table) = chosen.get_ref() else {
            bail!("{}: profile `{name}` must be a table", at(Some(chosen.span())));
        };
        merge(root.get_mut(), table.clone());
    }
    let mut origins = BTreeMap::new();
    collect_origins(root.get_ref(), "", &name, text, &mut origins);
    let config = Config::deserialize(toml::de::Deserializer::from(root))
        .map_err(|e| anyhow!("{}: {}", at(e.span()), e.message().trim()))?;
    let config = apply_overrides(config, overrides)?;
    config.validate()?;
    let hash = crate::engine::hash_bytes(&serde_json::to_vec(&config)?);
    Ok(Loaded { config, origins, file: file.to_path_buf(), hash })
}

impl Config {
    fn validate(&self) -> Result<()> {
        self.experiments.validate()
    }
}

/// `file:line:column` of byte offset `pos` in `text`.
pub fn location(file: &str, text: &str, pos: usize) -> String {
    let before = &text[..pos.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{file}:{line}:{col}")
}

/// Overlays `overlay` onto `base`, table by table; any other value replaces the base value.
fn merge<'i>(base: &mut DeTable<'i>, overlay: DeTable<'i>) {
    for (key, value) in overlay {
        let slot = base.get_mut(key.get_ref().as_ref());
        match (slot, value.get_ref()) {
            (Some(existing), DeValue::Table(_)) if existing.get_ref().is_table() => {
                let DeValue::Table(sub) = value.into_inner() else { unreachable!() };
                let DeValue::Table(dst) = existing.get_mut() else { unreachable!() };
                merge(dst, sub);
            }
            _ => {
                base.insert(key, value);
            }
        }
    }
}

fn collect_origins(table: &DeTable<'_>, prefix: &str, file: &str, text: &str, out: &mut BTreeMap<String, String>) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() { key.get_ref().to_string() } else { format!("{prefix}.{}", key.get_ref()) };
        out.insert(path.clone(), location(file, text, value.span().start));
        if let DeValue::Table(sub) = value.get_ref() {
            collect_origins(sub, &path, file, text, out);
        }
    }
}

/// Applies `key=value` overrides. Keys are dotted paths; one that does not start with `pipeline`
/// or `experiments` is taken as `experiments.<key>`. Values are TOML (`3`, `[0, 1]`, `"tch"`);
/// anything that does not parse as TOML is taken as a string.
fn apply_overrides(config: Config, overrides: &[String]) -> Result<Config> {
    let mut config = config;
    for item in overrides {
        let (key, raw) = item.split_once('=').ok_or_else(|| anyhow!("-s {item}: expected KEY=VALUE"))?;
        let key = key.trim();
        let path: Vec<&str> = if key.starts_with("pipeline.") || key.starts_with("experiments.") {
            key.split('.').collect()
        } else {
            std::iter::once("experiments").chain(key.split('.')).collect()
        };
        let value = parse_value(raw.trim());
        let mut tree = serde_json::to_value(&config)?;
        let mut node = &mut tree;
        for (depth, part) in path.iter().enumerate() {
            if node.is_null() {
                *node = Value::Object(Default::default());
            }
            let Value::Object(map) = node else {
                bail!("-s {item}: `{}` is not a table", path[..depth].join("."));
            };
            node = map.entry(part.to_string()).or_insert(Value::Null);
        }
        *node = value;
        config = serde_json::from_value(tree).map_err(|e| anyhow!("-s {item}: {e}"))?;
    }
    Ok(config)
}

fn parse_value(raw: &str) -> Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => serde_json::to_value(t.remove("v").expect("just parsed")).unwrap_or(Value::Null),
        Err(_) => Value::String(raw.to_string()),
    }
}

/// `config` as it bears on results: where jobs run and where results are shared cannot change
/// one, so cluster and remote settings are left out (of the report, its key, the run log and
/// comparisons).
pub fn result_config(config: &Config) -> Config {
    Config { cluster: Default::default(), remote: Default::default(), ..config.clone() }
}

#[cfg(test)]
mod tests {

    #[test]
    fn cluster_resources_take_the_longest_matching_pattern() {
        let mut c = ClusterSettings::default();
        c.default.mem = Some("4G".into());
        c.resources.insert("*.train".into(), ResourceSettings { cpus: Some(2), ..Default::default() });
        c.resources.insert(
            "mnist_cnn.train".into(),
            ResourceSettings { gpus: Some(1), time: Some("00:30:00".into()), ..Default::default() },
        );
        let r = c.resources_for("mnist_cnn.train");
        assert_eq!((r.cpus, r.mem.as_str(), r.time.as_str(), r.gpus), (1, "4G", "00:30:00", 1));
        let r = c.resources_for("sim_functions.train");
        assert_eq!((r.cpus, r.mem.as_str(), r.time.as_str(), r.gpus), (2, "4G", "01:00:00", 0));
        assert_eq!(c.resources_for("report").cpus, 1);
    }
    use super::*;

    fn parse_str(text: &str, profile: Option<&str>, overrides: &[&str]) -> Result<Loaded> {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        parse(text, Path::new("pipeline.toml"), profile, &overrides)
    }

    const BASE: &str = "[pipeline]\nbackend = \"flex\"\n\n[experiments.sim_functions]\nseeds = [0, 1]\nmax_epochs = 100\n\n[profiles.quick.experiments.sim_functions]\nmax_epochs = 7\n";

    #[test]
    fn the_repository_profiles_load_and_say_what_they_promise() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipeline.toml");
        let default = load(&file, None, &[]).unwrap().config.experiments;
        let min_ratio = default.min_ratio.as_ref().unwrap();
        assert_eq!((min_ratio.epochs, min_ratio.lr), (3000, 1e-2));
        // `original`: min_ratio's training as the spec gives it (100 full-batch epochs, Adam lr 1e-3).
        let original = load(&file, Some("original"), &[]).unwrap().config.experiments;
        let min_ratio = original.min_ratio.as_ref().unwrap();
        assert_eq!((min_ratio.epochs, min_ratio.lr), (100, 1e-3));
        // The default trains three seeds of each MNIST network, `original` the original's one.
        assert_eq!(default.mnist_cnn.as_ref().unwrap().seeds.to_vec(), [1, 2, 3]);
        assert_eq!(original.mnist_cnn.as_ref().unwrap().seeds.to_vec(), [1]);
        assert_eq!(default.params_generalization.as_ref().unwrap().seeds.len(), 3);
        assert_eq!(original.params_generalization.as_ref().unwrap().seeds.len(), 1);
        // Every experiment takes its seeds as a list or a range.
        assert_eq!(default.sim_functions.as_ref().unwrap().seeds.len(), 40);
        load(&file, Some("quick"), &[]).unwrap();
    }

    #[test]
    fn profile_and_override_layer_in_order() {
        let c = parse_str(BASE, None, &[]).unwrap().config;
        assert_eq!(c.experiments.sim_functions.as_ref().unwrap().max_epochs, 100);
        let c = parse_str(BASE, Some("quick"), &[]).unwrap().config;
        let s = c.experiments.sim_functions.unwrap();
        assert_eq!((s.max_epochs, s.seeds.to_vec()), (7, vec![0, 1]));
        let c =
            parse_str(BASE, Some("quick"), &["sim_functions.max_epochs=9", "sim_functions.seeds=[4]"]).unwrap().config;
        let s = c.experiments.sim_functions.unwrap();
        assert_eq!((s.max_epochs, s.seeds.to_vec()), (9, vec![4]));
    }

    #[test]
    fn errors_name_file_and_line() {
        let unknown_key = parse_str("[experiments.sim_functions]\nseeds = [0]\nmax_epoch = 3\n", None, &[]);
        let msg = format!("{:#}", unknown_key.unwrap_err());
        assert!(msg.starts_with("pipeline.toml:3:") && msg.contains("max_epoch"), "{msg}");

        let wrong_type = parse_str("[experiments.sim_functions]\nmax_epochs = \"many\"\n", None, &[]);
        let msg = format!("{:#}", wrong_type.unwrap_err());
        assert!(msg.starts_with("pipeline.toml:2:"), "{msg}");

        let unknown_experiment = parse_str("\n[experiments.sim_fnuctions]\nseeds = [0]\n", None, &[]);
        let msg = format!("{:#}", unknown_experiment.unwrap_err());
        assert!(msg.starts_with("pipeline.toml:2:") && msg.contains("sim_fnuctions"), "{msg}");

        let in_profile = parse_str(
            "[experiments.sim_functions]\n[profiles.quick.experiments.sim_functions]\nlr = \"x\"\n",
            Some("quick"),
            &[],
        );
        let msg = format!("{:#}", in_profile.unwrap_err());
        assert!(msg.starts_with("pipeline.toml:3:"), "{msg}");

        let syntax = parse_str("[pipeline\n", None, &[]);
        assert!(format!("{:#}", syntax.unwrap_err()).starts_with("pipeline.toml:1:"));

        let bad_override = parse_str(BASE, None, &["sim_functions.max_epochs=\"x\""]);
        assert!(format!("{:#}", bad_override.unwrap_err()).starts_with("-s sim_functions.max_epochs="));

        let missing_profile = parse_str(BASE, Some("nope"), &[]);
        assert!(format!("{:#}", missing_profile.unwrap_err()).contains("defined: quick"));
    }

    #[test]
    fn seeds_are_a_list_or_a_range() {
        let l = parse_str("[experiments.min_ratio]\nseeds = \"3..6\"\n", None, &["min_ratio.epochs=2"]).unwrap();
        assert_eq!(l.config.experiments.min_ratio.unwrap().seeds, crate::experiments::seeds::Seeds(vec![3, 4, 5]));
        let l = parse_str("[experiments.min_ratio]\nseeds = [7]\n", None, &["min_ratio.seeds=\"0..2\""]).unwrap();
        assert_eq!(l.config.experiments.min_ratio.unwrap().seeds, crate::experiments::seeds::Seeds(vec![0, 1]));
        let err = parse_str("[experiments.min_ratio]\nseeds = \"5..1\"\n", None, &[]).unwrap_err();
        assert!(format!("{err:#}").starts_with("pipeline.toml:2:"), "{err:#}");
    }

    #[test]
    fn origins_point_at_lines() {
        let l = parse_str("[experiments.sim_functions]\nseeds = [0]\nafter = []\n", None, &[]).unwrap();
        assert_eq!(l.origins["experiments.sim_functions.after"], "pipeline.toml:3:9");
    }
}
