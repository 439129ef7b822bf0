//! The three CNNs of `mnist_cnn` and what one run reports: shared by training, analysis and the
//! report.

use serde::{Deserialize, Serialize};

use crate::nn::cnn::CnnShape;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    Cnn1,
    Cnn2,
    Cnn3,
}

impl Model {
    pub fn name(self) -> &'static str {
        match self {
            Model::Cnn1 => "cnn1",
            Model::Cnn2 => "cnn2",
            Model::Cnn3 => "cnn3",
        }
    }

    pub fn shape(self) -> CnnShape {
        match self {
            Model::Cnn1 => {
                CnnShape { convs: vec![(10, 4), (20, 4)], head: vec![320, 50, 100, 10], dropout: Some((0, 0.25)) }
            }
            Model::Cnn2 => {
                CnnShape { convs: vec![(10, 4), (20, 4)], head: vec![320, 50, 50, 40, 30, 10], dropout: None }
            }
            Model::Cnn3 => CnnShape { convs: vec![(10, 5), (15, 5)], head: vec![240, 84, 10], dropout: None },
        }
    }

    /// The original's test accuracy (%), spec section 2.
    pub fn reference_test_accuracy(self) -> f64 {
        match self {
            Model::Cnn1 => 98.67,
            Model::Cnn2 => 98.24,
            Model::Cnn3 => 98.95,
        }
    }
}

#[derive(Serialize, Deserialize)]
pub struct RunReport {
    pub model: Model,
    pub seed: u64,
    pub params: usize,
    pub epochs: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub test_loss: f64,
    pub test_acc: f64,
}
