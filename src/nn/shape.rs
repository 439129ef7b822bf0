//! Sizes of networks, known without building them: the stage wiring, the figures and the report
//! need them too, and should not reach the training code to get them.

/// Weights plus biases of an MLP with these widths.
pub fn param_count(widths: &[usize]) -> usize {
    widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
}
