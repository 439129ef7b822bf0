//! Runs the selected stages of a graph: each at most once per key, independent ones concurrently.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};

use super::checkpoint::{self, Checkpoint, Interrupted};
use super::fingerprint;
use super::graph::{Graph, Stage, StageContext};
use super::hash_bytes;
use super::key::KeyParts;
use super::lineage;
pub use super::placement::{Environment, Split};
use super::progress::Reporter;
use super::remote::{Asked, Fetched, Refusal, Remote};
use super::run_log::RunOutcome;
use super::store::{BatchRun, Record, Store};
use super::walk_files;

/// Below this expected cost (multiply-accumulates, as [`Stage::expected_cost`]) a batching group's
/// ready instances run as one batch: about a second of training, where fusing saves more than the
/// parallelism it gives up; a larger group (min_ratio's seed sweep) still spreads over the slots.
/// `repro dag` prints each stage's work per step, so the groups' costs can be read off it.
const UNSPLIT_GROUP_MACS: u64 = 20_000_000_000;

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
    /// The most instances fused into one batched execution (1: never fuse).
    pub max_batch: usize,
    /// With a split placement: slots that CPU-placed stages leave free while accelerator stages
    /// wait, so the accelerator starts as soon as its inputs exist.
    pub accelerator_slots: usize,
    /// How much work a checkpointing stage does between saves (`None`: it never saves).
    pub checkpoint_every: Option<std::time::Duration>,
    /// Handed to stages as [`StageContext::data_dir`].
    pub data_dir: std::path::PathBuf,
    /// A shared cache asked for every stage the local store cannot serve, before computing it.
    pub remote: Option<std::sync::Arc<Remote>>,
    /// Compute what no cache serves (`false` for `repro pull`: fetch only).
    pub compute: bool,
}

#[derive(Default)]
pub struct RunSummary {
    pub ran: usize,
    /// Stages the remote served (their indices).
    pub fetched: Vec<usize>,
    pub cached: usize,
    /// Stages computed by this run (their indices).
    pub computed: Vec<usize>,
    /// With `compute` off: stages no cache could serve.
    pub unavailable: Vec<String>,
    /// The remote failed during the run and was not asked again.
    pub remote_dropped: bool,
    /// Keys whose record on the remote names damaged or missing objects: computed here, they
    /// are published again.
    pub remote_damaged: std::collections::BTreeSet<String>,
    pub failed: Vec<(String, String)>,
    /// Stages a signal stopped after they saved their work (see [`checkpoint`]).
    pub stopped: Vec<String>,
    pub skipped: Vec<String>,
    /// Record of every stage that is now up to date, by stage index.
    pub records: BTreeMap<usize, Record>,
}

impl RunSummary {
    /// How the run ended, as data (the run log's `outcome`; the CLI prints it as a line).
    pub fn outcome(&self) -> RunOutcome {
        RunOutcome {
            ran: self.ran,
            fetched: self.fetched.len(),
            cached: self.cached,
            failed: self.failed.iter().map(|(stage, _)| stage.clone()).collect(),
            stopped: self.stopped.clone(),
            skipped: self.skipped.clone(),
        }
    }
}

/// The key parts of `stage` given the blake3 of each of its inputs.
pub fn key_parts(stage: &Stage, inputs: BTreeMap<String, String>, env: &Environment) -> Result<KeyParts> {
    // The engine's own tests declare kinds build.rs does not bake; they key on their params alone.
    let code = match fingerprint::code_of(stage.kind.name) {
        Some(code) => code,
        None if cfg!(test) => BTreeMap::new(),
        None => bail!(
            "stage kind {} has no derived code key: declare it as StageKind::plain/numeric/numeric_batched(\"{}\", \
             run_function) under src/ and rebuild",
            stage.kind.name,
            stage.kind.name
        ),
    };
    let env = &stage.placed(env);
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
    out.extend(stage.pinned.iter().map(|(name, hash)| (name.clone(), hash.clone())));
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
    /// Stopped by a signal with its work checkpointed: its dependents wait for the next run.
    Stopped,
    Skipped,
    /// Not in any cache, and this run does not compute (`repro pull`).
    Unavailable,
}

/// Brings the selected stages up to date. Stage failures are collected, not returned as errors:
/// independent branches go on, and dependents of a failed stage are skipped.
///
/// A small state machine: each turn settles what needs no running ([`Scheduling::settle`]),
/// starts what fits ([`Scheduling::starts`]), then waits for one worker's results
/// ([`Scheduling::finish`]); it ends when nothing runs.
pub fn run(graph: &Graph, store: &Store, opts: &RunOptions) -> Result<RunSummary> {
    let reporter = Reporter::new();
    let mut run = Scheduling {
        graph,
        store,
        opts,
        reporter: &reporter,
        states: (0..graph.stages().len()).map(|_| State::Waiting).collect(),
        summary: RunSummary::default(),
        free_threads: opts.cores.max(1),
        running: 0,
        remote: opts.remote.as_deref(),
    };
    let (tx, rx) = mpsc::channel::<Finished>();
    std::thread::scope(|scope| {
        loop {
            run.settle();
            for start in run.starts() {
                let tx = tx.clone();
                let (reporter, env, data_dir) = (run.reporter, &opts.env, opts.data_dir.as_path());
                scope.spawn(move || {
                    let Start { jobs, members, threads } = start;
                    let settings = (threads, data_dir, opts.checkpoint_every);
                    let results = execute(jobs, settings, store, reporter, env);
                    let _ = tx.send(Finished { members, threads, results });
                });
            }
            if run.running == 0 {
                break;
            }
            run.finish(rx.recv().expect("a worker always reports"));
        }
    });
    Ok(run.summary)
}

