//! The analysis of `grad_norm`: per run, the smallest gradient norm and whether the net died.

use anyhow::Result;

use super::train::{ID, WIDTHS};
use crate::analysis::{Cell, Table};
use crate::engine::StageContext;
use crate::nn::mlp::param_count;

/// The first epoch from which the gradient is exactly zero to the end (a dead network), if any.
pub fn dead_from(norms: &[f64]) -> Option<usize> {
    let alive = norms.iter().rposition(|&n| n != 0.0);
    match alive {
        None => Some(0),
        Some(last) if last + 1 < norms.len() => Some(last + 1),
        Some(_) => None,
    }
}

pub fn analyze(ctx: &StageContext) -> Result<()> {
    let mut curves = Vec::new();
    let mut rows = Vec::new();
    for (name, path) in &ctx.inputs {
        let seed: u64 = name.trim_end_matches("/curve.csv").parse()?;
        let curve = Table::read_csv(path)?;
        let (losses, norms) = (curve.floats("loss")?, curve.floats("grad_norm")?);
        let (min_at, min_norm) =
            norms.iter().enumerate().fold((0, f64::INFINITY), |a, (i, &n)| if n < a.1 { (i, n) } else { a });
        let dead = dead_from(&norms);
        rows.push(vec![
            ID.into(),
            "1-5-10-10-10-10-10-5-1".into(),
            seed.into(),
            (param_count(&WIDTHS) as u64).into(),
            (losses.len() as u64).into(),
            (*losses.last().unwrap()).into(),
            (*norms.last().unwrap()).into(),
            min_norm.into(),
            (min_at as u64).into(),
            dead.is_some().into(),
            dead.map_or(Cell::Int(-1), |e| Cell::Int(e as i64)),
        ]);
        curves.push(curve.with_seed(seed)?);
    }
    Table::from_rows(
        &[
            "experiment",
            "model",
            "seed",
            "params",
            "epochs",
            "final_loss",
            "final_grad_norm",
            "min_grad_norm",
            "min_grad_norm_epoch",
            "dead",
            "dead_from_epoch",
        ],
        rows.into_iter(),
    )?
    .write_csv(&ctx.output("summary.csv")?)?;
    Table::concat(curves)?.write_csv(&ctx.output("curves.csv")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_runs_are_found_from_their_first_zero_gradient_to_the_end() {
        assert_eq!(dead_from(&[1.0, 0.5, 0.0, 0.0]), Some(2));
        assert_eq!(dead_from(&[1.0, 0.0, 0.5]), None, "a zero in the middle is not death");
        assert_eq!(dead_from(&[0.0, 0.0]), Some(0));
        assert_eq!(dead_from(&[1.0]), None);
    }
}
