//! The run log: one JSON line per `repro run` in this workspace (`<cache>/runs.jsonl`): when it
//! ran, the effective configuration it ran (profile and overrides applied) and how it ended.
//! `repro diff --against last` and `repro runs` read it; no key depends on it, and nothing is lost
//! if it goes: results stay in the store, keyed by what produced them.
//!
//! Appends happen under the cache lock. A line cut short by a killed run, or edited into
//! nonsense, is skipped when read (and counted), never an error: the log is a convenience.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::atomic;

pub const FILE: &str = "runs.jsonl";
/// Past this many lines, an append keeps the newest [`KEEP`] (a few MB at most).
const MAX_LINES: usize = 2000;
const KEEP: usize = 1000;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunEntry {
    /// Seconds since the Unix epoch when the run started.
    pub started: f64,
    pub seconds: f64,
    /// The configuration's own hash (its canonical JSON): runs of one configuration share it.
    pub config_hash: String,
    /// The effective configuration, as JSON.
    pub config: serde_json::Value,
    /// How it was asked for: the configuration file, profile, `-s` overrides and stage patterns.
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
    /// How it ended, as data (`None` for lines of versions that logged it as prose).
    #[serde(default, deserialize_with = "typed_or_none")]
    pub outcome: Option<RunOutcome>,
}

/// How a run ended: counts of stages run, fetched and cached, and the stages that failed, were
/// stopped after a checkpoint or were skipped behind a failure. The CLI renders it as a line.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RunOutcome {
    pub ran: usize,
    pub fetched: usize,
    pub cached: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stopped: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stages: {} run, {} fetched, {} cached, {} failed",
            self.ran,
            self.fetched,
            self.cached,
            self.failed.len()
        )?;
        match self.stopped.len() {
            0 => Ok(()),
            n => write!(f, ", {n} stopped (checkpointed)"),
        }
    }
}

/// An outcome as data, or `None` for anything else (the prose of older logs): the rest of the
/// line stays readable.
fn typed_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<RunOutcome>, D::Error> {
    Ok(serde_json::Value::deserialize(d).ok().and_then(|v| serde_json::from_value(v).ok()))
}

pub fn path(cache: &Path) -> PathBuf {
    cache.join(FILE)
}

/// Appends `entry` (the caller holds the cache lock).
pub fn append(cache: &Path, entry: &RunEntry) -> Result<()> {
    append_capped(cache, entry, (MAX_LINES, KEEP))
}

fn append_capped(cache: &Path, entry: &RunEntry, (max_lines, keep): (usize, usize)) -> Result<()> {
    let file = path(cache);
    let existing = std::fs::read_to_string(&file).unwrap_or_default();
    let mut line = serde_json::to_string(entry)?;
    line.push('\n');
    if !existing.is_empty() && !existing.ends_with('\n') {
        // A run killed mid-line: end that line, so that only it is lost.
        line.insert(0, '\n');
    }
    if existing.lines().count() >= max_lines {
        let lines: Vec<&str> = existing.lines().collect();
        let kept = lines[lines.len() + 1 - keep..].join("\n") + "\n" + &line;
        return atomic::write(&file, kept.as_bytes())
            .with_context(|| format!("cannot rewrite the run log {}", file.display()));
    }
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .with_context(|| format!("cannot open the run log {}", file.display()))?;
    out.write_all(line.as_bytes()).with_context(|| format!("cannot append to the run log {}", file.display()))
}

/// What the log holds, oldest first.
#[derive(Debug, Default)]
pub struct Log {
    pub entries: Vec<RunEntry>,
    /// Lines that did not parse (a run killed while writing, a hand edit).
    pub unreadable: usize,
}

/// The log of the workspace whose store is `cache` (empty when there is none).
pub fn read(cache: &Path) -> Log {
    let Ok(text) = std::fs::read_to_string(path(cache)) else {
        return Log::default();
    };
    let mut log = Log::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(entry) => log.entries.push(entry),
            Err(_) => log.unreadable += 1,
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> RunEntry {
        RunEntry {
            started: n as f64,
            seconds: 1.5,
            config_hash: format!("h{n}"),
            config: serde_json::json!({"experiments": {"a": {"lr": n}}}),
            file: "pipeline.toml".into(),
            profile: None,
            overrides: vec![format!("a.lr={n}")],
            patterns: vec![],
            outcome: Some(RunOutcome { ran: 1, cached: n, failed: vec!["a.train".into()], ..RunOutcome::default() }),
        }
    }

    #[test]
    fn entries_come_back_in_order_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &entry(1)).unwrap();
        append(dir.path(), &entry(2)).unwrap();
        // A run killed half-way through its line, then a later run appending after it.
        let mut f = std::fs::OpenOptions::new().append(true).open(path(dir.path())).unwrap();
        f.write_all(b"{\"started\": 3, \"conf").unwrap();
        drop(f);
        append(dir.path(), &entry(4)).unwrap();
        let log = read(dir.path());
        assert_eq!(log.entries, vec![entry(1), entry(2), entry(4)]);
        assert_eq!(log.unreadable, 1);
        assert!(read(&dir.path().join("none")).entries.is_empty());
    }

    #[test]
    fn a_long_log_keeps_its_newest_lines() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..25 {
            append_capped(dir.path(), &entry(n), (10, 4)).unwrap();
        }
        let log = read(dir.path());
        assert!(log.entries.len() <= 10 && log.entries.len() >= 4, "{}", log.entries.len());
        assert_eq!(log.entries.last().unwrap(), &entry(24));
        let first = log.entries[0].started as usize;
        assert_eq!(log.entries, (first..25).map(entry).collect::<Vec<_>>(), "the newest, in order, none missing");
    }

    #[test]
    fn the_outcome_is_data_a_script_reads_and_older_prose_reads_as_unknown() {
        let line = serde_json::to_value(entry(3)).unwrap();
        assert_eq!(line["outcome"], serde_json::json!({"ran": 1, "fetched": 0, "cached": 3, "failed": ["a.train"]}));
        assert_eq!(entry(3).outcome.unwrap().to_string(), "stages: 1 run, 0 fetched, 3 cached, 1 failed");
        let stopped = RunOutcome { stopped: vec!["b.train".into()], ..RunOutcome::default() };
        assert_eq!(stopped.to_string(), "stages: 0 run, 0 fetched, 0 cached, 0 failed, 1 stopped (checkpointed)");
        // A line an older version wrote: everything but its prose outcome is kept.
        let mut old = line.clone();
        old["outcome"] = "stages: 1 run, 0 fetched, 3 cached, 1 failed".into();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), format!("{old}\n")).unwrap();
        let log = read(dir.path());
        assert_eq!(log.unreadable, 0);
        assert_eq!(log.entries, vec![RunEntry { outcome: None, ..entry(3) }]);
    }
}
