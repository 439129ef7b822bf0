//! What a record from the remote must be before any of it is used, whoever signed it: a signature
//! says who published a record, not that the publisher's program was sound.

use std::collections::BTreeSet;

use super::super::graph::Graph;
use super::super::store::Record;
use super::super::untrusted::{BadName, check_relative_name, is_object_hash, printable, short};

/// The stage a record was asked for, and what its record must hold.
#[derive(Clone, Debug)]
pub struct Asked {
    pub key: String,
    /// The stage instance's name and its kind's.
    pub stage: String,
    pub kind: String,
    /// The outputs this graph's stages read from it: each must be there.
    pub needed: BTreeSet<String>,
    /// No object larger than this is fetched (`[remote] max_object_mb`).
    pub max_object_bytes: u64,
}

impl Asked {
    /// What the record of stage `i` of `graph`, under `key`, must be.
    pub fn stage(graph: &Graph, i: usize, key: &str, max_object_bytes: u64) -> Asked {
        let stage = graph.stage(i);
        Asked {
            key: key.to_string(),
            stage: stage.id.clone(),
            kind: stage.kind.name.to_string(),
            needed: graph.outputs_read(i),
            max_object_bytes,
        }
    }

    /// What a record of ours must be to stand on the remote in its place (its own outputs).
    pub fn of(record: &Record, max_object_bytes: u64) -> Asked {
        Asked {
            key: record.key.clone(),
            stage: record.stage.clone(),
            kind: record.kind.clone(),
            needed: record.outputs.keys().cloned().collect(),
            max_object_bytes,
        }
    }
}

/// A record that parses but says what no record of the asked stage may say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    WrongStage {
        found: String,
    },
    WrongKind {
        found: String,
    },
    /// Its key parts do not hash to its key: it does not say truly what made it.
    PartsDoNotHashToKey,
    NoOutputs,
    MissingOutput {
        name: String,
    },
    OutputName {
        name: String,
        why: BadName,
    },
    Hash {
        output: String,
        hash: String,
    },
    TooLarge {
        output: String,
        size: u64,
        cap: u64,
    },
    /// A text field meant for people holds a control character.
    Text {
        field: &'static str,
    },
    /// A duration that is negative, or not a number.
    Duration {
        field: &'static str,
    },
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::WrongStage { found } => write!(f, "it is for stage `{}`", printable(found)),
            Invalid::WrongKind { found } => write!(f, "it is of kind `{}`", printable(found)),
            Invalid::PartsDoNotHashToKey => f.write_str("its key parts do not hash to its key"),
            Invalid::NoOutputs => f.write_str("it has no outputs"),
            Invalid::MissingOutput { name } => write!(f, "output `{name}`, which this pipeline reads, is not in it"),
            Invalid::OutputName { name, why } => {
                write!(f, "output name `{}` cannot be a path below artifacts/: {why}", printable(name))
            }
            Invalid::Hash { output, hash } => {
                write!(f, "output `{output}` names `{}`, not a blake3 hash", short(hash))
            }
            Invalid::TooLarge { output, size, cap } => {
                write!(f, "output `{output}` is {size} bytes, over the {cap} of [remote] max_object_mb")
            }
            Invalid::Text { field } => write!(f, "its `{field}` holds a control character"),
            Invalid::Duration { field } => write!(f, "its `{field}` is not a duration"),
        }
    }
}

/// Checks `record`, found under `asked.key`, against what `asked` allows.
pub fn check(record: &Record, asked: &Asked) -> Result<(), Invalid> {
    if record.stage != asked.stage {
        return Err(Invalid::WrongStage { found: record.stage.clone() });
    }
    if record.kind != asked.kind || record.parts.kind != asked.kind {
        return Err(Invalid::WrongKind { found: record.kind.clone() });
    }
    if record.parts.key() != asked.key {
        return Err(Invalid::PartsDoNotHashToKey);
    }
    if record.outputs.is_empty() {
        return Err(Invalid::NoOutputs);
    }
    for (name, object) in &record.outputs {
        check_relative_name(name).map_err(|why| Invalid::OutputName { name: name.clone(), why })?;
        if !is_object_hash(&object.hash) {
            return Err(Invalid::Hash { output: name.clone(), hash: object.hash.clone() });
        }
        if object.size > asked.max_object_bytes {
            return Err(Invalid::TooLarge { output: name.clone(), size: object.size, cap: asked.max_object_bytes });
        }
    }
    if let Some(name) = asked.needed.iter().find(|n| !record.outputs.contains_key(*n)) {
        return Err(Invalid::MissingOutput { name: name.clone() });
    }
    for (field, text) in [("backend", &record.backend), ("device", &record.device)] {
        if text.chars().any(char::is_control) {
            return Err(Invalid::Text { field });
        }
    }
    let durations =
        [("started", Some(record.started)), ("seconds", Some(record.seconds)), ("cpu_seconds", record.cpu_seconds)];
    if let Some((field, _)) = durations.iter().find(|(_, s)| s.is_some_and(|s| !(s.is_finite() && s >= 0.0))) {
        return Err(Invalid::Duration { field });
    }
    Ok(())
}
