//! `repro status`: which stages would run, and why — without running anything.

use std::collections::BTreeMap;

use serde::Serialize;

use super::graph::Graph;
use super::key::{DirtyReason, KeyParts};
use super::placement::Environment;
use super::remote::{Asked, Remote};
use super::scheduler::{input_hashes, key_parts};
use super::store::{LastRun, Record, Store};

#[derive(Debug, Serialize)]
pub struct StageStatus {
    pub stage: String,
    pub stale: bool,
    /// Empty when up to date. Data in `--json` (each an object with a `kind`), English only where
    /// a person reads it ([`render`]).
    pub reasons: Vec<StaleReason>,
    /// Known when every input is known (upstream up to date, or on the remote).
    pub key: Option<String>,
    /// Stale here, and the remote holds its record (`repro pull` or `repro run` fetches it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub on_remote: bool,
    /// Stale, and a run stopped part-way left a checkpoint of it: it resumes there.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub checkpointed: bool,
    /// The cluster job last submitted for a stale stage, and what the queue says of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<JobStatus>,
}

/// Why a stage is stale (or, for `on_remote`, where its result is). Serialised as an object with a
/// `kind` (snake case) and the fields below; a changed key gives the kinds of [`DirtyReason`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StaleReason {
    /// No run of this stage instance completed in this cache.
    NeverRun,
    /// Its key is the last run's, and no record of it is in the store (the cache was cleaned).
    NoCachedResult,
    /// An upstream stage will run first, so this one's inputs are not known yet.
    Upstream { stage: String },
    /// Its record is in the store, and an object it names is missing or fails its hash.
    Corrupt { problem: String },
    /// Its key cannot be computed (an input or a parameter could not be read).
    KeyUnknown { error: String },
    /// The remote holds its result: `repro pull` or `repro run` fetches it.
    OnRemote { url: String },
    /// The remote holds a record for its key that is refused (unsigned, untrusted, invalid).
    RemoteRefused { why: String },
    /// The remote did not answer; it is not asked again in this command.
    RemoteUnreachable { error: String },
    /// A cluster job was submitted for it and is in the queue (`state` as Slurm says).
    ClusterJob { job: String, state: String, log: std::path::PathBuf },
    /// A cluster job was submitted for it and ended without a result.
    ClusterJobEnded { job: String, log: std::path::PathBuf },
    /// Its key changed since its last run: how.
    #[serde(untagged)]
    Changed(DirtyReason),
}

impl std::fmt::Display for StaleReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StaleReason::NeverRun => f.write_str("never run"),
            StaleReason::NoCachedResult => f.write_str("no cached result for this key (cache cleaned?)"),
            StaleReason::Upstream { stage } => write!(f, "upstream {stage} will rerun"),
            StaleReason::Corrupt { problem } => f.write_str(problem),
            StaleReason::KeyUnknown { error } => f.write_str(error),
            StaleReason::OnRemote { url } => {
                write!(f, "the remote has it: `repro pull` or `repro run` fetches it from {url}")
            }
            StaleReason::RemoteRefused { why } => write!(f, "the remote's record is not usable: {why}"),
            StaleReason::RemoteUnreachable { error } => {
                write!(f, "the remote did not answer ({error}); not asked again")
            }
            StaleReason::ClusterJob { job, state, log } => {
                write!(f, "cluster job {job}: {state} (log: {})", log.display())
            }
            StaleReason::ClusterJobEnded { job, log } => {
                write!(f, "cluster job {job} ended without a result: see {}", log.display())
            }
            StaleReason::Changed(why) => why.fmt(f),
        }
    }
}

/// Fills in which items each `CodeChanged` reason of kind `kind` stands for: those the kind
/// reaches in that file now whose blake3 differs from `old` (the catalogue of the binary that ran
/// it last: `Store::catalogue`).
fn name_changed_items(reasons: &mut [DirtyReason], kind: &str, old: &BTreeMap<String, String>) {
    for reason in reasons {
        if let DirtyReason::CodeChanged { file, items } = reason
            && let Some(now) = super::fingerprint::item_hashes(kind)
        {
            *items = now
                .filter(|(id, f, hash)| f == file && old.get(*id).map(String::as_str) != Some(*hash))
                .map(|(id, ..)| id.to_string())
                .collect();
        }
    }
}

