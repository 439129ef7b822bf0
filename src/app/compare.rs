//! `repro diff` and `repro runs`: results of several configurations, read from the store by key.
//! Nothing here computes: a configuration whose stages are not in the store is named, with the
//! command that computes it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::workspace::{Plan, Stored, Workspace, logged, logged_config, run_label, stored, utc};
use crate::analysis::compare::Change;
use crate::analysis::stats::mean;
use crate::analysis::{Table, format_float};
use crate::config;
use crate::engine::Store;
use crate::engine::run_log;
use crate::experiments::SUMMARY;
use crate::study::claims::Verdict;
use crate::study::diff::{self, Diff, ParamChange, Side};

/// What `repro diff` compares the workspace's configuration with.
#[derive(Clone, Debug)]
pub enum Against {
    /// The newest run in the run log whose configuration differs from this one.
    Last,
    /// Another configuration file (with the same profile).
    File(PathBuf),
    /// The configuration file as committed at a git revision.
    Git(String),
    /// This configuration file with these `-s` overrides instead of the command line's.
    Set(Vec<String>),
}

impl Against {
    /// `--against REF` (`last`, `git:REV`, or a path) and `--against-set KEY=VALUE`s.
    pub fn parse(reference: Option<&str>, set: Vec<String>) -> Result<Against> {
        Ok(match (reference, set.is_empty()) {
            (Some(_), false) => bail!("give --against or --against-set, not both"),
            (None, false) => Against::Set(set),
            (None | Some("last"), true) => Against::Last,
            (Some(r), true) => match r.strip_prefix("git:") {
                Some(rev) if !rev.is_empty() => Against::Git(rev.to_string()),
                Some(_) => bail!("--against git:REV needs a revision (git:HEAD~1, git:main)"),
                None => Against::File(PathBuf::from(r)),
            },
        })
    }
}

pub struct DiffArgs {
    pub against: Against,
    /// Unchanged settings and measurements too.
    pub all: bool,
    pub json: bool,
}

/// One side of a comparison: its configuration, what it is, and where its results are.
struct Resolved {
    plan: Plan,
    /// `pipeline.toml`, `git:HEAD~1:pipeline.toml`, `the run of 2026-12-02 16:40 UTC`.
    label: String,
    /// How to compute what of it is missing.
    compute: String,
    stored: Stored,
}

impl Resolved {
    fn new(plan: Plan, label: String, compute: String, store: Option<&Store>) -> Resolved {
        let stored = stored(&plan, store);
        Resolved { plan, label, compute, stored }
    }
}

/// The command line that runs `ws`'s configuration with another profile and overrides.
fn command(ws: &Workspace, config: &std::path::Path, profile: Option<&str>, overrides: &[String]) -> String {
    let mut words = vec!["repro".to_string(), "run".to_string()];
    if config != ws.config {
        words.extend(["--config".to_string(), config.display().to_string()]);
    }
    if let Some(p) = profile {
        words.extend(["--profile".to_string(), p.to_string()]);
    }
    for o in overrides {
        words.extend(["-s".to_string(), o.clone()]);
    }
    shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
}

