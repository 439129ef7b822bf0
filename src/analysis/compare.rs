//! Two versions of one summary table, measurement by measurement: what `repro diff` prints.
//!
//! A row is named by its key columns (`function`, `model`, ...). Runs that differ only by `seed`
//! are one group: a measurement of a group is its seeds' values, summarised as mean ± sd and
//! [min, max], as users of run trackers ask for (a verdict on one seed's last value misleads).
//! A measurement changed when any seed's value changed, or the set of seeds did.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::Serialize;

use super::stats::mean;
use super::{Table, format_float, format_number as number};

/// The column that names a repetition: rows that differ only here form one group.
pub const SEED: &str = "seed";

/// A measurement over a group's seeds (n = 1 without seeds).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stat {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1); 0 for one value.
    pub sd: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    pub fn of(values: &[f64]) -> Option<Stat> {
        if values.is_empty() || values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let m = mean(values);
        let n = values.len();
        let sd =
            if n > 1 { (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
        let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        Some(Stat { n, mean: m, sd, min, max })
    }
}

impl std::fmt::Display for Stat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.n == 1 {
            f.write_str(&number(self.mean))
        } else {
            write!(
                f,
                "{} ± {} [{}, {}] (n={})",
                number(self.mean),
                format_float(self.sd),
                number(self.min),
                number(self.max),
                self.n
            )
        }
    }
}

/// One side's value of a measurement for a group.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Number(Stat),
    /// A column that is not numeric: its values, by seed.
    Text(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Number(s) => s.fmt(f),
            Value::Text(t) => f.write_str(t),
        }
    }
}

/// A measurement of a group on both sides (`None`: the group is absent there).
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    /// The group's key values, `function=f1 model=m1` (`all` when the table has no key column).
    pub group: String,
    pub metric: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
    pub changed: bool,
}

impl Change {
    /// new mean − old mean, where both sides are numbers.
    pub fn difference(&self) -> Option<f64> {
        match (&self.old, &self.new) {
            (Some(Value::Number(a)), Some(Value::Number(b))) => Some(b.mean - a.mean),
            _ => None,
        }
    }
}

/// One group's raw cells per measurement: (seed, cell text, value) in row order.
type Cells = Vec<(String, String, f64)>;

struct Grouped {
    /// Group names in order of first appearance.
    order: Vec<String>,
    cells: BTreeMap<(String, String), Cells>,
    metrics: Vec<String>,
}

fn grouped(table: &Table, keys: &[&str], ignore: &[&str]) -> Result<Grouped> {
    let columns = table.column_names();
    let group_keys: Vec<&str> = keys.iter().copied().filter(|k| *k != SEED).collect();
    if let Some(missing) = group_keys.iter().find(|k| !columns.iter().any(|c| c == *k)) {
        bail!("the table has no key column `{missing}` (columns: {})", columns.join(", "));
    }
    let metrics: Vec<String> =
        columns.iter().filter(|c| !keys.contains(&c.as_str()) && !ignore.contains(&c.as_str())).cloned().collect();
    let key_values: Vec<Vec<String>> = group_keys.iter().map(|k| table.strings(k)).collect::<Result<_>>()?;
    let seeds =
        if columns.iter().any(|c| c == SEED) { table.strings(SEED)? } else { vec![String::new(); table.height()] };
    let names: Vec<String> = (0..table.height())
        .map(|row| {
            let parts: Vec<String> =
                group_keys.iter().zip(&key_values).map(|(k, v)| format!("{k}={}", v[row])).collect();
            if parts.is_empty() { "all".to_string() } else { parts.join(" ") }
        })
        .collect();
    let mut order: Vec<String> = Vec::new();
    for name in &names {
        if !order.contains(name) {
            order.push(name.clone());
        }
    }
    let mut cells: BTreeMap<(String, String), Cells> = BTreeMap::new();
    for metric in &metrics {
        let (texts, values) = (table.strings(metric)?, table.floats(metric)?);
        for row in 0..table.height() {
            cells.entry((names[row].clone(), metric.clone())).or_default().push((
                seeds[row].clone(),
                texts[row].clone(),
                values[row],
            ));
        }
    }
    Ok(Grouped { order, cells, metrics })
}

fn value(cells: &Cells) -> Value {
    let values: Vec<f64> = cells.iter().map(|(_, _, v)| *v).collect();
    match Stat::of(&values) {
        Some(stat) => Value::Number(stat),
        None => {
            let texts: Vec<&str> = cells.iter().map(|(_, t, _)| t.as_str()).collect();
            Value::Text(texts.join(", "))
        }
    }
}

