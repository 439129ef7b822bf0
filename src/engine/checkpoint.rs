//! Checkpoints of running stages, so that a run killed at any instant loses at most one interval of
//! a long stage's work.
//!
//! A checkpoint is what a stage chose to save of its state (opaque bytes to the engine), kept in
//! `cache/checkpoints/<stage key>` while the stage runs. A stage that starts and finds one for its
//! key resumes from it; committing the stage's record deletes it; `repro gc` removes those no stage
//! of the configuration can use. Checkpoints are never part of a key or a record: a resumed stage
//! must produce what an uninterrupted one would, which is the stage's promise, tested per stage.
//!
//! The file is written through a temporary sibling and a rename, and carries its stage key and the
//! blake3 of its payload: a torn, truncated or foreign file is set aside (the stage starts over),
//! never resumed from. That check is what makes fsync unneeded (a fused batch saves a file per
//! member, a hundred for min_ratio's, at every interval).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::atomic;
use super::progress::Reporter;

const MAGIC: &str = "repro-checkpoint/1";

/// Set by SIGTERM and SIGUSR1 (see [`install_signal_handlers`]): every checkpointing stage saves
/// at its next step and stops, and the scheduler starts nothing new.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// What a stage's `save` returns once it has saved because the process was asked to stop: the
/// stage ends there, its work kept for the next run.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped by a signal, its work checkpointed")
    }
}

impl std::error::Error for Interrupted {}

/// The signal that asked the process to stop (0: none yet).
static SIGNAL: AtomicUsize = AtomicUsize::new(0);

/// SIGTERM (Slurm's preemption, `scontrol requeue`, a polite `kill`) and SIGUSR1 (sbatch's
/// `--signal`, shortly before the time limit) ask running stages to checkpoint now and stop; a
/// second SIGTERM ends the process at once.
pub fn install_signal_handlers() -> Result<()> {
    use signal_hook::consts::{SIGTERM, SIGUSR1};
    // Registered before the flag's handler, so only a second signal finds the flag set.
    signal_hook::flag::register_conditional_shutdown(SIGTERM, 143, &INTERRUPTED)?;
    for signal in [SIGTERM, SIGUSR1] {
        signal_hook::flag::register_usize(signal, &SIGNAL, signal as usize)?;
        signal_hook::flag::register(signal, &INTERRUPTED)?;
    }
    Ok(())
}

/// Whether the process was asked to stop (stages checkpoint and end; nothing new starts).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Whether what asked the process to stop was the warning before a time limit (SIGUSR1): the job
/// should requeue itself, where a preemption or requeue (SIGTERM) is requeued by the scheduler.
pub fn stopped_before_time_limit() -> bool {
    SIGNAL.load(Ordering::SeqCst) == signal_hook::consts::SIGUSR1 as usize
}

/// Where a store keeps its stages' checkpoints.
pub fn dir(cache: &Path) -> PathBuf {
    cache.join("checkpoints")
}

/// One stage instance's checkpoint: handed to the stage in its context.
pub struct Checkpoint<'a> {
    path: PathBuf,
    key: String,
    stage: &'a str,
    /// `None`: this run saves only when asked to stop.
    every: Option<Duration>,
    last_save: Mutex<Instant>,
    reporter: &'a Reporter,
    cost: &'a Cost,
}

impl<'a> Checkpoint<'a> {
    /// `cost` is shared by the instances of one execution (a fused batch saves them together).
    pub fn new(
        (cache, key): (&Path, String),
        stage: &'a str,
        every: Option<Duration>,
        (reporter, cost): (&'a Reporter, &'a Cost),
    ) -> Self {
        let path = dir(cache).join(&key);
        Checkpoint { path, key, stage, every, last_save: Mutex::new(Instant::now()), reporter, cost }
    }

    /// Whether the stage should save now: an interval of work has passed since it started or last
    /// saved, or the process was asked to stop (which saves even where no interval is set).
    pub fn due(&self) -> bool {
        let elapsed = || self.last_save.lock().expect("checkpoint clock").elapsed();
        let due = interrupted() || self.every.is_some_and(|every| elapsed() >= every);
        self.cost.due(due);
        due
    }

    /// The saved state, if a checkpoint for this stage's key is there and whole. One that is not
    /// is removed, with a line saying so, and the stage starts over.
    pub fn load(&self) -> Option<Vec<u8>> {
        let bytes = std::fs::read(&self.path).ok()?;
        match self.parse(&bytes) {
            Ok(payload) => Some(payload.to_vec()),
            Err(why) => {
                self.reporter.line(&format!("[checkpoint]  {}: not resumed from, {why:#}; starting over", self.stage));
                let _ = std::fs::remove_file(&self.path);
                None
            }
        }
    }