/// What a worker reports: the stages it ran, the threads it held, each stage's result.
struct Finished {
    members: Vec<usize>,
    threads: usize,
    results: Vec<Result<Record>>,
}

/// Stages to start together on one worker (one, or a batch of one batching kind).
struct Start<'g> {
    jobs: Vec<Job<'g>>,
    members: Vec<usize>,
    threads: usize,
}

/// The scheduler's state between events: every stage's state, the summary so far, the threads
/// free and the workers running.
struct Scheduling<'a> {
    graph: &'a Graph,
    store: &'a Store,
    opts: &'a RunOptions,
    reporter: &'a Reporter,
    states: Vec<State>,
    summary: RunSummary,
    free_threads: usize,
    running: usize,
    remote: Option<&'a Remote>,
}

impl<'a> Scheduling<'a> {
    /// Settles every stage whose fate is decided without running it. What the remote serves
    /// settles more downstream: settle again until nothing moves.
    fn settle(&mut self) {
        let mut settled_more = true;
        while settled_more {
            let asking: Vec<usize> = self.graph.order().iter().copied().filter(|&i| self.settle_stage(i)).collect();
            settled_more = self.ask_remote(asking);
            if !self.opts.compute {
                for (i, state) in self.states.iter_mut().enumerate() {
                    if matches!(state, State::Ready(_)) {
                        *state = State::Unavailable;
                        self.summary.unavailable.push(self.graph.stage(i).id.clone());
                        settled_more = true;
                    }
                }
            }
        }
    }

    /// Settles stage `i` if it waits and can be decided now: skipped (an upstream failed),
    /// cached (its key's record is sound), or ready to run. True when it became ready (the
    /// remote is asked for it first).
    fn settle_stage(&mut self, i: usize) -> bool {
        let (graph, opts) = (self.graph, self.opts);
        if !opts.selected[i] || !matches!(self.states[i], State::Waiting) {
            return false;
        }
        let stage = graph.stage(i);
        let blocked = graph
            .deps(i)
            .iter()
            .find(|&&j| matches!(self.states[j], State::Failed | State::Skipped | State::Unavailable));
        if let Some(&j) = blocked {
            let why = if matches!(self.states[j], State::Unavailable) { "is in no cache" } else { "failed" };
            self.states[i] = State::Skipped;
            self.summary.skipped.push(stage.id.clone());
            self.reporter.line(&format!("[skipped] {} (upstream {} {why})", stage.id, graph.stage(j).id));
            return false;
        }
        if !graph.deps(i).iter().all(|&j| matches!(self.states[j], State::Done)) {
            return false;
        }
        let computed = inputs(graph, i, &self.summary.records)
            .and_then(|(hashes, lineage)| Ok((key_parts(stage, hashes, &opts.env)?, lineage)));
        let (parts, lineage) = match computed {
            Ok(p) => p,
            Err(e) => {
                self.fail(i, stage, format!("{e:#}"));
                return false;
            }
        };
        match self.store.record(&parts.key()) {
            Some(record) if self.store.check(&record).is_none() => {
                // Completed elsewhere (a cluster job, an earlier run): nothing to resume.
                checkpoint::remove(self.store.root(), &record.key);
                if opts.verbose {
                    self.reporter.line(&format!("[cached]  {}", stage.id));
                }
                self.summary.cached += 1;
                self.summary.records.insert(i, record);
                self.states[i] = State::Done;
                false
            }
            // The lineage file must be in the store before the stage reads it.
            _ => match lineage.map_or(Ok(()), |bytes| self.store.put_bytes(&bytes).map(drop)) {
                Ok(()) => {
                    self.states[i] = State::Ready(parts);
                    true
                }
                Err(e) => {
                    self.fail(i, stage, format!("{e:#}"));
                    false
                }
            },
        }
    }

