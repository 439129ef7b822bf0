//! Stage kinds, stage instances and the graph they form.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::checkpoint::Checkpoint;
use super::placement::Environment;
use super::progress::Progress;

/// The input name under which a stage sees its lineage (see [`super::lineage`]).
pub use super::key::LINEAGE_INPUT;

/// A named stage function. Which source files enter its key is derived from the code by build.rs
/// (every file its run function's file reaches: `code_graph.rs`), never declared here.
pub struct StageKind {
    pub name: &'static str,
    /// Numeric kinds also key on the backend, the device class and the dependency lock file.
    pub numeric: bool,
    /// Threads this kind can use well; the scheduler never gives more.
    pub max_threads: usize,
    pub run: Runner,
}

/// How a kind's instances execute.
#[derive(Clone, Copy)]
pub enum Runner {
    /// One instance at a time.
    One(fn(&StageContext) -> Result<()>),
    /// Any number of instances of one batch group at once (a batched sweep: many independent
    /// trainings of one shape as one stacked model). The function must give every instance the
    /// outputs it would get alone, whatever else shares the batch (up to the backend's rounding);
    /// each keeps its own key and record. A single instance runs as a batch of one, so there is
    /// one code path.
    Batch(fn(&[StageContext]) -> Result<()>),
}

impl StageKind {
    /// A kind whose outputs depend only on its code, params and inputs (one thread).
    pub const fn plain(name: &'static str, run: fn(&StageContext) -> Result<()>) -> StageKind {
        StageKind { name, numeric: false, max_threads: 1, run: Runner::One(run) }
    }

    /// A kind whose numbers also depend on the backend, the device and the dependency lock file.
    pub const fn numeric(name: &'static str, run: fn(&StageContext) -> Result<()>) -> StageKind {
        StageKind { name, numeric: true, max_threads: 1, run: Runner::One(run) }
    }

    /// A numeric kind whose ready instances the scheduler may fuse into one batched execution
    /// (those with equal [`Stage::batch_group`] and placement).
    pub const fn numeric_batched(name: &'static str, run: fn(&[StageContext]) -> Result<()>) -> StageKind {
        StageKind { name, numeric: true, max_threads: 1, run: Runner::Batch(run) }
    }

    pub fn batches(&self) -> bool {
        matches!(self.run, Runner::Batch(_))
    }

    /// Runs `ctxs` (one context, unless the kind batches).
    pub fn execute(&self, ctxs: &[StageContext]) -> Result<()> {
        match self.run {
            Runner::One(run) => {
                assert_eq!(ctxs.len(), 1, "{} runs one instance at a time", self.name);
                run(&ctxs[0])
            }
            Runner::Batch(run) => run(ctxs),
        }
    }
}

impl std::fmt::Debug for StageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// An input file of a stage: output `output` of stage `stage`, seen by the stage as `name`.
#[derive(Clone, Debug)]
pub struct InputRef {
    pub name: String,
    pub stage: String,
    pub output: String,
}

/// What a step costs beyond its arithmetic, in multiply-accumulates: launching its operations,
/// the autodiff graph, the optimiser's bookkeeping: a small MLP's step at batch 5 takes far longer
/// on flex than its arithmetic would (bench/results/mnist-2026-11-26/ measures it), and this is that overhead in
/// MACs at the rate larger steps run. Without it a training of many tiny steps ranks below one of
/// few large steps that ends sooner.
const STEP_OVERHEAD_MACS: u64 = 2_000_000;

