//! The content-addressed store under `cache/`.
//!
//! Layout:
//! - `objects/ab/cdef…`: immutable files named by the blake3 of their bytes;
//! - `records/<key>.json`: one record per completed stage key (its outputs -> object hashes);
//! - `last/<blake3 of stage id>.json`: the key parts a stage instance last ran with, kept only to
//!   explain *why* it is stale now (never consulted to decide whether it is);
//! - `tmp/`: scratch directories of running stages; a run first removes what this host left there;
//! - `jobs/`: what `repro submit` handed to a cluster scheduler (job ids, logs), per stage.
//!
//! Commit order is objects first, record last, each through write-fsync-rename, so a kill at any
//! instant leaves either a complete record whose objects all exist, or no record.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::key::KeyParts;
use super::untrusted::{BadName, check_relative_name, is_object_hash, printable, short};
use super::{atomic, hash_bytes, hash_file, walk_files};

/// One stored output file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ObjectRef {
    pub hash: String,
    pub size: u64,
}

/// What a completed stage key produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    pub stage: String,
    pub kind: String,
    pub outputs: BTreeMap<String, ObjectRef>,
    /// Wall-clock start (seconds since the Unix epoch) and duration of the run that made it.
    #[serde(default)]
    pub started: f64,
    pub seconds: f64,
    /// CPU time of the stage's own thread pool (its share, for a batch); absent in records made
    /// before it was kept, and where the platform has no per-thread clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    pub backend: String,
    pub device: String,
    /// The CPU that computed it (model and widest vector set, as [`super::placement::this_machine`]
    /// says); absent in records made before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    pub parts: KeyParts,
    /// Set when the stage ran fused with others of its kind: `seconds` is then its share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchRun>,
}

/// The last-run note of a stage instance: the key parts it last completed with, and the catalogue
/// of item hashes of the binary that ran it (to name the items an edit changed).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LastRun {
    #[serde(flatten)]
    pub parts: KeyParts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_catalogue: Option<String>,
}

/// A batched execution that produced several records.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BatchRun {
    /// Instances in the batch.
    pub size: usize,
    /// Wall time of the whole batch.
    pub seconds: f64,
    /// CPU time of the whole batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
}

/// Why a record cannot be used as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    Missing { output: String, hash: String },
    Corrupt { output: String, hash: String },
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Missing { output, hash } => {
                write!(f, "cached output `{}` is missing (object {})", printable(output), short(hash))
            }
            Damage::Corrupt { output, hash } => {
                write!(f, "cached output `{}` is corrupt (object {} fails its hash)", printable(output), short(hash))
            }
        }
    }
}

/// A problem found by [`Store::verify`]: the file and what is wrong with it.
#[derive(Debug, Clone)]
pub struct Problem {
    pub path: PathBuf,
    pub fault: Fault,
}

/// What [`Store::verify`] finds wrong with an object or a record; rendered to English by the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An object whose content does not hash to its name (altered or truncated).
    ObjectAltered,
    ObjectUnreadable {
        error: String,
    },
    RecordUnreadable,
    NoOutputs {
        stage: String,
    },
    /// An output name that would leave the folder it is copied to.
    OutputNameNotPlain {
        stage: String,
        output: String,
        why: BadName,
    },
    ObjectMissing {
        stage: String,
        output: String,
    },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::ObjectAltered => f.write_str("content does not match its hash (altered or truncated)"),
            Fault::ObjectUnreadable { error } => write!(f, "unreadable: {error}"),
            Fault::RecordUnreadable => f.write_str("record is unreadable"),
            Fault::NoOutputs { stage } => write!(f, "{stage} has no outputs"),
            Fault::OutputNameNotPlain { stage, output, why } => {
                write!(f, "output `{}` of {stage}: not a plain name ({why})", printable(output))
            }
            Fault::ObjectMissing { stage, output } => {
                write!(f, "output `{}` of {stage} points to a missing object", printable(output))
            }
        }
    }
}