    /// What to start now. Ready stages share the free threads evenly: many narrow runs beat one
    /// wide one. Accelerator stages first, then the most expensive: long stages start early.
    fn starts(&mut self) -> Vec<Start<'a>> {
        let (graph, opts) = (self.graph, self.opts);
        let jobs = opts.jobs.max(1);
        let ready = self.states.iter().filter(|s| matches!(s, State::Ready(_))).count();
        let share = self.free_threads / ready.min(jobs.saturating_sub(self.running).max(1)).max(1);
        let mut candidates: Vec<usize> =
            graph.order().iter().copied().filter(|&i| matches!(self.states[i], State::Ready(_))).collect();
        candidates.sort_by_key(|&i| {
            let stage = graph.stage(i);
            (!stage.on_accelerator(&opts.env), std::cmp::Reverse(stage.expected_cost()))
        });
        let held_back = self.held_back();
        let mut out = Vec::new();
        for i in candidates {
            // Asked to stop: what runs saves its work and ends; nothing new starts.
            if self.running >= jobs || self.free_threads == 0 || checkpoint::interrupted() {
                break;
            }
            // Fused into an earlier batch, or leaving its slot to a dearer stage.
            if !matches!(self.states[i], State::Ready(_)) || held_back(i, self.running) {
                continue;
            }
            let members = self.batch_members(i, ready);
            let threads = graph.stage(i).kind.max_threads.min(share).clamp(1, self.free_threads);
            self.free_threads -= threads;
            self.running += 1;
            let jobs = members.iter().map(|&j| self.take_job(j)).collect();
            out.push(Start { jobs, members, threads });
        }
        out
    }

    /// Whether a CPU training that declares its work leaves its slot, with `running` workers
    /// busy, to dearer ones about to be ready: at most half of the slots are kept (a slow
    /// download then idles half of them at most), and only where there are four or more (on two,
    /// keeping one made the whole study slower: bench/results/scheduling-2026-11-27/). Glue that
    /// declares no work (fetches, analyses) is never held back: accelerator stages may be
    /// waiting for it.
    fn held_back(&self) -> impl Fn(usize, usize) -> bool + 'a {
        let (graph, opts) = (self.graph, self.opts);
        let jobs = opts.jobs.max(1);
        let accelerator_waiting = (0..graph.stages().len()).any(|i| {
            opts.selected[i]
                && matches!(self.states[i], State::Waiting | State::Ready(_))
                && graph.stage(i).on_accelerator(&opts.env)
        });
        let cpu_jobs = if accelerator_waiting { jobs.saturating_sub(opts.accelerator_slots).max(1) } else { jobs };
        let most_kept = if cpu_jobs >= 4 { cpu_jobs / 2 } else { 0 };
        let imminent = if most_kept > 0 { imminent_costs(graph, &self.states, opts) } else { Vec::new() };
        move |i, running| {
            let stage = graph.stage(i);
            if stage.on_accelerator(&opts.env) || stage.work.is_none() {
                return false;
            }
            let dearer = imminent.iter().filter(|&&cost| cost > stage.expected_cost()).count();
            running + dearer.min(most_kept) >= cpu_jobs
        }
    }

    /// Stage `i` and, for a batching kind, the ready instances fused with it. When more are ready
    /// than `jobs` can run at once, instances are fused so that the queue drains in about `jobs`
    /// batches (sized by all slots, not the free ones: a group that becomes ready last still
    /// spreads over the slots that free up).
    fn batch_members(&self, i: usize, ready: usize) -> Vec<usize> {
        let (graph, opts) = (self.graph, self.opts);
        let stage = graph.stage(i);
        let mut members = vec![i];
        if !stage.kind.batches() {
            return members;
        }
        let placement = stage.placed(&opts.env);
        let fits = |j: usize| {
            let other = graph.stage(j);
            matches!(self.states[j], State::Ready(_))
                && std::ptr::eq(other.kind, stage.kind)
                && other.batch_group == stage.batch_group
                && other.placed(&opts.env) == placement
        };
        let more: Vec<usize> = graph.order().iter().copied().filter(|&j| j != i && fits(j)).collect();
        let group_cost = more.iter().map(|&j| graph.stage(j).expected_cost()).sum::<u64>();
        // A group too small to be worth a second slot is never split: each batch pays a fixed
        // cost (scratch, inputs, commit) that halving sub-second work does not repay.
        let size = if group_cost.saturating_add(stage.expected_cost()) < UNSPLIT_GROUP_MACS {
            opts.max_batch.max(1)
        } else {
            ready.div_ceil(opts.jobs.max(1)).clamp(1, opts.max_batch.max(1))
        };
        members.extend(more.into_iter().take(size - 1));
        members
    }

    /// Stage `j` (ready) as a job: now running, with where each of its inputs is.
    fn take_job(&mut self, j: usize) -> Job<'a> {
        let State::Ready(parts) = std::mem::replace(&mut self.states[j], State::Running) else {
            unreachable!("members are ready")
        };
        let member = self.graph.stage(j);
        let names = member.inputs.iter().map(|inp| inp.name.as_str());
        let names =
            names.chain(member.pinned.keys().map(String::as_str)).chain(member.lineage.then_some(lineage::INPUT));
        let inputs = names.map(|name| (name.to_string(), self.store.object_path(&parts.inputs[name]))).collect();
        Job { stage: member, parts, inputs }
    }

    /// One worker's results: its threads are free again, and each stage is done, stopped (a
    /// signal, its work checkpointed) or failed.
    fn finish(&mut self, Finished { members, threads, results }: Finished) {
        self.running -= 1;
        self.free_threads += threads;
        for (i, result) in members.into_iter().zip(results) {
            let stage = self.graph.stage(i);
            match result {
                Ok(record) => {
                    let batch = record.batch.as_ref().map_or(String::new(), |b| {
                        format!(" (one of a batch of {} that took {:.1}s)", b.size, b.seconds)
                    });
                    self.reporter.line(&format!("[ran {:>7.1}s] {}{batch}", record.seconds, stage.id));
                    checkpoint::remove(self.store.root(), &record.key);
                    self.summary.ran += 1;
                    self.summary.computed.push(i);
                    self.summary.records.insert(i, record);
                    self.states[i] = State::Done;
                }
                Err(e) if e.is::<Interrupted>() => {
                    self.reporter.line(&format!("[stopped] {}: {e}", stage.id));
                    self.summary.stopped.push(stage.id.clone());
                    self.states[i] = State::Stopped;
                }
                Err(e) => self.fail(i, stage, format!("{e:#}")),
            }
        }
    }

    /// Asks the remote for the records of the stages just found ready (`asking`); those it serves
    /// are done. True when any was served: their dependents may settle now. A remote that does not
    /// answer is dropped for the rest of the run with one warning, and everything is computed here.
    fn ask_remote(&mut self, asking: Vec<usize>) -> bool {
        let Some(from) = self.remote else {
            return false;
        };
        if asking.is_empty() {
            return false;
        }
        let (graph, store, opts, reporter) = (self.graph, self.store, self.opts, self.reporter);
        let (states, summary) = (&mut self.states, &mut self.summary);
        let key_of = |i: usize| match &states[i] {
            State::Ready(parts) => parts.key(),
            _ => unreachable!("asked stages are ready"),
        };
        let keys: Vec<String> = asking.iter().map(|&i| key_of(i)).collect();
        let asked: Vec<Asked> =
            asking.iter().zip(&keys).map(|(&i, key)| Asked::stage(graph, i, key, from.max_object_bytes())).collect();
        let mut served = false;
        for (n, (i, answer)) in asking.into_iter().zip(from.fetch(store, &asked)).enumerate() {
            let id = &graph.stage(i).id;
            match answer {
                Ok(Fetched::Served(record)) => {
                    checkpoint::remove(store.root(), &keys[n]);
                    if opts.verbose {
                        reporter.line(&format!("[fetched] {id}"));
                    }
                    summary.fetched.push(i);
                    summary.records.insert(i, *record);
                    states[i] = State::Done;
                    served = true;
                }
                Ok(Fetched::Absent) => {}
                Ok(Fetched::Refused(why)) => {
                    let then = if opts.compute { "computing it" } else { "not computed (pull)" };
                    reporter.line(&format!("[remote]  {id}: not used, {why}; {then}"));
                    // A damaged object under a sound record: the push after this run uploads it again
                    // (an unusable record, it replaces anyway).
                    if matches!(
                        why,
                        Refusal::CorruptObject { .. } | Refusal::MissingObject { .. } | Refusal::NotAFile { .. }
                    ) {
                        summary.remote_damaged.insert(keys[n].clone());
                    }
                }
                Err(e) if self.remote.is_some() => {
                    reporter.line(&format!("warning: remote {} failed ({e:#}): computing here without it", from.url()));
                    self.remote = None;
                    summary.remote_dropped = true;
                }
                Err(_) => {}
            }
        }
        served
    }

    /// Stage `i` failed: said, counted, and its dependents will be skipped.
    fn fail(&mut self, i: usize, stage: &Stage, error: String) {
        self.reporter.line(&format!("[FAILED]  {}: {error}", stage.id));
        self.summary.failed.push((stage.id.clone(), error));
        self.states[i] = State::Failed;
    }
}