/// `reasons` as lines for a person: one per reason, the changes of a key grouped as
/// [`super::key::render`] groups them (many edited files or items share a line).
pub fn render(reasons: &[StaleReason]) -> Vec<String> {
    let changed: Vec<DirtyReason> = reasons
        .iter()
        .filter_map(|r| match r {
            StaleReason::Changed(why) => Some(why.clone()),
            _ => None,
        })
        .collect();
    let mut lines = Vec::new();
    let mut grouped = false;
    for reason in reasons {
        match reason {
            StaleReason::Changed(_) if grouped => {}
            StaleReason::Changed(_) => {
                lines.extend(super::key::render(&changed));
                grouped = true;
            }
            other => lines.push(other.to_string()),
        }
    }
    lines
}

#[derive(Debug, Serialize)]
pub struct JobStatus {
    pub job: String,
    pub state: JobState,
    pub log: std::path::PathBuf,
}

/// Where a submitted job stands, as the queue says; rendered (and serialised) as Slurm names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Still in the queue, in this Slurm state (`PENDING`, `RUNNING`, `CONFIGURING`, ...).
    Queued(String),
    /// Left the queue without a result.
    Ended,
    /// The queue could not be asked (no `squeue`).
    Unknown,
}

impl JobState {
    /// The state of job `job` given the queue's states by job id (`None`: no queue to ask).
    pub fn of(job: &str, queue: Option<&BTreeMap<String, String>>) -> JobState {
        match queue {
            Some(q) => q.get(job).map_or(JobState::Ended, |state| JobState::Queued(state.clone())),
            None => JobState::Unknown,
        }
    }

    pub fn is(&self, slurm_state: &str) -> bool {
        matches!(self, JobState::Queued(s) if s == slurm_state)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobState::Queued(state) => f.write_str(state),
            JobState::Ended => f.write_str("ENDED"),
            JobState::Unknown => f.write_str("UNKNOWN (squeue unavailable)"),
        }
    }
}

impl Serialize for JobState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The status of every selected stage, in execution order. With a remote, each stale stage whose
/// key is known is looked up there (its record only); a record found there also makes the keys of
/// its dependents known.
pub fn status(
    graph: &Graph,
    store: Option<&Store>,
    env: &Environment,
    selected: &[bool],
    remote: Option<&Remote>,
) -> Vec<StageStatus> {
    let mut survey = Survey { graph, store, env, remote, records: BTreeMap::new(), catalogues: BTreeMap::new() };
    let mut out = Vec::new();
    for &i in graph.order().iter().filter(|&&i| selected[i]) {
        let last = store.and_then(|s| s.last_run(&graph.stage(i).id));
        let stale_upstream: Vec<usize> =
            graph.deps(i).iter().copied().filter(|j| !survey.records.contains_key(j)).collect();
        out.push(if stale_upstream.is_empty() {
            survey.keyed(i, last.as_ref())
        } else {
            survey.behind_upstream(i, last.as_ref(), &stale_upstream)
        });
    }
    out
}

/// What `status` knows as it walks the graph: the records of the stages found up to date (their
/// outputs are the inputs of what follows), and the item catalogues read so far.
struct Survey<'a> {
    graph: &'a Graph,
    store: Option<&'a Store>,
    env: &'a Environment,
    /// Dropped after it fails to answer once.
    remote: Option<&'a Remote>,
    records: BTreeMap<usize, Record>,
    /// The item catalogues of the binaries that last ran each stage, read once each.
    catalogues: BTreeMap<String, Option<BTreeMap<String, String>>>,
}

