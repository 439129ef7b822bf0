//! A remote store behind the local one: an S3-compatible service (`s3://bucket/prefix`), an HTTP
//! server that speaks GET/PUT/HEAD as WebDAV servers and Bazel's HTTP cache do
//! (`http(s)://host/path`), or a directory (`file:///mnt/share/cache`).
//!
//! Under the URL's prefix the layout mirrors the local store: `objects/ab/cdef…` (immutable, named
//! by their blake3) and `records/<key>.json`, each record in an [`envelope`] that may carry an
//! HMAC. Publishing goes objects first, record last, so a record on the remote names only objects
//! that are there; a push cut short leaves objects nobody points at, never a record without its
//! objects. Everything fetched is re-hashed before use, and a record is committed locally only when
//! every one of its objects verified.
//!
//! The remote is never part of a key: it only answers "who already computed this key".

pub mod envelope;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use object_store::path::Path as RemotePath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

pub use envelope::Refusal;

use super::hash_bytes;
use super::progress;
use super::store::{Record, Store};

/// Where the remote is and how to talk to it.
#[derive(Clone, Debug)]
pub struct RemoteSpec {
    /// `s3://bucket/prefix`, `http(s)://host/path` or `file:///path`.
    pub url: String,
    /// S3: a service other than AWS (MinIO, moto, Ceph...); also read from `AWS_ENDPOINT_URL`.
    pub endpoint: Option<String>,
    /// S3: the region (also `AWS_REGION` / `AWS_DEFAULT_REGION`).
    pub region: Option<String>,
    /// S3: credentials, when not in the environment's `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub credentials: Option<(String, String)>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Per request, and to establish a connection.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries of a failed request (with exponential backoff), within `retry_window`.
    pub retries: usize,
    pub retry_window: Duration,
    /// Sign records on push and require valid signatures on fetch (`REPRO_REMOTE_KEY`).
    pub signing_key: Option<Vec<u8>>,
}

pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: RemotePath,
    runtime: tokio::runtime::Runtime,
    concurrency: usize,
    signing_key: Option<Vec<u8>>,
    /// The URL for messages, without any password it carried.
    url: String,
}

/// What the remote said about one wanted key.
#[derive(Debug)]
pub enum Fetched {
    /// It holds no record for the key.
    Absent,
    /// Record and objects verified and committed to the local store.
    Served(Box<Record>),
    /// It holds a record that is not used, for this reason.
    Refused(Refusal),
}

/// What a push did.
#[derive(Debug, Default)]
pub struct PushReport {
    /// Records published now, and records the remote already had.
    pub published: usize,
    pub already_there: usize,
    /// Objects uploaded (those the remote lacked), and their bytes.
    pub objects: usize,
    pub bytes: u64,
    /// Stage -> why its record was not published (its objects may be there).
    pub failed: Vec<(String, String)>,
}

