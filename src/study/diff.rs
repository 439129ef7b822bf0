//! What changed between the results of two configurations: their parameters, every experiment's
//! summary measurements (seeds grouped), and the claims' verdicts. It reads tables only; where
//! they come from (the store, by key) is the caller's business.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use super::claims::{self, CLAIMS, Finding, TableOf};
use crate::analysis::Table;
use crate::analysis::compare::{self, Change};
use crate::config::Config;
use crate::experiments::{IDS, SUMMARY};
use crate::report::Section;

/// One side of a comparison.
pub struct Side<'a> {
    pub config: &'a Config,
    /// An experiment's report inputs by name, when it is configured and all of them are in the
    /// store; `None` otherwise.
    pub inputs: &'a dyn Fn(&str) -> Option<BTreeMap<String, PathBuf>>,
}

impl Side<'_> {
    fn configured(&self, id: &str) -> bool {
        self.config.experiments.configured().iter().any(|e| e.id() == id)
    }

    /// The claims' findings on this side; an experiment configured but not in the store reads as such.
    pub fn findings(&self) -> Result<Vec<Finding>> {
        let table: &TableOf = &|id, name| match (self.inputs)(id) {
            Some(inputs) => Ok(Some(Table::read_csv(crate::report::input(&inputs, name)?)?)),
            None => Ok(None),
        };
        let mut found = claims::findings(table, self.config)?;
        for (claim, finding) in CLAIMS.iter().zip(&mut found) {
            if self.configured(claim.experiment) && (self.inputs)(claim.experiment).is_none() {
                finding.measurement = NOT_STORED.to_string();
            }
        }
        Ok(found)
    }
}

/// The settings of `config` that bear on results, as dotted paths (`experiments.sim_functions.lr`)
/// and values.
pub fn settings(config: &Config) -> Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    flatten("", &serde_json::to_value(crate::config::result_config(config))?, &mut out);
    out.retain(|path, _| !["cluster", "remote"].iter().any(|s| path == s || path.starts_with(&format!("{s}."))));
    Ok(out)
}

const NOT_STORED: &str = "not in the store";

fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                flatten(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, v, out);
            }
        }
        _ => {
            out.insert(prefix.to_string(), value.clone());
        }
    }
}

/// A setting that differs (`None`: absent on that side).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ParamChange {
    pub path: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// A claim on both sides.
#[derive(Clone, Debug, Serialize)]
pub struct ClaimChange {
    pub id: &'static str,
    pub experiment: &'static str,
    pub old: &'static str,
    pub new: &'static str,
    pub old_measurement: String,
    pub new_measurement: String,
    /// The verdict differs (and both sides measured it).
    pub flipped: bool,
}

