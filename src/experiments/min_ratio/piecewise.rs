//! min_ratio's network's mean squared error in f64, exactly: its gradient, the Hessian of the
//! piece a point lies on, and a Hessian smoothed across kinks.
//!
//! On each piece of parameter space (every unit's sign on every sample held) a ReLU network is a
//! polynomial in its parameters: holding a point's sign pattern gives that polynomial's gradient,
//! whose central differences in f64 are exact to rounding (the gradient is a polynomial of low
//! degree, so the truncation error is of order h² times its third derivative). That is the
//! Hessian whose eigenvalues the minimal ratio counts: it does not depend on a step size, where
//! differences of f32 gradients mixed whatever pieces their step reached.
//!
//! Levenberg–Marquardt on ∇L = 0 uses the other one, differences of the true gradient over a step
//! that crosses kinks: with 1,000 samples a piece is tiny, its exact Hessian predicts only steps
//! that stay inside it, and LM on it stalled on more runs (31 of 100 short of the target against
//! 27; bench/results/min_ratio-2026-12-07b).
//!
//! Parameters are in the order of [`crate::nn::Mlp::flat`]: per layer W row-major as `[in, out]`,
//! then b.

/// The training set and the network's widths; inputs `[N, widths[0]]`, targets `[N, last]`,
/// both row-major.
pub struct PiecewiseMse {
    widths: Vec<usize>,
    xs: Vec<f64>,
    ys: Vec<f64>,
    samples: usize,
}

/// Which hidden units are on (pre-activation > 0, where PyTorch's ReLU has slope 1), per sample
/// and hidden layer, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Pattern(Vec<bool>);

/// Central-difference step of the piece's Hessian.
const STEP: f64 = 1e-4;

impl PiecewiseMse {
    pub fn new(widths: &[usize], xs: &[f32], ys: &[f32]) -> PiecewiseMse {
        let (inputs, outputs) = (widths[0], *widths.last().expect("widths"));
        let samples = xs.len() / inputs;
        assert_eq!(xs.len(), samples * inputs, "inputs");
        assert_eq!(ys.len(), samples * outputs, "targets");
        let wide = |v: &[f32]| v.iter().map(|&x| x as f64).collect();
        PiecewiseMse { widths: widths.to_vec(), xs: wide(xs), ys: wide(ys), samples }
    }

    pub fn param_count(&self) -> usize {
        crate::nn::mlp::param_count(&self.widths)
    }

    /// The loss, its gradient, and the sign pattern at `theta`.
    pub fn loss_and_grad(&self, theta: &[f64]) -> (f64, Vec<f64>, Pattern) {
        let mut pattern = Vec::new();
        let (loss, grad) = self.pass(theta, Mask::Record(&mut pattern));
        (loss, grad, Pattern(pattern))
    }

    pub fn grad_norm(&self, theta: &[f64]) -> f64 {
        norm(&self.loss_and_grad(theta).1)
    }

    /// The gradient of the polynomial that agrees with the loss on the piece of `pattern`.
    fn grad_on(&self, theta: &[f64], pattern: &Pattern) -> Vec<f64> {
        self.pass(theta, Mask::Hold(&pattern.0)).1
    }

    /// The Hessian of the piece `theta` lies on (symmetrised central differences of its gradient).
    pub fn hessian(&self, theta: &[f64]) -> Vec<Vec<f64>> {
        let (_, _, pattern) = self.loss_and_grad(theta);
        central_differences(theta, STEP, |t| self.grad_on(t, &pattern))
    }

    /// Central differences of the true gradient with step `h`, across whatever kinks lie within
    /// `h`: the Hessian of the loss smoothed over that scale.
    pub fn hessian_across_kinks(&self, theta: &[f64], h: f64) -> Vec<Vec<f64>> {
        central_differences(theta, h, |t| self.loss_and_grad(t).1)
    }

