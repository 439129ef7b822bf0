//! A remote store behind the local one: an S3-compatible service (`s3://bucket/prefix`), an HTTP
//! server that speaks GET/PUT/HEAD as WebDAV servers and Bazel's HTTP cache do
//! (`http(s)://host/path`), or a directory (`file:///mnt/share/cache`).
//!
//! Under the URL's prefix the layout mirrors the local store: `objects/ab/cdef…` (immutable, named
//! by their blake3) and `records/<key>.json`, each record in an [`envelope`] signed by its pusher.
//! Publishing goes objects first, record last, so a record on the remote names only objects
//! that are there; a push cut short leaves objects nobody points at, never a record without its
//! objects.
//!
//! Whoever can write to the remote is not trusted with the reader's machine: a record is used only
//! when a trusted key signed it ([`trust`]) and it is valid for the stage that asked
//! ([`validate`]); objects stream through the hasher into a temporary file, never more bytes than
//! the record says; every call has a timeout and yields to a stopping signal; a directory remote's
//! links, FIFOs and devices are never opened. A record is committed locally only when every one
//! of its objects verified.
//!
//! The remote is never part of a key: it only answers "who already computed this key".

pub mod envelope;
pub mod trust;
pub mod validate;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use object_store::path::Path as RemotePath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

pub use envelope::{Refusal, Signer};
pub use trust::{Authenticity, SecretKey, Trust, TrustedKey};
pub use validate::Asked;

use super::checkpoint;
use super::progress;
use super::store::{Record, Store};
use super::untrusted::is_object_hash;

/// Where the remote is and how to talk to it.
#[derive(Debug)]
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
    /// Per request (for a directory remote too), and to establish a connection.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries of a failed request (with exponential backoff), within `retry_window`.
    pub retries: usize,
    pub retry_window: Duration,
    /// What records pushed from here are signed with.
    pub signer: Signer,
    /// Which records found there are used.
    pub trust: Trust,
    /// No object larger than this is fetched.
    pub max_object_bytes: u64,
}

pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: RemotePath,
    /// `None` only once dropped: a request stuck in a blocking call must not hold up the exit.
    runtime: Option<tokio::runtime::Runtime>,
    concurrency: usize,
    timeout: Duration,
    signer: Signer,
    trust: Trust,
    max_object_bytes: u64,
    /// A directory remote's folder: every path in it is checked before it is opened.
    directory: Option<PathBuf>,
    /// Plain HTTP (an `http://` URL or S3 endpoint).
    plain_http: bool,
    /// The URL for messages, without any password it carried.
    url: String,
    /// Passwords and secret keys, masked in every message.
    secrets: Vec<String>,
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
    /// Records published now (new ones, and replacements of records no reader could use), and
    /// records the remote already had.
    pub published: usize,
    pub replaced: usize,
    pub already_there: usize,
    /// Objects uploaded (those the remote lacked), and their bytes.
    pub objects: usize,
    pub bytes: u64,
    /// Stage -> why its record was not published (its objects may be there).
    pub failed: Vec<(String, String)>,
}

/// What the remote answered for one record: an error is the remote failing to answer.
pub type RecordAnswer = Result<Option<Result<Record, Refusal>>>;

