//! `repro challenge`: recompute cached stages in a scratch store and compare every output byte for
//! byte with what the cache holds, as `nix-build --check` and `guix challenge` do for builds. The
//! cache itself is only read: the scratch store gets copies of the records and objects the
//! recomputed stages read, and is removed afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use anyhow::{Context, Result, bail};

use super::{Workspace, cores};
use crate::analysis::Table;
use crate::engine::Store;
use crate::engine::checkpoint;
use crate::engine::scheduler;
use crate::engine::status::status;
use crate::engine::store::Record;

pub struct ChallengeArgs {
    pub patterns: Vec<String>,
    /// Recompute about this many stages, at least one of every kind among those selected.
    pub sample: Option<usize>,
    /// Challenge what the remote holds for this configuration instead of the local cache.
    pub remote: bool,
}

/// What recomputing one stage showed.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Every output the same bytes.
    Identical { outputs: usize },
    /// The recomputation read other inputs (an upstream stage, recomputed too, differed).
    InputsDiffer,
    /// Outputs that differ, each with what differs.
    Differs(Vec<(String, Difference)>),
    /// The recomputation failed.
    Failed(String),
}

/// How one output differs.
#[derive(Debug, PartialEq)]
pub enum Difference {
    /// A table: per column that differs, the largest absolute and relative difference of its
    /// numbers, or how many cells differ where the column is not numeric.
    Table(Vec<(String, ColumnDifference)>),
    /// Other bytes (or a table whose shape changed): the two sizes.
    Bytes { cached: u64, recomputed: u64 },
    /// Present on one side only.
    Missing { in_cache: bool },
}

#[derive(Debug, PartialEq)]
pub enum ColumnDifference {
    Numbers { max_abs: f64, max_rel: f64 },
    Cells(usize),
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Table(columns) => {
                let each: Vec<String> = columns
                    .iter()
                    .map(|(name, d)| match d {
                        ColumnDifference::Numbers { max_abs, max_rel } => {
                            format!("{name} max |Δ| {max_abs:.3e} (relative {max_rel:.3e})")
                        }
                        ColumnDifference::Cells(n) => format!("{name} {n} cell(s)"),
                    })
                    .collect();
                write!(f, "{}", each.join(", "))
            }
            Difference::Bytes { cached, recomputed } => {
                write!(f, "bytes differ ({cached} bytes cached, {recomputed} recomputed)")
            }
            Difference::Missing { in_cache: true } => write!(f, "not produced by the recomputation"),
            Difference::Missing { in_cache: false } => write!(f, "produced by the recomputation only"),
        }
    }
}

