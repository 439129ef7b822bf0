//! Runs the selected stages of a graph: each at most once per key, independent ones concurrently.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};

use super::fingerprint;
use super::graph::{Graph, Stage, StageContext};
use super::hash_bytes;
use super::key::KeyParts;
use super::lineage;
use super::progress::Reporter;
use super::store::{Record, Store, walk_files};

/// What numeric stages are keyed on besides their code, params and inputs.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    pub backend: String,
    pub device: String,
    /// Per-stage placement: stages that declare less work per step than this run on `small`
    /// instead of `device` (tiny networks lose on a GPU: each step is a few kernel launches).
    pub split: Option<Split>,
}

#[derive(Clone, Debug)]
pub struct Split {
    pub min_work: u64,
    pub small: String,
}

impl Environment {
    /// The environment `stage` computes in: its device after placement, no further split.
    pub fn for_stage(&self, stage: &Stage) -> Environment {
        let device = match (&self.split, stage.work) {
            (Some(split), Some(work)) if work < split.min_work => split.small.clone(),
            _ => self.device.clone(),
        };
        Environment { backend: self.backend.clone(), device, split: None }
    }
}

pub struct RunOptions {
    /// Stages running at once.
    pub jobs: usize,
    /// Threads shared by all running stages.
    pub cores: usize,
    pub env: Environment,
    /// Which stages to bring up to date (see [`Graph::select`]).
    pub selected: Vec<bool>,
    /// Also print a line for every cached stage.
    pub verbose: bool,
    /// Handed to stages as [`StageContext::data_dir`].
    pub data_dir: std::path::PathBuf,
}

#[derive(Default)]
pub struct RunSummary {
    pub ran: usize,
    pub cached: usize,
    pub failed: Vec<(String, String)>,
    pub skipped: Vec<String>,
    /// Record of every stage that is now up to date, by stage index.
    pub records: BTreeMap<usize, Record>,
}

impl RunSummary {
    pub fn line(&self) -> String {
        format!("stages: {} run, {} cached, {} failed", self.ran, self.cached, self.failed.len())
    }
}

/// The key parts of `stage` given the blake3 of each of its inputs.
pub fn key_parts(stage: &Stage, inputs: BTreeMap<String, String>, env: &Environment) -> Result<KeyParts> {
    let mut code = BTreeMap::new();
    let lock: &[&str] = if stage.kind.numeric { &["Cargo.lock"] } else { &[] };
    for module in stage.kind.code.iter().chain(lock) {
        let fp = fingerprint::module(module)
            .ok_or_else(|| anyhow!("stage kind {} names unknown code module `{module}`", stage.kind.name))?;
        code.insert(module.to_string(), fp);
    }
    let env = &env.for_stage(stage);
    let mut env_map = BTreeMap::new();
    if stage.kind.numeric {
        env_map.insert("backend".to_string(), env.backend.clone());
        env_map.insert("device".to_string(), env.device.clone());
    }
    Ok(KeyParts { kind: stage.kind.name.to_string(), code, params: stage.params.clone(), inputs, env: env_map })
}

/// The blake3 of each input of stage `i`, from the records of its upstream stages.
pub fn input_hashes(graph: &Graph, i: usize, records: &BTreeMap<usize, Record>) -> Result<BTreeMap<String, String>> {
    Ok(inputs(graph, i, records)?.0)
}

/// Input name -> blake3, and the bytes of the stage's lineage file when it reads one.
type Inputs = (BTreeMap<String, String>, Option<Vec<u8>>);

/// [`input_hashes`], plus the lineage bytes, built once.
fn inputs(graph: &Graph, i: usize, records: &BTreeMap<usize, Record>) -> Result<Inputs> {
    let stage = graph.stage(i);
    let mut out = BTreeMap::new();
    for input in &stage.inputs {
        let j = graph.find(&input.stage).expect("graph validated its inputs");
        let record = records.get(&j).ok_or_else(|| anyhow!("upstream {} has no record", input.stage))?;
        let obj = record.outputs.get(&input.output).ok_or_else(|| {
            anyhow!("{} reads `{}` from {}, which did not produce it", stage.id, input.output, input.stage)
        })?;
        out.insert(input.name.clone(), obj.hash.clone());
    }
    let lineage = if stage.lineage { Some(lineage::build(graph, i, records)?) } else { None };
    if let Some(bytes) = &lineage {
        out.insert(lineage::INPUT.to_string(), hash_bytes(bytes));
    }
    Ok((out, lineage))
}

enum State {
    Waiting,
    /// Dependencies done, not in the cache: runs when a slot is free.
    Ready(KeyParts),
    Running,
    Done,
    Failed,
    Skipped,
}

