//! `repro push` / `repro pull`, and the remote that `repro run` and `repro status` consult.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::workspace::{Plan, Workspace};
use crate::engine::artifacts;
use crate::engine::lock::CacheLock;
use crate::engine::remote::{PushReport, Remote, RemoteSpec, SecretKey, Signer, Trust, TrustedKey};
use crate::engine::scheduler;
use crate::engine::status::status;
use crate::engine::{Record, Store};

/// Overrides `[remote] url` (CI keeps it in a secret).
pub const URL_VARIABLE: &str = "REPRO_REMOTE";
/// The secret key records pushed from here are signed with (`NAME:BASE64`, or a file holding it).
pub const SIGNING_KEY_VARIABLE: &str = "REPRO_SIGNING_KEY";
/// The shared secret of the older HMAC mode: signs on push and is required on fetch. Whoever can
/// check a record with it can forge one.
pub const KEY_VARIABLE: &str = "REPRO_REMOTE_KEY";

impl Plan {
    /// The configured remote (`REPRO_REMOTE` first, then `[remote] url`), opened; `None` without
    /// one. Opening sends nothing: an unreachable remote shows on first use.
    pub fn remote(&self) -> Result<Option<Arc<Remote>>> {
        let settings = &self.loaded.config.remote;
        let url = std::env::var(URL_VARIABLE).ok().or_else(|| settings.url.clone()).unwrap_or_default();
        if url.trim().is_empty() {
            return Ok(None);
        }
        let seconds = |s: f64, what: &str| {
            Duration::try_from_secs_f64(s).with_context(|| format!("[remote] {what} = {s} is not a duration"))
        };
        let credentials = match (&settings.access_key_id, &settings.secret_access_key) {
            (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
            (None, None) => None,
            _ => bail!("[remote]: give both access_key_id and secret_access_key, or neither"),
        };
        let mut keys = settings
            .trusted_keys
            .iter()
            .map(|k| TrustedKey::parse(k).with_context(|| format!("[remote] trusted_keys: `{k}`")))
            .collect::<Result<Vec<_>>>()?;
        let hmac = std::env::var(KEY_VARIABLE).ok().filter(|k| !k.is_empty()).map(String::into_bytes);
        let key = match std::env::var(SIGNING_KEY_VARIABLE).ok().filter(|k| !k.trim().is_empty()) {
            Some(text) => Some(SecretKey::parse_or_read(&text).context(SIGNING_KEY_VARIABLE)?),
            None => None,
        };
        // What this workspace signs, it trusts, on fetch and when a push checks the remote.
        if let Some(own) = key.as_ref().map(SecretKey::public).filter(|own| !keys.contains(own)) {
            keys.push(own);
        }
        let spec = RemoteSpec {
            url: url.trim().to_string(),
            endpoint: settings.endpoint.clone(),
            region: settings.region.clone(),
            credentials,
            concurrency: settings.concurrency,
            timeout: seconds(settings.timeout_s, "timeout_s")?,
            connect_timeout: seconds(settings.connect_timeout_s, "connect_timeout_s")?,
            retries: settings.retries,
            retry_window: seconds(settings.retry_window_s, "retry_window_s")?,
            signer: Signer { key, hmac: hmac.clone() },
            trust: Trust { keys, hmac, require: settings.require_signatures },
            max_object_bytes: settings.max_object_mb.saturating_mul(1 << 20),
        };
        let remote = Remote::open(spec)?;
        if let Some(note) = remote.unchecked_note() {
            eprintln!("{note}");
        }
        Ok(Some(Arc::new(remote)))
    }
}

/// Prints what a push did; true when everything selected is on the remote now.
pub fn report_push(remote: &Remote, report: &PushReport) -> bool {
    let replaced = if report.replaced > 0 {
        format!(", {} replaced (the remote's could not be used)", report.replaced)
    } else {
        String::new()
    };
    println!(
        "pushed to {}: {} record(s) published ({} object(s), {}){replaced}, {} already there, {} failed",
        remote.url(),
        report.published,
        report.objects,
        human_bytes(report.bytes),
        report.already_there,
        report.failed.len()
    );
    for (stage, why) in &report.failed {
        eprintln!("warning: {stage}: {why}");
    }
    report.failed.is_empty()
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

pub(super) fn require_remote(plan: &Plan) -> Result<Arc<Remote>> {
    plan.remote()?.with_context(|| {
        format!(
            "no remote: set [remote] url in the configuration, or {URL_VARIABLE} (s3://, http(s):// or file:// URL)"
        )
    })
}

/// `repro push`: publishes the selected stages that are up to date here and missing there.
pub fn push(ws: &Workspace, patterns: &[String]) -> Result<i32> {
    let plan = ws.plan()?;
    if plan.loaded.config.remote.read_only {
        bail!("[remote] read_only = true: this workspace only fetches from the remote");
    }
    let remote = require_remote(&plan)?;
    if let Some(why) = remote.cannot_publish() {
        bail!("cannot push: {why}");
    }
    let selected = plan.graph.select(patterns)?;
    let store = Store::open_existing(&ws.cache)
        .with_context(|| format!("no cache at {}: nothing to push", ws.cache.display()))?;
    let statuses = status(&plan.graph, Some(&store), &plan.env, &selected, None);
    let records: Vec<Record> =
        statuses.iter().filter(|s| !s.stale).filter_map(|s| store.record(s.key.as_deref()?)).collect();
    let stale = statuses.len() - records.len();
    if stale > 0 {
        eprintln!("{stale} selected stage(s) are not up to date here and are not pushed (`repro status` lists them)");
    }
    let report = remote.push(&store, &records, &Default::default());
    Ok(if report_push(&remote, &report) { 0 } else { 1 })
}

/// `repro pull`: fetches what the selected stages of this configuration need, computing nothing,
/// and materialises artifacts/ from what is then complete.
pub fn pull(ws: &Workspace, patterns: &[String], verbose: bool) -> Result<i32> {
    let plan = ws.plan()?;
    let remote = require_remote(&plan)?;
    let selected = plan.graph.select(patterns)?;
    let _lock = CacheLock::acquire(&ws.cache, false)?;
    let store = Store::open(&ws.cache)?;
    store.clean_tmp()?;
    let summary = fetch_only(ws, &plan, &store, &remote, &selected, verbose)?;
    artifacts::materialise(&ws.artifacts, &store, &plan.graph, &selected, &summary.records)?;
    println!(
        "pulled from {}: {} stage(s) fetched, {} already here; {} in no cache{}",
        remote.url(),
        summary.fetched.len(),
        summary.cached,
        summary.unavailable.len() + summary.skipped.len(),
        if summary.unavailable.is_empty() { "" } else { " (`repro run` computes them)" }
    );
    Ok(if summary.failed.is_empty() { 0 } else { 1 })
}

/// One scheduler pass that computes nothing: what `remote` holds for the selected stages (and
/// what they need) is fetched into `store`, checked as every fetch is.
pub(super) fn fetch_only(
    ws: &Workspace,
    plan: &Plan,
    store: &Store,
    remote: &Arc<Remote>,
    selected: &[bool],
    verbose: bool,
) -> Result<scheduler::RunSummary> {
    let mut opts = plan.run_options(ws, (1, 1), selected.to_vec(), verbose);
    opts.remote = Some(remote.clone());
    opts.compute = false;
    scheduler::run(&plan.graph, store, &opts)
}

/// `repro keygen NAME`: a new signing key pair, written as `DIR/NAME.secret` (readable by its
/// owner only) and `DIR/NAME.public`; never over an existing file.
pub fn keygen(name: &str, dir: &std::path::Path) -> Result<i32> {
    let secret = SecretKey::generate(name)?;
    let (secret_file, public_file) = (dir.join(format!("{name}.secret")), dir.join(format!("{name}.public")));
    for file in [&secret_file, &public_file] {
        if file.exists() {
            bail!("{} exists: a key is never overwritten (remove it, or choose another name)", file.display());
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_new(&secret_file, &secret.to_text(), 0o600)?;
    write_new(&public_file, &secret.public().to_string(), 0o644)?;
    println!(
        "secret key: {} (give it to pushers only: {SIGNING_KEY_VARIABLE}={})",
        secret_file.display(),
        secret_file.display()
    );
    println!("public key: {}", secret.public());
    println!("readers trust it with, in pipeline.toml:\n  [remote]\n  trusted_keys = [\"{}\"]", secret.public());
    Ok(0)
}

/// Creates `file` (it must not exist) with `mode`, holding `text` and a newline.
fn write_new(file: &std::path::Path, text: &str, mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(file)
        .with_context(|| format!("cannot create {}", file.display()))?;
    writeln!(out, "{text}").with_context(|| format!("cannot write {}", file.display()))
}