/// Runs the challenge; exit code 0 when every recomputed stage matched, 1 when one differed or
/// failed.
pub fn challenge(ws: &Workspace, args: &ChallengeArgs) -> Result<i32> {
    checkpoint::install_signal_handlers()?;
    let plan = ws.plan()?;
    let graph = &plan.graph;
    let selected = graph.select(&args.patterns)?;
    // With --remote, the remote's records and objects for the selected stages, fetched into a
    // scratch store (the local cache is not touched): the rest of the challenge reads that.
    let remote_view = args.remote.then(|| RemoteView::fetch(ws, &plan, &selected)).transpose()?;
    let store = match &remote_view {
        Some(view) => view.store.clone(),
        None => Store::open_existing(&ws.cache)
            .with_context(|| format!("no cache at {}: nothing to challenge", ws.cache.display()))?,
    };
    let source = match &remote_view {
        Some(view) => format!("the remote {}", view.url),
        None => ws.cache.display().to_string(),
    };
    // Every stage that is up to date here, with its record.
    let everything = vec![true; graph.stages().len()];
    let mut cached: BTreeMap<usize, Record> = BTreeMap::new();
    for s in status(graph, Some(&store), &plan.env, &everything, None) {
        if let (false, Some(key)) = (s.stale, s.key.as_deref())
            && let (Some(i), Some(record)) = (graph.find(&s.stage), store.record(key))
        {
            cached.insert(i, record);
        }
    }
    let candidates: Vec<usize> =
        graph.order().iter().copied().filter(|i| selected[*i] && cached.contains_key(i)).collect();
    if candidates.is_empty() {
        match &remote_view {
            Some(_) => bail!("{source} holds no selected stage of this configuration: nothing to challenge"),
            None => bail!("no selected stage is up to date in {source}: run it first (`repro status` says why)"),
        }
    }
    let kinds: Vec<&str> = candidates.iter().map(|&i| graph.stage(i).kind.name).collect();
    let chosen: BTreeSet<usize> = match args.sample {
        Some(n) => sample(&kinds, n).into_iter().map(|k| candidates[k]).collect(),
        None => candidates.iter().copied().collect(),
    };

    // A stage that reads its lineage (the report) keys on its upstream stages' records, wall
    // times included: it is recomputed apart, on the cached records, so that a recomputed
    // upstream stage's other timing is not taken for a difference.
    let (with_lineage, plain): (BTreeSet<usize>, BTreeSet<usize>) =
        chosen.iter().copied().partition(|&i| graph.stage(i).lineage);
    eprintln!("recomputing {} of {} cached stage(s) in a scratch store ...", chosen.len(), candidates.len());
    let mut runs = Vec::new();
    for group in [plain, with_lineage].into_iter().filter(|g| !g.is_empty()) {
        runs.push(Recomputed::of(ws, &plan, &store, &cached, group)?);
    }

    let mut differing = 0;
    for &i in &chosen {
        let stage = graph.stage(i);
        let cached_record = &cached[&i];
        let run = runs.iter().find(|r| r.stages.contains(&i)).expect("every chosen stage is in a group");
        let recomputed = run.summary.records.get(&i);
        let failed = run.summary.failed.iter().find(|(s, _)| *s == stage.id);
        let verdict = match (recomputed, failed) {
            (_, Some((_, error))) => Verdict::Failed(error.clone()),
            (None, None) => Verdict::Failed("not recomputed (an upstream stage failed or the run stopped)".into()),
            (Some(new), None) => compare(&store, cached_record, &run.store, new)?,
        };
        if !matches!(verdict, Verdict::Identical { .. }) {
            differing += 1;
        }
        println!("{}", line(&stage.id, &verdict, cached_record, recomputed));
    }
    println!(
        "{} of {} recomputed stage(s) identical to {}{}",
        chosen.len() - differing,
        chosen.len(),
        if remote_view.is_some() { "the remote's" } else { "the cache" },
        if differing > 0 { format!("; {differing} not") } else { String::new() }
    );
    Ok(if differing == 0 { 0 } else { 1 })
}

/// What a remote holds for the selected stages (and what they read), in a scratch store beside
/// the cache, fetched and checked as `repro pull` does (records validated, signatures where the
/// configuration requires them, objects hashed), computing nothing.
struct RemoteView {
    store: Store,
    url: String,
    _dir: tempfile::TempDir,
}

impl RemoteView {
    fn fetch(ws: &Workspace, plan: &super::Plan, selected: &[bool]) -> Result<RemoteView> {
        let remote = super::sharing::require_remote(plan)?;
        let dir = scratch_dir(ws, ".repro-challenge-remote-")?;
        let store = Store::open(dir.path())?;
        let summary = super::sharing::fetch_only(ws, plan, &store, &remote, selected, false)?;
        eprintln!("fetched {} stage(s) from {}", summary.fetched.len(), remote.url());
        Ok(RemoteView { store, url: remote.url().to_string(), _dir: dir })
    }
}

/// A temporary folder beside the cache (on its file system), removed when dropped.
fn scratch_dir(ws: &Workspace, prefix: &str) -> Result<tempfile::TempDir> {
    let parent = ws.cache.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    Ok(tempfile::Builder::new().prefix(prefix).tempdir_in(parent)?)
}

/// One scheduler run over a scratch store: the stages it recomputed and what it made.
struct Recomputed {
    stages: BTreeSet<usize>,
    store: Store,
    summary: scheduler::RunSummary,
    /// Removed when the challenge ends.
    _dir: tempfile::TempDir,
}

