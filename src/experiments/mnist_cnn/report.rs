//! The report section of `mnist_cnn`: curves, every run, test accuracy beside the original's.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use super::Settings;
use super::train::ID;
use crate::analysis::Table;
use crate::report::Section;

pub fn section(inputs: &BTreeMap<String, PathBuf>, settings: &Settings) -> Result<Section> {
    let input = |name: &str| crate::report::input(inputs, name);
    let summary = Table::read_csv(input("summary.csv")?)?;
    let mut s = Section::new(ID, "2. Train on an actual task: MNIST CNNs");
    s.text(format!(
        "CNN1 (25,550 parameters, dropout 0.25), CNN2 (25,570) and CNN3 (25,119), trained with Adam (lr {}, coupled L2 {}), \
         batch {}, {} epochs, seeds {:?}{}. Loss and accuracy are measured on the full training and test sets in evaluation \
         mode after every epoch (solid: train, dashed: test; bands: min-max over seeds).",
        settings.lr,
        settings.weight_decay,
        settings.batch_size,
        settings.epochs,
        settings.seeds,
        match (settings.train_subset, settings.test_subset) {
            (None, None) => String::new(),
            (a, b) => format!(", on a subset ({} training, {} test images)", a.map_or("all".into(), |n| n.to_string()), b.map_or("all".into(), |n| n.to_string())),
        }
    ));
    s.figure("Loss per epoch", format!("{ID}/loss.png"), input("loss.png")?);
    s.figure("Accuracy per epoch", format!("{ID}/accuracy.png"), input("accuracy.png")?);
    s.table("Every run, after the last epoch (accuracies as fractions)", &summary)?;
    let mut rows = Vec::new();
    for model in &settings.models {
        let runs = summary.filter_eq("model", model.name())?;
        if runs.height() == 0 {
            continue;
        }
        let acc: Vec<f64> = runs.floats("test_acc")?.iter().map(|a| 100.0 * a).collect();
        let mean = acc.iter().sum::<f64>() / acc.len() as f64;
        rows.push(vec![
            model.name().into(),
            model.reference_test_accuracy().into(),
            mean.into(),
            (mean - model.reference_test_accuracy()).into(),
        ]);
    }
    s.table(
        "Test accuracy (%), ours (mean over seeds) beside the original's",
        &Table::from_rows(&["model", "original", "ours", "difference (points)"], rows.into_iter())?,
    )?;
    s.text(
        "The original reported a running training accuracy over batches 1-100 with dropout on, and the loss of one \
         mini-batch; ours are full-set, evaluation-mode numbers, so our training curves sit above the original's early on.",
    );
    Ok(s)
}