impl Remote {
    pub fn open(spec: &RemoteSpec) -> Result<Remote> {
        let url = url::Url::parse(&spec.url).with_context(|| format!("remote url `{}` is not a URL", spec.url))?;
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: spec.retries,
            retry_timeout: spec.retry_window,
        };
        let client = ClientOptions::new()
            .with_timeout(spec.timeout)
            .with_connect_timeout(spec.connect_timeout)
            .with_allow_http(true);
        let (store, prefix): (Arc<dyn ObjectStore>, &str) = match url.scheme() {
            "s3" => {
                let bucket =
                    url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| anyhow!("`{url}` names no bucket"))?;
                let mut builder = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry)
                    .with_client_options(client);
                if let Some(endpoint) = &spec.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some(region) = &spec.region {
                    builder = builder.with_region(region);
                }
                if let Some((id, secret)) = &spec.credentials {
                    builder = builder.with_access_key_id(id).with_secret_access_key(secret);
                }
                (Arc::new(builder.build().with_context(|| format!("cannot set up the S3 remote {url}"))?), url.path())
            }
            "http" | "https" => {
                let base = &url[..url::Position::BeforePath];
                let store = object_store::http::HttpBuilder::new()
                    .with_url(base)
                    .with_retry(retry)
                    .with_client_options(client)
                    .build()
                    .with_context(|| format!("cannot set up the HTTP remote {url}"))?;
                (Arc::new(store), url.path())
            }
            "file" => {
                let dir = url.to_file_path().map_err(|()| anyhow!("`{url}` is not a local path"))?;
                std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the remote {}", dir.display()))?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .with_context(|| format!("cannot open the remote {}", dir.display()))?;
                (Arc::new(store), "")
            }
            other => bail!("remote url `{url}`: scheme `{other}` is not one of s3, http, https, file"),
        };
        let prefix = RemotePath::parse(prefix.trim_matches('/'))
            .with_context(|| format!("remote url `{url}`: the path is not a valid prefix"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("remote")
            .enable_all()
            .build()
            .context("cannot start the remote's I/O threads")?;
        Ok(Remote {
            store,
            prefix,
            runtime,
            concurrency: spec.concurrency.max(1),
            signing_key: spec.signing_key.clone(),
            url: shown(&url),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Said once per command when records are neither signed nor checked.
    pub fn unsigned_note(&self) -> Option<String> {
        self.signing_key.is_none().then(|| {
            format!(
                "note: remote {} is used unsigned (records are trusted as found; set REPRO_REMOTE_KEY to sign and check them)",
                self.url
            )
        })
    }

    fn record_path(&self, key: &str) -> RemotePath {
        self.prefix.clone().join("records").join(format!("{key}.json"))
    }

    fn object_path(&self, hash: &str) -> RemotePath {
        self.prefix.clone().join("objects").join(&hash[..2]).join(&hash[2..])
    }

    /// The bytes at `path`, `None` when there is nothing there.
    async fn get(&self, path: &RemotePath) -> Result<Option<Vec<u8>>> {
        match self.store.get(path).await {
            Ok(found) => {
                let bytes = found.bytes().await.with_context(|| format!("reading {path} from {}", self.url))?;
                Ok(Some(Vec::from(bytes)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(anyhow!(e).context(format!("cannot read {path} from {}", self.url))),
        }
    }

    /// The size of the object at `path`, `None` when there is nothing there.
    async fn size(&self, path: &RemotePath) -> Result<Option<u64>> {
        match self.store.head(path).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(anyhow!(e).context(format!("cannot ask {} for {path}", self.url))),
        }
    }

    async fn put(&self, path: &RemotePath, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put(path, PutPayload::from(bytes))
            .await
            .map(drop)
            .with_context(|| format!("cannot write {path} to {}", self.url))
    }

    /// The records the remote holds for `keys` (signature and key checked; objects not fetched).
    /// An error is the remote failing to answer, not a missing record.
    pub fn records(&self, keys: &[String]) -> Vec<Result<Option<Result<Record, Refusal>>>> {
        self.runtime.block_on(self.records_async(keys))
    }

    async fn records_async(&self, keys: &[String]) -> Vec<Result<Option<Result<Record, Refusal>>>> {
        let key = self.signing_key.as_deref();
        futures::stream::iter(keys)
            .map(|k| async move {
                let bytes = self.get(&self.record_path(k)).await?;
                Ok(bytes.map(|b| envelope::open(&b, k, key)))
            })
            .buffered(self.concurrency)
            .collect()
            .await
    }

    /// Fetches the records of `keys` and their objects into `store`: one answer per key.
    pub fn fetch(&self, store: &Store, keys: &[String]) -> Vec<Result<Fetched>> {
        self.runtime.block_on(async {
            let found = self.records_async(keys).await;
            // Every object the found records need that the local store lacks, each fetched once.
            let mut wanted: BTreeSet<String> = BTreeSet::new();
            for record in found.iter().filter_map(|f| f.as_ref().ok()?.as_ref()?.as_ref().ok()) {
                let missing = record.outputs.values().filter(|o| !store.object_is_intact(&o.hash));
                wanted.extend(missing.map(|o| o.hash.clone()));
            }
            let bar = progress::transfer_bar("pull", wanted.len() as u64);
            let objects: HashMap<String, Result<ObjectFetch>> = futures::stream::iter(wanted)
                .map(|hash| {
                    let bar = &bar;
                    async move {
                        let fetched = self.fetch_object(store, &hash).await;
                        bar.inc(1);
                        (hash, fetched)
                    }
                })
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
            bar.finish_and_clear();
            found
                .into_iter()
                .map(|answer| {
                    let record = match answer? {
                        None => return Ok(Fetched::Absent),
                        Some(Err(refusal)) => return Ok(Fetched::Refused(refusal)),
                        Some(Ok(record)) => record,
                    };
                    for (output, obj) in &record.outputs {
                        let (output, hash) = (output.clone(), obj.hash.clone());
                        match objects.get(obj.hash.as_str()) {
                            None | Some(Ok(ObjectFetch::Stored)) => {}
                            Some(Ok(ObjectFetch::Missing)) => {
                                return Ok(Fetched::Refused(Refusal::MissingObject { output, hash }));
                            }
                            Some(Ok(ObjectFetch::Corrupt)) => {
                                return Ok(Fetched::Refused(Refusal::CorruptObject { output, hash }));
                            }
                            Some(Err(e)) => return Err(anyhow!("{e:#}")),
                        }
                    }
                    store.commit(&record)?;
                    Ok(Fetched::Served(Box::new(record)))
                })
                .collect()
        })
    }

    async fn fetch_object(&self, store: &Store, hash: &str) -> Result<ObjectFetch> {
        let Some(bytes) = self.get(&self.object_path(hash)).await? else {
            return Ok(ObjectFetch::Missing);
        };
        if hash_bytes(&bytes) != hash {
            return Ok(ObjectFetch::Corrupt);
        }
        store.put_bytes(&bytes)?;
        Ok(ObjectFetch::Stored)
    }

    /// Publishes `records` (complete in `store`) that the remote lacks: their missing objects
    /// first, in parallel, then each record whose objects all arrived. Records whose keys are in
    /// `repair` (the remote's copy named damaged objects) are published again, every object
    /// uploaded whatever the remote says it has.
    pub fn push(&self, store: &Store, records: &[Record], repair: &BTreeSet<String>) -> PushReport {
        self.runtime.block_on(self.push_async(store, records, repair))
    }

    async fn push_async(&self, store: &Store, records: &[Record], repair: &BTreeSet<String>) -> PushReport {
        let mut report = PushReport::default();
        let present: Vec<Result<Option<u64>>> = futures::stream::iter(records)
            .map(|r| async move {
                if repair.contains(&r.key) {
                    return Ok(None);
                }
                self.size(&self.record_path(&r.key)).await
            })
            .buffered(self.concurrency)
            .collect()
            .await;
        let mut lacking = Vec::new();
        for (record, present) in records.iter().zip(present) {
            match present {
                Ok(Some(_)) => report.already_there += 1,
                Ok(None) => match store.check(record) {
                    // Never publish what does not verify here.
                    Some(damage) => report.failed.push((record.stage.clone(), format!("not pushed: {damage}"))),
                    None => lacking.push(record),
                },
                Err(e) => report.failed.push((record.stage.clone(), format!("{e:#}"))),
            }
        }
        let forced: BTreeSet<&str> = lacking
            .iter()
            .filter(|r| repair.contains(&r.key))
            .flat_map(|r| r.outputs.values().map(|o| o.hash.as_str()))
            .collect();
        let objects: BTreeMap<&str, u64> =
            lacking.iter().flat_map(|r| r.outputs.values().map(|o| (o.hash.as_str(), o.size))).collect();
        let forced = &forced;
        let bar = progress::transfer_bar("push", objects.len() as u64);
        let uploads: HashMap<&str, Result<Option<u64>>> = futures::stream::iter(objects)
            .map(|(hash, size)| {
                let bar = &bar;
                async move {
                    let uploaded = self.upload_object(store, hash, size, forced.contains(hash)).await;
                    bar.inc(1);
                    (hash, uploaded)
                }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        bar.finish_and_clear();
        for uploaded in uploads.values().flatten().flatten() {
            report.objects += 1;
            report.bytes += uploaded;
        }
        let key = self.signing_key.as_deref();
        let uploads = &uploads;
        let publish = lacking.iter().map(|&record| async move {
            let failed = record.outputs.values().find_map(|o| uploads[o.hash.as_str()].as_ref().err());
            if let Some(e) = failed {
                bail!("not published, an object failed to upload: {e:#}");
            }
            self.put(&self.record_path(&record.key), envelope::seal(record, key)?).await
        });
        let published: Vec<Result<()>> = futures::stream::iter(publish).buffered(self.concurrency).collect().await;
        for (record, outcome) in lacking.iter().zip(published) {
            match outcome {
                Ok(()) => report.published += 1,
                Err(e) => report.failed.push((record.stage.clone(), format!("{e:#}"))),
            }
        }
        report
    }

    /// Uploads one object unless the remote has it at its full size (or `always`); the bytes
    /// sent, if any.
    async fn upload_object(&self, store: &Store, hash: &str, size: u64, always: bool) -> Result<Option<u64>> {
        let path = self.object_path(hash);
        // A size that differs is a partial or foreign object: replace it.
        if !always && self.size(&path).await? == Some(size) {
            return Ok(None);
        }
        let local = store.object_path(hash);
        let bytes = std::fs::read(&local).with_context(|| format!("cannot read {}", local.display()))?;
        self.put(&path, bytes).await?;
        Ok(Some(size))
    }
}

/// `url` for messages: a password in it (`https://user:secret@host/`) is masked.
fn shown(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// What fetching one object did.
#[derive(Debug)]
enum ObjectFetch {
    Stored,
    Missing,
    Corrupt,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_never_reaches_a_message() {
        let url = url::Url::parse("https://ci:hunter2@cache.example.org/repro").unwrap();
        assert_eq!(shown(&url), "https://ci:***@cache.example.org/repro");
        let plain = url::Url::parse("s3://bucket/prefix").unwrap();
        assert_eq!(shown(&plain), "s3://bucket/prefix");
    }
}