impl Recomputed {
    /// Recomputes `stages` in a scratch store beside the cache that holds copies of the records
    /// and objects they read (their upstream stages that are not recomputed themselves).
    fn of(
        ws: &Workspace,
        plan: &super::Plan,
        store: &Store,
        cached: &BTreeMap<usize, Record>,
        stages: BTreeSet<usize>,
    ) -> Result<Recomputed> {
        let graph = &plan.graph;
        // What the recomputed stages read: their upstream stages (Graph::with_upstream marks a
        // stage and everything it needs).
        let mut upstream: BTreeSet<usize> = BTreeSet::new();
        for &i in &stages {
            upstream
                .extend(graph.with_upstream(i).into_iter().enumerate().filter(|&(j, up)| up && j != i).map(|(j, _)| j));
        }
        let dir = scratch_dir(ws, ".repro-challenge-")?;
        let scratch = Store::open(dir.path())?;
        for (_, record) in cached.iter().filter(|(i, _)| upstream.contains(i) && !stages.contains(i)) {
            for object in record.outputs.values() {
                let copied = scratch.put_file(&store.object_path(&object.hash))?;
                if copied.hash != object.hash {
                    bail!("{}: the cache's object {} is damaged (`repro verify`)", record.stage, object.hash);
                }
            }
            scratch.commit(record)?;
        }
        // The scheduler brings a stage's upstream along: those are cached in the scratch store.
        let mut selected = vec![false; graph.stages().len()];
        stages.iter().chain(&upstream).for_each(|&i| selected[i] = true);
        let jobs = cores();
        let mut opts = plan.run_options(ws, (jobs, jobs), selected, false);
        // Nothing saved along the way: a challenge is short-lived and never resumes.
        opts.checkpoint_every = None;
        let summary = scheduler::run(graph, &scratch, &opts)?;
        Ok(Recomputed { stages, store: scratch, summary, _dir: dir })
    }
}

/// One line per stage: the verdict, and for a difference where each side was computed.
fn line(stage: &str, verdict: &Verdict, cached: &Record, recomputed: Option<&Record>) -> String {
    let machine = |r: &Record| {
        let on = r.machine.as_deref().unwrap_or("an unrecorded machine");
        if r.backend == "-" { on.to_string() } else { format!("{on}, {} on {}", r.backend, r.device) }
    };
    match verdict {
        Verdict::Identical { outputs } => format!("identical  {stage} ({outputs} output(s))"),
        Verdict::InputsDiffer => format!("inputs differ  {stage}: an upstream stage recomputed differently"),
        Verdict::Failed(error) => format!("failed  {stage}: {error}"),
        Verdict::Differs(outputs) => {
            let each: Vec<String> = outputs.iter().map(|(name, d)| format!("{name}: {d}")).collect();
            let here = recomputed.map(machine).unwrap_or_default();
            format!("DIFFERS  {stage} (cached: {}; recomputed: {here}): {}", machine(cached), each.join("; "))
        }
    }
}

/// Compares the recomputed record's outputs with the cached record's.
fn compare(store: &Store, cached: &Record, scratch: &Store, recomputed: &Record) -> Result<Verdict> {
    if cached.key != recomputed.key {
        return Ok(Verdict::InputsDiffer);
    }
    let names: BTreeSet<&String> = cached.outputs.keys().chain(recomputed.outputs.keys()).collect();
    let mut differs = Vec::new();
    for name in names {
        let difference = match (cached.outputs.get(name), recomputed.outputs.get(name)) {
            (Some(a), Some(b)) if a.hash == b.hash => continue,
            (Some(a), Some(b)) => {
                let (a_path, b_path) = (store.object_path(&a.hash), scratch.object_path(&b.hash));
                let tables = name
                    .ends_with(".csv")
                    .then(|| Ok::<_, anyhow::Error>((Table::read_csv(&a_path)?, Table::read_csv(&b_path)?)));
                match tables.transpose().ok().flatten().and_then(|(a, b)| table_difference(&a, &b)) {
                    Some(columns) => Difference::Table(columns),
                    None => Difference::Bytes { cached: a.size, recomputed: b.size },
                }
            }
            (Some(_), None) => Difference::Missing { in_cache: true },
            (None, _) => Difference::Missing { in_cache: false },
        };
        differs.push((name.clone(), difference));
    }
    Ok(if differs.is_empty() {
        Verdict::Identical { outputs: cached.outputs.len() }
    } else {
        Verdict::Differs(differs)
    })
}