    /// One forward and backward pass over every sample: the MSE (mean over samples and outputs, as
    /// `torch.nn.MSELoss`) and its gradient.
    fn pass(&self, theta: &[f64], mut mask: Mask) -> (f64, Vec<f64>) {
        assert_eq!(theta.len(), self.param_count(), "parameter count");
        let widths = &self.widths;
        let layers = widths.len() - 1;
        // Where each layer's W and b start in theta.
        let mut starts = Vec::with_capacity(layers);
        let mut at = 0;
        for w in widths.windows(2) {
            starts.push((at, at + w[0] * w[1]));
            at += w[0] * w[1] + w[1];
        }
        let (inputs, outputs) = (widths[0], widths[layers]);
        let scale = 2.0 / (self.samples * outputs) as f64;
        let mut grad = vec![0.0; theta.len()];
        let mut loss = 0.0;
        let mut held = 0;
        // Per layer, this sample's activations (layer 0: the input).
        let mut acts: Vec<Vec<f64>> = widths.iter().map(|&w| vec![0.0; w]).collect();
        let mut on: Vec<Vec<bool>> = widths.iter().map(|&w| vec![false; w]).collect();
        for s in 0..self.samples {
            acts[0].copy_from_slice(&self.xs[s * inputs..(s + 1) * inputs]);
            for l in 0..layers {
                let (w, b) = starts[l];
                let (fan_in, fan_out) = (widths[l], widths[l + 1]);
                let (below, above) = acts.split_at_mut(l + 1);
                let (x, z) = (&below[l], &mut above[0]);
                for (j, zj) in z.iter_mut().enumerate() {
                    *zj = theta[b + j] + (0..fan_in).map(|i| x[i] * theta[w + i * fan_out + j]).sum::<f64>();
                }
                if l + 1 < layers {
                    for (j, zj) in z.iter_mut().enumerate() {
                        let unit_on = match &mut mask {
                            Mask::Record(pattern) => {
                                pattern.push(*zj > 0.0);
                                *zj > 0.0
                            }
                            Mask::Hold(pattern) => {
                                held += 1;
                                pattern[held - 1]
                            }
                        };
                        on[l + 1][j] = unit_on;
                        if !unit_on {
                            *zj = 0.0;
                        }
                    }
                }
            }
            // Backward: delta is dL/dz of the layer above.
            let mut delta: Vec<f64> = (0..outputs)
                .map(|k| {
                    let r = acts[layers][k] - self.ys[s * outputs + k];
                    loss += r * r;
                    scale * r
                })
                .collect();
            for l in (0..layers).rev() {
                let (w, b) = starts[l];
                let (fan_in, fan_out) = (widths[l], widths[l + 1]);
                for (j, d) in delta.iter().enumerate() {
                    grad[b + j] += d;
                    for i in 0..fan_in {
                        grad[w + i * fan_out + j] += acts[l][i] * d;
                    }
                }
                if l > 0 {
                    delta = (0..fan_in)
                        .map(|i| {
                            if !on[l][i] {
                                return 0.0;
                            }
                            (0..fan_out).map(|j| theta[w + i * fan_out + j] * delta[j]).sum()
                        })
                        .collect();
                }
            }
        }
        (loss / (self.samples * outputs) as f64, grad)
    }
}

/// Symmetrised central differences of `grad` at `theta`: H[:, j] = (g(θ + h e_j) − g(θ − h e_j)) / 2h,
/// then (H + Hᵀ) / 2.
fn central_differences(theta: &[f64], h: f64, grad: impl Fn(&[f64]) -> Vec<f64>) -> Vec<Vec<f64>> {
    let n = theta.len();
    let columns: Vec<Vec<f64>> = (0..n)
        .map(|j| {
            let mut probe = theta.to_vec();
            probe[j] = theta[j] + h;
            let plus = grad(&probe);
            probe[j] = theta[j] - h;
            let minus = grad(&probe);
            plus.iter().zip(&minus).map(|(p, m)| (p - m) / (2.0 * h)).collect()
        })
        .collect();
    (0..n).map(|i| (0..n).map(|j| 0.5 * (columns[j][i] + columns[i][j])).collect()).collect()
}