impl Remote {
    pub fn open(spec: RemoteSpec) -> Result<Remote> {
        let url =
            url::Url::parse(&spec.url).map_err(|e| anyhow!("remote url `{}` is not a URL: {e}", masked(&spec.url)))?;
        let endpoint = spec.endpoint.clone().or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        // Plain HTTP only where the URL (or the S3 endpoint) asks for it by name.
        let plain_http = match url.scheme() {
            "http" => true,
            "s3" => endpoint.as_deref().is_some_and(|e| e.starts_with("http://")),
            _ => false,
        };
        let shown_url = shown(&url);
        let (store, prefix, directory) = object_store_for(&spec, &url, plain_http)?;
        let prefix = RemotePath::parse(prefix.trim_matches('/'))
            .map_err(|_| anyhow!("remote url `{shown_url}`: the path is not a valid prefix"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("remote")
            .enable_all()
            .build()
            .context("cannot start the remote's I/O threads")?;
        Ok(Remote {
            store,
            prefix,
            runtime: Some(runtime),
            concurrency: spec.concurrency.max(1),
            timeout: spec.timeout,
            max_object_bytes: spec.max_object_bytes,
            directory,
            plain_http,
            url: shown_url,
            secrets: secrets_of(&url, &spec),
            signer: spec.signer,
            trust: spec.trust,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn max_object_bytes(&self) -> u64 {
        self.max_object_bytes
    }

    /// Said once per command when records are used without checking who published them.
    pub fn unchecked_note(&self) -> Option<String> {
        (self.trust.hmac.is_none() && !self.trust.require).then(|| {
            let http = if self.plain_http { " over plain HTTP" } else { "" };
            format!(
                "warning: remote {}{http} is used without signatures (require_signatures = false): any writer of it decides what this run takes as results",
                self.url
            )
        })
    }

    /// Why this remote cannot take records from here, if it cannot: readers require signatures
    /// and nothing here signs.
    pub fn cannot_publish(&self) -> Option<String> {
        (self.signer.key.is_none() && self.signer.hmac.is_none() && self.trust.require).then(|| {
            format!(
                "nothing signs records here (set REPRO_SIGNING_KEY; `repro keygen` makes a key), and readers of {} require signatures",
                self.url
            )
        })
    }

    /// `text` with every password and secret key masked.
    fn redact(&self, text: String) -> String {
        self.secrets.iter().fold(text, |text, secret| text.replace(secret.as_str(), "***"))
    }

    /// An error of the remote's, with its secrets masked.
    fn failure(&self, error: impl std::fmt::Display, what: String) -> anyhow::Error {
        anyhow!(self.redact(format!("{what}: {error}")))
    }

    /// Runs `work` on the remote's threads until it ends, or a signal asks the run to stop.
    fn block_on<T>(&self, work: impl Future<Output = T>) -> Result<T> {
        let runtime = self.runtime.as_ref().expect("the runtime lives as long as the remote");
        runtime.block_on(async {
            let stop = async {
                while !checkpoint::interrupted() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            };
            match futures::future::select(std::pin::pin!(work), std::pin::pin!(stop)).await {
                futures::future::Either::Left((done, _)) => Ok(done),
                futures::future::Either::Right(_) => Err(anyhow!("stopped by a signal while waiting on {}", self.url)),
            }
        })
    }

    /// `work`'s answer, or an error once the remote's timeout passes without one.
    async fn timed<T>(&self, work: impl Future<Output = T>, what: impl FnOnce() -> String) -> Result<T> {
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| anyhow!("{}: no answer within {:?}", what(), self.timeout))
    }

    /// What stands at `path`, opened for reading where it is a file.
    async fn open_for_reading(&self, path: &RemotePath) -> Result<Opened> {
        match self.directory_entry(path) {
            Entry::Absent => return Ok(Opened::Absent),
            Entry::NotAFile => return Ok(Opened::NotAFile),
            Entry::File | Entry::Unknown => {}
        }
        match self.timed(self.store.get(path), || format!("reading {path}")).await? {
            Ok(found) => Ok(Opened::Found(found)),
            Err(object_store::Error::NotFound { .. }) => Ok(Opened::Absent),
            Err(e) => Err(self.failure(e, format!("cannot read {path} from {}", self.url))),
        }
    }

    /// The next chunk of `path`'s body, each within the timeout: `None` at its end.
    async fn next_chunk(
        &self,
        path: &RemotePath,
        body: &mut (impl futures::Stream<Item = object_store::Result<bytes::Bytes>> + Unpin),
    ) -> Result<Option<bytes::Bytes>> {
        match self.timed(body.next(), || format!("reading {path}")).await? {
            None => Ok(None),
            Some(chunk) => chunk.map(Some).map_err(|e| self.failure(e, format!("reading {path} from {}", self.url))),
        }
    }

    fn record_path(&self, key: &str) -> RemotePath {
        self.prefix.clone().join("records").join(format!("{key}.json"))
    }

    fn object_path(&self, hash: &str) -> RemotePath {
        debug_assert!(is_object_hash(hash), "validated before use");
        let (dir, rest) = if is_object_hash(hash) { hash.split_at(2) } else { ("00", "invalid") };
        self.prefix.clone().join("objects").join(dir).join(rest)
    }

    /// For a directory remote, what stands at `path`: a link anywhere below the remote's folder,
    /// or anything but a regular file at the end, is never opened (a FIFO would block the open,
    /// a link would reach outside the remote).
    fn directory_entry(&self, path: &RemotePath) -> Entry {
        let Some(root) = &self.directory else { return Entry::Unknown };
        let mut at = root.clone();
        let parts: Vec<_> = path.parts().collect();
        for (n, part) in parts.iter().enumerate() {
            at.push(part.as_ref());
            match std::fs::symlink_metadata(&at) {
                Err(_) => return Entry::Absent,
                Ok(meta) if meta.file_type().is_symlink() => return Entry::NotAFile,
                Ok(meta) if n + 1 < parts.len() && !meta.is_dir() => return Entry::NotAFile,
                Ok(meta) if n + 1 == parts.len() && !meta.is_file() => return Entry::NotAFile,
                Ok(_) => {}
            }
        }
        Entry::File
    }

    /// The bytes at `path`, at most `cap` of them: `None` when there is nothing there.
    async fn get_capped(&self, path: &RemotePath, cap: u64) -> Result<Option<Result<Vec<u8>, Refusal>>> {
        let found = match self.open_for_reading(path).await? {
            Opened::Absent => return Ok(None),
            Opened::NotAFile => return Ok(Some(Err(Refusal::NotAFile { what: path.to_string() }))),
            Opened::Found(found) => found,
        };
        if found.meta.size > cap {
            return Ok(Some(Err(Refusal::Unreadable(format!(
                "{} bytes, more than the {cap} allowed",
                found.meta.size
            )))));
        }
        let mut bytes = Vec::new();
        let mut body = found.into_stream();
        while let Some(chunk) = self.next_chunk(path, &mut body).await? {
            if bytes.len() as u64 + chunk.len() as u64 > cap {
                return Ok(Some(Err(Refusal::Unreadable(format!("more than the {cap} bytes allowed")))));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Some(Ok(bytes)))
    }

    /// The size of the object at `path`, `None` when there is nothing there (or nothing a read
    /// would take: a link or a FIFO in a directory remote).
    async fn size(&self, path: &RemotePath) -> Result<Option<u64>> {
        match self.directory_entry(path) {
            Entry::Absent | Entry::NotAFile => return Ok(None),
            Entry::File | Entry::Unknown => {}
        }
        match self.timed(self.store.head(path), || format!("asking for {path}")).await? {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failure(e, format!("cannot ask {} for {path}", self.url))),
        }
    }

    async fn put(&self, path: &RemotePath, bytes: Vec<u8>) -> Result<()> {
        // A link in a directory remote's folders would take the write anywhere; the file itself,
        // if a link, is replaced (the write goes through a new file renamed over it).
        if let (Some(root), Some(parent)) = (&self.directory, path.parts().count().checked_sub(1)) {
            let mut at = root.clone();
            for part in path.parts().take(parent) {
                at.push(part.as_ref());
                if std::fs::symlink_metadata(&at).is_ok_and(|m| !m.is_dir()) {
                    bail!("cannot write {path} to {}: {} is not a folder (a link?)", self.url, at.display());
                }
            }
        }
        match self.timed(self.store.put(path, PutPayload::from(bytes)), || format!("writing {path}")).await? {
            Ok(_) => Ok(()),
            Err(e) => Err(self.failure(e, format!("cannot write {path} to {}", self.url))),
        }
    }

    /// The records the remote holds for `asked` (signatures and validity checked; objects not
    /// fetched). An error is the remote failing to answer, not a missing or refused record.
    pub fn records(&self, asked: &[Asked]) -> Vec<RecordAnswer> {
        self.block_on(self.records_async(asked, &self.trust)).unwrap_or_else(|e| every(asked.len(), &e))
    }

    async fn records_async(&self, asked: &[Asked], trust: &Trust) -> Vec<RecordAnswer> {
        futures::stream::iter(asked)
            .map(|asked| async move {
                let path = self.record_path(&asked.key);
                let found = self.get_capped(&path, envelope::MAX_ENVELOPE_BYTES).await?;
                Ok(found.map(|bytes| envelope::open(&bytes?, asked, trust).map(|(record, _)| record)))
            })
            .buffered(self.concurrency)
            .collect()
            .await
    }

    /// Fetches the records of `asked` and their objects into `store`: one answer per key.
    pub fn fetch(&self, store: &Store, asked: &[Asked]) -> Vec<Result<Fetched>> {
        self.block_on(self.fetch_async(store, asked)).unwrap_or_else(|e| every(asked.len(), &e))
    }

    async fn fetch_async(&self, store: &Store, asked: &[Asked]) -> Vec<Result<Fetched>> {
        let found = self.records_async(asked, &self.trust).await;
        // Every object the found records need that the local store lacks, each fetched once per
        // size a record gives it (a record that misstates the size spoils no other's fetch).
        let mut wanted: BTreeSet<(String, u64)> = BTreeSet::new();
        for record in found.iter().filter_map(|f| f.as_ref().ok()?.as_ref()?.as_ref().ok()) {
            let missing = record.outputs.values().filter(|o| !store.object_is_intact(&o.hash));
            wanted.extend(missing.map(|o| (o.hash.clone(), o.size)));
        }
        let bar = progress::transfer_bar("pull", wanted.len() as u64);
        let objects: HashMap<(String, u64), Result<ObjectFetch>> = futures::stream::iter(wanted)
            .map(|(hash, size)| {
                let bar = &bar;
                async move {
                    let fetched = self.fetch_object(store, &hash, size).await;
                    bar.inc(1);
                    ((hash, size), fetched)
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
                    match objects.get(&(obj.hash.clone(), obj.size)) {
                        None | Some(Ok(ObjectFetch::Stored)) => {}
                        Some(Ok(ObjectFetch::Missing)) => {
                            return Ok(Fetched::Refused(Refusal::MissingObject { output, hash }));
                        }
                        Some(Ok(ObjectFetch::Corrupt)) => {
                            return Ok(Fetched::Refused(Refusal::CorruptObject { output, hash }));
                        }
                        Some(Ok(ObjectFetch::NotAFile(what))) => {
                            return Ok(Fetched::Refused(Refusal::NotAFile { what: what.clone() }));
                        }
                        Some(Err(e)) => return Err(anyhow!("{e:#}")),
                    }
                }
                store.commit(&record)?;
                Ok(Fetched::Served(Box::new(record)))
            })
            .collect()
    }

    /// Streams one object into a temporary file of the store, hashing it on the way, and keeps
    /// it only when it is exactly `size` bytes with the blake3 `hash`: memory stays at one
    /// chunk whatever the remote sends, and no more than `size` bytes are read.
    async fn fetch_object(&self, store: &Store, hash: &str, size: u64) -> Result<ObjectFetch> {
        let path = self.object_path(hash);
        let found = match self.open_for_reading(&path).await? {
            Opened::Absent => return Ok(ObjectFetch::Missing),
            Opened::NotAFile => return Ok(ObjectFetch::NotAFile(path.to_string())),
            Opened::Found(found) => found,
        };
        if found.meta.size != size {
            return Ok(ObjectFetch::Corrupt);
        }
        let mut incoming = store.incoming()?;
        let mut hasher = blake3::Hasher::new();
        let mut received = 0u64;
        let mut body = found.into_stream();
        while let Some(chunk) = self.next_chunk(&path, &mut body).await? {
            received += chunk.len() as u64;
            if received > size {
                return Ok(ObjectFetch::Corrupt);
            }
            hasher.update(&chunk);
            incoming.file.write_all(&chunk).with_context(|| format!("cannot write {}", incoming.path.display()))?;
        }
        if received != size || hasher.finalize().to_hex().as_str() != hash {
            return Ok(ObjectFetch::Corrupt);
        }
        store.adopt(incoming, hash)?;
        Ok(ObjectFetch::Stored)
    }

    /// Publishes `records` (complete in `store`) that the remote lacks, or holds only in a form
    /// no reader with our trust could use (unsigned, untrusted, tampered, invalid): their
    /// objects first, in parallel, then each record whose objects all arrived. Records whose keys
    /// are in `repair` (the remote's copy named damaged objects) are published again, every object
    /// uploaded whatever the remote says it has; so are the objects of a replaced record.
    pub fn push(&self, store: &Store, records: &[Record], repair: &BTreeSet<String>) -> PushReport {
        self.block_on(self.push_async(store, records, repair)).unwrap_or_else(|e| PushReport {
            failed: records.iter().map(|r| (r.stage.clone(), format!("{e:#}"))).collect(),
            ..PushReport::default()
        })
    }

    async fn push_async(&self, store: &Store, records: &[Record], repair: &BTreeSet<String>) -> PushReport {
        let mut report = PushReport::default();
        let (lacking, replacing) = self.to_publish(store, records, repair, &mut report).await;
        let uploads = self.upload_objects(store, &lacking, &replacing).await;
        for uploaded in uploads.values().flatten().flatten() {
            report.objects += 1;
            report.bytes += uploaded;
        }
        let uploads = &uploads;
        let publish = lacking.iter().map(|&record| async move {
            let failed = record.outputs.values().find_map(|o| uploads[o.hash.as_str()].as_ref().err());
            if let Some(e) = failed {
                bail!("not published, an object failed to upload: {e:#}");
            }
            self.put(&self.record_path(&record.key), envelope::seal(record, &self.signer)?).await
        });
        let published: Vec<Result<()>> = futures::stream::iter(publish).buffered(self.concurrency).collect().await;
        for (record, outcome) in lacking.iter().zip(published) {
            match outcome {
                Ok(()) if replacing.contains(record.key.as_str()) => report.replaced += 1,
                Ok(()) => report.published += 1,
                Err(e) => report.failed.push((record.stage.clone(), format!("{e:#}"))),
            }
        }
        report
    }

    /// The records to publish (that verify here, and the remote lacks, holds in an unusable form
    /// or in damaged form), and the keys of those among them that replace a record; the others
    /// are counted or failed in `report`.
    async fn to_publish<'r>(
        &self,
        store: &Store,
        records: &'r [Record],
        repair: &BTreeSet<String>,
        report: &mut PushReport,
    ) -> (Vec<&'r Record>, BTreeSet<&'r str>) {
        // The remote's records are checked with this workspace's trust, its own key included.
        let asked: Vec<Asked> = records.iter().map(|r| Asked::of(r, self.max_object_bytes)).collect();
        let present = self.records_async(&asked, &self.trust).await;
        let mut lacking = Vec::new();
        let mut replacing = BTreeSet::new();
        for (record, present) in records.iter().zip(present) {
            let replace = match present {
                _ if repair.contains(&record.key) => true,
                Ok(Some(Ok(_))) => {
                    report.already_there += 1;
                    continue;
                }
                Ok(Some(Err(_))) => true,
                Ok(None) => false,
                Err(e) => {
                    report.failed.push((record.stage.clone(), format!("{e:#}")));
                    continue;
                }
            };
            match store.check(record) {
                // Never publish what does not verify here.
                Some(damage) => report.failed.push((record.stage.clone(), format!("not pushed: {damage}"))),
                None => {
                    if replace {
                        replacing.insert(record.key.as_str());
                    }
                    lacking.push(record);
                }
            }
        }
        (lacking, replacing)
    }

    /// Uploads the objects of `records`, in parallel, each once: object hash -> bytes sent (none
    /// where the remote had it). A replaced record's objects are sent whatever the remote has.
    async fn upload_objects<'r>(
        &self,
        store: &Store,
        records: &[&'r Record],
        replacing: &BTreeSet<&str>,
    ) -> HashMap<&'r str, Result<Option<u64>>> {
        let forced: BTreeSet<&str> = records
            .iter()
            .filter(|r| replacing.contains(r.key.as_str()))
            .flat_map(|r| r.outputs.values().map(|o| o.hash.as_str()))
            .collect();
        let objects: BTreeMap<&str, u64> =
            records.iter().flat_map(|r| r.outputs.values().map(|o| (o.hash.as_str(), o.size))).collect();
        let forced = &forced;
        let bar = progress::transfer_bar("push", objects.len() as u64);
        let uploads = futures::stream::iter(objects)
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
        uploads
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

impl Drop for Remote {
    fn drop(&mut self) {
        // A directory remote's reads run on blocking threads; one stuck past its timeout (a file
        // swapped for a FIFO after it was checked) must not keep the process from ending.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What stands at a path of the remote, for reading.
enum Opened {
    Absent,
    /// A directory remote's link, FIFO, device or folder: never opened.
    NotAFile,
    Found(object_store::GetResult),
}

/// What stands at a path of a directory remote.
enum Entry {
    /// Not a directory remote: the server decides.
    Unknown,
    Absent,
    File,
    NotAFile,
}

/// `n` copies of one failure, one per thing asked.
fn every<T>(n: usize, error: &anyhow::Error) -> Vec<Result<T>> {
    (0..n).map(|_| Err(anyhow!("{error:#}"))).collect()
}

/// `url` for messages: a password in it (`https://user:secret@host/`) is masked.
fn shown(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// A URL that does not parse, for a message: whatever stands between `//` and `@` is masked.
fn masked(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(start), Some(at)) if at > start => format!("{}***{}", &text[..start + 3], &text[at..]),
        _ => text.to_string(),
    }
}

fn percent_decoded(text: &str) -> Option<String> {
    let decoded = url::form_urlencoded::parse(format!("x={text}").as_bytes()).next()?.1.into_owned();
    (decoded != text).then_some(decoded)
}

/// Every secret a message could echo: the URL's password (also percent-decoded), the configured
/// key and the S3 secrets of the environment. Shorter ones would mask ordinary words.
fn secrets_of(url: &url::Url, spec: &RemoteSpec) -> Vec<String> {
    let mut secrets: Vec<String> = url.password().into_iter().map(str::to_string).collect();
    secrets.extend(secrets.clone().iter().filter_map(|p| percent_decoded(p)));
    secrets.extend(spec.credentials.iter().map(|(_, secret)| secret.clone()));
    secrets.extend(["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"].iter().filter_map(|v| std::env::var(v).ok()));
    secrets.retain(|s| s.len() >= 3);
    secrets
}

/// The object store the URL's scheme names, the path under it, and a directory remote's folder.
fn object_store_for<'u>(
    spec: &RemoteSpec,
    url: &'u url::Url,
    plain_http: bool,
) -> Result<(Arc<dyn ObjectStore>, &'u str, Option<PathBuf>)> {
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
        .with_allow_http(plain_http);
    let shown_url = shown(url);
    Ok(match url.scheme() {
        "s3" => {
            let bucket =
                url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| anyhow!("`{shown_url}` names no bucket"))?;
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
            let store = builder.build().map_err(|e| anyhow!("cannot set up the S3 remote {shown_url}: {e}"))?;
            (Arc::new(store), url.path(), None)
        }
        "http" | "https" => {
            let base = &url[..url::Position::BeforePath];
            let store = object_store::http::HttpBuilder::new()
                .with_url(base)
                .with_retry(retry)
                .with_client_options(client)
                .build()
                .map_err(|e| anyhow!("cannot set up the HTTP remote {shown_url}: {e}"))?;
            (Arc::new(store), url.path(), None)
        }
        "file" => {
            let dir = url.to_file_path().map_err(|()| anyhow!("`{shown_url}` is not a local path"))?;
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the remote {}", dir.display()))?;
            let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                .with_context(|| format!("cannot open the remote {}", dir.display()))?;
            (Arc::new(store), "", Some(dir))
        }
        other => bail!("remote url `{shown_url}`: scheme `{other}` is not one of s3, http, https, file"),
    })
}

/// What fetching one object did.
#[derive(Debug)]
enum ObjectFetch {
    Stored,
    Missing,
    /// Not the bytes or the size its record names.
    Corrupt,
    NotAFile(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_never_reaches_a_message() {
        assert_eq!(masked("https://ci:hunter2@[bad/"), "https://***@[bad/");
        assert_eq!(percent_decoded("p%40ss").as_deref(), Some("p@ss"));
        let url = url::Url::parse("https://ci:hunter2@cache.example.org/repro").unwrap();
        assert_eq!(shown(&url), "https://ci:***@cache.example.org/repro");
        let plain = url::Url::parse("s3://bucket/prefix").unwrap();
        assert_eq!(shown(&plain), "s3://bucket/prefix");
    }
}
