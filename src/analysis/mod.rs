//! Tables (polars): reading and writing CSV, grouping runs into mean/min/max bands, filtering.
//!
//! A thin wrapper so that experiment code reads like the analysis it does, not like polars.

pub mod compare;
pub mod linalg;
pub mod stats;

use std::path::Path;

use anyhow::{Context, Result, bail};
use polars::prelude::*;

/// One cell of a row built by hand (summary rows).
#[derive(Clone, Debug)]
pub enum Cell {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl From<&str> for Cell {
    fn from(v: &str) -> Cell {
        Cell::Str(v.to_string())
    }
}
impl From<String> for Cell {
    fn from(v: String) -> Cell {
        Cell::Str(v)
    }
}
impl From<u64> for Cell {
    fn from(v: u64) -> Cell {
        Cell::Int(v as i64)
    }
}
impl From<f64> for Cell {
    fn from(v: f64) -> Cell {
        Cell::Float(v)
    }
}
impl From<f32> for Cell {
    fn from(v: f32) -> Cell {
        Cell::Float(v as f64)
    }
}
impl From<bool> for Cell {
    fn from(v: bool) -> Cell {
        Cell::Bool(v)
    }
}

/// A column of [`Table::from_records`]: its name, and its value in a record.
pub type Field<'a, T> = (&'a str, &'a dyn Fn(&T) -> Cell);

#[derive(Clone, Debug)]
pub struct Table {
    df: DataFrame,
}

/// Writes float columns as CSV (for per-epoch curves written by training stages).
pub fn write_columns(path: &Path, columns: &[(&str, &[f32])]) -> Result<()> {
    Table::from_columns(columns)?.write_csv(path)
}

impl Table {
    /// A table of float columns of one length.
    pub fn from_columns(columns: &[(&str, &[f32])]) -> Result<Table> {
        let cols: Vec<Column> =
            columns.iter().map(|(name, values)| Column::new((*name).into(), values.to_vec())).collect();
        Ok(Table { df: DataFrame::new_infer_height(cols)? })
    }

