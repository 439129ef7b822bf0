//! `artifacts/`: a view of the store for people, plus `manifest.json`. Deleting it loses nothing:
//! the next run rebuilds it from the store without recomputing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::graph::Graph;
use super::store::{Record, Store, remove_temporaries};
use super::untrusted::{BadName, check_relative_name, printable};
use super::{atomic, hash_file};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub blake3: String,
    pub size: u64,
    pub stage: String,
    pub key: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Path under `artifacts/` -> what it is and where it came from.
    pub artifacts: BTreeMap<String, Entry>,
}

pub const MANIFEST: &str = "manifest.json";

impl Manifest {
    pub fn load(dir: &Path) -> Option<Manifest> {
        serde_json::from_slice(&fs::read(dir.join(MANIFEST)).ok()?).ok()
    }
}

/// The manifest after a run: what the previous one said of stages outside `selected`, and every
/// output of the published stages among `records` under its artifact path.
fn published(graph: &Graph, selected: &[bool], records: &BTreeMap<usize, Record>, old: &Manifest) -> Result<Manifest> {
    let mut new = Manifest::default();
    for (path, entry) in &old.artifacts {
        if graph.find(&entry.stage).is_some_and(|i| !selected[i]) {
            new.artifacts.insert(path.clone(), entry.clone());
        }
    }
    for (&i, record) in records {
        let Some(prefix) = &graph.stage(i).publish else {
            continue;
        };
        for (name, obj) in &record.outputs {
            let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            if path == MANIFEST {
                bail!("{} has an output named {MANIFEST}, which artifacts/ keeps for itself", record.stage);
            }
            let entry = Entry {
                blake3: obj.hash.clone(),
                size: obj.size,
                stage: record.stage.clone(),
                key: record.key.clone(),
            };
            if let Some(other) = new.artifacts.insert(path.clone(), entry)
                && other.stage != record.stage
            {
                bail!("artifact {path} is published by both {} and {}", other.stage, record.stage);
            }
        }
    }
    Ok(new)
}

/// Brings `dir` in line with the records of the published stages. Stages outside `selected` keep
/// what the previous manifest said about them; files of stages that no longer exist are removed,
/// and so are the half-copied files a run killed here left.
pub fn materialise(
    dir: &Path,
    store: &Store,
    graph: &Graph,
    selected: &[bool],
    records: &BTreeMap<usize, Record>,
) -> Result<Manifest> {
    remove_temporaries(dir)?;
    let old = Manifest::load(dir).unwrap_or_default();
    let new = published(graph, selected, records, &old)?;
    for (path, entry) in &old.artifacts {
        // A manifest edited by hand or left by an older version: a path that would leave the
        // folder is not ours to remove.
        if !new.artifacts.contains_key(path) && check_relative_name(path).is_ok() {
            let file = dir.join(path);
            if file.exists() && hash_file(&file).is_ok_and(|h| h == entry.blake3) {
                fs::remove_file(&file).with_context(|| format!("cannot remove stale artifact {}", file.display()))?;
            }
        }
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let root = dir.canonicalize()?;
    for (path, entry) in &new.artifacts {
        let file = inside(dir, &root, path)?;
        if file.exists() && hash_file(&file).is_ok_and(|h| h == entry.blake3) {
            continue;
        }
        let object = store.object_path(&entry.blake3);
        if !object.exists() {
            bail!("artifact {path} cannot be restored: object {} is gone (run `repro verify`)", entry.blake3);
        }
        atomic::copy(&object, &file).with_context(|| format!("cannot write artifact {}", file.display()))?;
    }
    atomic::write(&dir.join(MANIFEST), &serde_json::to_vec_pretty(&new)?)?;
    Ok(new)
}

/// Where the artifact `path` is written: below `dir` (whose canonical path is `root`), and nowhere
/// else. Records from a remote are validated before they are used; this holds whatever a record
/// or the manifest says (defence in depth): the name is a plain relative path, and no folder on
/// the way is a link out of `dir`.
fn inside(dir: &Path, root: &Path, path: &str) -> Result<PathBuf> {
    check_relative_name(path).map_err(|why| anyhow!("artifact name `{}` is refused: {why}", printable(path)))?;
    let file = dir.join(path);
    let parent = file.parent().expect("a joined name has a parent");
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    if !parent.canonicalize()?.starts_with(root) {
        bail!("artifact `{}` would be written outside {} (through a link)", printable(path), dir.display());
    }
    if fs::symlink_metadata(&file).is_ok_and(|m| m.file_type().is_symlink()) {
        // The copy renames a new file over it: the link goes, its target is untouched.
        fs::remove_file(&file)?;
    }
    Ok(file)
}

/// A file under `artifacts/` that differs from the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactProblem {
    pub path: String,
    pub fault: ArtifactFault,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactFault {
    /// The manifest names a path that would leave `artifacts/`.
    NotAName(BadName),
    Differs,
    Missing,
}

impl std::fmt::Display for ArtifactProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.fault {
            ArtifactFault::NotAName(why) => write!(f, "{}: not a name below artifacts/ ({why})", printable(&self.path)),
            ArtifactFault::Differs => write!(f, "{}: content differs from the manifest", self.path),
            ArtifactFault::Missing => write!(f, "{}: missing", self.path),
        }
    }
}

