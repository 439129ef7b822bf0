//! MNIST: fetch the four canonical IDX files, verify them, load them as [0, 1] pixels.
//!
//! Fetching tries, in order: files placed by hand in the data directory (`*.gz` or unpacked), the
//! `MNIST_MIRROR` environment variable (a URL or a local directory), then the configured mirrors.
//! A download is written to a temporary name, decompressed, checked against the SHA-256 of the
//! uncompressed file, and only then renamed into place, so a bad file is never where a good one
//! is expected. When every source fails, the error lists each one and why.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use flate2::read::GzDecoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::idx;

/// One of the four files, named as on the mirrors (without `.gz`).
#[derive(Clone, Copy, Debug)]
pub struct MnistFile {
    pub name: &'static str,
    /// SHA-256 of the uncompressed file.
    pub sha256: &'static str,
}

pub const TRAIN_IMAGES: MnistFile = MnistFile {
    name: "train-images-idx3-ubyte",
    sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
};
pub const TRAIN_LABELS: MnistFile = MnistFile {
    name: "train-labels-idx1-ubyte",
    sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
};
pub const TEST_IMAGES: MnistFile = MnistFile {
    name: "t10k-images-idx3-ubyte",
    sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
};
pub const TEST_LABELS: MnistFile = MnistFile {
    name: "t10k-labels-idx1-ubyte",
    sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
};
pub const FILES: [MnistFile; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// The public HTTP mirrors that host the canonical `*-idx?-ubyte.gz` files.
pub fn default_mirrors() -> Vec<String> {
    vec![
        "https://ossci-datasets.s3.amazonaws.com/mnist/".into(),
        "https://storage.googleapis.com/cvdf-datasets/mnist/".into(),
        "http://yann.lecun.com/exdb/mnist/".into(),
    ]
}

/// How hard to try each HTTP mirror.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    pub timeout: Duration,
    pub attempts: usize,
    pub backoff: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions { timeout: Duration::from_secs(60), attempts: 3, backoff: Duration::from_secs(1) }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `mirrors` with the `MNIST_MIRROR` environment variable (a URL or a directory) in front, if set.
pub fn with_env_mirror(mirrors: &[String]) -> Vec<String> {
    let env = std::env::var("MNIST_MIRROR").ok().map(|m| m.trim().to_string()).filter(|m| !m.is_empty());
    env.into_iter().chain(mirrors.iter().cloned()).collect()
}

/// Makes sure `dir/<name>` holds each verified, uncompressed file; returns their paths.
pub fn ensure_all(dir: &Path, mirrors: &[String], opts: &FetchOptions) -> Result<Vec<PathBuf>> {
    FILES.iter().map(|f| ensure(dir, f, mirrors, opts)).collect()
}

/// Makes sure `dir/<file.name>` exists with the right checksum, fetching it if needed: from a file
/// placed by hand in `dir` (`.gz` or not), else from `mirrors` in order (URLs or directories).
pub fn ensure(dir: &Path, file: &MnistFile, mirrors: &[String], opts: &FetchOptions) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Writes killed half-way (tens of MB each); the folder may be shared by workspaces.
    let _ = crate::engine::store::remove_temporaries(dir);
    let dest = dir.join(file.name);
    if let Ok(bytes) = std::fs::read(&dest) {
        if sha256_hex(&bytes) == file.sha256 {
            return Ok(dest);
        }
        // Never leave a bad file where a good one is expected.
        std::fs::remove_file(&dest).with_context(|| format!("cannot remove the corrupt {}", dest.display()))?;
    }
    let sources: Vec<String> = std::iter::once(dir.display().to_string()).chain(mirrors.iter().cloned()).collect();
    let mut failures = Vec::new();
    for source in &sources {
        match fetch_from(source, file, &dest, opts) {
            Ok(()) => return Ok(dest),
            Err(e) => failures.push(format!("  {source}: {e:#}")),
        }
    }
    Err(anyhow!(
        "cannot obtain MNIST file {} from any source:\n{}\n\
         To place it by hand, download {}.gz from any MNIST mirror into {} (compressed or not; it is \
         verified against SHA-256 {}), or set MNIST_MIRROR to a URL or a directory holding the files.",
        file.name,
        failures.join("\n"),
        file.name,
        dir.display(),
        file.sha256
    ))
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// Fetches `file` from one source into `dest` (verified), or says why not.
fn fetch_from(source: &str, file: &MnistFile, dest: &Path, opts: &FetchOptions) -> Result<()> {
    let raw = if is_url(source) {
        let url = format!("{}/{}.gz", source.trim_end_matches('/'), file.name);
        download(&url, opts)?
    } else {
        let dir = Path::new(source);
        let gz = dir.join(format!("{}.gz", file.name));
        let plain = dir.join(file.name);
        if gz.is_file() {
            std::fs::read(&gz).with_context(|| format!("cannot read {}", gz.display()))?
        } else if plain.is_file() && plain != dest {
            std::fs::read(&plain).with_context(|| format!("cannot read {}", plain.display()))?
        } else {
            bail!("no {}.gz there", file.name);
        }
    };
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(&raw[..]).read_to_end(&mut out).context("the gzip stream is damaged or cut short")?;
        out
    } else {
        raw
    };
    let got = sha256_hex(&bytes);
    if got != file.sha256 {
        bail!("checksum mismatch: SHA-256 {got}, expected {}", file.sha256);
    }
    idx::parse(&bytes, file.name)?;
    crate::engine::atomic::write(dest, &bytes).with_context(|| format!("cannot write {}", dest.display()))
}