    fn parse<'b>(&self, bytes: &'b [u8]) -> Result<&'b [u8]> {
        let mut lines = bytes.splitn(4, |&b| b == b'\n');
        let mut field = || lines.next().and_then(|l| std::str::from_utf8(l).ok()).unwrap_or("");
        let (magic, key, hash) = (field(), field(), field());
        if magic != MAGIC {
            bail!("it is not a checkpoint of this version");
        }
        if key != self.key {
            bail!("it belongs to another key");
        }
        let header = MAGIC.len() + key.len() + hash.len() + 3;
        let payload = bytes.get(header..).unwrap_or_default();
        if super::hash_bytes(payload) != hash {
            bail!("its content does not match its hash (torn or altered)");
        }
        Ok(payload)
    }

    /// Says how the stage resumes (for example "at epoch 7 of 15").
    pub fn resumed(&self, position: &str) {
        self.reporter.line(&format!("[resumed]  {}: {position}", self.stage));
    }

    /// Saves `payload` atomically, replacing the previous checkpoint. Returns [`Interrupted`] when
    /// the process was asked to stop: the stage propagates it and ends.
    pub fn save(&self, payload: &[u8]) -> Result<()> {
        let mut bytes = format!("{MAGIC}\n{}\n{}\n", self.key, super::hash_bytes(payload)).into_bytes();
        bytes.extend_from_slice(payload);
        // Unsynced: a power cut may tear the file, which its hash then shows.
        atomic::write_unsynced(&self.path, &bytes)
            .with_context(|| format!("cannot write the checkpoint {}", self.path.display()))?;
        *self.last_save.lock().expect("checkpoint clock") = Instant::now();
        self.cost.saved(bytes.len());
        if interrupted() {
            return Err(Interrupted.into());
        }
        Ok(())
    }
}

/// What saving cost one execution (a stage, or a fused batch whose members save together): a
/// round runs from the step that found a save due to the last file written before the next step.
#[derive(Default)]
pub struct Cost(Mutex<Rounds>);

#[derive(Default)]
struct Rounds {
    rounds: u32,
    files: u32,
    bytes: u64,
    seconds: f64,
    /// The open round: when it started, and when its last file was written (if one was).
    open: Option<(Instant, Option<Instant>)>,
}

impl Cost {
    /// A step asks whether to save: the previous round, if any, ended with its last file.
    fn due(&self, due: bool) {
        let mut r = self.0.lock().expect("checkpoint cost");
        r.close();
        if due {
            r.open = Some((Instant::now(), None));
        }
    }

    fn saved(&self, bytes: usize) {
        let mut r = self.0.lock().expect("checkpoint cost");
        let now = Instant::now();
        r.open = Some((r.open.map_or(now, |(start, _)| start), Some(now)));
        r.files += 1;
        r.bytes += bytes as u64;
    }

    /// "N checkpoint(s) of S MB, T ms each" (per round; with the files per round for a batch),
    /// or `None` when nothing was saved.
    pub fn summary(&self) -> Option<String> {
        let mut r = self.0.lock().expect("checkpoint cost");
        r.close();
        let n = r.rounds.max(1);
        let files = match r.files / n {
            1 => String::new(),
            f => format!(" in {f} files"),
        };
        (r.rounds > 0).then(|| {
            format!(
                "{} checkpoint(s) of {:.2} MB{files}, {:.1} ms each",
                r.rounds,
                r.bytes as f64 / n as f64 / 1e6,
                r.seconds * 1e3 / n as f64
            )
        })
    }
}

impl Rounds {
    /// Counts the open round if it saved anything (a due step may save nothing, as a batch's
    /// last step).
    fn close(&mut self) {
        if let Some((start, Some(end))) = self.open.take() {
            self.rounds += 1;
            self.seconds += (end - start).as_secs_f64();
        }
    }
}

/// Whether a checkpoint for `key` is there (whole or not: a run checks it before resuming).
pub fn exists(cache: &Path, key: &str) -> bool {
    dir(cache).join(key).is_file()
}

/// Deletes the checkpoint of a committed stage key (it has nothing left to resume).
pub fn remove(cache: &Path, key: &str) {
    let _ = std::fs::remove_file(dir(cache).join(key));
}