/// Brings the selected stages up to date. Stage failures are collected, not returned as errors:
/// independent branches go on, and dependents of a failed stage are skipped.
pub fn run(graph: &Graph, store: &Store, opts: &RunOptions) -> Result<RunSummary> {
    let reporter = Reporter::new();
    let mut summary = RunSummary::default();
    let n = graph.stages().len();
    let mut states: Vec<State> = (0..n).map(|_| State::Waiting).collect();
    let jobs = opts.jobs.max(1);
    let mut free_threads = opts.cores.max(1);
    let mut running = 0usize;
    let (tx, rx) = mpsc::channel::<(usize, usize, Result<Record>)>();

    std::thread::scope(|scope| -> Result<()> {
        loop {
            // Settle every stage whose fate is decided without running it, then start what fits.
            for &i in graph.order() {
                if !opts.selected[i] || !matches!(states[i], State::Waiting) {
                    continue;
                }
                let stage = graph.stage(i);
                if let Some(&j) = graph.deps(i).iter().find(|&&j| matches!(states[j], State::Failed | State::Skipped)) {
                    states[i] = State::Skipped;
                    summary.skipped.push(stage.id.clone());
                    reporter.line(&format!("[skipped] {} (upstream {} failed)", stage.id, graph.stage(j).id));
                    continue;
                }
                if !graph.deps(i).iter().all(|&j| matches!(states[j], State::Done)) {
                    continue;
                }
                let computed = inputs(graph, i, &summary.records)
                    .and_then(|(hashes, lineage)| Ok((key_parts(stage, hashes, &opts.env)?, lineage)));
                let (parts, lineage) = match computed {
                    Ok(p) => p,
                    Err(e) => {
                        fail(&mut states, &mut summary, &reporter, i, stage, format!("{e:#}"));
                        continue;
                    }
                };
                match store.record(&parts.key()) {
                    Some(record) if store.check(&record).is_none() => {
                        if opts.verbose {
                            reporter.line(&format!("[cached]  {}", stage.id));
                        }
                        summary.cached += 1;
                        summary.records.insert(i, record);
                        states[i] = State::Done;
                    }
                    _ => {
                        // The lineage file must be in the store before the stage reads it.
                        let stored = lineage.map_or(Ok(()), |bytes| store.put_bytes(&bytes).map(drop));
                        match stored {
                            Ok(()) => states[i] = State::Ready(parts),
                            Err(e) => fail(&mut states, &mut summary, &reporter, i, stage, format!("{e:#}")),
                        }
                    }
                }
            }
            // Ready stages share the free threads evenly: many narrow runs beat one wide one.
            let ready = states.iter().filter(|s| matches!(s, State::Ready(_))).count();
            let share = free_threads / ready.min(jobs.saturating_sub(running)).max(1);
            for &i in graph.order() {
                if running >= jobs || free_threads == 0 {
                    break;
                }
                if !matches!(states[i], State::Ready(_)) {
                    continue;
                }
                let State::Ready(parts) = std::mem::replace(&mut states[i], State::Running) else { unreachable!() };
                let stage = graph.stage(i);
                let threads = stage.kind.max_threads.min(share).clamp(1, free_threads);
                free_threads -= threads;
                running += 1;
                let names = stage.inputs.iter().map(|inp| inp.name.as_str());
                let names = names.chain(stage.lineage.then_some(lineage::INPUT));
                let inputs = names.map(|name| (name.to_string(), store.object_path(&parts.inputs[name]))).collect();
                let tx = tx.clone();
                let reporter = &reporter;
                let env = &opts.env;
                let data_dir = opts.data_dir.as_path();
                scope.spawn(move || {
                    let result = execute(stage, parts, inputs, (threads, data_dir), store, reporter, env);
                    let _ = tx.send((i, threads, result));
                });
            }
            if running == 0 {
                break;
            }
            let (i, threads, result) = rx.recv().expect("a worker always reports");
            running -= 1;
            free_threads += threads;
            let stage = graph.stage(i);
            match result {
                Ok(record) => {
                    reporter.line(&format!("[ran {:>7.1}s] {}", record.seconds, stage.id));
                    summary.ran += 1;
                    summary.records.insert(i, record);
                    states[i] = State::Done;
                }
                Err(e) => fail(&mut states, &mut summary, &reporter, i, stage, format!("{e:#}")),
            }
        }
        Ok(())
    })?;
    Ok(summary)
}

fn fail(states: &mut [State], summary: &mut RunSummary, reporter: &Reporter, i: usize, stage: &Stage, error: String) {
    reporter.line(&format!("[FAILED]  {}: {error}", stage.id));
    summary.failed.push((stage.id.clone(), error));
    states[i] = State::Failed;
}