/// GET with a timeout, retried `attempts` times with a growing pause.
fn download(url: &str, opts: &FetchOptions) -> Result<Vec<u8>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(opts.timeout))
        .timeout_connect(Some(opts.timeout.min(Duration::from_secs(15))))
        .build()
        .into();
    let mut last = None;
    for attempt in 0..opts.attempts.max(1) {
        if attempt > 0 {
            std::thread::sleep(opts.backoff * attempt as u32);
        }
        let result = (|| -> Result<Vec<u8>> {
            let mut response = agent.get(url).call()?;
            let expected = response.body().content_length();
            let mut bytes = Vec::new();
            response.body_mut().with_config().limit(256 << 20).reader().read_to_end(&mut bytes)?;
            if let Some(n) = expected
                && bytes.len() as u64 != n
            {
                bail!("download cut short: {} of {n} bytes", bytes.len());
            }
            Ok(bytes)
        })();
        match result {
            Ok(bytes) => return Ok(bytes),
            // A 404 will not change on retry.
            Err(e) if e.downcast_ref::<ureq::Error>().is_some_and(|u| matches!(u, ureq::Error::StatusCode(404))) => {
                return Err(e.context(format!("GET {url}")));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap().context(format!("GET {url} failed after {} attempt(s)", opts.attempts.max(1))))
}

/// One split, pixels scaled to [0, 1] (`ToTensor()`, no normalisation), images flattened row-major.
/// Cloning and [`Split::head`] share the pixels instead of copying them: a split is 188 MB of
/// pixels that every MNIST stage of a run reads (see [`Split::image_bytes`]).
#[derive(Clone, Debug)]
pub struct Split {
    /// At least `labels.len()` images; the split is the first `labels.len()` of them.
    pixels: Arc<[f32]>,
    labels: Vec<u8>,
}

impl Split {
    /// Panics unless there are `PIXELS` pixels per label. (A `Vec` is copied into its shared
    /// buffer; pixels collected straight into an `Arc<[f32]>` are not.)
    pub fn new(images: impl Into<Arc<[f32]>>, labels: Vec<u8>) -> Split {
        let pixels = images.into();
        assert_eq!(pixels.len(), labels.len() * PIXELS, "{PIXELS} pixels per label");
        Split { pixels, labels }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images, `PIXELS` values each.
    pub fn images(&self) -> &[f32] {
        &self.pixels[..self.len() * PIXELS]
    }

    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The first `n` examples (all when `n` is larger), sharing the pixels.
    pub fn head(mut self, n: usize) -> Split {
        self.labels.truncate(n);
        self
    }

    /// The same images with other labels (one per image).
    pub fn relabeled(self, labels: Vec<u8>) -> Split {
        assert_eq!(labels.len(), self.len(), "one label per image");
        Split { labels, ..self }
    }

    /// The images' bytes (f32, native order) without a copy, for a tensor that shares them.
    pub fn image_bytes(&self) -> bytes::Bytes {
        bytes::Bytes::from_owner(PixelBytes { pixels: self.pixels.clone(), len: self.len() * PIXELS })
    }
}

/// The first `len` pixels of a split as bytes, keeping the pixels alive.
struct PixelBytes {
    pixels: Arc<[f32]>,
    len: usize,
}

impl AsRef<[u8]> for PixelBytes {
    fn as_ref(&self) -> &[u8] {
        let pixels = &self.pixels[..self.len];
        // SAFETY: any f32 is four initialised bytes, and u8 needs no alignment.
        unsafe { std::slice::from_raw_parts(pixels.as_ptr().cast::<u8>(), std::mem::size_of_val(pixels)) }
    }
}

pub const PIXELS: usize = 28 * 28;
/// Images in the canonical training split.
pub const TRAIN_IMAGES_COUNT: usize = 60_000;

/// Reads one split from its two IDX files and checks that they agree.
pub fn load_split(images: &Path, labels: &Path) -> Result<Split> {
    let image_idx = idx::parse(
        &std::fs::read(images).with_context(|| format!("cannot read {}", images.display()))?,
        &images.display().to_string(),
    )?;
    let label_idx = idx::parse(
        &std::fs::read(labels).with_context(|| format!("cannot read {}", labels.display()))?,
        &labels.display().to_string(),
    )?;
    if image_idx.dims.len() != 3 || image_idx.dims[1] != 28 || image_idx.dims[2] != 28 {
        bail!("{}: expected N x 28 x 28 images, found {:?}", images.display(), image_idx.dims);
    }
    if label_idx.dims.len() != 1 || label_idx.dims[0] != image_idx.dims[0] {
        bail!("{} has {:?} labels for {} images", labels.display(), label_idx.dims, image_idx.dims[0]);
    }
    if let Some(bad) = label_idx.data.iter().find(|&&l| l > 9) {
        bail!("{}: label {bad} is not a digit", labels.display());
    }
    // Collected straight into the split's shared buffer: the training set is 188 MB of f32, and a
    // copy of it is as many fresh pages again.
    let images: Arc<[f32]> = image_idx.data.iter().map(|&p| p as f32 / 255.0).collect();
    Ok(Split::new(images, label_idx.data))
}

/// Where MNIST comes from. None of this enters a key: the files are pinned by their SHA-256.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MnistSource {
    /// HTTP(S) base URLs or local directories holding `*-idx?-ubyte.gz`, tried in order (after
    /// files placed by hand in `data/mnist/` and the `MNIST_MIRROR` environment variable).
    pub mirrors: Vec<String>,
    pub timeout_s: u64,
    pub attempts: usize,
}

impl Default for MnistSource {
    fn default() -> Self {
        MnistSource { mirrors: default_mirrors(), timeout_s: 60, attempts: 3 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_loads_and_checks_agreement() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().to_path_buf();
        std::fs::create_dir_all(&dir).unwrap();
        let images: Vec<u8> = (0..2 * PIXELS).map(|i| (i % 256) as u8).collect();
        std::fs::write(dir.join("i"), idx::encode(&[2, 28, 28], &images)).unwrap();
        std::fs::write(dir.join("l"), idx::encode(&[2], &[3, 9])).unwrap();
        std::fs::write(dir.join("l3"), idx::encode(&[3], &[3, 9, 1])).unwrap();
        let split = load_split(&dir.join("i"), &dir.join("l")).unwrap();
        assert_eq!(split.len(), 2);
        assert_eq!(split.images()[255], 1.0);
        assert_eq!(split.images()[1], 1.0 / 255.0);
        let err = load_split(&dir.join("i"), &dir.join("l3")).unwrap_err().to_string();
        assert!(err.contains("labels for 2 images"), "{err}");
    }

    /// A head, a relabelled split and the bytes handed to tensors all read the one copy of the
    /// pixels: the same addresses, the same values.
    #[test]
    fn heads_and_tensor_bytes_share_the_pixels() {
        let images: Vec<f32> = (0..3 * PIXELS).map(|i| i as f32).collect();
        let split = Split::new(images.clone(), vec![1, 2, 3]);
        let head = split.clone().head(2).relabeled(vec![7, 7]);
        assert_eq!((head.len(), head.labels(), head.images()), (2, &[7u8, 7][..], &images[..2 * PIXELS]));
        assert_eq!(head.images().as_ptr(), split.images().as_ptr());
        let bytes = head.image_bytes();
        assert_eq!(bytes.len(), 2 * PIXELS * 4);
        assert_eq!(bytes.as_ptr(), split.images().as_ptr().cast::<u8>());
        assert_eq!(f32::from_ne_bytes(bytes[4 * 5..4 * 6].try_into().unwrap()), 5.0);
        assert_eq!(split.clone().head(9).len(), 3, "a longer head is the whole split");
    }
}
