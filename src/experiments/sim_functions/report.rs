//! The report section of `sim_functions`: what ran, the figures, our losses beside the original's.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use super::Settings;
use super::analyze::CHECKPOINTS;
use super::train::ID;
use crate::analysis::Table;
use crate::report::Section;

/// The report section: what ran, the figures, and our final losses beside the original's.
pub fn section(inputs: &BTreeMap<String, PathBuf>, settings: &Settings) -> Result<Section> {
    let input = |name: &str| crate::report::input(inputs, name);
    let summary = Table::read_csv(input("summary.csv")?)?;
    let checkpoints = Table::read_csv(input("loss_checkpoints.csv")?)?;
    let mut s = Section::new(ID, "1. Simulate a function (deep vs shallow)");
    s.text(format!(
        "Three networks of 571, 572 and 571 parameters (M1 deep 1-5-10-10-10-10-10-5-1, M2 1-10-18-15-4-1, M3 shallow \
         1-190-1, leaky ReLU) fitted by full-batch Adam (lr {}, coupled L2 weight decay {}) to MSE on 300 points, \
         up to {} epochs with the original's stopping rule; seeds {:?}. Curves show the mean over seeds with a \
         min-max band.",
        settings.lr, settings.weight_decay, settings.max_epochs, settings.seeds
    ));
    for f in &settings.functions {
        let name = f.name();
        s.figure(
            format!("Target {name}(x) = {}", f.formula()),
            format!("{ID}/target_{name}.png"),
            input(&format!("target_{name}.png"))?,
        );
        s.figure(
            format!("Training loss on {name}"),
            format!("{ID}/loss_{name}.png"),
            input(&format!("loss_{name}.png"))?,
        );
        s.figure(
            format!("Predictions vs ground truth on {name}"),
            format!("{ID}/predictions_{name}.png"),
            input(&format!("predictions_{name}.png"))?,
        );
    }
    s.table("Every run (final loss is the last recorded pre-step loss)", &summary)?;

    s.table("Final loss, ours beside the original's printed value", &beside_final_losses(&summary)?)?;
    s.table(
        "Loss at the original's print epochs (ours: mean over every seed, a run that stopped early counted with its \
         final loss)",
        &at_print_epochs(&checkpoints)?,
    )?;
    s.text(
        "The original ran each model once, unseeded, so its numbers are one draw; ours are seeded and averaged. \
         Runs that meet the stopping rule end early and count with their final loss from then on, so a late-epoch \
         mean covers every seed and does not jump when one stops.",
    );
    Ok(s)
}

/// Ours (mean over seeds at the last epoch each run reached, with the extremes) beside the
/// original's final loss.
fn beside_final_losses(summary: &Table) -> Result<Table> {
    let mut rows = Vec::new();
    for (f, m, reference) in REFERENCE {
        let runs = summary.filter_eq("function", f)?.filter_eq("model", m)?;
        if runs.height() == 0 {
            continue;
        }
        let finals = runs.floats("final_loss")?;
        let epochs = runs.floats("epochs")?;
        let mean = finals.iter().sum::<f64>() / finals.len() as f64;
        let ratio = mean / reference[7] as f64;
        rows.push(vec![
            f.into(),
            m.into(),
            (reference[7] as f64).into(),
            mean.into(),
            finals.iter().cloned().fold(f64::INFINITY, f64::min).into(),
            finals.iter().cloned().fold(f64::NEG_INFINITY, f64::max).into(),
            format!("{:.2}x", ratio).into(),
            format!(
                "{}-{}",
                epochs.iter().cloned().fold(f64::INFINITY, f64::min),
                epochs.iter().cloned().fold(0.0, f64::max)
            )
            .into(),
        ]);
    }
    Table::from_rows(
        &[
            "function",
            "model",
            "original (20000 ep.)",
            "ours mean",
            "ours min",
            "ours max",
            "ours / original",
            "epochs run",
        ],
        rows.into_iter(),
    )
}

/// Ours beside the original's printed losses at its print epochs.
fn at_print_epochs(checkpoints: &Table) -> Result<Table> {
    let mut at = Vec::new();
    for (f, m, reference) in REFERENCE {
        let ours = checkpoints.filter_eq("function", f)?.filter_eq("model", m)?;
        let (epochs, means) = (ours.floats("epoch")?, ours.floats("mean")?);
        for (k, &e) in CHECKPOINTS.iter().enumerate() {
            if let Some(pos) = epochs.iter().position(|&x| x as usize + 1 == e) {
                at.push(vec![f.into(), m.into(), (e as u64).into(), (reference[k] as f64).into(), means[pos].into()]);
            }
        }
    }
    Table::from_rows(&["function", "model", "epoch", "original", "ours"], at.into_iter())
}

/// The original's printed losses (spec section 1), at the epochs of [`CHECKPOINTS`].
pub const REFERENCE: [(&str, &str, [f32; 8]); 6] = [
    ("f1", "m1", [0.0519, 0.0037, 0.0024, 0.0023, 0.0013, 0.0013, 0.0012, 0.0010]),
    ("f1", "m2", [0.0036, 0.0018, 0.0015, 0.0015, 0.0015, 0.0015, 0.0015, 0.0012]),
    ("f1", "m3", [0.0118, 0.0046, 0.0034, 0.0031, 0.0029, 0.0014, 0.0012, 0.0011]),
    ("f2", "m1", [0.9994, 0.6841, 0.1078, 0.0695, 0.0426, 0.0324, 0.0707, 0.0460]),
    ("f2", "m2", [0.9944, 0.6959, 0.3366, 0.2709, 0.1934, 0.1399, 0.1324, 0.1154]),
    ("f2", "m3", [0.9100, 0.6979, 0.4003, 0.2888, 0.2318, 0.2021, 0.1924, 0.1856]),
];