/// Runs one stage in a scratch directory, then commits its outputs and record.
fn execute(
    stage: &Stage,
    parts: KeyParts,
    inputs: BTreeMap<String, std::path::PathBuf>,
    (threads, data_dir): (usize, &Path),
    store: &Store,
    reporter: &Reporter,
    env: &Environment,
) -> Result<Record> {
    let env = &env.for_stage(stage);
    let scratch = store.scratch_dir()?;
    let started_unix =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    let started = Instant::now();
    let progress = reporter.start(&stage.id);
    let ctx = StageContext { stage, inputs, out_dir: scratch.clone(), threads, progress: &progress, env, data_dir };
    // The budget is enforced, not advised: the stage's parallel work runs on a pool of that size.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("stage-worker-{i}"))
        .build()
        .context("cannot start the stage's thread pool")?;
    let outcome = pool.install(|| catch_unwind(AssertUnwindSafe(|| (stage.kind.run)(&ctx))));
    drop(progress);
    let result = match outcome {
        Ok(Ok(())) => commit(stage, parts, &scratch, (started_unix, started.elapsed().as_secs_f64()), store, env),
        Ok(Err(e)) => Err(e),
        Err(panic) => Err(anyhow!("panicked: {}", panic_message(&panic))),
    };
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn commit(
    stage: &Stage,
    parts: KeyParts,
    scratch: &Path,
    (started, seconds): (f64, f64),
    store: &Store,
    env: &Environment,
) -> Result<Record> {
    let mut outputs = BTreeMap::new();
    for file in walk_files(scratch)? {
        let name = file.strip_prefix(scratch)?.to_string_lossy().replace('\\', "/");
        let obj = store.put_file(&file).with_context(|| format!("storing output {name}"))?;
        outputs.insert(name, obj);
    }
    let (backend, device) =
        if stage.kind.numeric { (env.backend.clone(), env.device.clone()) } else { ("-".into(), "-".into()) };
    let record = Record {
        key: parts.key(),
        stage: stage.id.clone(),
        kind: stage.kind.name.to_string(),
        outputs,
        started,
        seconds,
        backend,
        device,
        parts,
    };
    store.commit(&record)?;
    Ok(record)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::graph::{Stage, StageKind};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static BUSY: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);

    fn work(ctx: &StageContext) -> Result<()> {
        let now = BUSY.fetch_add(ctx.threads, Ordering::SeqCst) + ctx.threads;
        PEAK.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(30));
        BUSY.fetch_sub(ctx.threads, Ordering::SeqCst);
        std::fs::write(ctx.output("out.txt")?, ctx.stage.id.as_bytes())?;
        Ok(())
    }

    fn broken(_: &StageContext) -> Result<()> {
        anyhow::bail!("deliberate failure")
    }

    static WIDE: StageKind = StageKind { name: "wide", code: &[], numeric: false, max_threads: 2, run: work };
    static BROKEN: StageKind = StageKind { name: "broken", code: &[], numeric: false, max_threads: 1, run: broken };

    fn temp_store(name: &str) -> Store {
        let dir = std::env::temp_dir().join(format!("repro-sched-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Store::open(&dir).unwrap()
    }

    #[test]
    fn placement_keeps_small_work_on_the_cpu() {
        let env = Environment {
            backend: "tch".into(),
            device: "cuda:0".into(),
            split: Some(Split { min_work: 1000, small: "cpu".into() }),
        };
        let stage = |work: Option<u64>| {
            let s = Stage::new(&WIDE, &[("w", format!("{work:?}"))], &());
            match work {
                Some(w) => s.with_work(w),
                None => s,
            }
        };
        assert_eq!(env.for_stage(&stage(Some(999))).device, "cpu");
        assert_eq!(env.for_stage(&stage(Some(1000))).device, "cuda:0");
        assert_eq!(env.for_stage(&stage(None)).device, "cuda:0", "no declared work: the configured device");
        let plain = Environment { split: None, ..env.clone() };
        assert_eq!(plain.for_stage(&stage(Some(1))).device, "cuda:0", "no split: every stage on the device");
    }

    #[test]
    fn thread_budget_is_never_exceeded_and_failures_stay_local() {
        let store = temp_store("budget");
        let mut stages: Vec<Stage> = (0..6).map(|i| Stage::new(&WIDE, &[("i", i.to_string())], &())).collect();
        let bad = Stage::new(&BROKEN, &[], &());
        let after_bad = Stage::new(&WIDE, &[("i", "dependent".into())], &()).input("x", &bad, "out.txt");
        stages.push(bad);
        stages.push(after_bad);
        let graph = Graph::new(stages).unwrap();
        let opts = RunOptions {
            jobs: 4,
            cores: 3,
            env: Environment::default(),
            selected: vec![true; 8],
            verbose: false,
            data_dir: store.root().join("data"),
        };
        let summary = run(&graph, &store, &opts).unwrap();
        assert!(PEAK.load(Ordering::SeqCst) <= 3, "peak {}", PEAK.load(Ordering::SeqCst));
        assert!(PEAK.load(Ordering::SeqCst) >= 2, "stages did run concurrently");
        assert_eq!((summary.ran, summary.cached, summary.failed.len(), summary.skipped.len()), (6, 0, 1, 1));
        assert!(summary.failed[0].1.contains("deliberate failure"));
        // The independent stages are cached now; the broken one is retried.
        let again = run(&graph, &store, &opts).unwrap();
        assert_eq!((again.ran, again.cached, again.failed.len()), (0, 6, 1));
        let _ = std::fs::remove_dir_all(store.root());
    }
}