/// Removes the checkpoints whose key is not in `resumable`, and half-written ones this host left.
/// Returns how many files went and their bytes.
pub fn remove_orphans(cache: &Path, resumable: &std::collections::HashSet<String>) -> Result<(usize, u64)> {
    let Ok(entries) = std::fs::read_dir(dir(cache)) else { return Ok((0, 0)) };
    let (mut removed, mut bytes) = (0, 0);
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if resumable.contains(&name) {
            continue;
        }
        // Another host's temporary may be a save in flight (a cluster job on a shared cache).
        if name.starts_with('.') && !name.contains(&atomic::temp_marker()) {
            continue;
        }
        bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
        std::fs::remove_file(entry.path())
            .with_context(|| format!("cannot remove the checkpoint {}", entry.path().display()))?;
        removed += 1;
    }
    Ok((removed, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint<'a>(cache: &Path, key: &str, reporter: &'a Reporter, cost: &'a Cost) -> Checkpoint<'a> {
        Checkpoint::new((cache, key.into()), "exp.train[seed=1]", Some(Duration::from_secs(3600)), (reporter, cost))
    }

    #[test]
    fn a_saved_state_loads_back_under_its_key_only() {
        let cache = tempfile::tempdir().unwrap();
        let (reporter, cost) = (Reporter::new(), Cost::default());
        let mine = checkpoint(cache.path(), "aaaa", &reporter, &cost);
        assert_eq!(mine.load(), None);
        mine.save(b"epoch 3\nweights\0\x01").unwrap();
        mine.save(b"epoch 4\nweights\0\x02").unwrap();
        assert_eq!(mine.load().as_deref(), Some(&b"epoch 4\nweights\0\x02"[..]));
        // A file under one key is never resumed by another key's stage.
        std::fs::copy(dir(cache.path()).join("aaaa"), dir(cache.path()).join("bbbb")).unwrap();
        assert_eq!(checkpoint(cache.path(), "bbbb", &reporter, &cost).load(), None);
        assert!(!dir(cache.path()).join("bbbb").exists(), "set aside");
        remove(cache.path(), "aaaa");
        assert_eq!(mine.load(), None);
    }

    #[test]
    fn a_torn_or_altered_checkpoint_is_not_resumed_from() {
        let cache = tempfile::tempdir().unwrap();
        let (reporter, cost) = (Reporter::new(), Cost::default());
        let mine = checkpoint(cache.path(), "cccc", &reporter, &cost);
        let path = dir(cache.path()).join("cccc");
        mine.save(&[7u8; 1000]).unwrap();
        let whole = std::fs::read(&path).unwrap();
        for damaged in [whole[..whole.len() - 1].to_vec(), whole[..10].to_vec(), Vec::new(), {
            let mut flipped = whole.clone();
            *flipped.last_mut().unwrap() ^= 1;
            flipped
        }] {
            std::fs::write(&path, &damaged).unwrap();
            assert_eq!(mine.load(), None, "{} bytes", damaged.len());
            assert!(!path.exists());
        }
    }

    #[test]
    fn due_after_the_interval_never_without_one() {
        let cache = tempfile::tempdir().unwrap();
        let (reporter, cost) = (Reporter::new(), Cost::default());
        let every = |ms| Some(Duration::from_millis(ms));
        let soon = Checkpoint::new((cache.path(), "d".into()), "s", every(30), (&reporter, &cost));
        let other = Checkpoint::new((cache.path(), "e".into()), "s", every(30), (&reporter, &cost));
        assert!(!soon.due());
        assert_eq!(cost.summary(), None, "nothing saved yet");
        std::thread::sleep(Duration::from_millis(40));
        assert!(soon.due());
        // One round: the batch's two members, saved together.
        soon.save(b"x").unwrap();
        other.save(b"yy").unwrap();
        assert!(!soon.due(), "the interval restarts at a save");
        let summary = cost.summary().unwrap();
        assert!(summary.starts_with("1 checkpoint(s) of 0.00 MB in 2 files, "), "{summary}");
        let never = Checkpoint::new((cache.path(), "f".into()), "s", None, (&reporter, &cost));
        std::thread::sleep(Duration::from_millis(40));
        assert!(!never.due());
    }

    #[test]
    fn orphans_go_resumable_ones_stay() {
        let cache = tempfile::tempdir().unwrap();
        let (reporter, cost) = (Reporter::new(), Cost::default());
        for key in ["keep", "orphan"] {
            checkpoint(cache.path(), key, &reporter, &cost).save(b"state").unwrap();
        }
        let foreign = dir(cache.path()).join(".keep.tmp.othernode.1.0");
        std::fs::write(&foreign, b"in flight").unwrap();
        let resumable = ["keep".to_string()].into_iter().collect();
        let (removed, bytes) = remove_orphans(cache.path(), &resumable).unwrap();
        assert_eq!(removed, 1);
        assert!(bytes > 5);
        assert!(dir(cache.path()).join("keep").exists() && foreign.exists());
        assert!(!dir(cache.path()).join("orphan").exists());
    }
}