    pub fn read_csv(path: &Path) -> Result<Table> {
        let df = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(None)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))?
            .finish()
            .map_err(anyhow::Error::from)
            .with_context(|| format!("cannot read the table {}", path.display()))?;
        Ok(Table { df })
    }

    pub fn write_csv(&mut self, path: &Path) -> Result<()> {
        let mut file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        CsvWriter::new(&mut file).finish(&mut self.df)?;
        Ok(())
    }

    /// A table with one row per record and one column per `(name, value)`: each column's name
    /// stands beside what fills it, so names and values cannot drift apart.
    pub fn from_records<T>(records: &[T], columns: &[Field<T>]) -> Result<Table> {
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        Table::from_rows(&names, records.iter().map(|r| columns.iter().map(|(_, value)| value(r)).collect()))
    }

    /// A table from rows of cells; each column takes the type of its first row.
    pub fn from_rows(names: &[&str], rows: impl Iterator<Item = Vec<Cell>>) -> Result<Table> {
        let rows: Vec<Vec<Cell>> = rows.collect();
        let mut cols = Vec::new();
        for (k, name) in names.iter().enumerate() {
            let cells = rows.iter().map(|r| r.get(k).cloned().context("short row"));
            let cells: Vec<Cell> = cells.collect::<Result<_>>()?;
            let name: PlSmallStr = (*name).into();
            let col = match cells.first() {
                None | Some(Cell::Str(_)) => Column::new(name, cells.iter().map(cell_string).collect::<Vec<_>>()),
                Some(Cell::Int(_)) => Column::new(
                    name,
                    cells.iter().map(|c| if let Cell::Int(v) = c { Some(*v) } else { None }).collect::<Vec<_>>(),
                ),
                Some(Cell::Float(_)) => Column::new(
                    name,
                    cells
                        .iter()
                        .map(|c| match c {
                            Cell::Float(v) => Some(*v),
                            Cell::Int(v) => Some(*v as f64),
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                ),
                Some(Cell::Bool(_)) => Column::new(
                    name,
                    cells.iter().map(|c| if let Cell::Bool(v) = c { Some(*v) } else { None }).collect::<Vec<_>>(),
                ),
            };
            cols.push(col);
        }
        Ok(Table { df: DataFrame::new(rows.len(), cols)? })
    }

    pub fn height(&self) -> usize {
        self.df.height()
    }

    pub fn column_names(&self) -> Vec<String> {
        self.df.get_column_names().iter().map(|s| s.to_string()).collect()
    }

    /// Adds constant string columns (labels of the run a table came from).
    pub fn with_labels(mut self, labels: &[(&str, &str)]) -> Result<Table> {
        let n = self.df.height();
        for (name, value) in labels {
            self.df.with_column(Column::new((*name).into(), vec![*value; n]))?;
        }
        Ok(self)
    }

    pub fn with_seed(mut self, seed: u64) -> Result<Table> {
        let n = self.df.height();
        self.df.with_column(Column::new("seed".into(), vec![seed as i64; n]))?;
        Ok(self)
    }

    pub fn with_column(mut self, name: &str, values: &[f32]) -> Result<Table> {
        self.df.with_column(Column::new(name.into(), values.to_vec()))?;
        Ok(self)
    }

    /// Stacks tables with the same columns.
    pub fn concat(tables: Vec<Table>) -> Result<Table> {
        let mut iter = tables.into_iter();
        let Some(first) = iter.next() else { bail!("nothing to concatenate") };
        let mut df = first.df;
        for t in iter {
            df.vstack_mut_owned(t.df)?;
        }
        Ok(Table { df })
    }

    /// Long format: one row per (`id`, value column) with columns `id`, `metric`, `value`.
    pub fn melt(&self, id: &str, values: &[&str]) -> Result<Table> {
        let mut parts = Vec::new();
        for v in values {
            let ids = self.df.column(id)?.clone();
            let vals = self.df.column(v)?.cast(&DataType::Float64)?.with_name("value".into());
            let df = DataFrame::new(self.df.height(), vec![ids, vals])?;
            parts.push(Table { df }.with_labels(&[("metric", v)])?);
        }
        Table::concat(parts)
    }

    /// Groups by `keys` and summarises `value` as mean, min, max and n (its non-null values),
    /// sorted by the keys.
    pub fn band(&self, keys: &[&str], value: &str) -> Result<Table> {
        let column = self.df.column(value)?.cast(&DataType::Float64)?;
        let values: Vec<Option<f64>> = column.f64()?.iter().collect();
        let grouped = self.df.group_by_stable(keys.iter().copied())?;
        let (mut first, mut mean, mut min, mut max, mut n) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for group in grouped.get_groups().iter() {
            let rows: Vec<IdxSize> = match group {
                GroupsIndicator::Idx((_, rows)) => rows.to_vec(),
                GroupsIndicator::Slice([start, len]) => (start..start + len).collect(),
            };
            let present: Vec<f64> = rows.iter().filter_map(|&r| values[r as usize]).collect();
            first.push(rows[0]);
            n.push(present.len() as IdxSize);
            mean.push((!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64));
            min.push(present.iter().copied().reduce(f64::min));
            max.push(present.iter().copied().reduce(f64::max));
        }
        let mut df = self.df.select(keys.iter().copied())?.take(&IdxCa::from_vec("".into(), first))?;
        for (name, stat) in [("mean", mean), ("min", min), ("max", max)] {
            df.with_column(Column::new(name.into(), stat))?;
        }
        df.with_column(Column::new("n".into(), n))?;
        Ok(Table { df: df.sort(keys.iter().copied(), SortMultipleOptions::default())? })
    }

    /// Rows whose `column` equals `value` (a string column).
    pub fn filter_eq(&self, column: &str, value: &str) -> Result<Table> {
        let column = self.df.column(column)?.cast(&DataType::String)?;
        let keep: Vec<bool> = column.str()?.iter().map(|v| v == Some(value)).collect();
        Ok(Table { df: self.df.filter(&BooleanChunked::from_slice("".into(), &keep))? })
    }

    /// Rows whose numeric `column` is one of `values` (compared as f64: pass the values as read
    /// from a table, not rounded through f32).
    pub fn filter_in(&self, column: &str, values: &[f64]) -> Result<Table> {
        let column = self.df.column(column)?.cast(&DataType::Float64)?;
        let keep: Vec<bool> = column.f64()?.iter().map(|v| v.is_some_and(|v| values.contains(&v))).collect();
        Ok(Table { df: self.df.filter(&BooleanChunked::from_slice("".into(), &keep))? })
    }

    /// Per distinct value of the numeric column `key` (ascending): the mean of each of `columns`
    /// over its rows (a model's or a batch size's seeds).
    pub fn means_by(&self, key: &str, columns: &[&str]) -> Result<Vec<(f64, Vec<f64>)>> {
        let keys = self.floats(key)?;
        let values: Vec<Vec<f64>> = columns.iter().map(|c| self.floats(c)).collect::<Result<_>>()?;
        let mut distinct = keys.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        Ok(distinct
            .into_iter()
            .map(|at| {
                let rows: Vec<usize> = (0..keys.len()).filter(|&k| keys[k] == at).collect();
                (at, values.iter().map(|v| stats::mean(&rows.iter().map(|&k| v[k]).collect::<Vec<_>>())).collect())
            })
            .collect())
    }

    pub fn floats(&self, column: &str) -> Result<Vec<f64>> {
        let s = self.df.column(column)?.cast(&DataType::Float64)?;
        Ok(s.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    }

    /// The last value of a numeric column (a run's final epoch).
    pub fn last(&self, column: &str) -> Result<f64> {
        self.floats(column)?.last().copied().with_context(|| format!("column {column} is empty"))
    }

    pub fn strings(&self, column: &str) -> Result<Vec<String>> {
        let s = self.df.column(column)?.cast(&DataType::String)?;
        Ok(s.str()?.iter().map(|v| v.unwrap_or("").to_string()).collect())
    }

    /// Every cell as display text (floats to 4 significant digits), row by row.
    pub fn display_rows(&self) -> Result<Vec<Vec<String>>> {
        let mut rows = vec![Vec::new(); self.df.height()];
        for column in self.df.columns() {
            for (i, row) in rows.iter_mut().enumerate() {
                row.push(display(&column.get(i)?));
            }
        }
        Ok(rows)
    }
}

fn cell_string(c: &Cell) -> String {
    match c {
        Cell::Str(s) => s.clone(),
        Cell::Int(v) => v.to_string(),
        Cell::Float(v) => v.to_string(),
        Cell::Bool(v) => v.to_string(),
    }
}

fn display(v: &AnyValue) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Float64(f) => format_float(*f),
        AnyValue::Float32(f) => format_float(*f as f64),
        other => other.to_string(),
    }
}

