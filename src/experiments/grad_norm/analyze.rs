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

/// One run's summary.
struct Run {
    seed: u64,
    epochs: usize,
    final_loss: f64,
    final_grad_norm: f64,
    min_grad_norm: f64,
    min_grad_norm_epoch: usize,
    dead_from: Option<usize>,
}

pub fn analyze(ctx: &StageContext) -> Result<()> {
    let mut curves = Vec::new();
    let mut runs = Vec::new();
    for (name, path) in &ctx.inputs {
        let seed: u64 = name.trim_end_matches("/curve.csv").parse()?;
        let curve = Table::read_csv(path)?;
        let (losses, norms) = (curve.floats("loss")?, curve.floats("grad_norm")?);
        let (min_at, min_norm) =
            norms.iter().enumerate().fold((0, f64::INFINITY), |a, (i, &n)| if n < a.1 { (i, n) } else { a });
        runs.push(Run {
            seed,
            epochs: losses.len(),
            final_loss: *losses.last().unwrap(),
            final_grad_norm: *norms.last().unwrap(),
            min_grad_norm: min_norm,
            min_grad_norm_epoch: min_at,
            dead_from: dead_from(&norms),
        });
        curves.push(curve.with_seed(seed)?);
    }
    Table::from_records(
        &runs,
        &[
            ("experiment", &|_| ID.into()),
            ("model", &|_| "1-5-10-10-10-10-10-5-1".into()),
            ("seed", &|r| r.seed.into()),
            ("params", &|_| (param_count(&WIDTHS) as u64).into()),
            ("epochs", &|r| (r.epochs as u64).into()),
            ("final_loss", &|r| r.final_loss.into()),
            ("final_grad_norm", &|r| r.final_grad_norm.into()),
            ("min_grad_norm", &|r| r.min_grad_norm.into()),
            ("min_grad_norm_epoch", &|r| (r.min_grad_norm_epoch as u64).into()),
            ("dead", &|r| r.dead_from.is_some().into()),
            ("dead_from_epoch", &|r| r.dead_from.map_or(Cell::Int(-1), |e| Cell::Int(e as i64))),
        ],
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