/// One instance of a kind: its params and where its inputs come from.
#[derive(Clone, Debug)]
pub struct Stage {
    pub id: String,
    pub kind: &'static StageKind,
    pub params: BTreeMap<String, Value>,
    /// Settings that cannot change the result (download mirrors, timeouts): not in the key.
    pub unkeyed: BTreeMap<String, Value>,
    pub inputs: Vec<InputRef>,
    /// Inputs that are objects of the store known by their hash (results of another
    /// configuration), not outputs of a stage of this graph: input name -> blake3. They enter the
    /// key like any input.
    pub pinned: BTreeMap<String, String>,
    /// Ordering-only dependencies (they do not enter the key).
    pub after: Vec<String>,
    /// Where in the configuration `after` was declared, for error messages.
    pub after_origin: Option<String>,
    /// When set, every output is materialised as `artifacts/<publish>/<output name>`.
    pub publish: Option<String>,
    /// When set, the stage also reads [`LINEAGE_INPUT`]: what every upstream stage was.
    pub lineage: bool,
    /// Multiply-accumulates per step of the stage's main loop: how much one launch does, which
    /// decides where an accelerator pays (see [`Stage::placed`]).
    pub work: Option<u64>,
    /// Steps of that loop (epochs x batches), when known: with `work`, the stage's expected cost,
    /// which orders ready stages (long ones first, so they do not end up on the critical path).
    pub steps: Option<u64>,
    /// For kinds that batch: instances with equal groups may run as one batch (the group names
    /// what they must share: a shape, hyper-parameters).
    pub batch_group: String,
}

impl Stage {
    /// A stage named `kind[label=value,...]` with `params` serialised to a canonical map.
    pub fn new(kind: &'static StageKind, labels: &[(&str, String)], params: &impl Serialize) -> Stage {
        let id = if labels.is_empty() {
            kind.name.to_string()
        } else {
            let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{}[{}]", kind.name, inner.join(","))
        };
        Stage {
            id,
            kind,
            params: to_map(params),
            unkeyed: BTreeMap::new(),
            inputs: Vec::new(),
            pinned: BTreeMap::new(),
            after: Vec::new(),
            after_origin: None,
            publish: None,
            lineage: false,
            work: None,
            steps: None,
            batch_group: String::new(),
        }
    }

    pub fn unkeyed(mut self, settings: &impl Serialize) -> Stage {
        self.unkeyed = to_map(settings);
        self
    }

    pub fn input(mut self, name: impl Into<String>, stage: &Stage, output: &str) -> Stage {
        self.inputs.push(InputRef { name: name.into(), stage: stage.id.clone(), output: output.into() });
        self
    }

    /// Reads the store's object `hash` as input `name` (see [`Stage::pinned`]).
    pub fn pinned_input(mut self, name: impl Into<String>, hash: impl Into<String>) -> Stage {
        self.pinned.insert(name.into(), hash.into());
        self
    }

    pub fn publish(mut self, dir: &str) -> Stage {
        self.publish = Some(dir.to_string());
        self
    }

    /// Declares the work per step (multiply-accumulates) of this instance.
    pub fn with_work(mut self, macs_per_step: u64) -> Stage {
        self.work = Some(macs_per_step);
        self
    }

    /// Declares how many steps the stage's main loop runs (see [`Stage::steps`]).
    pub fn with_steps(mut self, steps: u64) -> Stage {
        self.steps = Some(steps);
        self
    }

    /// Expected cost of the whole stage in multiply-accumulates, each step counted with a fixed
    /// overhead (0 when it declares no work).
    pub fn expected_cost(&self) -> u64 {
        self.work.map_or(0, |work| work.saturating_add(STEP_OVERHEAD_MACS).saturating_mul(self.steps.unwrap_or(1)))
    }

    /// Puts the instance in batch group `group` (see [`Runner::Batch`]).
    pub fn batch_group(mut self, group: impl Into<String>) -> Stage {
        self.batch_group = group.into();
        self
    }

    /// The environment this stage computes in after placement (see [`Environment::for_work`]).
    pub fn placed(&self, env: &Environment) -> Environment {
        env.for_work(self.work)
    }

    /// Whether this stage computes on the accelerator of `env`'s split placement.
    pub fn on_accelerator(&self, env: &Environment) -> bool {
        env.on_accelerator(self.kind.numeric, self.work)
    }

    /// Gives the stage its lineage (see [`super::lineage`]) as an input that enters its key.
    pub fn with_lineage(mut self) -> Stage {
        self.lineage = true;
        self
    }
}