/// Files under `dir` that differ from the manifest (missing or altered), for CI checks.
pub fn check(dir: &Path) -> Result<Vec<ArtifactProblem>> {
    let manifest = Manifest::load(dir).context("artifacts/manifest.json is missing or unreadable")?;
    let mut problems = Vec::new();
    for (path, entry) in &manifest.artifacts {
        let fault = match check_relative_name(path) {
            Err(why) => ArtifactFault::NotAName(why),
            Ok(()) => match hash_file(&dir.join(path)) {
                Ok(h) if h == entry.blake3 => continue,
                Ok(_) => ArtifactFault::Differs,
                Err(_) => ArtifactFault::Missing,
            },
        };
        problems.push(ArtifactProblem { path: path.clone(), fault });
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_killed_half_way_on_this_host_is_cleared_and_nothing_else() {
        let scratch = tempfile::tempdir().unwrap();
        let store = Store::open(&scratch.path().join("cache")).unwrap();
        let dir = scratch.path().join("artifacts");
        let ours = atomic::temp_sibling_of_ended_process(&dir.join("sim_functions").join("predictions_f1.png"));
        let theirs = dir.join("sim_functions").join(".predictions_f1.png.tmp.othernode.7.0");
        let users = dir.join("notes.txt");
        fs::create_dir_all(ours.parent().unwrap()).unwrap();
        for path in [&ours, &theirs, &users] {
            fs::write(path, b"bytes").unwrap();
        }
        let graph = Graph::new(Vec::new()).unwrap();
        materialise(&dir, &store, &graph, &[], &BTreeMap::new()).unwrap();
        assert!(!ours.exists(), "a copy killed half-way here stays in artifacts/");
        assert!(theirs.exists() && users.exists(), "another host's copy in flight, and a file of the user's");
    }

    #[test]
    fn check_names_each_file_that_differs_from_the_manifest_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let entry = |bytes: &[u8]| Entry {
            blake3: blake3::hash(bytes).to_hex().to_string(),
            size: bytes.len() as u64,
            stage: "a.plot".into(),
            key: "k".into(),
        };
        let manifest = Manifest {
            artifacts: [("same.csv", entry(b"same")), ("altered.csv", entry(b"was")), ("gone.png", entry(b"x"))]
                .into_iter()
                .chain([("../escape", entry(b"x"))])
                .map(|(p, e)| (p.to_string(), e))
                .collect(),
        };
        fs::write(dir.path().join(MANIFEST), serde_json::to_vec(&manifest).unwrap()).unwrap();
        fs::write(dir.path().join("same.csv"), b"same").unwrap();
        fs::write(dir.path().join("altered.csv"), b"now").unwrap();
        let problem = |path: &str, fault| ArtifactProblem { path: path.into(), fault };
        assert_eq!(
            check(dir.path()).unwrap(),
            [
                problem("../escape", ArtifactFault::NotAName(BadName::Component)),
                problem("altered.csv", ArtifactFault::Differs),
                problem("gone.png", ArtifactFault::Missing),
            ]
        );
        assert_eq!(problem("gone.png", ArtifactFault::Missing).to_string(), "gone.png: missing");
    }
}