/// A stage instance about to run: its key parts and where its inputs are.
struct Job<'g> {
    stage: &'g Stage,
    parts: KeyParts,
    inputs: BTreeMap<String, std::path::PathBuf>,
}

/// Seconds since the Unix epoch.
fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// Runs `work` on a pool of `threads` threads, a panic caught as an error; with the pool's CPU
/// time where the platform has a per-thread clock. The budget is enforced, not advised: the
/// stage's parallel work runs on a pool of that size.
fn on_own_pool(threads: usize, work: impl FnOnce() -> Result<()> + Send) -> (Result<()>, Option<f64>) {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("stage-worker-{i}"))
        .build()
        .context("cannot start the stage's thread pool")
        .map(|pool| {
            let cpu_before = pool_cpu_seconds(&pool);
            let result = match pool.install(|| catch_unwind(AssertUnwindSafe(work))) {
                Ok(result) => result,
                Err(panic) => Err(anyhow!("panicked: {}", panic_message(&panic))),
            };
            (result, pool_cpu_seconds(&pool).zip(cpu_before).map(|(after, before)| after - before))
        })
        .unwrap_or_else(|e| (Err(e), None))
}

/// Runs stage instances (one, or a batch of one batching kind) in scratch directories, then
/// commits each one's outputs and record.
fn execute(
    jobs: Vec<Job>,
    (threads, data_dir, checkpoint_every): (usize, &Path, Option<std::time::Duration>),
    store: &Store,
    reporter: &Reporter,
    env: &Environment,
) -> Vec<Result<Record>> {
    let first = jobs[0].stage;
    let env = &first.placed(env);
    let scratches: Vec<_> = match jobs.iter().map(|_| store.scratch_dir()).collect::<Result<Vec<_>>>() {
        Ok(dirs) => dirs,
        Err(e) => return jobs.iter().map(|_| Err(anyhow!("{e:#}"))).collect(),
    };
    let (started_unix, started) = (unix_now(), Instant::now());
    let label = if jobs.len() == 1 { first.id.clone() } else { format!("{} and {} more", first.id, jobs.len() - 1) };
    let progress = reporter.start(&label);
    let checkpoint_cost = checkpoint::Cost::default();
    let (jobs, commits): (Vec<_>, Vec<_>) =
        jobs.into_iter().map(|job| ((job.stage, job.inputs, job.parts.key()), (job.stage, job.parts))).unzip();
    let ctxs: Vec<StageContext> = jobs
        .into_iter()
        .zip(&scratches)
        .map(|((stage, inputs, key), scratch)| StageContext {
            stage,
            inputs,
            out_dir: scratch.clone(),
            threads,
            progress: &progress,
            checkpoint: Checkpoint::new((store.root(), key), &stage.id, checkpoint_every, (reporter, &checkpoint_cost)),
            env,
            data_dir,
        })
        .collect();
    let (outcome, cpu_seconds) = on_own_pool(threads, || first.kind.execute(&ctxs));
    drop(ctxs);
    drop(progress);
    if let Some(cost) = checkpoint_cost.summary() {
        reporter.line(&format!("[checkpoint] {label}: {cost}"));
    }
    let seconds = started.elapsed().as_secs_f64();
    let n = commits.len();
    // A batch's wall and CPU time are shared evenly: summed over records they stay what was spent.
    let batch = (n > 1).then_some(BatchRun { size: n, seconds, cpu_seconds });
    let timing =
        Timing { started: started_unix, seconds: seconds / n as f64, cpu_seconds: cpu_seconds.map(|c| c / n as f64) };
    let results = commits
        .into_iter()
        .zip(&scratches)
        .map(|((stage, parts), scratch)| match &outcome {
            Ok(()) => commit(stage, parts, scratch, (&timing, batch.clone()), store, env),
            Err(e) if e.is::<Interrupted>() => Err(Interrupted.into()),
            Err(e) => Err(anyhow!("{e:#}")),
        })
        .collect();
    for scratch in &scratches {
        let _ = std::fs::remove_dir_all(scratch);
    }
    results
}

