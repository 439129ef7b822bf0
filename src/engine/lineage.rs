//! Lineage: what every upstream stage of a stage was, as one file the stage can read.
//!
//! A stage that asks for it (a report, say) gets `lineage.json` as an extra input: for each stage
//! upstream of it, transitively, its key, params, backend and device, the wall time of the run that
//! produced its record, and the hashes of its outputs. The file enters the key like any input, so the
//! stage reruns when an upstream stage reruns, and what it says about the upstream is never stale.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::graph::Graph;
use super::store::Record;

/// The input name under which a stage sees its lineage.
pub const INPUT: &str = super::graph::LINEAGE_INPUT;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub stage: String,
    pub kind: String,
    pub key: String,
    pub params: BTreeMap<String, Value>,
    /// `-` for kinds whose results do not depend on the backend.
    pub backend: String,
    pub device: String,
    /// Wall time of the run that produced the record.
    pub seconds: f64,
    /// Stage ids this stage reads from or runs after.
    pub deps: Vec<String>,
    /// Output name -> blake3.
    pub outputs: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Lineage {
    /// Every upstream stage, dependencies first.
    pub stages: Vec<Entry>,
}

impl Lineage {
    pub fn read(path: &Path) -> Result<Lineage> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not a lineage file", path.display()))
    }

    pub fn get(&self, stage: &str) -> Option<&Entry> {
        self.stages.iter().find(|e| e.stage == stage)
    }

    /// `stage` and everything upstream of it, dependencies first.
    pub fn upstream_of(&self, stage: &str) -> Vec<&Entry> {
        let mut wanted = std::collections::BTreeSet::from([stage.to_string()]);
        for e in self.stages.iter().rev() {
            if wanted.contains(&e.stage) {
                wanted.extend(e.deps.iter().cloned());
            }
        }
        self.stages.iter().filter(|e| wanted.contains(&e.stage)).collect()
    }
}

/// The lineage file of stage `i`: canonical JSON, so equal upstream records give equal bytes.
pub fn build(graph: &Graph, i: usize, records: &BTreeMap<usize, Record>) -> Result<Vec<u8>> {
    let mut upstream = vec![false; graph.stages().len()];
    let mut stack = graph.deps(i).to_vec();
    while let Some(j) = stack.pop() {
        if !upstream[j] {
            upstream[j] = true;
            stack.extend(graph.deps(j));
        }
    }
    let mut stages = Vec::new();
    for &j in graph.order() {
        if !upstream[j] {
            continue;
        }
        let stage = graph.stage(j);
        let record = records.get(&j).ok_or_else(|| anyhow!("upstream {} has no record", stage.id))?;
        stages.push(Entry {
            stage: stage.id.clone(),
            kind: stage.kind.name.to_string(),
            key: record.key.clone(),
            params: stage.params.clone(),
            backend: record.backend.clone(),
            device: record.device.clone(),
            seconds: (record.seconds * 1000.0).round() / 1000.0,
            deps: graph.deps(j).iter().map(|&d| graph.stage(d).id.clone()).collect(),
            outputs: record.outputs.iter().map(|(k, v)| (k.clone(), v.hash.clone())).collect(),
        });
    }
    Ok(serde_json::to_vec_pretty(&Lineage { stages })?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::KeyParts;
    use crate::engine::graph::{Stage, StageContext, StageKind};
    use crate::engine::store::{ObjectRef, Record};

    fn noop(_: &StageContext) -> Result<()> {
        Ok(())
    }
    static KIND: StageKind = StageKind::plain("k", noop);

    fn record(stage: &Stage, seconds: f64) -> Record {
        Record {
            key: format!("key-of-{}", stage.id),
            stage: stage.id.clone(),
            kind: "k".into(),
            outputs: BTreeMap::from([("out".to_string(), ObjectRef { hash: "h".into(), size: 1 })]),
            started: 0.0,
            seconds,
            cpu_seconds: None,
            backend: "-".into(),
            device: "-".into(),
            machine: None,
            parts: KeyParts::default(),
            batch: None,
        }
    }

    #[test]
    fn lineage_lists_exactly_the_upstream_stages_in_order() {
        let a = Stage::new(&KIND, &[("n", "a".into())], &serde_json::json!({"seed": 1}));
        let b = Stage::new(&KIND, &[("n", "b".into())], &()).input("x", &a, "out");
        let side = Stage::new(&KIND, &[("n", "side".into())], &());
        let c = Stage::new(&KIND, &[("n", "c".into())], &()).input("y", &b, "out").with_lineage();
        let graph = Graph::new(vec![c, side, b, a]).unwrap();
        let records: BTreeMap<usize, Record> = (0..4).map(|i| (i, record(graph.stage(i), 1.23456))).collect();
        let c_index = graph.find("k[n=c]").unwrap();
        let lineage: Lineage = serde_json::from_slice(&build(&graph, c_index, &records).unwrap()).unwrap();
        let ids: Vec<&str> = lineage.stages.iter().map(|e| e.stage.as_str()).collect();
        assert_eq!(ids, ["k[n=a]", "k[n=b]"], "dependencies first, nothing off the path");
        assert_eq!(lineage.stages[0].params["seed"], 1);
        assert_eq!(lineage.stages[0].seconds, 1.235, "wall times to the millisecond");
        assert_eq!(lineage.stages[1].deps, ["k[n=a]"]);
        assert_eq!(lineage.upstream_of("k[n=b]").len(), 2);
        assert_eq!(lineage.upstream_of("k[n=a]").len(), 1);
        // Equal records give equal bytes: the lineage hash is a stable part of the key.
        assert_eq!(build(&graph, c_index, &records).unwrap(), build(&graph, c_index, &records).unwrap());
    }
}
