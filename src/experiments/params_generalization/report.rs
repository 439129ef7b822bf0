//! The report section of `params_generalization`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use super::{ID, REFERENCE, Settings};
use crate::analysis::Table;
use crate::report::{Section, input};

pub fn section(inputs: &BTreeMap<String, PathBuf>, settings: &Settings) -> Result<Section> {
    let summary = Table::read_csv(input(inputs, "summary.csv")?)?;
    let mut s = Section::new(ID, "7. Number of parameters vs generalisation");
    s.text(format!(
        "{} MLPs 784-h1-h2-10 (ReLU) trained with Adam (lr {}), batch {}, {} epochs, seeds {:?}; final loss and accuracy \
         on the full training and test sets.",
        settings.models.len(),
        settings.lr,
        settings.batch_size,
        settings.epochs,
        settings.seeds
    ));
    s.figure("Loss vs parameters", format!("{ID}/loss.png"), input(inputs, "loss.png")?);
    s.figure("Accuracy vs parameters", format!("{ID}/accuracy.png"), input(inputs, "accuracy.png")?);
    s.table("Every model (accuracies as fractions; gaps are test - train loss and train - test accuracy)", &summary)?;
    let mut rows = Vec::new();
    for (hidden, train_ref, test_ref) in REFERENCE {
        let ours = summary.filter_eq("model", &format!("784-{}-{}-10", hidden[0], hidden[1]))?;
        if ours.height() == 0 {
            continue;
        }
        let mean = |c: &str| -> Result<f64> { Ok(100.0 * ours.floats(c)?.iter().sum::<f64>() / ours.height() as f64) };
        rows.push(vec![
            format!("784-{}-{}-10", hidden[0], hidden[1]).into(),
            train_ref.into(),
            mean("train_acc")?.into(),
            test_ref.into(),
            mean("test_acc")?.into(),
        ]);
    }
    s.table(
        "Accuracy (%), ours beside the original's (its train accuracy is a running value during the last epoch)",
        &Table::from_rows(
            &["model", "train, original", "train, ours", "test, original", "test, ours"],
            rows.into_iter(),
        )?,
    )?;
    Ok(s)
}
