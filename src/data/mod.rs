//! Inputs of the study: synthetic functions (and, later, MNIST).

pub mod idx;
pub mod mnist;
pub mod synth;

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Writes `x,y` rows; f32 values print in their shortest exact form, so reading them back gives
/// the same bits.
pub fn write_xy(path: &Path, xs: &[f32], ys: &[f32]) -> Result<()> {
    let mut out = String::from("x,y\n");
    for (x, y) in xs.iter().zip(ys) {
        out.push_str(&format!("{x},{y}\n"));
    }
    std::fs::File::create(path)?.write_all(out.as_bytes())?;
    Ok(())
}

/// Reads what [`write_xy`] wrote.
pub fn read_xy(path: &Path) -> Result<(Vec<f32>, Vec<f32>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines();
    if lines.next() != Some("x,y") {
        bail!("{}: expected the header `x,y`", path.display());
    }
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for (n, line) in lines.enumerate() {
        let (x, y) = line.split_once(',').with_context(|| format!("{}:{}: expected x,y", path.display(), n + 2))?;
        xs.push(x.parse().with_context(|| format!("{}:{}: bad x", path.display(), n + 2))?);
        ys.push(y.parse().with_context(|| format!("{}:{}: bad y", path.display(), n + 2))?);
    }
    Ok((xs, ys))
}
