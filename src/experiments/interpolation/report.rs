//! The report section of `interpolation`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use super::Settings;
use super::plot::lr_label;
use super::train::ID;
use crate::analysis::Table;
use crate::report::{Section, input};

pub fn section(inputs: &BTreeMap<String, PathBuf>, settings: &Settings) -> Result<Section> {
    let summary = Table::read_csv(input(inputs, "summary.csv")?)?;
    let mut s = Section::new(ID, "8. Flatness vs generalisation, part 1: interpolation");
    s.text(format!(
        "The 784-20-40-10 MLP (16,950 parameters) is trained from seed {} with batch {} (θ1) and batch {} (θ2), Adam, {} \
         epochs, at each learning rate {:?}. Every weight and bias is then interpolated, θ(α) = (1-α)·θ1 + α·θ2, at {} \
         values of α from {} to {}, and each θ(α) is evaluated on the full training and test sets.",
        settings.seed,
        settings.batch_sizes[0],
        settings.batch_sizes[1],
        settings.epochs,
        settings.lrs,
        settings.alpha_points,
        settings.alpha_range[0],
        settings.alpha_range[1]
    ));
    for lr in &settings.lrs {
        let name = format!("interpolation_lr{}.png", lr_label(*lr));
        s.figure(format!("Interpolation at lr {}", lr_label(*lr)), format!("{ID}/{name}"), input(inputs, &name)?);
    }
    s.table("The trained end points (accuracies as fractions)", &summary)?;
    s.text(
        "The original performed no interpolation: it interpolated the two parameter counts (integers), discarded the \
         result, and plotted the two models' per-epoch curves against α. Its end models (read from its figures, per-epoch \
         last-batch values): at lr 1e-3, batch 64 reached about 97.0 % train / 96.5 % test, batch 1024 about 93.5 % / \
         93.5 %; at lr 1e-2, batch 64 about 95.2 % / 94.7 %, batch 1024 about 96.8 % / 95.8 %.",
    );
    Ok(s)
}