impl Survey<'_> {
    /// How `parts` differ from the last run's, the changed items named where the catalogue of the
    /// binary that ran it is kept.
    fn explain(&mut self, kind: &str, parts: &KeyParts, last: &LastRun) -> Vec<StaleReason> {
        let mut why = parts.changes_since(&last.parts);
        if let (Some(store), Some(digest)) = (self.store, &last.code_catalogue)
            && why.iter().any(|r| matches!(r, DirtyReason::CodeChanged { .. }))
        {
            let catalogue = self.catalogues.entry(digest.clone()).or_insert_with(|| store.catalogue(digest));
            if let Some(old) = catalogue {
                name_changed_items(&mut why, kind, old);
            }
        }
        why.into_iter().map(StaleReason::Changed).collect()
    }

    /// Stage `i` while upstream stages will rerun: its inputs are unknown, its params and code can
    /// still be compared.
    fn behind_upstream(&mut self, i: usize, last: Option<&LastRun>, upstream: &[usize]) -> StageStatus {
        let stage = self.graph.stage(i);
        let mut reasons = Vec::new();
        if let (Some(old), Ok(mut now)) = (last, key_parts(stage, BTreeMap::new(), self.env)) {
            now.inputs = old.parts.inputs.clone();
            reasons = self.explain(stage.kind.name, &now, old);
        } else if last.is_none() {
            reasons.push(StaleReason::NeverRun);
        }
        reasons.extend(upstream.iter().map(|&j| StaleReason::Upstream { stage: self.graph.stage(j).id.clone() }));
        StageStatus::stale_without_key(&stage.id, reasons)
    }

    /// Stage `i` with every input known: up to date when its key's record is in the store and
    /// sound; else why not, and whether the remote has it.
    fn keyed(&mut self, i: usize, last: Option<&LastRun>) -> StageStatus {
        let stage = self.graph.stage(i);
        let parts = match input_hashes(self.graph, i, &self.records).and_then(|h| key_parts(stage, h, self.env)) {
            Ok(p) => p,
            Err(e) => {
                return StageStatus::stale_without_key(
                    &stage.id,
                    vec![StaleReason::KeyUnknown { error: format!("{e:#}") }],
                );
            }
        };
        let key = parts.key();
        let record = self.store.and_then(|s| s.record(&key));
        let mut reasons = match (&record, self.store) {
            (Some(rec), Some(s)) => {
                s.check(rec).map(|d| vec![StaleReason::Corrupt { problem: d.to_string() }]).unwrap_or_default()
            }
            _ => match last {
                None => vec![StaleReason::NeverRun],
                Some(old) => {
                    let why = self.explain(stage.kind.name, &parts, old);
                    if why.is_empty() { vec![StaleReason::NoCachedResult] } else { why }
                }
            },
        };
        let stale = !reasons.is_empty();
        let on_remote = if stale {
            self.ask_remote(i, &key, &mut reasons)
        } else {
            self.records.insert(i, record.expect("up to date means recorded"));
            false
        };
        let checkpointed = stale && self.store.is_some_and(|st| super::checkpoint::exists(st.root(), &key));
        StageStatus { stage: stage.id.clone(), stale, reasons, key: Some(key), on_remote, checkpointed, job: None }
    }

    /// Asks the remote for the record of stage `i` (key `key`), saying what it answered in
    /// `reasons`; true when it has a usable one (which also makes its dependents' keys known).
    fn ask_remote(&mut self, i: usize, key: &str, reasons: &mut Vec<StaleReason>) -> bool {
        let Some(from) = self.remote else { return false };
        let asked = Asked::stage(self.graph, i, key, from.max_object_bytes());
        match from.records(std::slice::from_ref(&asked)).pop().expect("one answer per key") {
            Ok(Some(Ok(found))) => {
                reasons.push(StaleReason::OnRemote { url: from.url().to_string() });
                self.records.insert(i, found);
                return true;
            }
            Ok(Some(Err(refusal))) => reasons.push(StaleReason::RemoteRefused { why: refusal.to_string() }),
            Ok(None) => {}
            Err(e) => {
                reasons.push(StaleReason::RemoteUnreachable { error: format!("{e:#}") });
                self.remote = None;
            }
        }
        false
    }
}