impl ClaimChange {
    pub fn changed(&self) -> bool {
        self.old != self.new || self.old_measurement != self.new_measurement
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ExperimentDiff {
    pub id: &'static str,
    pub params: Vec<ParamChange>,
    /// Whether each side's results are there to compare (`false`: not configured or not in the store).
    pub old_present: bool,
    pub new_present: bool,
    /// Every measurement of its summary, changed or not (empty unless both sides are present).
    pub metrics: Vec<Change>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Diff {
    /// Every claim, in the claims table's order.
    pub claims: Vec<ClaimChange>,
    /// Settings outside any experiment's section.
    pub params: Vec<ParamChange>,
    /// Experiments configured on either side, in report order.
    pub experiments: Vec<ExperimentDiff>,
}

impl Diff {
    pub fn flipped(&self) -> impl Iterator<Item = &ClaimChange> {
        self.claims.iter().filter(|c| c.flipped)
    }
}

/// A setting's value as the configuration writes it (`(absent)` where a side lacks it).
pub fn setting(v: &Option<Value>) -> String {
    match v {
        None => "(absent)".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// One side of a measurement (`(absent)` where that side has no such runs).
pub fn measurement(v: &Option<compare::Value>) -> String {
    v.as_ref().map_or("(absent)".into(), |v| v.to_string())
}

/// A measurement's difference of means, signed (empty where a side is missing or not a number).
pub fn difference(c: &Change) -> String {
    c.difference().map_or(String::new(), |d| {
        if d == 0.0 {
            "(means equal)".into()
        } else {
            format!("({}{})", if d > 0.0 { "+" } else { "" }, crate::analysis::format_number(d))
        }
    })
}

/// The report's "What changed since the previous run" section: what `repro diff` prints.
pub fn section(d: &Diff, previous: &str) -> Section {
    let mut s = Section::new("changes", "What changed since the previous run");
    s.text(format!(
        "This run compared with {previous}, the run that preceded this configuration's first run: the \
         settings that differ, the claims whose verdict or measurement changed, and every summary measurement that \
         moved (runs that differ only by seed as mean ± sd [min, max] (n)). `repro diff` prints the same."
    ));
    for c in d.flipped() {
        s.text(format!("**Verdict flipped: {} ({})**: {} → {}.", c.id, c.experiment, c.old, c.new));
    }
    let mut params: Vec<&ParamChange> = d.params.iter().collect();
    params.extend(d.experiments.iter().flat_map(|e| &e.params));
    if params.is_empty() {
        s.text("No setting differs: the results differ because the code did (or the previous run's are not stored).");
    } else {
        let rows = params.iter().map(|p| vec![format!("`{}`", p.path), setting(&p.old), setting(&p.new)]).collect();
        s.rows("Settings that differ", ["setting", "previous run", "this run"].map(String::from).to_vec(), rows, false);
    }
    let claims: Vec<Vec<String>> = d
        .claims
        .iter()
        .filter(|c| c.changed())
        .map(|c| {
            vec![
                c.id.to_string(),
                format!("{} → {}", c.old, c.new),
                c.old_measurement.clone(),
                c.new_measurement.clone(),
            ]
        })
        .collect();
    if !claims.is_empty() {
        let header = ["claim", "verdict", "previous run", "this run"].map(String::from).to_vec();
        s.rows("Claims whose verdict or measurement changed", header, claims, false);
    }
    let moved: Vec<Vec<String>> = d
        .experiments
        .iter()
        .flat_map(|e| e.metrics.iter().filter(|c| c.changed).map(move |c| (e.id, c)))
        .map(|(id, c)| {
            vec![
                format!("`{id}`"),
                c.group.clone(),
                c.metric.clone(),
                measurement(&c.old),
                measurement(&c.new),
                difference(c),
            ]
        })
        .collect();
    let count = moved.len();
    if count > 0 {
        let header = ["experiment", "runs", "measurement", "previous run", "this run", "difference"];
        s.rows(
            format!("Measurements that moved ({count})"),
            header.map(String::from).to_vec(),
            moved,
            count > crate::report::FOLD_ROWS,
        );
    }
    let missing: Vec<&str> = d.experiments.iter().filter(|e| e.new_present && !e.old_present).map(|e| e.id).collect();
    if !missing.is_empty() {
        s.text(format!(
            "Not compared (the previous run's results are not in the store, or it did not run them): {}.",
            missing.join(", ")
        ));
    }
    s
}

/// `old` against `new`.
pub fn diff(old: &Side, new: &Side) -> Result<Diff> {
    let (a, b) = (settings(old.config)?, settings(new.config)?);
    let mut params: Vec<ParamChange> = a
        .keys()
        .chain(b.keys().filter(|k| !a.contains_key(*k)))
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| ParamChange { path: k.clone(), old: a.get(k).cloned(), new: b.get(k).cloned() })
        .collect();
    params.sort_by(|x, y| x.path.cmp(&y.path));
    let mut experiments = Vec::new();
    for &id in IDS.iter().filter(|id| old.configured(id) || new.configured(id)) {
        let section = format!("experiments.{id}");
        let (own, rest): (Vec<ParamChange>, Vec<ParamChange>) =
            params.into_iter().partition(|p| p.path == section || p.path.starts_with(&format!("{section}.")));
        params = rest;
        let (was, is) = ((old.inputs)(id), (new.inputs)(id));
        let metrics = match (&was, &is) {
            (Some(x), Some(y)) => {
                let keys = [new, old]
                    .iter()
                    .find_map(|s| s.config.experiments.configured().into_iter().find(|e| e.id() == id))
                    .map(|e| e.summary_keys())
                    .unwrap_or(&[]);
                let read = |inputs: &BTreeMap<String, PathBuf>| Table::read_csv(crate::report::input(inputs, SUMMARY)?);
                compare::compare(&read(x)?, &read(y)?, keys, &["experiment"])
                    .with_context(|| format!("comparing {id}'s {SUMMARY}"))?
            }
            _ => Vec::new(),
        };
        experiments.push(ExperimentDiff {
            id,
            params: own,
            old_present: was.is_some(),
            new_present: is.is_some(),
            metrics,
        });
    }
    let (was, is) = (old.findings()?, new.findings()?);
    let claims = CLAIMS
        .iter()
        .zip(was.into_iter().zip(is))
        .map(|(c, (x, y))| {
            let stored = |f: &Finding| f.measurement != NOT_STORED;
            ClaimChange {
                id: c.id,
                experiment: c.experiment,
                flipped: x.verdict != y.verdict && stored(&x) && stored(&y),
                old: if stored(&x) { x.verdict.label() } else { NOT_STORED },
                new: if stored(&y) { y.verdict.label() } else { NOT_STORED },
                old_measurement: x.measurement,
                new_measurement: y.measurement,
            }
        })
        .collect();
    Ok(Diff { claims, params, experiments })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Cell;

    fn config(toml: &str) -> Config {
        crate::config::parse(toml, std::path::Path::new("t.toml"), None, &[]).unwrap().config
    }

    fn write_summary(dir: &std::path::Path, rows: &[(u64, u64, f64)]) -> BTreeMap<String, PathBuf> {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(SUMMARY);
        Table::from_rows(
            &["experiment", "model", "variant", "batch_size", "seed", "test_acc", "sensitivity"],
            rows.iter().map(|&(b, seed, acc)| {
                vec![
                    Cell::from("sensitivity"),
                    "mlp".into(),
                    "adam".into(),
                    b.into(),
                    seed.into(),
                    acc.into(),
                    (1.0 / b as f64).into(),
                ]
            }),
        )
        .unwrap()
        .write_csv(&path)
        .unwrap();
        BTreeMap::from([(SUMMARY.to_string(), path)])
    }

    #[test]
    fn names_the_changed_setting_under_its_experiment_and_the_measurements_that_moved() {
        let dir = tempfile::tempdir().unwrap();
        let old_config = config("[experiments.sensitivity]\nepochs = 10\n[experiments.grad_norm]\n");
        let new_config = config("[experiments.sensitivity]\nepochs = 12\n[experiments.grad_norm]\n");
        // Three seeds; batch 5 gains on every seed, so each seed's best batch moves from 25 to 5.
        let before: Vec<(u64, u64, f64)> = (0..3).flat_map(|s| [(5, s, 0.95), (25, s, 0.96)]).collect();
        let after: Vec<(u64, u64, f64)> = (0..3).flat_map(|s| [(5, s, 0.97), (25, s, 0.96)]).collect();
        let old_inputs = write_summary(&dir.path().join("a"), &before);
        let new_inputs = write_summary(&dir.path().join("b"), &after);
        let old_of = |id: &str| (id == "sensitivity").then(|| old_inputs.clone());
        let new_of = |id: &str| (id == "sensitivity").then(|| new_inputs.clone());
        let d = diff(&Side { config: &old_config, inputs: &old_of }, &Side { config: &new_config, inputs: &new_of })
            .unwrap();
        assert!(d.params.is_empty(), "{:?}", d.params);
        let sens = d.experiments.iter().find(|e| e.id == "sensitivity").unwrap();
        assert_eq!(
            sens.params,
            vec![ParamChange {
                path: "experiments.sensitivity.epochs".into(),
                old: Some(10.into()),
                new: Some(12.into())
            }]
        );
        let moved: Vec<(&str, &str)> =
            sens.metrics.iter().filter(|c| c.changed).map(|c| (c.group.as_str(), c.metric.as_str())).collect();
        assert_eq!(moved, vec![("model=mlp variant=adam batch_size=5", "test_acc")]);
        let grad = d.experiments.iter().find(|e| e.id == "grad_norm").unwrap();
        assert!(!grad.old_present && !grad.new_present && grad.params.is_empty());
        // grad_norm is configured but not stored on either side: its claim says so, and cannot flip.
        let c6 = d.claims.iter().find(|c| c.id == "C6").unwrap();
        assert_eq!((c6.old, c6.new, c6.flipped), (NOT_STORED, NOT_STORED, false));
        // C10 (best batch in [10, 1000]): batch 25 best on every seed before, batch 5 now: it flips.
        let flipped: Vec<&str> = d.flipped().map(|c| c.id).collect();
        assert_eq!(flipped, vec!["C10"]);
        let c10 = d.claims.iter().find(|c| c.id == "C10").unwrap();
        assert_eq!((c10.old, c10.new), ("confirmed", "not confirmed"));
        // Not configured anywhere: measured nowhere, the same on both sides.
        let c1 = d.claims.iter().find(|c| c.id == "C1").unwrap();
        assert!(!c1.changed());
    }

    #[test]
    fn a_section_added_on_one_side_lists_its_settings_as_new() {
        let old_config = config("[experiments.grad_norm]\n");
        let new_config = config("[experiments.grad_norm]\n[pipeline]\nmax_batch = 8\n[experiments.sensitivity]\n");
        let none = |_: &str| None;
        let d =
            diff(&Side { config: &old_config, inputs: &none }, &Side { config: &new_config, inputs: &none }).unwrap();
        assert_eq!(d.params.len(), 1);
        assert_eq!(d.params[0].path, "pipeline.max_batch");
        let sens = d.experiments.iter().find(|e| e.id == "sensitivity").unwrap();
        assert!(!sens.params.is_empty() && sens.params.iter().all(|p| p.old.is_none() && p.new.is_some()));
    }
}
