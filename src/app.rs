//! The commands behind the CLI: load the configuration, build the graph, act on the cache.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::config::{self, Loaded};
use crate::engine::artifacts;
use crate::engine::lock::CacheLock;
use crate::engine::scheduler::{self, Environment, RunOptions};
use crate::engine::status::{StageStatus, status};
use crate::engine::{Graph, Store};
use crate::experiments;
use crate::nn::Compute;

/// Where things live and which configuration to use.
#[derive(Clone, Debug)]
pub struct Workspace {
    pub config: PathBuf,
    pub cache: PathBuf,
    pub artifacts: PathBuf,
    /// Downloaded inputs (MNIST), kept outside the store.
    pub data: PathBuf,
    pub profile: Option<String>,
    pub overrides: Vec<String>,
}

/// The loaded configuration and its graph; building it writes nothing.
pub struct Plan {
    pub loaded: Loaded,
    pub graph: Graph,
    pub env: Environment,
}

impl Workspace {
    pub fn plan(&self) -> Result<Plan> {
        let loaded = config::load(&self.config, self.profile.as_deref(), &self.overrides)?;
        let compute = Compute::from_settings(&loaded.config.pipeline)
            .with_context(|| format!("{}: [pipeline]", self.config.display()))?;
        let (backend, device) = compute.class();
        let graph = Graph::new(experiments::build(&loaded)?)?;
        Ok(Plan { loaded, graph, env: Environment { backend, device } })
    }
}