fn to_map(value: &impl Serialize) -> BTreeMap<String, Value> {
    match serde_json::to_value(value).expect("params serialise") {
        Value::Object(map) => map.into_iter().collect(),
        Value::Null => BTreeMap::new(),
        other => BTreeMap::from([("value".to_string(), other)]),
    }
}

/// What a running stage sees.
pub struct StageContext<'a> {
    pub stage: &'a Stage,
    pub inputs: BTreeMap<String, PathBuf>,
    pub out_dir: PathBuf,
    pub threads: usize,
    pub progress: &'a Progress,
    /// Where a long stage saves its state as it goes, and finds it when it resumes.
    pub checkpoint: Checkpoint<'a>,
    /// Backend and device the stage must compute on.
    pub env: &'a Environment,
    /// Where downloaded inputs are kept between runs (outside the store).
    pub data_dir: &'a Path,
}

impl StageContext<'_> {
    /// The stage params as a typed struct.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T> {
        let map: serde_json::Map<String, Value> = self.stage.params.clone().into_iter().collect();
        serde_json::from_value(Value::Object(map)).with_context(|| format!("bad params for {}", self.stage.id))
    }

    /// The unkeyed settings as a typed struct.
    pub fn unkeyed<T: DeserializeOwned>(&self) -> Result<T> {
        let map: serde_json::Map<String, Value> = self.stage.unkeyed.clone().into_iter().collect();
        serde_json::from_value(Value::Object(map)).with_context(|| format!("bad settings for {}", self.stage.id))
    }

    /// The path of input `name` (read-only: it is an object of the store).
    pub fn input(&self, name: &str) -> Result<&Path> {
        self.inputs
            .get(name)
            .map(PathBuf::as_path)
            .ok_or_else(|| anyhow!("stage {} has no input named `{name}`", self.stage.id))
    }

    /// Where to write output `name` (parent directories are created).
    pub fn output(&self, name: &str) -> Result<PathBuf> {
        let path = self.out_dir.join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Ok(path)
    }
}

/// A validated, acyclic set of stages.
pub struct Graph {
    stages: Vec<Stage>,
    index: HashMap<String, usize>,
    /// Upstream stages of each stage (data and ordering edges), deduplicated.
    deps: Vec<Vec<usize>>,
    order: Vec<usize>,
}

