//! The report section of `sensitivity`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use super::{ID, REFERENCE, Settings};
use crate::analysis::Table;
use crate::report::{Section, input};

pub fn section(inputs: &BTreeMap<String, PathBuf>, settings: &Settings) -> Result<Section> {
    let summary = Table::read_csv(input(inputs, "summary.csv")?)?;
    let mut s = Section::new(ID, "9. Flatness vs generalisation, part 2: sensitivity vs batch size");
    s.text(format!(
        "The 784-20-20-10 MLP (16,330 parameters) trained from seeds {:?} with batch sizes {:?}, Adam (lr {}), {} epochs; \
         the figures and the comparison show the mean over seeds. \
         Sensitivity (Novak et al. 2018): the Frobenius norm of the Jacobian of the softmax output with respect to the \
         input, averaged over the test set, by autodiff (one backward pass per class); loss_input_grad is the mean norm \
         of the loss gradient with respect to the input.",
        settings.seeds, settings.batch_sizes, settings.lr, settings.epochs
    ));
    s.figure(
        "Loss and sensitivity vs batch size",
        format!("{ID}/loss_sensitivity.png"),
        input(inputs, "loss_sensitivity.png")?,
    );
    s.figure(
        "Accuracy and sensitivity vs batch size",
        format!("{ID}/accuracy_sensitivity.png"),
        input(inputs, "accuracy_sensitivity.png")?,
    );
    s.table("Every run (accuracies as fractions)", &summary)?;
    let means = super::plot::means_by_batch(&summary)?;
    let mut rows = Vec::new();
    for (bs, train_ref, test_ref) in REFERENCE {
        let ours = means.filter_in("batch_size", &[bs as f64])?;
        if ours.height() == 0 {
            continue;
        }
        rows.push(vec![
            (bs as u64).into(),
            train_ref.into(),
            (100.0 * ours.floats("train_acc")?[0]).into(),
            test_ref.into(),
            (100.0 * ours.floats("test_acc")?[0]).into(),
        ]);
    }
    s.table(
        "Accuracy (%), ours beside the original's",
        &Table::from_rows(
            &["batch size", "train, original", "train, ours (seed mean)", "test, original", "test, ours (seed mean)"],
            rows.into_iter(),
        )?,
    )?;
    s.text(
        "The original's \"sensitivity\" (about 0.24, 0.67, 0.36, 0.18, 0.13 for batch 5 to 1000, read from its figure) \
         was the mean per-tensor norm of the parameter gradient of the last training mini-batch, not an input Jacobian, \
         so it is not comparable with ours.",
    );
    Ok(s)
}