pub struct RunArgs {
    pub patterns: Vec<String>,
    pub jobs: Option<usize>,
    pub wait: bool,
    pub verbose: bool,
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// `repro run`: returns the process exit code (non-zero when a stage failed).
pub fn run(ws: &Workspace, args: &RunArgs) -> Result<i32> {
    let started = Instant::now();
    let plan = ws.plan()?;
    let selected = plan.graph.select(&args.patterns)?;
    let _lock = CacheLock::acquire(&ws.cache, args.wait)?;
    let store = Store::open(&ws.cache)?;
    store.clean_tmp()?;
    let cores = cores();
    let opts = RunOptions {
        jobs: args.jobs.unwrap_or(cores),
        cores: args.jobs.unwrap_or(cores).max(cores),
        env: plan.env.clone(),
        selected: selected.clone(),
        verbose: args.verbose,
        data_dir: ws.data.clone(),
    };
    let summary = scheduler::run(&plan.graph, &store, &opts)?;
    let manifest = artifacts::materialise(&ws.artifacts, &store, &plan.graph, &selected, &summary.records)?;
    for (stage, error) in &summary.failed {
        eprintln!("error: {stage} failed: {error}");
    }
    if !summary.skipped.is_empty() {
        eprintln!("{} stage(s) skipped because an upstream stage failed", summary.skipped.len());
    }
    println!("{}", summary.line());
    if manifest.artifacts.contains_key("report.html") {
        println!("report: {}", ws.artifacts.join("report.html").display());
    }
    if args.verbose {
        eprintln!("finished in {:.2}s", started.elapsed().as_secs_f64());
    }
    Ok(if summary.failed.is_empty() { 0 } else { 1 })
}

/// `repro status`: prints what is stale and why; exit code 0 either way.
pub fn status_cmd(ws: &Workspace, patterns: &[String], json: bool) -> Result<Vec<StageStatus>> {
    let plan = ws.plan()?;
    let selected = plan.graph.select(patterns)?;
    let store = Store::open_existing(&ws.cache);
    let statuses = status(&plan.graph, store.as_ref(), &plan.env, &selected);
    if json {
        println!("{}", serde_json::to_string_pretty(&statuses)?);
    } else {
        let stale: Vec<&StageStatus> = statuses.iter().filter(|s| s.stale).collect();
        for s in &stale {
            println!("{}", s.stage);
            for reason in &s.reasons {
                println!("    {reason}");
            }
        }
        println!("{} stale, {} up to date", stale.len(), statuses.len() - stale.len());
    }
    Ok(statuses)
}

pub fn dag(ws: &Workspace, dot: bool) -> Result<()> {
    let plan = ws.plan()?;
    print!("{}", if dot { plan.graph.to_dot() } else { plan.graph.to_text() });
    Ok(())
}

/// `repro verify`: re-hashes the store; exit code 1 when something is damaged.
pub fn verify(ws: &Workspace) -> Result<i32> {
    let Some(store) = Store::open_existing(&ws.cache) else {
        println!("no cache at {}", ws.cache.display());
        return Ok(0);
    };
    let (checked, problems) = store.verify()?;
    for p in &problems {
        println!("damaged: {}: {}", p.path.display(), p.what);
    }
    let artifact_problems =
        if ws.artifacts.join(artifacts::MANIFEST).exists() { artifacts::check(&ws.artifacts)? } else { Vec::new() };
    for p in &artifact_problems {
        println!("artifact: {p}");
    }
    println!(
        "{checked} objects checked, {} problem(s) in the store, {} in artifacts",
        problems.len(),
        artifact_problems.len()
    );
    if !problems.is_empty() {
        println!("the stages that own damaged objects rerun on the next `repro run`");
    }
    Ok(if problems.is_empty() && artifact_problems.is_empty() { 0 } else { 1 })
}

/// `repro gc`: removes objects no record uses; with `prune`, first drops the records that are
/// not current for this configuration (other profiles' results go too).
pub fn gc(ws: &Workspace, prune: bool) -> Result<()> {
    let plan = ws.plan()?;
    let _lock = CacheLock::acquire(&ws.cache, false)?;
    let store = Store::open(&ws.cache)?;
    let all = vec![true; plan.graph.stages().len()];
    let keep: HashSet<String> = status(&plan.graph, Some(&store), &plan.env, &all)
        .into_iter()
        .filter(|s| !s.stale)
        .filter_map(|s| s.key)
        .collect();
    let (records, objects, bytes) = store.gc(&keep, prune)?;
    println!("removed {records} record(s) and {objects} object(s), {:.1} MB freed", bytes as f64 / 1e6);
    Ok(())
}

/// `repro clean`: removes `artifacts/` (restored by the next run from the cache); with `all`, the
/// cache too.
pub fn clean(ws: &Workspace, all: bool) -> Result<()> {
    let _lock = CacheLock::acquire(&ws.cache, false)?;
    if ws.artifacts.exists() {
        std::fs::remove_dir_all(&ws.artifacts).with_context(|| format!("cannot remove {}", ws.artifacts.display()))?;
    }
    if all {
        for sub in ["objects", "records", "last", "tmp"] {
            let dir = ws.cache.join(sub);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
        }
    }
    Ok(())
}

/// `repro check-report`: the report in headless Chromium (exit 1 on a broken image or a script
/// error), plus a screenshot of its top.
pub fn check_report(ws: &Workspace, html: Option<PathBuf>, screenshot: Option<PathBuf>) -> Result<i32> {
    use crate::report::browser;
    let html = html.unwrap_or_else(|| ws.artifacts.join("report.html"));
    let screenshot = screenshot.unwrap_or_else(|| ws.artifacts.join(SCREENSHOT));
    let chromium = browser::find_chromium().context(
        "Chromium not found: install it (Debian: `apt-get install chromium`) or point REPRO_CHROMIUM at the binary",
    )?;
    let page = browser::check(&chromium, &html)?;
    browser::screenshot(&chromium, &html, &screenshot, (1280, 1600))?;
    println!("screenshot of the top: {}", screenshot.display());
    if page.ok() {
        println!("{}: {} images, all decoded; no script errors", html.display(), page.images);
        return Ok(0);
    }
    println!("{}: {} images, {} broken; {} errors", html.display(), page.images, page.broken.len(), page.errors.len());
    for image in &page.broken {
        println!("  broken image: {image}");
    }
    for error in &page.errors {
        println!("  {error}");
    }
    Ok(1)
}

/// Where `repro check-report` saves its screenshot, under `artifacts/` (not a stage output, so
/// not in the manifest).
pub const SCREENSHOT: &str = "report-top.png";