impl Graph {
    pub fn new(stages: Vec<Stage>) -> Result<Graph> {
        let mut index = HashMap::new();
        for (i, s) in stages.iter().enumerate() {
            if index.insert(s.id.clone(), i).is_some() {
                bail!("two stages are both named {}", s.id);
            }
        }
        let mut deps = Vec::with_capacity(stages.len());
        for s in &stages {
            let mut d = Vec::new();
            if s.lineage && s.inputs.iter().any(|inp| inp.name == LINEAGE_INPUT) {
                bail!("stage {} has an input named {}, the name of its lineage", s.id, LINEAGE_INPUT);
            }
            for input in &s.inputs {
                let &j = index.get(&input.stage).ok_or_else(|| {
                    anyhow!("stage {} reads `{}` from unknown stage {}", s.id, input.name, input.stage)
                })?;
                d.push(j);
            }
            for after in &s.after {
                let &j = index.get(after).ok_or_else(|| {
                    anyhow!("{}stage {} is ordered after unknown stage {after}", origin_prefix(s), s.id)
                })?;
                d.push(j);
            }
            d.sort_unstable();
            d.dedup();
            deps.push(d);
        }
        let order = topological_order(&stages, &deps)?;
        Ok(Graph { stages, index, deps, order })
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    pub fn stage(&self, i: usize) -> &Stage {
        &self.stages[i]
    }

    pub fn find(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub fn deps(&self, i: usize) -> &[usize] {
        &self.deps[i]
    }

    /// The outputs of stage `i` that other stages of the graph read.
    pub fn outputs_read(&self, i: usize) -> std::collections::BTreeSet<String> {
        let id = &self.stages[i].id;
        self.stages
            .iter()
            .flat_map(|s| &s.inputs)
            .filter(|inp| &inp.stage == id)
            .map(|inp| inp.output.clone())
            .collect()
    }

    /// Stage indices, every stage after all of its dependencies.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Stage `i` and everything it depends on.
    pub fn with_upstream(&self, i: usize) -> Vec<bool> {
        let mut chosen = vec![false; self.stages.len()];
        let mut stack = vec![i];
        while let Some(j) = stack.pop() {
            if !chosen[j] {
                chosen[j] = true;
                stack.extend(&self.deps[j]);
            }
        }
        chosen
    }

    /// The stages matching any of `patterns` (all when empty) plus everything they depend on.
    pub fn select(&self, patterns: &[String]) -> Result<Vec<bool>> {
        let mut chosen = vec![patterns.is_empty(); self.stages.len()];
        if patterns.is_empty() {
            return Ok(chosen);
        }
        for pattern in patterns {
            let glob = StagePattern::new(pattern)?;
            let hits: Vec<usize> = (0..self.stages.len()).filter(|&i| glob.matches(&self.stages[i].id)).collect();
            if hits.is_empty() {
                bail!("no stage matches `{pattern}` (see `repro dag` for the stage names)");
            }
            for hit in hits {
                for (c, up) in chosen.iter_mut().zip(self.with_upstream(hit)) {
                    *c |= up;
                }
            }
        }
        Ok(chosen)
    }

    /// One line per stage in execution order, with what it reads from.
    pub fn to_text(&self) -> String {
        self.to_text_annotated(|_| None)
    }

    /// [`Graph::to_text`] with a note after each stage's name where `note` gives one.
    pub fn to_text_annotated(&self, note: impl Fn(&Stage) -> Option<String>) -> String {
        let mut out = String::new();
        for &i in &self.order {
            let s = &self.stages[i];
            out.push_str(&s.id);
            if let Some(note) = note(s) {
                out.push_str(&format!("  [{note}]"));
            }
            out.push('\n');
            for input in &s.inputs {
                out.push_str(&format!("    <- {} ({})\n", input.stage, input.output));
            }
            for after in &s.after {
                out.push_str(&format!("    after {after}\n"));
            }
        }
        out
    }

    /// The graph in Graphviz dot, one edge per (upstream, downstream) pair.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph pipeline {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n");
        for &i in &self.order {
            out.push_str(&format!("  n{i} [label=\"{}\"];\n", self.stages[i].id.replace('"', "\\\"")));
        }
        for &i in &self.order {
            let s = &self.stages[i];
            for &j in &self.deps[i] {
                let ordering_only = !s.inputs.iter().any(|inp| inp.stage == self.stages[j].id);
                let style = if ordering_only { " [style=dashed]" } else { "" };
                out.push_str(&format!("  n{j} -> n{i}{style};\n"));
            }
        }
        out.push_str("}\n");
        out
    }
}

fn origin_prefix(s: &Stage) -> String {
    s.after_origin.as_ref().map(|o| format!("{o}: ")).unwrap_or_default()
}

/// Kahn's algorithm; on a cycle, names the stages on it (and where their ordering was declared).
fn topological_order(stages: &[Stage], deps: &[Vec<usize>]) -> Result<Vec<usize>> {
    let n = stages.len();
    let mut indegree: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut users = vec![Vec::new(); n];
    for (i, d) in deps.iter().enumerate() {
        for &j in d {
            users[j].push(i);
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).rev().collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop() {
        order.push(i);
        for &u in users[i].iter().rev() {
            indegree[u] -= 1;
            if indegree[u] == 0 {
                ready.push(u);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Walk upstream from any stage left over until a stage repeats: that loop is a cycle.
    let mut seen = vec![usize::MAX; n];
    let mut path = Vec::new();
    let mut at = (0..n).find(|&i| indegree[i] > 0).unwrap();
    while seen[at] == usize::MAX {
        seen[at] = path.len();
        path.push(at);
        at = *deps[at].iter().find(|&&j| indegree[j] > 0).unwrap();
    }
    let mut cycle: Vec<usize> = path[seen[at]..].to_vec();
    cycle.reverse();
    let names: Vec<&str> = cycle.iter().map(|&i| stages[i].id.as_str()).collect();
    let origin = cycle.iter().find_map(|&i| stages[i].after_origin.clone());
    Err(anyhow!(
        "{}dependency cycle: {} -> {}",
        origin.map(|o| format!("{o}: ")).unwrap_or_default(),
        names.join(" -> "),
        names[0]
    ))
}

/// A stage pattern: `*` matches any run of characters and everything else itself (stage names
/// hold `[`, `]`, `=` and `,`, which a glob would read as syntax); a pattern without `*` matches
/// as a prefix.
pub struct StagePattern(globset::GlobMatcher);

impl StagePattern {
    pub fn new(pattern: &str) -> Result<StagePattern> {
        let glob = if pattern.contains('*') { pattern.to_string() } else { format!("{pattern}*") };
        let literal: Vec<String> = glob.split('*').map(globset::escape).collect();
        let glob = globset::GlobBuilder::new(&literal.join("*"))
            .build()
            .with_context(|| format!("bad stage pattern `{pattern}`"))?;
        Ok(StagePattern(glob.compile_matcher()))
    }

    pub fn matches(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

/// Whether stage pattern `pattern` (see [`StagePattern`]) matches `text`.
pub fn matches(pattern: &str, text: &str) -> bool {
    StagePattern::new(pattern).is_ok_and(|p| p.matches(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop(_: &StageContext) -> Result<()> {
        Ok(())
    }
    static KIND: StageKind = StageKind::plain("k", noop);

    fn stage(name: &str) -> Stage {
        Stage::new(&KIND, &[("n", name.to_string())], &())
    }

    #[test]
    fn order_puts_dependencies_first() {
        let a = stage("a");
        let b = stage("b").input("x", &a, "out");
        let c = stage("c").input("x", &b, "out").input("y", &a, "out");
        let g = Graph::new(vec![c, b, a]).unwrap();
        let ids: Vec<&str> = g.order().iter().map(|&i| g.stage(i).id.as_str()).collect();
        assert_eq!(ids, ["k[n=a]", "k[n=b]", "k[n=c]"]);
    }

    #[test]
    fn a_cycle_is_named_with_its_origin() {
        let mut a = stage("a");
        let mut b = stage("b");
        a.after = vec![b.id.clone()];
        b.after = vec![a.id.clone()];
        b.after_origin = Some("pipeline.toml:7".into());
        let err = Graph::new(vec![a, b, stage("c")]).err().unwrap().to_string();
        assert!(err.starts_with("pipeline.toml:7: dependency cycle:"), "{err}");
        assert!(err.contains("k[n=a]") && err.contains("k[n=b]") && !err.contains("k[n=c]"), "{err}");
    }

    #[test]
    fn selection_pulls_in_upstream_only() {
        let a = stage("a");
        let b = stage("b").input("x", &a, "out");
        let c = stage("c");
        let g = Graph::new(vec![a, b, c]).unwrap();
        assert_eq!(g.select(&["k[n=b]".into()]).unwrap(), vec![true, true, false]);
        assert!(g.select(&["nothing".into()]).is_err());
    }

    #[test]
    fn glob() {
        assert!(matches("sim_*.train*", "sim_functions.train[seed=0]"));
        assert!(matches("sim_functions", "sim_functions.plot"));
        assert!(!matches("*.plot", "sim_functions.train"));
        assert!(matches("*seed=0]", "x[seed=0]"));
        assert!(matches("sim_functions.train[function=f1*", "sim_functions.train[function=f1,model=m1,seed=0]"));
        assert!(!matches("sim_functions.train[function=f1*", "sim_functions.train[function=f2,model=m1,seed=0]"));
        assert!(matches("*model=m?]", "x[model=m?]") && !matches("*model=m?]", "x[model=m1]"), "only `*` is special");
    }
}
