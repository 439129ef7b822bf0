//! The MNIST files as a stage (`mnist.fetch`), and how a stage reads them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::data::mnist as mnist_files;
use crate::data::mnist::{FetchOptions, MnistSource, Split};
use crate::engine::{Stage, StageContext, StageKind};

static MNIST_FETCH: StageKind = StageKind::plain("mnist.fetch", fetch_mnist);

/// The MNIST files as a stage: fetched (or found) in `data/mnist/`, verified, then stored, so that
/// every experiment reads the same verified bytes and their keys depend on them.
pub struct MnistInputs {
    /// The `mnist.fetch` stage (added to the graph when an experiment reads MNIST).
    pub fetch: Stage,
}

#[derive(Serialize, Deserialize)]
struct FetchParams {
    /// (name, SHA-256 of the uncompressed file): the content, hence the key.
    files: Vec<(String, String)>,
}

impl MnistInputs {
    pub fn new(source: &MnistSource) -> MnistInputs {
        let files = mnist_files::FILES.iter().map(|f| (f.name.to_string(), f.sha256.to_string())).collect();
        MnistInputs { fetch: Stage::new(&MNIST_FETCH, &[], &FetchParams { files }).unkeyed(source) }
    }

    /// `stage` with the four files as inputs, named as on the mirrors.
    pub fn feed(&self, stage: Stage) -> Stage {
        mnist_files::FILES.iter().fold(stage, |s, f| s.input(f.name, &self.fetch, f.name))
    }

    /// The training and test splits of a stage fed by [`MnistInputs::feed`]. Every stage of the
    /// process shares one copy of each (see [`LoadedSplits`]).
    pub fn load(ctx: &StageContext) -> Result<(Split, Split)> {
        let train =
            LOADED.get(ctx.input(mnist_files::TRAIN_IMAGES.name)?, ctx.input(mnist_files::TRAIN_LABELS.name)?)?;
        let test = LOADED.get(ctx.input(mnist_files::TEST_IMAGES.name)?, ctx.input(mnist_files::TEST_LABELS.name)?)?;
        Ok((train, test))
    }
}

static LOADED: LoadedSplits = LoadedSplits::new();

/// The splits this process has read, by their two files. A run's MNIST stages (some twenty-five
/// in the default study, two at a time) would otherwise each parse 55 M pixels into 220 MB of
/// fresh memory and pay its page faults (system time measured in bench/results/compare-2026-12-02/). Inputs are
/// store objects, immutable and named by their content, so a path always holds the same split.
/// The last few splits are kept: a run reads one training and one test split.
struct LoadedSplits {
    entries: Mutex<Vec<(SplitFiles, SplitSlot)>>,
}

/// A split's images and labels files.
type SplitFiles = (PathBuf, PathBuf);
/// A split once read; locked while it is read, so that stages asking at once read it once.
type SplitSlot = Arc<Mutex<Option<Split>>>;

impl LoadedSplits {
    const KEPT: usize = 4;

    const fn new() -> LoadedSplits {
        LoadedSplits { entries: Mutex::new(Vec::new()) }
    }

    fn get(&self, images: &Path, labels: &Path) -> Result<Split> {
        let key = (images.to_path_buf(), labels.to_path_buf());
        let slot = {
            let mut entries = self.entries.lock().expect("loaded splits");
            let slot = match entries.iter().position(|(k, _)| *k == key) {
                Some(i) => entries.remove(i).1,
                None => Arc::default(),
            };
            // Most recently used last; the oldest goes first.
            entries.push((key, slot.clone()));
            if entries.len() > Self::KEPT {
                entries.remove(0);
            }
            slot
        };
        // Held while loading: a second stage asking for the same split waits for this one's.
        let mut split = slot.lock().expect("loaded split");
        if split.is_none() {
            *split = Some(mnist_files::load_split(images, labels)?);
        }
        Ok(split.clone().expect("just loaded"))
    }
}

fn fetch_mnist(ctx: &StageContext) -> Result<()> {
    let source: MnistSource = ctx.unkeyed()?;
    let opts = FetchOptions {
        timeout: std::time::Duration::from_secs(source.timeout_s),
        attempts: source.attempts,
        ..FetchOptions::default()
    };
    let mirrors = mnist_files::with_env_mirror(&source.mirrors);
    let paths = mnist_files::ensure_all(&ctx.data_dir.join("mnist"), &mirrors, &opts)?;
    for (file, path) in mnist_files::FILES.iter().zip(paths) {
        std::fs::copy(&path, ctx.output(file.name)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx;
    use crate::data::mnist::PIXELS;

    fn write_split(dir: &Path, name: &str, labels: &[u8]) -> (PathBuf, PathBuf) {
        let images: Vec<u8> = (0..labels.len() * PIXELS).map(|i| (i % 251) as u8).collect();
        let paths = (dir.join(format!("{name}-images")), dir.join(format!("{name}-labels")));
        std::fs::write(&paths.0, idx::encode(&[labels.len(), 28, 28], &images)).unwrap();
        std::fs::write(&paths.1, idx::encode(&[labels.len()], labels)).unwrap();
        paths
    }

    /// A split asked for again is the one already read (the same pixels in memory), other files
    /// are read on their own, a failed read is not kept, and only the last few splits stay.
    #[test]
    fn a_split_is_read_once_per_process() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = LoadedSplits::new();
        let (a_images, a_labels) = write_split(dir.path(), "a", &[1, 2, 3]);
        let (b_images, b_labels) = write_split(dir.path(), "b", &[4, 5]);
        let first = loaded.get(&a_images, &a_labels).unwrap();
        let again = loaded.get(&a_images, &a_labels).unwrap();
        assert_eq!(first.images().as_ptr(), again.images().as_ptr());
        let other = loaded.get(&b_images, &b_labels).unwrap();
        assert_eq!(other.labels(), [4, 5]);
        assert_ne!(other.images().as_ptr(), first.images().as_ptr());

        let missing = dir.path().join("missing");
        assert!(loaded.get(&missing, &a_labels).is_err());
        std::fs::copy(&a_images, &missing).unwrap();
        assert_eq!(loaded.get(&missing, &a_labels).unwrap().labels(), [1, 2, 3], "a failure is retried");

        for i in 0..LoadedSplits::KEPT {
            let (images, labels) = write_split(dir.path(), &format!("c{i}"), &[i as u8]);
            loaded.get(&images, &labels).unwrap();
        }
        let reread = loaded.get(&a_images, &a_labels).unwrap();
        assert_ne!(reread.images().as_ptr(), first.images().as_ptr(), "the oldest split was let go");
        assert_eq!(reread.images(), first.images());
    }
}
