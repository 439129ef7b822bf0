//! `repro status`: which stages would run, and why — without running anything.

use std::collections::BTreeMap;

use serde::Serialize;

use super::graph::Graph;
use super::key::{DirtyReason, KeyParts, render};
use super::placement::Environment;
use super::remote::{Asked, Remote};
use super::scheduler::{input_hashes, key_parts};
use super::store::{LastRun, Record, Store};

#[derive(Debug, Serialize)]
pub struct StageStatus {
    pub stage: String,
    pub stale: bool,
    /// Empty when up to date.
    pub reasons: Vec<String>,
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
    mut remote: Option<&Remote>,
) -> Vec<StageStatus> {
    let mut records: BTreeMap<usize, Record> = BTreeMap::new();
    let mut out = Vec::new();
    // The item catalogues of the binaries that last ran each stage, read once each.
    let mut catalogues: BTreeMap<String, Option<BTreeMap<String, String>>> = BTreeMap::new();
    let mut explain = |kind: &str, parts: &KeyParts, last: &LastRun| {
        let mut why = parts.changes_since(&last.parts);
        if let (Some(store), Some(digest)) = (store, &last.code_catalogue)
            && why.iter().any(|r| matches!(r, DirtyReason::CodeChanged { .. }))
        {
            let catalogue = catalogues.entry(digest.clone()).or_insert_with(|| store.catalogue(digest));
            if let Some(old) = catalogue {
                super::fingerprint::name_changed_items(&mut why, kind, old);
            }
        }
        render(&why)
    };
    for &i in graph.order() {
        if !selected[i] {
            continue;
        }
        let stage = graph.stage(i);
        let last = store.and_then(|s| s.last_run(&stage.id));
        let stale_upstream: Vec<&str> =
            graph.deps(i).iter().filter(|j| !records.contains_key(j)).map(|&j| graph.stage(j).id.as_str()).collect();
        if !stale_upstream.is_empty() {
            // Inputs are unknown until upstream reruns; params and code can still be compared.
            let mut reasons = Vec::new();
            if let (Some(old), Ok(now)) = (&last, key_parts(stage, BTreeMap::new(), env)) {
                let mut cmp = now.clone();
                cmp.inputs = old.parts.inputs.clone();
                reasons = explain(stage.kind.name, &cmp, old);
            } else if last.is_none() {
                reasons.push("never run".into());
            }
            for up in stale_upstream {
                reasons.push(format!("upstream {up} will rerun"));
            }
            out.push(StageStatus {
                stage: stage.id.clone(),
                stale: true,
                reasons,
                key: None,
                on_remote: false,
                checkpointed: false,
                job: None,
            });
            continue;
        }
        let parts = match input_hashes(graph, i, &records).and_then(|h| key_parts(stage, h, env)) {
            Ok(p) => p,
            Err(e) => {
                out.push(StageStatus {
                    stage: stage.id.clone(),
                    stale: true,
                    reasons: vec![format!("{e:#}")],
                    key: None,
                    on_remote: false,
                    checkpointed: false,
                    job: None,
                });
                continue;
            }
        };
        let key = parts.key();
        let record = store.and_then(|s| s.record(&key));
        let mut reasons = match (&record, store) {
            (Some(rec), Some(s)) => s.check(rec).map(|d| vec![d.to_string()]).unwrap_or_default(),
            _ => match &last {
                None => vec!["never run".to_string()],
                Some(old) => {
                    let why = explain(stage.kind.name, &parts, old);
                    if why.is_empty() {
                        vec!["no cached result for this key (cache cleaned?)".to_string()]
                    } else {
                        why
                    }
                }
            },
        };
        let stale = !reasons.is_empty();
        let mut on_remote = false;
        if !stale {
            records.insert(i, record.expect("up to date means recorded"));
        } else if let Some(from) = remote {
            let asked = Asked::stage(graph, i, &key, from.max_object_bytes());
            match from.records(std::slice::from_ref(&asked)).pop().expect("one answer per key") {
                Ok(Some(Ok(found))) => {
                    reasons
                        .push(format!("the remote has it: `repro pull` or `repro run` fetches it from {}", from.url()));
                    records.insert(i, found);
                    on_remote = true;
                }
                Ok(Some(Err(refusal))) => reasons.push(format!("the remote's record is not usable: {refusal}")),
                Ok(None) => {}
                Err(e) => {
                    reasons.push(format!("the remote did not answer ({e:#}); not asked again"));
                    remote = None;
                }
            }
        }
        let checkpointed = stale && store.is_some_and(|st| super::checkpoint::exists(st.root(), &key));
        out.push(StageStatus {
            stage: stage.id.clone(),
            stale,
            reasons,
            key: Some(key),
            on_remote,
            checkpointed,
            job: None,
        });
    }
    out
}
