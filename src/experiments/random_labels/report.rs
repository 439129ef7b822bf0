//! The report section of `random_labels`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use super::{ID, Settings};
use crate::analysis::Table;
use crate::report::{Section, input, span};

pub fn section(inputs: &BTreeMap<String, PathBuf>, settings: &Settings) -> Result<Section> {
    let summary = Table::read_csv(input(inputs, "summary.csv")?)?;
    let mut s = Section::new(ID, "6. Can a network fit random labels?");
    s.text(format!(
        "The training labels are replaced by seeded uniform random digits; the test labels stay true. The 784-120-120-16-10 \
         ReLU MLP (110,826 parameters) trains with Adam (lr {}), batch {}, on {} training images until its training \
         accuracy on the random labels reaches {:.0} % or {} epochs pass; seeds {:?}. Loss and accuracy are full-set \
         numbers after every epoch.",
        settings.lr,
        settings.batch_size,
        settings.train_subset.map_or("all 60,000".to_string(), |n| format!("the first {n}")),
        100.0 * settings.stop_at_train_accuracy,
        settings.max_epochs,
        settings.seeds
    ));
    s.figure("Loss and accuracy per epoch", format!("{ID}/random_labels.png"), input(inputs, "random_labels.png")?);
    s.table("Every run, at its last epoch (accuracies as fractions)", &summary)?;
    let pct = |v: Vec<f64>| span(&v.iter().map(|a| 100.0 * a).collect::<Vec<_>>());
    s.beside(
        "Ours (full sets, range over seeds) beside the original (last mini-batch, read from its figure)",
        vec![
            ["epochs".into(), "30".into(), span(&summary.floats("epochs")?)],
            ["final training loss (random labels)".into(), "1.77".into(), span(&summary.floats("train_loss")?)],
            [
                "final training accuracy (random labels), %".into(),
                "not reported".into(),
                pct(summary.floats("train_acc")?),
            ],
            [
                "final test loss".into(),
                "2.93 (50 test images, labels randomised too)".into(),
                format!("{} (true labels)", span(&summary.floats("test_loss")?)),
            ],
            ["final test accuracy, %".into(), "not reported".into(), pct(summary.floats("test_acc")?)],
        ],
    );
    s.text(
        "Original (read from its figure): 30 epochs on all 60,000 images; train loss 2.19 -> 1.77 (last mini-batch), \
         test loss 2.31 -> 2.93 on a single batch of 50 test images whose labels were randomised too; chance is ln 10 = \
         2.303. It never got near memorisation; with a training set the network can memorise, the training loss falls \
         towards 0 while the test loss on true labels climbs: memorisation without generalisation.",
    );
    Ok(s)
}