/// Per column that differs between two tables of the same shape: the largest absolute and
/// relative difference of its numbers, or the count of differing cells. `None` when the shapes
/// (columns, rows) differ.
pub fn table_difference(a: &Table, b: &Table) -> Option<Vec<(String, ColumnDifference)>> {
    if a.column_names() != b.column_names() || a.height() != b.height() {
        return None;
    }
    let mut out = Vec::new();
    for column in a.column_names() {
        let (p_text, q_text) = (a.strings(&column).ok()?, b.strings(&column).ok()?);
        let numeric = |cells: &[String]| cells.iter().all(|c| c.is_empty() || c.parse::<f64>().is_ok());
        if numeric(&p_text) && numeric(&q_text) {
            let (x, y) = (a.floats(&column).ok()?, b.floats(&column).ok()?);
            let same = x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()));
            if same {
                continue;
            }
            let (mut max_abs, mut max_rel) = (0.0f64, 0.0f64);
            for (p, q) in x.iter().zip(&y) {
                let d = (p - q).abs();
                max_abs = max_abs.max(d);
                let scale = p.abs().max(q.abs());
                if scale > 0.0 {
                    max_rel = max_rel.max(d / scale);
                }
            }
            out.push((column, ColumnDifference::Numbers { max_abs, max_rel }));
        } else {
            let cells = p_text.iter().zip(&q_text).filter(|(p, q)| p != q).count();
            if cells > 0 {
                out.push((column, ColumnDifference::Cells(cells)));
            }
        }
    }
    Some(out)
}

/// About `n` of the stages whose kinds are `kinds` (in execution order), by index: the first of
/// every kind, then evenly spaced others until there are `n` (never fewer than one per kind).
pub fn sample(kinds: &[&str], n: usize) -> BTreeSet<usize> {
    let mut chosen = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for (i, kind) in kinds.iter().enumerate() {
        if seen.insert(*kind) {
            chosen.insert(i);
        }
    }
    let extra = n.saturating_sub(chosen.len());
    if extra > 0 {
        let rest: Vec<usize> = (0..kinds.len()).filter(|i| !chosen.contains(i)).collect();
        let step = (rest.len() as f64 / extra as f64).max(1.0);
        chosen.extend((0..extra.min(rest.len())).map(|k| rest[(k as f64 * step) as usize]));
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Cell;

    #[test]
    fn a_sample_covers_every_kind_then_spreads() {
        let kinds = ["a", "a", "a", "b", "c", "c", "c", "c"];
        assert_eq!(sample(&kinds, 0), BTreeSet::from([0, 3, 4]), "one of each kind, whatever n");
        assert_eq!(sample(&kinds, 5), BTreeSet::from([0, 3, 4, 1, 5]));
        assert_eq!(sample(&kinds, 100).len(), kinds.len());
    }

    #[test]
    fn table_differences_are_named_per_column() {
        let t = |loss: f64, name: &str| {
            Table::from_rows(
                &["model", "loss", "epochs"],
                std::iter::once(vec![name.into(), loss.into(), Cell::Int(3)]),
            )
            .unwrap()
        };
        assert_eq!(table_difference(&t(0.5, "m1"), &t(0.5, "m1")), Some(vec![]));
        let d = table_difference(&t(0.5, "m1"), &t(0.5000001, "m2")).unwrap();
        let column = |name: &str| &d.iter().find(|(c, _)| c == name).unwrap_or_else(|| panic!("{name}: {d:?}")).1;
        assert_eq!(*column("model"), ColumnDifference::Cells(1));
        let ColumnDifference::Numbers { max_abs, max_rel } = *column("loss") else { panic!("{d:?}") };
        assert!((max_abs - 1e-7).abs() < 1e-12 && (max_rel - 1e-7 / 0.5000001).abs() < 1e-12);
        assert_eq!(d.len(), 2, "epochs is the same");
        let wider = Table::from_rows(&["model"], std::iter::once(vec!["m1".into()])).unwrap();
        assert_eq!(table_difference(&t(0.5, "m1"), &wider), None);
    }
}