/// The configuration `against` names, as a plan.
fn other(ws: &Workspace, against: &Against, this_hash: &str, store: Option<&Store>) -> Result<Resolved> {
    let profile = ws.profile.as_deref();
    match against {
        Against::Last => {
            let log = run_log::read(&ws.cache);
            let entry = log.entries.iter().rev().find(|e| e.config_hash != this_hash).with_context(|| {
                if log.entries.is_empty() {
                    format!("no run is logged in {} yet: `repro run`, edit, run again, then diff", ws.cache.display())
                } else {
                    format!(
                        "every logged run ({}) used this same configuration: nothing to compare with (--against FILE, \
                         git:REV or --against-set KEY=VALUE compare with another)",
                        log.entries.len()
                    )
                }
            })?;
            let loaded = logged(entry)?;
            let label = run_label(entry);
            let compute = format!(
                "{} (as the configuration was then)",
                command(ws, std::path::Path::new(&entry.file), entry.profile.as_deref(), &entry.overrides)
            );
            Ok(Resolved::new(ws.plan_of(loaded)?, label, compute, store))
        }
        Against::File(path) => {
            let loaded = config::load(path, profile, &[])?;
            Ok(Resolved::new(ws.plan_of(loaded)?, path.display().to_string(), command(ws, path, profile, &[]), store))
        }
        Against::Git(rev) => {
            let file = ws.config.file_name().context("the configuration path names no file")?;
            let dir = ws.config.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            let spec = format!("{rev}:./{}", file.to_string_lossy());
            let out = std::process::Command::new("git")
                .arg("-C")
                .arg(dir)
                .args(["show", &spec])
                .output()
                .context("cannot run git")?;
            if !out.status.success() {
                bail!("git show {spec}: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            let text = String::from_utf8(out.stdout).context("the committed configuration is not UTF-8")?;
            let label = format!("git:{rev}:{}", file.to_string_lossy());
            let loaded = config::parse(&text, std::path::Path::new(&label), profile, &[])?;
            let compute = format!("git show {spec} > old.toml && {}", command(ws, "old.toml".as_ref(), profile, &[]));
            Ok(Resolved::new(ws.plan_of(loaded)?, label, compute, store))
        }
        Against::Set(overrides) => {
            let loaded = config::load(&ws.config, profile, overrides)?;
            let label = format!("{} with {}", ws.config.display(), overrides.join(" "));
            Ok(Resolved::new(ws.plan_of(loaded)?, label, command(ws, &ws.config, profile, overrides), store))
        }
    }
}

#[derive(Serialize)]
struct DiffJson<'a> {
    old: SideJson<'a>,
    new: SideJson<'a>,
    #[serde(flatten)]
    diff: &'a Diff,
}

#[derive(Serialize)]
struct SideJson<'a> {
    label: &'a str,
    config_hash: String,
    missing: &'a [String],
    compute: &'a str,
}