/// 4 significant digits, plain notation for everyday magnitudes.
pub fn format_float(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return v.to_string();
    }
    // The magnitude after rounding to 4 significant digits (0.99996 prints as 1.000, not 1.0000).
    let rounded: f64 = format!("{v:.3e}").parse().unwrap_or(v);
    let mag = rounded.abs().log10().floor() as i32;
    if (-4..6).contains(&mag) {
        let decimals = (3 - mag).max(0) as usize;
        format!("{rounded:.decimals$}")
    } else {
        format!("{v:.3e}")
    }
}

/// A count as a count (571, not 571.0; epochs, iterations, parameters); anything else as
/// [`format_float`].
pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 { format!("{v:.0}") } else { format_float(v) }
}

/// A setting or grid value as a person writes it: the shortest decimal that names it, once float
/// noise below 10 significant digits is gone (0.6000000000000001 prints as 0.6, 1e-3 as 0.001);
/// a grid's zero computed as -1 + 0.1 · 10 may miss by 1e-16: below 1e-12 is 0.
pub fn format_setting(v: f64) -> String {
    if v.abs() < 1e-12 {
        return "0".into();
    }
    let clean: f64 = format!("{v:.9e}").parse().unwrap_or(v);
    clean.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_print_without_float_noise() {
        let grid: Vec<f64> = (0..31).map(|i| -1.0 + 0.1 * i as f64).collect();
        assert_eq!(grid[16], 0.6000000000000001, "the grid's own noise");
        assert_eq!(format_setting(grid[16]), "0.6");
        assert_eq!(format_setting(grid[10]), "0");
        assert_eq!(format_setting(-1.0 + 0.3 * 3.0 + 0.1), "0", "{}", -1.0 + 0.3 * 3.0 + 0.1);
        assert_eq!(format_setting(1e-3), "0.001");
        assert_eq!(format_setting(-1.5), "-1.5");
        assert_eq!(format_setting(1.0 / 3.0), "0.3333333333");
    }

    #[test]
    fn band_is_mean_min_max_per_group() {
        let t = Table::from_rows(
            &["model", "epoch", "loss"],
            vec![
                vec!["b".into(), 0u64.into(), 5.0f64.into()],
                vec!["a".into(), 1u64.into(), 2.0f64.into()],
                vec!["a".into(), 0u64.into(), 1.0f64.into()],
                vec!["a".into(), 0u64.into(), 3.0f64.into()],
            ]
            .into_iter(),
        )
        .unwrap();
        let b = t.band(&["model", "epoch"], "loss").unwrap();
        assert_eq!(b.strings("model").unwrap(), ["a", "a", "b"]);
        assert_eq!(b.floats("mean").unwrap(), [2.0, 2.0, 5.0]);
        assert_eq!(b.floats("min").unwrap(), [1.0, 2.0, 5.0]);
        assert_eq!(b.floats("max").unwrap(), [3.0, 2.0, 5.0]);
        assert_eq!(b.floats("n").unwrap(), [2.0, 1.0, 1.0]);
        assert_eq!(t.filter_eq("model", "b").unwrap().height(), 1);
        let long = t.melt("epoch", &["loss"]).unwrap();
        assert_eq!(long.column_names(), ["epoch", "value", "metric"]);
        assert_eq!(long.floats("value").unwrap(), [5.0, 2.0, 1.0, 3.0]);
        assert_eq!(t.filter_in("epoch", &[1.0]).unwrap().height(), 1);
        // A value f32 cannot hold exactly (0.001) still matches itself.
        let lr = Table::from_rows(&["lr"], vec![vec![0.001f64.into()], vec![0.01f64.into()]].into_iter()).unwrap();
        assert_eq!(lr.filter_in("lr", &[0.001]).unwrap().height(), 1);
    }

    #[test]
    fn csv_round_trip_keeps_f32_bits() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().to_path_buf();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.csv");
        let values = [0.1f32, 1.0 / 3.0, 1e-7, 12345.678];
        write_columns(&path, &[("v", &values)]).unwrap();
        let back: Vec<f32> = Table::read_csv(&path).unwrap().floats("v").unwrap().iter().map(|v| *v as f32).collect();
        assert_eq!(back, values);
    }

    #[test]
    fn floats_format_to_four_significant_digits() {
        assert_eq!(format_float(0.0012346), "0.001235");
        assert_eq!(format_float(98.6712), "98.67");
        assert_eq!(format_float(25550.0), "25550");
        assert_eq!(format_float(0.99996), "1.000");
        assert_eq!(format_float(1.0003), "1.000");
        assert_eq!(format_float(1.5e-7), "1.500e-7");
    }
}
