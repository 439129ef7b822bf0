//! The MNIST files as a stage (`mnist.fetch`), and how a stage reads them.

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

    /// The training and test splits of a stage fed by [`MnistInputs::feed`].
    pub fn load(ctx: &StageContext) -> Result<(Split, Split)> {
        let train = mnist_files::load_split(
            ctx.input(mnist_files::TRAIN_IMAGES.name)?,
            ctx.input(mnist_files::TRAIN_LABELS.name)?,
        )?;
        let test = mnist_files::load_split(
            ctx.input(mnist_files::TEST_IMAGES.name)?,
            ctx.input(mnist_files::TEST_LABELS.name)?,
        )?;
        Ok((train, test))
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
