//! Sizes of networks, known without building them: the stage wiring, the figures and the report
//! need them too, and should not reach the training code to get them.

/// Weights plus biases of an MLP with these widths.
pub fn param_count(widths: &[usize]) -> usize {
    widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
}

/// Where each layer's parameters sit in the flat vector: (first, end) for W then b together.
pub fn layer_ranges(widths: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut at = 0;
    widths
        .windows(2)
        .map(|w| {
            let n = w[0] * w[1] + w[1];
            at += n;
            at - n..at
        })
        .collect()
}