/// The expected costs of the CPU trainings that wait only for glue (stages that declare no work:
/// fetches, generated data) that is running or about to start: they will be ready in moments.
/// Without slots kept for them, sweeps that happen to be ready first fill every slot and the
/// longest trainings start last (on the GPU machine random_labels and sensitivity at batch 5,
/// waiting only for MNIST, started behind the sweeps and ended the run).
fn imminent_costs(graph: &Graph, states: &[State], opts: &RunOptions) -> Vec<u64> {
    let glue_underway =
        |j: usize| matches!(states[j], State::Running | State::Ready(_)) && graph.stage(j).work.is_none();
    (0..graph.stages().len())
        .filter(|&i| {
            let stage = graph.stage(i);
            let deps = graph.deps(i);
            opts.selected[i]
                && matches!(states[i], State::Waiting)
                && stage.work.is_some()
                && !stage.on_accelerator(&opts.env)
                && deps.iter().any(|&j| glue_underway(j))
                && deps.iter().all(|&j| matches!(states[j], State::Done) || glue_underway(j))
        })
        .map(|i| graph.stage(i).expected_cost())
        .collect()
}

fn commit(
    stage: &Stage,
    parts: KeyParts,
    scratch: &Path,
    (timing, batch): (&Timing, Option<BatchRun>),
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
        started: timing.started,
        seconds: timing.seconds,
        cpu_seconds: timing.cpu_seconds,
        backend,
        device,
        machine: Some(super::placement::this_machine()),
        parts,
        batch,
    };
    store.commit(&record)?;
    Ok(record)
}

/// When a stage ran (Unix seconds), and its share of the wall and CPU time.
struct Timing {
    started: f64,
    seconds: f64,
    cpu_seconds: Option<f64>,
}

/// CPU time spent so far by every thread of `pool`, summed (each thread reads its own clock).
/// Threads a library starts on its own (libtorch's intra-op pool) are not among them.
fn pool_cpu_seconds(pool: &rayon::ThreadPool) -> Option<f64> {
    pool.broadcast(|_| thread_cpu_seconds()).into_iter().sum()
}

#[cfg(unix)]
fn thread_cpu_seconds() -> Option<f64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only the timespec it is given.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    ok.then_some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
}