/// Whether a pass records the sign pattern it meets or holds a given one.
enum Mask<'a> {
    Record(&'a mut Vec<bool>),
    Hold(&'a [bool]),
}

pub fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::objective::MseObjective;
    use crate::nn::{Activation, Init, Mlp};
    use burn::prelude::Device;

    const WIDTHS: [usize; 4] = [1, 12, 6, 1];

    fn data() -> (Vec<f32>, Vec<f32>) {
        crate::data::synth::cosine_data(200, 3)
    }

    #[test]
    fn the_gradient_is_burns_autodiff_gradient() {
        let (xs, ys) = data();
        let device = Device::flex().autodiff();
        let objective = MseObjective::new(&WIDTHS, Activation::Relu, &xs, &ys, &device);
        let theta = Mlp::new(&WIDTHS, Activation::Relu, &mut Init::new(7), &device).flat();
        let (loss32, grad32) = objective.loss_and_grad(&theta);
        let exact = PiecewiseMse::new(&WIDTHS, &xs, &ys);
        let wide: Vec<f64> = theta.iter().map(|&t| t as f64).collect();
        let (loss, grad, _) = exact.loss_and_grad(&wide);
        assert!((loss - loss32 as f64).abs() < 1e-5 * loss, "loss {loss} vs {loss32}");
        let scale = norm(&grad);
        for (a, b) in grad.iter().zip(&grad32) {
            assert!((a - *b as f64).abs() < 1e-5 * scale, "gradient {a} vs {b}");
        }
    }

    #[test]
    fn the_hessian_matches_second_differences_of_the_loss_away_from_kinks() {
        let (xs, ys) = data();
        let exact = PiecewiseMse::new(&WIDTHS, &xs, &ys);
        let device = Device::flex();
        let theta: Vec<f64> =
            Mlp::new(&WIDTHS, Activation::Relu, &mut Init::new(11), &device).flat().iter().map(|&t| t as f64).collect();
        let h = exact.hessian(&theta);
        let loss = |t: &[f64]| exact.loss_and_grad(t).0;
        // Second differences of the loss itself (not of any gradient), with a step small enough
        // that no sample changes sides of a kink (checked: the pattern is the same at every probe).
        let e = 1e-4;
        let (_, _, pattern) = exact.loss_and_grad(&theta);
        let n = theta.len();
        for (i, j) in [(0, 0), (3, 17), (20, 40), (50, 50), (n - 1, n - 1), (n - 2, 30), (12, 100)] {
            let at = |di: f64, dj: f64| {
                let mut t = theta.clone();
                t[i] += di;
                t[j] += dj;
                assert_eq!(exact.loss_and_grad(&t).2, pattern, "a probe crossed a kink");
                loss(&t)
            };
            let second = (at(e, e) - at(e, -e) - at(-e, e) + at(-e, -e)) / (4.0 * e * e);
            let tolerance = 1e-5 * (1.0 + h[i][j].abs());
            assert!((second - h[i][j]).abs() < tolerance, "H[{i}][{j}] = {} vs {second}", h[i][j]);
        }
        for (i, row) in h.iter().enumerate() {
            assert!(row.iter().zip(&h).all(|(a, r)| *a == r[i]), "symmetric");
        }
        // With a step that crosses no kink, differences of the true gradient give the same matrix.
        let across = exact.hessian_across_kinks(&theta, 1e-6);
        for (a, b) in h.iter().flatten().zip(across.iter().flatten()) {
            assert!((a - b).abs() < 1e-4 * (1.0 + a.abs()), "{a} vs {b}");
        }
    }
}