impl StageStatus {
    /// A stale stage whose key is not known.
    fn stale_without_key(stage: &str, reasons: Vec<StaleReason>) -> StageStatus {
        StageStatus {
            stage: stage.to_string(),
            stale: true,
            reasons,
            key: None,
            on_remote: false,
            checkpointed: false,
            job: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// One reason of every kind, with the JSON a script reads from `repro status --json`. The
    /// matches in `stale_reasons` and `dirty_reasons` have no wildcard: a new kind does not
    /// compile until it is listed there.
    fn every_kind() -> Vec<(StaleReason, Value)> {
        let mut all = stale_reasons();
        all.extend(dirty_reasons().into_iter().map(|(why, json)| (StaleReason::Changed(why), json)));
        all
    }

    fn stale_reasons() -> Vec<(StaleReason, Value)> {
        let log = std::path::PathBuf::from("cache/jobs/x.log");
        let all = vec![
            (StaleReason::NeverRun, json!({"kind": "never_run"})),
            (StaleReason::NoCachedResult, json!({"kind": "no_cached_result"})),
            (StaleReason::Upstream { stage: "a.train".into() }, json!({"kind": "upstream", "stage": "a.train"})),
            (StaleReason::Corrupt { problem: "p".into() }, json!({"kind": "corrupt", "problem": "p"})),
            (StaleReason::KeyUnknown { error: "e".into() }, json!({"kind": "key_unknown", "error": "e"})),
            (StaleReason::OnRemote { url: "s3://b".into() }, json!({"kind": "on_remote", "url": "s3://b"})),
            (StaleReason::RemoteRefused { why: "w".into() }, json!({"kind": "remote_refused", "why": "w"})),
            (StaleReason::RemoteUnreachable { error: "e".into() }, json!({"kind": "remote_unreachable", "error": "e"})),
            (
                StaleReason::ClusterJob { job: "7".into(), state: "PENDING".into(), log: log.clone() },
                json!({"kind": "cluster_job", "job": "7", "state": "PENDING", "log": "cache/jobs/x.log"}),
            ),
            (
                StaleReason::ClusterJobEnded { job: "7".into(), log },
                json!({"kind": "cluster_job_ended", "job": "7", "log": "cache/jobs/x.log"}),
            ),
        ];
        for (reason, _) in &all {
            match reason {
                StaleReason::NeverRun
                | StaleReason::NoCachedResult
                | StaleReason::Upstream { .. }
                | StaleReason::Corrupt { .. }
                | StaleReason::KeyUnknown { .. }
                | StaleReason::OnRemote { .. }
                | StaleReason::RemoteRefused { .. }
                | StaleReason::RemoteUnreachable { .. }
                | StaleReason::ClusterJob { .. }
                | StaleReason::ClusterJobEnded { .. } => {}
                // Listed by `dirty_reasons`.
                StaleReason::Changed(_) => {}
            }
        }
        all
    }

    fn dirty_reasons() -> Vec<(DirtyReason, Value)> {
        let all = vec![
            (
                DirtyReason::KindChanged { old: "a".into(), new: "b".into() },
                json!({"kind": "kind_changed", "old": "a", "new": "b"}),
            ),
            (
                DirtyReason::ParamAdded { name: "lr".into(), value: json!(0.1) },
                json!({"kind": "param_added", "param": "lr", "value": 0.1}),
            ),
            (
                DirtyReason::ParamRemoved { name: "lr".into(), value: json!(0.1) },
                json!({"kind": "param_removed", "param": "lr", "value": 0.1}),
            ),
            (
                DirtyReason::ParamChanged { name: "lr".into(), old: json!(0.001), new: json!(0.002) },
                json!({"kind": "param_changed", "param": "lr", "old": 0.001, "new": 0.002}),
            ),
            (DirtyReason::InputAdded { input: "d".into() }, json!({"kind": "input_added", "input": "d"})),
            (DirtyReason::InputRemoved { input: "d".into() }, json!({"kind": "input_removed", "input": "d"})),
            (DirtyReason::InputChanged { input: "d".into() }, json!({"kind": "input_changed", "input": "d"})),
            (DirtyReason::LineageChanged, json!({"kind": "lineage_changed"})),
            (
                DirtyReason::CodeChanged { file: "src/a.rs".into(), items: vec!["a::f".into()] },
                json!({"kind": "code_changed", "file": "src/a.rs", "items": ["a::f"]}),
            ),
            (DirtyReason::CodeReached { file: "src/a.rs".into() }, json!({"kind": "code_reached", "file": "src/a.rs"})),
            (
                DirtyReason::CodeNoLongerReached { file: "src/a.rs".into() },
                json!({"kind": "code_no_longer_reached", "file": "src/a.rs"}),
            ),
            (DirtyReason::DependenciesChanged, json!({"kind": "dependencies_changed"})),
            (
                DirtyReason::EnvChanged { name: "backend".into(), old: "flex".into(), new: "tch".into() },
                json!({"kind": "env_changed", "name": "backend", "old": "flex", "new": "tch"}),
            ),
            (
                DirtyReason::EnvSet { name: "device".into(), value: "cpu".into() },
                json!({"kind": "env_set", "name": "device", "value": "cpu"}),
            ),
            (
                DirtyReason::EnvUnset { name: "device".into(), was: "cpu".into() },
                json!({"kind": "env_unset", "name": "device", "was": "cpu"}),
            ),
        ];
        all.iter().for_each(|(why, _)| listed(why));
        all
    }

    /// No wildcard: a new kind of `DirtyReason` does not compile until `dirty_reasons` lists it.
    fn listed(why: &DirtyReason) {
        match why {
            DirtyReason::KindChanged { .. }
            | DirtyReason::ParamAdded { .. }
            | DirtyReason::ParamRemoved { .. }
            | DirtyReason::ParamChanged { .. }
            | DirtyReason::InputAdded { .. }
            | DirtyReason::InputRemoved { .. }
            | DirtyReason::InputChanged { .. }
            | DirtyReason::LineageChanged
            | DirtyReason::CodeChanged { .. }
            | DirtyReason::CodeReached { .. }
            | DirtyReason::CodeNoLongerReached { .. }
            | DirtyReason::DependenciesChanged
            | DirtyReason::EnvChanged { .. }
            | DirtyReason::EnvSet { .. }
            | DirtyReason::EnvUnset { .. } => {}
        }
    }

    #[test]
    fn every_reason_is_an_object_with_a_kind_and_its_fields() {
        let all = every_kind();
        let mut kinds = std::collections::BTreeSet::new();
        for (reason, expected) in &all {
            let json = serde_json::to_value(reason).unwrap();
            assert_eq!(&json, expected, "{reason}");
            assert!(
                kinds.insert(json["kind"].as_str().unwrap().to_string()),
                "two reasons share the kind {}",
                json["kind"]
            );
            // The English a person reads is rendered from the same data, never stored.
            assert!(!reason.to_string().is_empty());
        }
        assert_eq!(kinds.len(), 25);
    }

    #[test]
    fn a_stage_status_serialises_its_reasons_as_data_and_renders_them_grouped() {
        let code = |file: &str| StaleReason::Changed(DirtyReason::CodeChanged { file: file.into(), items: Vec::new() });
        let status = StageStatus {
            stage: "a.train".into(),
            stale: true,
            reasons: vec![StaleReason::NeverRun, code("src/a.rs"), code("src/b.rs")],
            key: None,
            on_remote: false,
            checkpointed: false,
            job: None,
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["reasons"][1], json!({"kind": "code_changed", "file": "src/a.rs", "items": []}));
        assert_eq!(render(&status.reasons), ["never run", "code changed: src/a.rs, src/b.rs"]);
    }
}