#[cfg(not(unix))]
fn thread_cpu_seconds() -> Option<f64> {
    None
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
    use crate::engine::graph::{Runner, Stage, StageKind};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static BUSY: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);

    fn work(ctx: &StageContext) -> Result<()> {
        let now = BUSY.fetch_add(ctx.threads, Ordering::SeqCst) + ctx.threads;
        PEAK.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(30));
        BUSY.fetch_sub(ctx.threads, Ordering::SeqCst);
        write_own_id(ctx)?;
        Ok(())
    }

    /// Every test stage's one output: its own id, so outputs can be traced to instances.
    fn write_own_id(ctx: &StageContext) -> Result<()> {
        Ok(std::fs::write(ctx.output("out.txt")?, ctx.stage.id.as_bytes())?)
    }

    fn broken(_: &StageContext) -> Result<()> {
        anyhow::bail!("deliberate failure")
    }

    static WIDE: StageKind = StageKind { name: "wide", numeric: false, max_threads: 2, run: Runner::One(work) };
    static BROKEN: StageKind = StageKind::plain("broken", broken);

    /// Options for `stages` stages on `jobs` slots and as many threads, CPU only.
    fn options(store: &Store, jobs: usize, stages: usize, max_batch: usize) -> RunOptions {
        RunOptions {
            jobs,
            cores: jobs,
            env: Environment::default(),
            selected: vec![true; stages],
            verbose: false,
            data_dir: store.root().join("data"),
            max_batch,
            accelerator_slots: 0,
            checkpoint_every: None,
            remote: None,
            compute: true,
        }
    }

    /// A store in a fresh directory, removed when the returned guard drops.
    fn temp_store(name: &str) -> (tempfile::TempDir, Store) {
        let dir = tempfile::Builder::new().prefix(&format!("repro-sched-{name}-")).tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn placement_keeps_small_work_on_the_cpu() {
        let env = Environment {
            backend: "tch".into(),
            device: "cuda:0".into(),
            split: Some(Split { min_work: 1000, small: ("flex".into(), "cpu".into()) }),
        };
        let stage = |work: Option<u64>| {
            let s = Stage::new(&WIDE, &[("w", format!("{work:?}"))], &());
            match work {
                Some(w) => s.with_work(w),
                None => s,
            }
        };
        let small = stage(Some(999)).placed(&env);
        assert_eq!((small.backend.as_str(), small.device.as_str()), ("flex", "cpu"));
        let large = stage(Some(1000)).placed(&env);
        assert_eq!((large.backend.as_str(), large.device.as_str()), ("tch", "cuda:0"));
        assert_eq!(stage(None).placed(&env).device, "cuda:0", "no declared work: the configured device");
        let plain = Environment { split: None, ..env.clone() };
        assert_eq!(stage(Some(1)).placed(&plain).device, "cuda:0", "no split: every stage on the device");
    }

    #[test]
    fn thread_budget_is_never_exceeded_and_failures_stay_local() {
        let (_scratch, store) = temp_store("budget");
        let mut stages: Vec<Stage> = (0..6).map(|i| Stage::new(&WIDE, &[("i", i.to_string())], &())).collect();
        let bad = Stage::new(&BROKEN, &[], &());
        let after_bad = Stage::new(&WIDE, &[("i", "dependent".into())], &()).input("x", &bad, "out.txt");
        stages.push(bad);
        stages.push(after_bad);
        let graph = Graph::new(stages).unwrap();
        let opts = RunOptions { cores: 3, ..options(&store, 4, 8, 1) };
        let summary = run(&graph, &store, &opts).unwrap();
        assert!(PEAK.load(Ordering::SeqCst) <= 3, "peak {}", PEAK.load(Ordering::SeqCst));
        assert!(PEAK.load(Ordering::SeqCst) >= 2, "stages did run concurrently");
        assert_eq!((summary.ran, summary.cached, summary.failed.len(), summary.skipped.len()), (6, 0, 1, 1));
        assert!(summary.failed[0].1.contains("deliberate failure"));
        // The independent stages are cached now; the broken one is retried.
        let again = run(&graph, &store, &opts).unwrap();
        assert_eq!((again.ran, again.cached, again.failed.len()), (0, 6, 1));
    }

    /// Copies its pinned input `x` to its output.
    fn copy_pinned(ctx: &StageContext) -> Result<()> {
        std::fs::copy(ctx.input("x")?, ctx.output("out.txt")?)?;
        Ok(())
    }

    static COPY: StageKind = StageKind::plain("copy", copy_pinned);

    #[test]
    fn a_pinned_object_is_read_from_the_store_and_keys_the_stage() {
        let (_scratch, store) = temp_store("pinned");
        let (a, b) = (store.put_bytes(b"one").unwrap(), store.put_bytes(b"two").unwrap());
        let graph = |hash: &str| Graph::new(vec![Stage::new(&COPY, &[], &()).pinned_input("x", hash)]).unwrap();
        let summary = run(&graph(&a.hash), &store, &options(&store, 1, 1, 1)).unwrap();
        assert_eq!(summary.ran, 1);
        let out = |summary: &RunSummary| {
            std::fs::read(store.object_path(&summary.records[&0].outputs["out.txt"].hash)).unwrap()
        };
        assert_eq!(out(&summary), b"one");
        assert_eq!(run(&graph(&a.hash), &store, &options(&store, 1, 1, 1)).unwrap().cached, 1);
        // Another object under the same name is another key.
        let other = run(&graph(&b.hash), &store, &options(&store, 1, 1, 1)).unwrap();
        assert_eq!((other.ran, out(&other)), (1, b"two".to_vec()));
    }

    static BATCH_SIZES: std::sync::Mutex<Vec<(String, usize)>> = std::sync::Mutex::new(Vec::new());

    /// Each instance writes its own label; the batch notes its group and size.
    fn batched(ctxs: &[StageContext]) -> Result<()> {
        let group = ctxs[0].stage.batch_group.clone();
        assert!(ctxs.iter().all(|c| c.stage.batch_group == group), "one group per batch");
        BATCH_SIZES.lock().unwrap().push((group, ctxs.len()));
        for ctx in ctxs {
            write_own_id(ctx)?;
        }
        Ok(())
    }

    /// The batches run so far of these groups (tests share the log: each reads its own groups).
    fn batch_sizes_of(groups: &[&str]) -> Vec<(String, usize)> {
        BATCH_SIZES.lock().unwrap().iter().filter(|(g, _)| groups.contains(&g.as_str())).cloned().collect()
    }

    static SWEEP: StageKind = StageKind::numeric_batched("sweep", batched);

    #[test]
    fn ready_instances_of_a_group_are_fused_into_as_many_batches_as_slots() {
        let (_scratch, store) = temp_store("batch");
        let stages: Vec<Stage> = (0..10)
            .map(|i| {
                Stage::new(&SWEEP, &[("i", i.to_string())], &())
                    .batch_group(if i < 6 { "a" } else { "b" })
                    .with_work(UNSPLIT_GROUP_MACS)
            })
            .collect();
        let graph = Graph::new(stages).unwrap();
        let summary = run(&graph, &store, &options(&store, 2, 10, 4)).unwrap();
        assert_eq!(summary.ran, 10);
        let sizes = batch_sizes_of(&["a", "b"]);
        // 10 ready for 2 slots: the first batch takes ceil(10 / 2) = 5, capped at 4; later ones are
        // sized by what is still ready; groups never mix (asserted in `batched`).
        assert_eq!(sizes.iter().map(|(_, n)| *n).max(), Some(4), "{sizes:?}");
        let total = |g: &str| sizes.iter().filter(|(group, _)| group == g).map(|(_, n)| n).sum::<usize>();
        assert_eq!((total("a"), total("b")), (6, 4), "{sizes:?}");
        assert!(sizes.len() <= 5, "fused: {sizes:?}");
        assert!(summary.records.values().filter(|r| r.batch.as_ref().is_some_and(|b| b.size == 4)).count() >= 4);
        for (i, record) in &summary.records {
            if let Some(batch) = &record.batch {
                assert!((record.seconds * batch.size as f64 - batch.seconds).abs() < 1e-9, "seconds is the share");
            }
            let out = std::fs::read_to_string(store.object_path(&record.outputs["out.txt"].hash)).unwrap();
            assert_eq!(out, graph.stage(*i).id, "each instance keeps its own outputs");
        }
        // Fusion is not in the key: unfused, everything is cached.
        let again = run(&graph, &store, &options(&store, 2, 10, 1)).unwrap();
        assert_eq!((again.ran, again.cached), (0, 10));
    }

    #[test]
    fn a_group_too_cheap_to_share_slots_runs_as_one_batch() {
        let (_scratch, store) = temp_store("cheap-batch");
        let stages = (0..8).map(|i| {
            Stage::new(&SWEEP, &[("i", i.to_string())], &())
                .batch_group("small")
                .with_work(UNSPLIT_GROUP_MACS / 100)
                .with_steps(10)
        });
        let graph = Graph::new(stages.collect()).unwrap();
        let summary = run(&graph, &store, &options(&store, 2, 8, 256)).unwrap();
        assert_eq!(summary.ran, 8);
        let sizes = batch_sizes_of(&["small"]);
        assert_eq!(sizes, vec![("small".to_string(), 8)], "8 x 10 x 1/100 of the floor: one batch");
    }

    /// Spins on the CPU for 60 ms of thread time, then sleeps 60 ms.
    fn spin_then_sleep(ctx: &StageContext) -> Result<()> {
        let start = thread_cpu_seconds().unwrap();
        let mut x = 0u64;
        while thread_cpu_seconds().unwrap() - start < 0.06 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        std::thread::sleep(std::time::Duration::from_millis(60));
        write_own_id(ctx)
    }

    static SPIN: StageKind = StageKind::plain("spin", spin_then_sleep);

    #[test]
    fn a_record_keeps_the_cpu_time_of_its_stage_not_its_wall_time() {
        let (_scratch, store) = temp_store("cpu");
        let graph = Graph::new(vec![Stage::new(&SPIN, &[("i", "0".into())], &())]).unwrap();
        let summary = run(&graph, &store, &options(&store, 1, 1, 1)).unwrap();
        let record = summary.records.values().next().unwrap();
        let cpu = record.cpu_seconds.expect("a per-thread clock on this platform");
        assert!(record.seconds >= 0.12, "wall {}", record.seconds);
        // The spin, not the sleep: 60 ms and a little for the pool and the outputs.
        assert!((0.055..0.1).contains(&cpu), "cpu {cpu}, wall {}", record.seconds);
    }

    static STARTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    fn note_start(ctx: &StageContext) -> Result<()> {
        STARTED.lock().unwrap().push(ctx.stage.id.clone());
        write_own_id(ctx)?;
        Ok(())
    }

    static NOTED: StageKind = StageKind::plain("noted", note_start);

    #[test]
    fn the_most_expensive_ready_stage_starts_first() {
        let (_scratch, store) = temp_store("order");
        let stage = |name: &str, work: u64, steps: u64| {
            Stage::new(&NOTED, &[("s", name.to_string())], &()).with_work(work).with_steps(steps)
        };
        // Graph order cheap, dear, middle; declared cost 10, 300, 40.
        let graph = Graph::new(vec![stage("cheap", 10, 1), stage("dear", 100, 3), stage("middle", 20, 2)]).unwrap();
        run(&graph, &store, &options(&store, 1, 3, 1)).unwrap();
        let started = std::mem::take(&mut *STARTED.lock().unwrap());
        assert_eq!(started, ["noted[s=dear]", "noted[s=middle]", "noted[s=cheap]"]);
    }

    static STARTED_AFTER_FETCH: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    /// The fetch takes 50 ms; cheap stages note their start 20 ms late (so that a stage the
    /// scheduler started before them is noted first whatever the threads do) and run 400 ms more,
    /// so that the last cheap ones start long after the dear one: on a loaded shared host a
    /// thread can wait tens of milliseconds for a core, and with 60 ms the order was once wrong.
    fn note_start_after_fetch(ctx: &StageContext) -> Result<()> {
        let cheap = ctx.stage.id.contains("cheap");
        let delay = if ctx.stage.id.contains("fetch") {
            50
        } else if cheap {
            20
        } else {
            0
        };
        std::thread::sleep(std::time::Duration::from_millis(delay));
        STARTED_AFTER_FETCH.lock().unwrap().push(ctx.stage.id.clone());
        if cheap {
            std::thread::sleep(std::time::Duration::from_millis(400));
        }
        write_own_id(ctx)
    }

    static NOTED_AFTER_FETCH: StageKind = StageKind::plain("noted", note_start_after_fetch);

    #[test]
    fn a_slot_waits_for_a_dearer_training_about_to_be_ready() {
        let (_scratch, store) = temp_store("imminent");
        let stage = |name: &str| Stage::new(&NOTED_AFTER_FETCH, &[("s", name.to_string())], &());
        let fetch = stage("fetch");
        let dear = stage("dear").with_work(1000).with_steps(100).input("x", &fetch, "out.txt");
        let cheap = |i: usize| stage(&format!("cheap{i}")).with_work(1).with_steps(1);
        let graph = Graph::new(vec![cheap(0), cheap(1), cheap(2), cheap(3), cheap(4), fetch, dear]).unwrap();
        // Four slots: three cheap stages and the fetch take them, one kept for the dear stage,
        // which starts when the fetch ends, before the last two cheap ones (without the kept
        // slot, four cheap stages would start first, then the fetch, then the dear stage).
        let summary = run(&graph, &store, &options(&store, 4, 7, 1)).unwrap();
        assert_eq!(summary.ran, 7);
        let started = std::mem::take(&mut *STARTED_AFTER_FETCH.lock().unwrap());
        let at = |id: &str| started.iter().position(|s| s == id).unwrap();
        assert!(at("noted[s=dear]") < at("noted[s=cheap3]").min(at("noted[s=cheap4]")), "{started:?}");
    }

    static STARTED_WITH_GPU: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    /// CPU stages note their start 20 ms late, so that a stage the scheduler started before them
    /// is noted first whatever the threads do.
    fn note_start_with_gpu(ctx: &StageContext) -> Result<()> {
        if ctx.stage.id.contains("cpu") {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        STARTED_WITH_GPU.lock().unwrap().push(ctx.stage.id.clone());
        write_own_id(ctx)
    }

    static TRAINING: StageKind = StageKind::numeric("training", note_start_with_gpu);
    static FETCH: StageKind = StageKind::plain("fetch", note_start_with_gpu);

    #[test]
    fn a_gpu_stage_starts_as_soon_as_its_input_exists() {
        let (_scratch, store) = temp_store("gpu-first");
        let fetch = Stage::new(&FETCH, &[], &());
        let gpu = Stage::new(&TRAINING, &[("on", "gpu".into())], &()).with_work(1000).input("x", &fetch, "out.txt");
        let cpu = |i: usize| Stage::new(&TRAINING, &[("on", format!("cpu{i}"))], &()).with_work(1).with_steps(10);
        let graph = Graph::new(vec![cpu(0), cpu(1), cpu(2), fetch, gpu]).unwrap();
        let env = Environment {
            backend: "tch".into(),
            device: "cuda:0".into(),
            split: Some(Split { min_work: 100, small: ("flex".into(), "cpu".into()) }),
        };
        // Two slots, one kept for the GPU stage while it waits: the CPU sweep takes one, the fetch
        // the other, and the GPU stage goes next, before the rest of the sweep (without the kept
        // slot, two CPU stages would take both and the fetch would wait).
        let opts = RunOptions { env, accelerator_slots: 1, ..options(&store, 2, 5, 1) };
        let summary = run(&graph, &store, &opts).unwrap();
        assert_eq!(summary.ran, 5);
        let started = std::mem::take(&mut *STARTED_WITH_GPU.lock().unwrap());
        let at = |id: &str| started.iter().position(|s| s == id).unwrap();
        assert!(at("training[on=gpu]") < at("training[on=cpu1]").min(at("training[on=cpu2]")), "{started:?}");
        let device = |id: &str| summary.records.values().find(|r| r.stage == id).unwrap().device.clone();
        assert_eq!((device("training[on=gpu]"), device("training[on=cpu0]")), ("cuda:0".into(), "cpu".into()));
    }
}