/// Every measurement of every group in `old` and `new` (groups in `new`'s order, then those only
/// in `old`; measurements in column order). `keys` name a row; `ignore` are columns that are
/// neither (a constant label such as `experiment`).
pub fn compare(old: &Table, new: &Table, keys: &[&str], ignore: &[&str]) -> Result<Vec<Change>> {
    let (a, b) = (grouped(old, keys, ignore)?, grouped(new, keys, ignore)?);
    let mut groups = b.order.clone();
    groups.extend(a.order.iter().filter(|g| !b.order.contains(g)).cloned());
    let mut metrics = b.metrics.clone();
    metrics.extend(a.metrics.iter().filter(|m| !b.metrics.contains(m)).cloned());
    let mut out = Vec::new();
    for group in &groups {
        for metric in &metrics {
            let at = (group.clone(), metric.clone());
            let sorted = |g: &Grouped| {
                g.cells.get(&at).map(|cells| {
                    let mut cells = cells.clone();
                    cells.sort_by(|x, y| x.0.cmp(&y.0));
                    cells
                })
            };
            let (was, is) = (sorted(&a), sorted(&b));
            // Seed by seed where both sides ran the same seeds; otherwise the values as a set (a
            // constant such as a parameter count is no change because the seeds moved).
            let same = |x: &Cells, y: &Cells| {
                let seeds = |c: &Cells| c.iter().map(|p| p.0.clone()).collect::<Vec<_>>();
                if seeds(x) == seeds(y) {
                    x.iter().zip(y).all(|(p, q)| p.1 == q.1)
                } else {
                    let texts = |c: &Cells| {
                        let mut t: Vec<String> = c.iter().map(|p| p.1.clone()).collect();
                        t.sort();
                        t
                    };
                    texts(x) == texts(y)
                }
            };
            let changed = match (&was, &is) {
                (Some(x), Some(y)) => !same(x, y),
                _ => true,
            };
            out.push(Change {
                group: group.clone(),
                metric: metric.clone(),
                old: was.as_ref().map(value),
                new: is.as_ref().map(value),
                changed,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Cell;

    fn table(rows: &[(&str, u64, f64, bool)]) -> Table {
        Table::from_rows(
            &["experiment", "model", "seed", "loss", "stopped"],
            rows.iter().map(|&(m, s, l, st)| vec![Cell::from("x"), m.into(), s.into(), l.into(), st.into()]),
        )
        .unwrap()
    }

    #[test]
    fn seeds_are_summarised_and_only_moved_measurements_are_changed() {
        let old = table(&[("a", 0, 1.0, true), ("a", 1, 3.0, false), ("b", 0, 0.5, true)]);
        let new = table(&[("a", 0, 1.0, true), ("a", 1, 5.0, false), ("b", 0, 0.5, true), ("c", 0, 2.0, false)]);
        let changes = compare(&old, &new, &["model", "seed"], &["experiment"]).unwrap();
        let get = |g: &str, m: &str| changes.iter().find(|c| c.group == g && c.metric == m).unwrap();
        let a_loss = get("model=a", "loss");
        assert!(a_loss.changed);
        assert_eq!(a_loss.old, Some(Value::Number(Stat { n: 2, mean: 2.0, sd: 2f64.sqrt(), min: 1.0, max: 3.0 })));
        assert_eq!(a_loss.difference(), Some(1.0));
        assert_eq!(a_loss.new.as_ref().unwrap().to_string(), "3 ± 2.828 [1, 5] (n=2)");
        assert!(!get("model=a", "stopped").changed, "a flag that did not move");
        assert_eq!(get("model=a", "stopped").new, Some(Value::Number(Stat::of(&[1.0, 0.0]).unwrap())));
        assert!(!get("model=b", "loss").changed);
        let added = get("model=c", "loss");
        assert!(added.changed && added.old.is_none());
        assert_eq!(changes.iter().filter(|c| c.changed).count(), 3, "a's loss and c's two measurements");
        assert!(changes.iter().all(|c| c.metric != "experiment" && c.metric != "seed"));
    }

    #[test]
    fn other_seeds_change_what_they_measure_not_what_is_constant() {
        let old = table(&[("a", 0, 1.0, true), ("a", 1, 2.0, true)]);
        let new = table(&[("a", 2, 2.0, true), ("a", 3, 4.0, true)]);
        let changes = compare(&old, &new, &["model", "seed"], &["experiment"]).unwrap();
        let changed: Vec<&str> = changes.iter().filter(|c| c.changed).map(|c| c.metric.as_str()).collect();
        assert_eq!(changed, vec!["loss"], "the flag is true on every seed on both sides");
        // Same seeds, values swapped between them: each seed's run changed.
        let swapped = table(&[("a", 0, 2.0, true), ("a", 1, 1.0, true)]);
        let changes = compare(&old, &swapped, &["model", "seed"], &["experiment"]).unwrap();
        assert!(changes.iter().find(|c| c.metric == "loss").unwrap().changed);
    }

    #[test]
    fn one_value_prints_plainly_and_text_columns_compare_as_text() {
        assert_eq!(Stat::of(&[0.25]).unwrap().to_string(), "0.2500");
        assert_eq!(Stat::of(&[571.0]).unwrap().to_string(), "571");
        assert!(Stat::of(&[]).is_none() && Stat::of(&[1.0, f64::NAN]).is_none());
        let t =
            |v: &str| Table::from_rows(&["model", "note"], std::iter::once(vec![Cell::from("a"), v.into()])).unwrap();
        let changes = compare(&t("dead"), &t("alive"), &["model"], &[]).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!((changes[0].old.as_ref().unwrap().to_string(), changes[0].changed), ("dead".to_string(), true));
    }
}