/// `repro diff`: exit code 0, or 1 when a verdict flipped (so CI can gate on it).
pub fn diff_cmd(ws: &Workspace, args: &DiffArgs) -> Result<i32> {
    let store = Store::open_existing(&ws.cache);
    let plan = ws.plan()?;
    let (_, this_hash) = logged_config(&plan.loaded.config)?;
    let old = other(ws, &args.against, &this_hash, store.as_ref())?;
    let mut label = ws.config.display().to_string();
    if let Some(p) = &ws.profile {
        label.push_str(&format!(" --profile {p}"));
    }
    for o in &ws.overrides {
        label.push_str(&format!(" -s {o}"));
    }
    let compute = command(ws, &ws.config, ws.profile.as_deref(), &ws.overrides);
    let new = Resolved::new(plan, label, compute, store.as_ref());
    let (old_of, new_of) = (|id: &str| old.stored.inputs_of(id), |id: &str| new.stored.inputs_of(id));
    let d = diff::diff(
        &Side { config: &old.plan.loaded.config, inputs: &old_of },
        &Side { config: &new.plan.loaded.config, inputs: &new_of },
    )?;
    if args.json {
        let (old_hash, new_hash) = (logged_config(&old.plan.loaded.config)?.1, this_hash);
        let json = DiffJson {
            old: SideJson {
                label: &old.label,
                config_hash: old_hash,
                missing: &old.stored.missing,
                compute: &old.compute,
            },
            new: SideJson {
                label: &new.label,
                config_hash: new_hash,
                missing: &new.stored.missing,
                compute: &new.compute,
            },
            diff: &d,
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print!("{}", render(&d, &old, &new, args.all));
    }
    Ok(if d.flipped().next().is_some() { 1 } else { 0 })
}

fn param_lines(out: &mut String, params: &[ParamChange]) {
    let width = params.iter().map(|p| p.path.len()).max().unwrap_or(0);
    for p in params {
        out.push_str(&format!("  {:width$}  {} → {}\n", p.path, diff::setting(&p.old), diff::setting(&p.new)));
    }
}

fn metric_lines(out: &mut String, metrics: &[&Change]) {
    let rows: Vec<[String; 4]> = metrics
        .iter()
        .map(|c| {
            [
                c.group.clone(),
                c.metric.clone(),
                format!("{} → {}", diff::measurement(&c.old), diff::measurement(&c.new)),
                diff::difference(c),
            ]
        })
        .collect();
    let w0 = rows.iter().map(|r| r[0].chars().count()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r[1].chars().count()).max().unwrap_or(0);
    for [group, metric, values, delta] in rows {
        let line = format!("  {group:w0$}  {metric:w1$}  {values}  {delta}");
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// Missing stages, a few named: the analysis first (it is what the diff reads).
fn missing_line(missing: &[String], id: &str) -> Option<String> {
    let mine: Vec<&String> = missing.iter().filter(|s| s.starts_with(&format!("{id}."))).collect();
    if mine.is_empty() {
        return None;
    }
    let mut named: Vec<&String> = mine.iter().filter(|s| s.contains(".analyze")).copied().collect();
    named.extend(mine.iter().filter(|s| !s.contains(".analyze")).take(3));
    let more = mine.len().saturating_sub(named.len());
    let list = named.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    Some(if more > 0 { format!("{list} and {more} more") } else { list })
}

fn render(d: &Diff, old: &Resolved, new: &Resolved, all: bool) -> String {
    let mut out = String::new();
    for c in d.flipped() {
        out.push_str(&format!(
            "verdict flipped: {} ({}): {} → {}  [{} → {}]\n",
            c.id, c.experiment, c.old, c.new, c.old_measurement, c.new_measurement
        ));
    }
    out.push_str(&format!("old: {}\nnew: {}\n", old.label, new.label));
    if !d.params.is_empty() || all {
        out.push_str("\nsettings\n");
        param_lines(&mut out, &d.params);
    }
    for e in &d.experiments {
        let changed: Vec<&Change> = e.metrics.iter().filter(|c| all || c.changed).collect();
        let claims: Vec<_> =
            d.claims.iter().filter(|c| c.experiment == e.id && (all || (c.changed() && !c.flipped))).collect();
        let missing = [(old, "old"), (new, "new")]
            .into_iter()
            .filter_map(|(r, side)| missing_line(&r.stored.missing, e.id).map(|m| (r, side, m)))
            .collect::<Vec<_>>();
        if e.params.is_empty() && changed.is_empty() && claims.is_empty() && missing.is_empty() && !all {
            continue;
        }
        out.push_str(&format!("\n{}\n", e.id));
        param_lines(&mut out, &e.params);
        if e.old_present && e.new_present {
            if changed.is_empty() {
                out.push_str("  no measurement changed\n");
            }
            metric_lines(&mut out, &changed);
        }
        for c in claims {
            out.push_str(&format!(
                "  claim {}: {} → {}  [{} → {}]\n",
                c.id, c.old, c.new, c.old_measurement, c.new_measurement
            ));
        }
        for (r, side, list) in missing {
            out.push_str(&format!("  not in the store ({side}): {list}\n    compute with: {}\n", r.compute));
        }
    }
    let unchanged =
        d.experiments.iter().filter(|e| e.params.is_empty() && e.metrics.iter().all(|c| !c.changed)).count();
    if !all && unchanged > 0 {
        out.push_str(&format!("\n{unchanged} experiment(s) without a change not shown (--all shows them)\n"));
    }
    out
}

/// `repro runs`: one row per configuration the run log names whose results are in the store.
pub fn runs_cmd(ws: &Workspace, all: bool, json: bool) -> Result<i32> {
    let log = run_log::read(&ws.cache);
    if log.unreadable > 0 {
        eprintln!("note: {} line(s) of the run log are unreadable and skipped", log.unreadable);
    }
    let rows = configurations(ws, &log, all)?;
    if rows.is_empty() {
        println!("no configuration with results in the store (the run log names {})", log.entries.len());
        return Ok(0);
    }
    let setting_columns = differing(&rows, all, &|r| r.settings.clone().into_iter().collect());
    let metric_columns = differing(&rows, all, &|r| r.headline.clone().into_iter().collect());
    if json {
        let out: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "config_hash": r.config_hash, "last_run": r.last_run, "runs": r.runs, "stages": r.stages,
                    "settings": setting_columns.iter().map(|k| (k.clone(), r.settings.get(k).cloned())).collect::<BTreeMap<_, _>>(),
                    "metrics": metric_columns.iter().map(|k| (k.clone(), r.headline.get(k).cloned())).collect::<BTreeMap<_, _>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    print_runs(&rows, &setting_columns, &metric_columns);
    if !all && setting_columns.is_empty() && rows.len() > 1 {
        println!("(no setting differs between these configurations: --all lists every column)");
    }
    Ok(0)
}

/// The newest run of each configuration the log names, newest first, with what the store holds
/// of it (configurations with nothing stored only with `all`).
fn configurations(ws: &Workspace, log: &run_log::Log, all: bool) -> Result<Vec<RunRow>> {
    let store = Store::open_existing(&ws.cache);
    let mut seen = BTreeSet::new();
    let mut rows: Vec<RunRow> = Vec::new();
    for entry in log.entries.iter().rev() {
        if !seen.insert(entry.config_hash.clone()) {
            continue;
        }
        let Ok(loaded) = logged(entry) else { continue };
        let plan = ws.plan_of(loaded)?;
        let stored = stored(&plan, store.as_ref());
        let total = plan.graph.stages().len();
        let present = total - stored.missing.len();
        if present == 0 && !all {
            continue;
        }
        let runs = log.entries.iter().filter(|e| e.config_hash == entry.config_hash).count();
        let inputs = |id: &str| stored.inputs_of(id);
        let headline = headline(&Side { config: &plan.loaded.config, inputs: &inputs })?;
        let flat = diff::settings(&plan.loaded.config)?
            .into_iter()
            .map(|(path, value)| (path, diff::setting(&Some(value))))
            .collect();
        rows.push(RunRow {
            config_hash: entry.config_hash[..12].to_string(),
            last_run: utc(entry.started),
            runs,
            stages: format!("{present}/{total}"),
            settings: flat,
            headline,
        });
    }
    Ok(rows)
}

/// The columns (`get` gives a row's) whose values differ between rows; every column with `all`.
fn differing(rows: &[RunRow], all: bool, get: &dyn Fn(&RunRow) -> Vec<(String, String)>) -> Vec<String> {
    let mut keys: BTreeSet<String> = BTreeSet::new();
    for r in rows {
        keys.extend(get(r).into_iter().map(|(k, _)| k));
    }
    keys.into_iter()
        .filter(|k| {
            all || {
                let values: BTreeSet<Option<String>> =
                    rows.iter().map(|r| get(r).into_iter().find(|(kk, _)| kk == k).map(|(_, v)| v)).collect();
                values.len() > 1
            }
        })
        .collect()
}

/// The rows as aligned columns: configuration, last run, runs, stages stored, then the settings
/// and headline measurements asked for.
fn print_runs(rows: &[RunRow], setting_columns: &[String], metric_columns: &[String]) {
    let mut header = vec!["config".to_string(), "last run".into(), "runs".into(), "stages stored".into()];
    header.extend(setting_columns.iter().map(|k| k.strip_prefix("experiments.").unwrap_or(k).to_string()));
    header.extend(metric_columns.iter().cloned());
    let mut table = vec![header];
    for r in rows {
        let mut line = vec![r.config_hash.clone(), r.last_run.clone(), r.runs.to_string(), r.stages.clone()];
        line.extend(setting_columns.iter().map(|k| r.settings.get(k).cloned().unwrap_or_else(|| "-".into())));
        line.extend(metric_columns.iter().map(|k| r.headline.get(k).cloned().unwrap_or_else(|| "-".into())));
        table.push(line);
    }
    let widths: Vec<usize> =
        (0..table[0].len()).map(|c| table.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for line in &table {
        let cells: Vec<String> = line.iter().zip(&widths).map(|(cell, w)| format!("{cell:w$}")).collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

struct RunRow {
    config_hash: String,
    last_run: String,
    runs: usize,
    stages: String,
    settings: BTreeMap<String, String>,
    headline: BTreeMap<String, String>,
}

/// A configuration's headline numbers: claims confirmed, and each experiment's headline
/// measurement (mean over its summary's rows).
fn headline(side: &Side) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let findings = side.findings()?;
    let measured: Vec<Verdict> = findings
        .iter()
        .map(|f| f.verdict)
        .filter(|v| matches!(v, Verdict::Confirmed | Verdict::NotConfirmed))
        .collect();
    if !measured.is_empty() {
        let confirmed = measured.iter().filter(|v| **v == Verdict::Confirmed).count();
        out.insert("claims confirmed".to_string(), format!("{confirmed}/{}", measured.len()));
    }
    for e in side.config.experiments.configured() {
        let (Some(metric), Some(inputs)) = (e.headline(), (side.inputs)(e.id())) else { continue };
        let summary = Table::read_csv(crate::report::input(&inputs, SUMMARY)?)?;
        let values = summary.floats(metric)?;
        if !values.is_empty() {
            out.insert(format!("{}.{metric}", e.id()), format_float(mean(&values)));
        }
    }
    Ok(out)
}