/// A file arriving in the store ([`Store::incoming`]): removed when dropped unless adopted.
pub struct Incoming {
    pub path: PathBuf,
    pub file: fs::File,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        // After an adoption the path is gone and this does nothing.
        let _ = fs::remove_file(&self.path);
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Store> {
        for sub in ["objects", "records", "last", "tmp"] {
            fs::create_dir_all(root.join(sub))
                .with_context(|| format!("cannot create the cache directory {}", root.join(sub).display()))?;
        }
        Ok(Store { root: root.to_path_buf() })
    }

    /// Opens an existing store without creating anything (for read-only commands).
    pub fn open_existing(root: &Path) -> Option<Store> {
        root.join("records").is_dir().then(|| Store { root: root.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the object `hash` lies. Anything but a blake3 hash (a damaged record's) names a
    /// path that is never written, so it reads as missing and never reaches outside `objects/`.
    pub fn object_path(&self, hash: &str) -> PathBuf {
        let (dir, rest) = if is_object_hash(hash) { hash.split_at(2) } else { ("00", "invalid") };
        self.root.join("objects").join(dir).join(rest)
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.root.join("records").join(format!("{key}.json"))
    }

    fn last_path(&self, stage_id: &str) -> PathBuf {
        self.root.join("last").join(format!("{}.json", hash_bytes(stage_id.as_bytes())))
    }

    /// Stores `bytes` as an object (through a temporary file, as any output).
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<ObjectRef> {
        fs::create_dir_all(self.root.join("tmp"))?;
        let tmp = atomic::temp_sibling(&self.root.join("tmp").join("bytes"));
        fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
        let stored = self.put_file(&tmp);
        let _ = fs::remove_file(&tmp);
        stored
    }

    /// A temporary file in `tmp/` for an object that arrives in pieces; removed unless adopted.
    pub fn incoming(&self) -> Result<Incoming> {
        let path = atomic::temp_sibling(&self.root.join("tmp").join("incoming"));
        let file = fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Incoming { path, file })
    }

    /// Moves an incoming file whose blake3 the caller computed on the way in (`hash`) into the
    /// store, without reading it again.
    pub fn adopt(&self, incoming: Incoming, hash: &str) -> Result<()> {
        if !is_object_hash(hash) {
            anyhow::bail!("`{}` is not an object hash", short(hash));
        }
        if self.object_is_intact(hash) {
            return Ok(());
        }
        incoming.file.sync_all()?;
        self.install(&incoming.path, hash)
    }

    /// Makes the finished, synced file `tmp` (in the store's filesystem) the read-only object
    /// `hash`: renamed into place, the rename made durable.
    fn install(&self, tmp: &Path, hash: &str) -> Result<()> {
        let mut perms = fs::metadata(tmp)?.permissions();
        perms.set_readonly(true);
        fs::set_permissions(tmp, perms)?;
        let dest = self.object_path(hash);
        fs::create_dir_all(dest.parent().unwrap())?;
        fs::rename(tmp, &dest)?;
        atomic::sync_dir(&dest)?;
        Ok(())
    }

    /// Moves a finished file into the store; returns its reference. An identical object already
    /// present is kept (objects are immutable), so concurrent writers of the same bytes are safe.
    pub fn put_file(&self, file: &Path) -> Result<ObjectRef> {
        let hash = hash_file(file).with_context(|| format!("cannot read output {}", file.display()))?;
        let size = fs::metadata(file)?.len();
        let dest = self.object_path(&hash);
        if self.object_is_intact(&hash) {
            return Ok(ObjectRef { hash, size });
        }
        fs::create_dir_all(dest.parent().unwrap())?;
        let tmp = atomic::temp_sibling(&dest);
        fs::copy(file, &tmp).with_context(|| format!("cannot copy {} into the store", file.display()))?;
        fs::File::open(&tmp)?.sync_all()?;
        self.install(&tmp, &hash)?;
        Ok(ObjectRef { hash, size })
    }

    /// Whether the object is here with the bytes its name promises.
    pub fn object_is_intact(&self, hash: &str) -> bool {
        matches!(hash_file(&self.object_path(hash)), Ok(h) if h == hash)
    }

    /// The record for `key`, if one was committed and is readable.
    pub fn record(&self, key: &str) -> Option<Record> {
        let bytes = fs::read(self.record_path(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Re-hashes every output of `record`; the first damage found, if any.
    pub fn check(&self, record: &Record) -> Option<Damage> {
        for (output, obj) in &record.outputs {
            let path = self.object_path(&obj.hash);
            match hash_file(&path) {
                Err(_) => {
                    return Some(Damage::Missing { output: output.clone(), hash: obj.hash.clone() });
                }
                Ok(h) if h != obj.hash => {
                    return Some(Damage::Corrupt { output: output.clone(), hash: obj.hash.clone() });
                }
                Ok(_) => {}
            }
        }
        None
    }

    /// Commits a record (after all its objects are in place).
    pub fn commit(&self, record: &Record) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(record)?;
        atomic::write(&self.record_path(&record.key), &bytes)
            .with_context(|| format!("cannot write the record of {}", record.stage))?;
        let catalogue = self.keep_catalogue().ok();
        let note = LastRun { parts: record.parts.clone(), code_catalogue: catalogue };
        atomic::write(&self.last_path(&record.stage), &serde_json::to_vec_pretty(&note)?)
            .with_context(|| format!("cannot write the last-run note of {}", record.stage))
    }

    /// The key parts this stage instance last completed with, if any.
    pub fn last_parts(&self, stage_id: &str) -> Option<KeyParts> {
        self.last_run(stage_id).map(|note| note.parts)
    }

    /// What this stage instance last completed with, if any.
    pub fn last_run(&self, stage_id: &str) -> Option<LastRun> {
        serde_json::from_slice(&fs::read(self.last_path(stage_id)).ok()?).ok()
    }

    /// Keeps this binary's item catalogue (`fingerprint::catalogue`) under `code/`, once; its digest.
    fn keep_catalogue(&self) -> Result<String> {
        let (digest, json) = super::fingerprint::catalogue();
        let path = self.root.join("code").join(format!("{digest}.json"));
        if !path.exists() {
            atomic::write(&path, json.as_bytes())?;
        }
        Ok(digest.clone())
    }

    /// The item catalogue of digest `digest` (item id -> blake3), if this cache keeps it intact.
    pub fn catalogue(&self, digest: &str) -> Option<BTreeMap<String, String>> {
        let bytes = fs::read(self.root.join("code").join(format!("{digest}.json"))).ok()?;
        (hash_bytes(&bytes) == digest).then(|| serde_json::from_slice(&bytes).ok()).flatten()
    }

    /// A fresh, empty scratch directory for one stage execution.
    pub fn scratch_dir(&self) -> Result<PathBuf> {
        let dir = atomic::temp_sibling(&self.root.join("tmp").join("stage"));
        fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Removes what killed runs left in `tmp/` and half-written temporaries. Call under the lock.
    pub fn clean_tmp(&self) -> Result<()> {
        let tmp = self.root.join("tmp");
        fs::create_dir_all(&tmp)?;
        // Only what this host left: on a shared cache, other nodes' jobs may be writing here.
        let marker = atomic::temp_marker();
        for entry in fs::read_dir(&tmp)?.flatten() {
            if entry.file_name().to_string_lossy().contains(&marker) {
                let path = entry.path();
                remove_entry(&path).with_context(|| format!("cannot clean {}", path.display()))?;
            }
        }
        // Every other write killed half-way, wherever in the store: a checkpoint, record or
        // object, the run log's rewrite, a job record of `repro submit` (which takes no lock).
        for entry in fs::read_dir(&self.root)?.flatten() {
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                if path != tmp {
                    remove_temporaries(&path)?;
                }
            } else if atomic::left_by_ended_process(&entry.file_name().to_string_lossy()) {
                let _ = fs::remove_file(&path);
            }
        }
        Ok(())
    }

    /// All committed records (unreadable ones are reported by [`Store::verify`]).
    pub fn records(&self) -> Vec<Record> {
        let Ok(entries) = fs::read_dir(self.root.join("records")) else {
            return Vec::new();
        };
        entries.flatten().filter_map(|e| serde_json::from_slice(&fs::read(e.path()).ok()?).ok()).collect()
    }

    /// Re-hashes every object and parses every record. Read-only.
    /// What is wrong with the record at `path`: unreadable, no outputs, an output name that is
    /// not a plain name, an output whose object is missing.
    fn record_problems(&self, path: &Path) -> Vec<Problem> {
        let problem = |fault: Fault| Problem { path: path.to_path_buf(), fault };
        let Some(rec) = fs::read(path).ok().and_then(|b| serde_json::from_slice::<Record>(&b).ok()) else {
            return vec![problem(Fault::RecordUnreadable)];
        };
        let mut problems = Vec::new();
        if rec.outputs.is_empty() {
            problems.push(problem(Fault::NoOutputs { stage: rec.stage.clone() }));
        }
        for (output, obj) in &rec.outputs {
            let (stage, output) = (rec.stage.clone(), output.clone());
            if let Err(why) = check_relative_name(&output) {
                problems.push(problem(Fault::OutputNameNotPlain { stage: stage.clone(), output: output.clone(), why }));
            }
            if !self.object_path(&obj.hash).exists() {
                problems.push(problem(Fault::ObjectMissing { stage, output }));
            }
        }
        problems
    }

    pub fn verify(&self) -> Result<(usize, Vec<Problem>)> {
        let mut problems = Vec::new();
        let mut checked = 0;
        for entry in walk_files(&self.root.join("objects"))? {
            let name = entry
                .strip_prefix(self.root.join("objects"))
                .ok()
                .map(|p| p.to_string_lossy().replace(['/', '\\'], ""))
                .unwrap_or_default();
            if name.starts_with('.') || name.contains(".tmp.") {
                continue;
            }
            checked += 1;
            match hash_file(&entry) {
                Ok(h) if h == name => {}
                Ok(_) => problems.push(Problem { path: entry, fault: Fault::ObjectAltered }),
                Err(e) => {
                    problems.push(Problem { path: entry, fault: Fault::ObjectUnreadable { error: e.to_string() } })
                }
            }
        }
        for entry in fs::read_dir(self.root.join("records"))?.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                problems.extend(self.record_problems(&path));
            }
        }
        Ok((checked, problems))
    }

    /// Removes scratch space in `tmp/` untouched for `max_age`, whatever host left it: a cluster
    /// job killed on another node leaves its scratch behind, and no run there may come to clean it.
    /// Returns how many entries went.
    pub fn clean_stale_tmp(&self, max_age: std::time::Duration) -> Result<usize> {
        let mut removed = 0;
        let Ok(entries) = fs::read_dir(self.root.join("tmp")) else {
            return Ok(0);
        };
        for entry in entries.flatten() {
            let age = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
            if age.is_some_and(|a| a > max_age) {
                let path = entry.path();
                remove_entry(&path).with_context(|| format!("cannot remove stale scratch {}", path.display()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Deletes records not in `keep` when `drop_records`, then every object no kept record uses.
    /// Returns (records removed, objects removed, bytes freed).
    pub fn gc(&self, keep: &std::collections::HashSet<String>, drop_records: bool) -> Result<(usize, usize, u64)> {
        let mut records_removed = 0;
        let mut reachable = std::collections::HashSet::new();
        for rec in self.records() {
            if drop_records && !keep.contains(&rec.key) {
                fs::remove_file(self.record_path(&rec.key))?;
                records_removed += 1;
            } else {
                reachable.extend(rec.outputs.values().map(|o| o.hash.clone()));
            }
        }
        let (mut objects_removed, mut bytes) = (0, 0);
        for path in walk_files(&self.root.join("objects"))? {
            let name = path
                .strip_prefix(self.root.join("objects"))
                .map(|p| p.to_string_lossy().replace(['/', '\\'], ""))
                .unwrap_or_default();
            if !reachable.contains(&name) {
                bytes += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                fs::remove_file(&path)?;
                objects_removed += 1;
            }
        }
        Ok((records_removed, objects_removed, bytes))
    }
}

/// Removes a scratch entry: a stage's directory, or a single temporary file.
fn remove_entry(path: &Path) -> std::io::Result<()> {
    if path.is_dir() { fs::remove_dir_all(path) } else { fs::remove_file(path) }
}

/// Removes the temporaries below `dir` that writes killed half-way left: this host's, of
/// processes that have ended ([`atomic::left_by_ended_process`]). Another host's may be in flight
/// (a cluster job), and so may a live process's here (one that writes without the cache lock, or
/// shares the folder under another cache's).
pub fn remove_temporaries(dir: &Path) -> Result<()> {
    for path in walk_files(dir)? {
        if path.file_name().is_some_and(|n| atomic::left_by_ended_process(&n.to_string_lossy())) {
            let _ = fs::remove_file(&path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod stale_tmp_tests {
    use super::*;

    #[test]
    fn verify_names_records_without_outputs_or_with_names_that_leave_their_folder() {
        let scratch = tempfile::tempdir().unwrap();
        let store = Store::open(scratch.path()).unwrap();
        let object = store.put_bytes(b"bytes").unwrap();
        let record = |key: &str, outputs: &[&str]| -> Record {
            serde_json::from_value(serde_json::json!({
                "key": key, "stage": format!("s{key}"), "kind": "k", "seconds": 0.0, "backend": "flex", "device": "cpu",
                "outputs": outputs.iter().map(|n| (n.to_string(), object.clone())).collect::<BTreeMap<_, _>>(),
                "parts": {"kind": "k", "code": {}, "params": {}, "inputs": {}, "env": {}},
            }))
            .unwrap()
        };
        for r in [record("1", &[]), record("2", &["../evil.sh"]), record("3", &["fine.csv"])] {
            store.commit(&r).unwrap();
        }
        let (_, problems) = store.verify().unwrap();
        let faults: Vec<&Fault> = problems.iter().map(|p| &p.fault).collect();
        let not_plain =
            Fault::OutputNameNotPlain { stage: "s2".into(), output: "../evil.sh".into(), why: BadName::Component };
        assert_eq!(faults.len(), 2, "{faults:?}");
        assert!(
            faults.contains(&&Fault::NoOutputs { stage: "s1".into() }) && faults.contains(&&not_plain),
            "{faults:?}"
        );
        assert_eq!(
            not_plain.to_string(),
            "output `../evil.sh` of s2: not a plain name (a component is empty, `.`, `..` or hidden)"
        );
    }

    #[test]
    fn only_scratch_older_than_the_limit_goes() {
        let scratch = tempfile::tempdir().unwrap();
        let root = scratch.path().to_path_buf();
        let store = Store::open(&root).unwrap();
        let old = root.join("tmp").join(".stage.tmp.othernode.12.0");
        let fresh = root.join("tmp").join(".stage.tmp.othernode.13.0");
        fs::create_dir_all(&old).unwrap();
        fs::create_dir_all(&fresh).unwrap();
        let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
        fs::File::open(&old).unwrap().set_modified(two_days_ago).unwrap();
        assert_eq!(store.clean_stale_tmp(std::time::Duration::from_secs(86_400)).unwrap(), 1);
        assert!(!old.exists() && fresh.exists());
    }

    #[test]
    fn a_run_clears_the_temporaries_this_host_left_and_nothing_else() {
        let scratch = tempfile::tempdir().unwrap();
        let store = Store::open(scratch.path()).unwrap();
        let dir = super::super::checkpoint::dir(scratch.path());
        let jobs = scratch.path().join("jobs");
        fs::create_dir_all(&dir).unwrap();
        fs::create_dir_all(&jobs).unwrap();
        let log = super::super::run_log::path(scratch.path());
        // A checkpoint's save, the run log's rewrite and a job record's write, killed half-way
        // here; another host's in flight; a job record being written here now (`repro submit`
        // takes no lock); and whole files.
        let killed =
            [dir.join("abcd"), log.clone(), jobs.join("stage.json")].map(|p| atomic::temp_sibling_of_ended_process(&p));
        let theirs = [dir.join(".abcd.tmp.othernode.7.0"), scratch.path().join(".runs.jsonl.tmp.othernode.7.0")];
        let in_flight = atomic::temp_sibling(&jobs.join("other.json"));
        let whole = [dir.join("abcd"), log];
        for path in killed.iter().chain(&theirs).chain([&in_flight]).chain(&whole) {
            fs::write(path, b"state").unwrap();
        }
        store.clean_tmp().unwrap();
        assert!(killed.iter().all(|p| !p.exists()), "writes killed half-way on this host");
        assert!(theirs.iter().all(|p| p.exists()), "another host's writes in flight");
        assert!(in_flight.exists() && whole.iter().all(|p| p.exists()), "a write in flight here, and whole files");
    }
}
