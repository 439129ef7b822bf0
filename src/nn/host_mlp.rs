//! The full-batch MSE and its gradient for a small MLP, computed on the host in one pass per
//! network: sixteen samples at a time, every layer's activations and deltas in rows of sixteen
//! lanes, each operation on them one vector instruction (AVX-512, or two AVX2 ones).
//!
//! Why its own code: min_ratio evaluates this gradient about 14,000 times per run (training, the
//! descent on ‖∇L‖², the Hessians' probes) for a 1-12-6-1 network on 1000 points. Through burn each
//! evaluation is a dozen tensor operations whose matrices are tiny (an outer product for the first
//! layer, a 6-to-1 product for the last), so the time went to the gemm crate's small-matrix path,
//! packing, `reduce_dim` over bias gradients, and copies and fills (perf, bench/results/compare-2026-12-02/), not to
//! arithmetic. Here a network's whole pass stays in the first-level cache.
//!
//! The numbers are the same on every x86-64 CPU: the vector width only changes how many lanes one
//! instruction covers, never the order of the additions (no fused multiply-adds, and each lane's
//! sums are added up in a fixed order at the end). They differ from burn's in the last bits
//! (another summation order), as two BLAS libraries do.

use super::shape::layer_ranges;
// A step takes LANES samples: one AVX-512 register of f32, two AVX2 ones.
use super::lanes::{self, LANES, Lanes};
use super::mlp::{Activation, param_count};

/// A small MLP's MSE on fixed data: inputs `[N, widths[0]]`, targets `[N, widths.last()]`.
pub struct HostMlp {
    widths: Vec<usize>,
    activation: Activation,
    xs: Vec<f32>,
    ys: Vec<f32>,
}

impl HostMlp {
    pub fn new(widths: &[usize], activation: Activation, xs: &[f32], ys: &[f32]) -> HostMlp {
        let (inputs, outputs) = (widths[0], *widths.last().expect("at least one layer"));
        assert!(widths.len() >= 2 && xs.len().is_multiple_of(inputs), "inputs fit the first layer");
        assert_eq!(xs.len() / inputs * outputs, ys.len(), "one target row per input row");
        HostMlp { widths: widths.to_vec(), activation, xs: xs.to_vec(), ys: ys.to_vec() }
    }

    /// The MSE (mean over samples and outputs, as `nn.MSELoss()`) at `theta`, in the flat order
    /// of [`super::Mlp::flat`], and its gradient in the same order.
    pub fn loss_and_grad(&self, theta: &[f32]) -> (f32, Vec<f32>) {
        assert_eq!(theta.len(), param_count(&self.widths), "flat vector length");
        match super::VectorIsa::chosen() {
            // SAFETY (both): `chosen` picks only a set this CPU has.
            #[cfg(target_arch = "x86_64")]
            super::VectorIsa::Avx512 => unsafe { self.pass_avx512(theta) },
            #[cfg(target_arch = "x86_64")]
            super::VectorIsa::Avx2 => unsafe { self.pass_avx2(theta) },
            // SAFETY: plain Rust.
            _ => unsafe { self.pass::<lanes::Portable>(theta) },
        }
    }

    /// The network's outputs at `theta`, `[N, outputs]` row-major: a plain forward pass, for the
    /// rare reads of a prediction (the gradient's pass keeps no outputs).
    pub fn outputs(&self, theta: &[f32]) -> Vec<f32> {
        assert_eq!(theta.len(), param_count(&self.widths), "flat vector length");
        let inputs = self.widths[0];
        let layers = self.widths.len() - 1;
        let mut out = Vec::with_capacity(self.ys.len());
        let ranges = layer_ranges(&self.widths);
        for x in self.xs.chunks_exact(inputs) {
            let mut a = x.to_vec();
            for (layer, (w, range)) in self.widths.windows(2).zip(&ranges).enumerate() {
                let (n_in, n_out) = (w[0], w[1]);
                let (weights, biases) = theta[range.clone()].split_at(n_in * n_out);
                let mut z = biases.to_vec();
                for (i, &v) in a.iter().enumerate() {
                    for (zo, &weight) in z.iter_mut().zip(&weights[i * n_out..(i + 1) * n_out]) {
                        *zo += v * weight;
                    }
                }
                if layer + 1 < layers {
                    z.iter_mut().for_each(|v| *v = self.activation.apply_scalar(*v));
                }
                a = z;
            }
            out.extend(a);
        }
        out
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn pass_avx512(&self, theta: &[f32]) -> (f32, Vec<f32>) {
        // SAFETY: the caller checked that the CPU has AVX-512F, which this function enables.
        unsafe { self.pass::<lanes::Avx512>(theta) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn pass_avx2(&self, theta: &[f32]) -> (f32, Vec<f32>) {
        // SAFETY: the caller checked that the CPU has AVX2, which this function enables.
        unsafe { self.pass::<lanes::Avx2>(theta) }
    }

    /// The pass itself, over sixteen samples at a time held in a [`lanes::Vector`]; inlined into
    /// each instruction-set variant above.
    ///
    /// The lanes are explicit vector operations rather than loops over arrays of sixteen: written
    /// as loops, the compiler unrolled them and then vectorised across a layer's units instead,
    /// which left every layer narrower than eight units (min_ratio's 6 and 1) scalar.
    ///
    /// # Safety
    /// The CPU has the instructions `V` uses.
    #[inline(always)]
    unsafe fn pass<V: lanes::Vector>(&self, theta: &[f32]) -> (f32, Vec<f32>) {
        let widths = &self.widths;
        let layers = widths.len() - 1;
        let (inputs, outputs) = (widths[0], widths[layers]);
        let samples = self.xs.len() / inputs;
        // Where each layer's weights `[in, out]` and biases `[out]` start in `theta`.
        let offsets: Vec<usize> = layer_ranges(widths).into_iter().map(|r| r.start).collect();
        // Every layer's activations (the inputs first) and deltas, a row of lanes per unit, and
        // each parameter's gradient as a row of lanes (summed at the end).
        let mut acts: Vec<Vec<Lanes>> = widths.iter().map(|&w| vec![[0.0; LANES]; w]).collect();
        let mut deltas: Vec<Vec<Lanes>> = widths.iter().map(|&w| vec![[0.0; LANES]; w]).collect();
        let mut grad_lanes: Vec<Lanes> = vec![[0.0; LANES]; theta.len()];
        let mut loss_lanes = V::splat(0.0);
        let scale = V::splat(2.0 / (samples * outputs) as f32);
        let slope = V::splat(super::leaky_relu::SLOPE);

        for start in (0..samples).step_by(LANES) {
            let valid = LANES.min(samples - start);
            // The inputs; lanes past the last sample are zeros and get no delta below.
            for (unit, a) in acts[0].iter_mut().enumerate() {
                for (lane, v) in a.iter_mut().enumerate() {
                    *v = if lane < valid { self.xs[(start + lane) * inputs + unit] } else { 0.0 };
                }
            }
            // SAFETY: as for this function.
            unsafe { self.forward::<V>(theta, &offsets, &mut acts, slope) };
            // The loss and its gradient at the outputs.
            for o in 0..outputs {
                let mut diff: Lanes = [0.0; LANES];
                for (lane, d) in diff.iter_mut().enumerate().take(valid) {
                    *d = acts[layers][o][lane] - self.ys[(start + lane) * outputs + o];
                }
                let diff = V::load(&diff);
                loss_lanes = loss_lanes.add(diff.mul(diff));
                scale.mul(diff).store(&mut deltas[layers][o]);
            }
            // SAFETY: as for this function.
            unsafe { self.backward::<V>(theta, &offsets, &acts, &mut deltas, &mut grad_lanes, slope) };
        }
        let grad = grad_lanes.iter().map(|lanes| lanes.iter().sum()).collect();
        let mut loss: Lanes = [0.0; LANES];
        loss_lanes.store(&mut loss);
        (loss.iter().sum::<f32>() / (samples * outputs) as f32, grad)
    }

    /// Every layer's activations of one chunk of samples, from its inputs in `acts[0]`.
    ///
    /// # Safety
    /// The CPU has the instructions `V` uses.
    #[inline(always)]
    unsafe fn forward<V: lanes::Vector>(&self, theta: &[f32], offsets: &[usize], acts: &mut [Vec<Lanes>], slope: V) {
        let (widths, leaky) = (&self.widths, self.activation == Activation::LeakyRelu);
        let layers = widths.len() - 1;
        for layer in 0..layers {
            let (n_in, n_out) = (widths[layer], widths[layer + 1]);
            let w = &theta[offsets[layer]..offsets[layer] + n_in * n_out];
            let b = &theta[offsets[layer] + n_in * n_out..offsets[layer] + n_in * n_out + n_out];
            let (before, after) = acts.split_at_mut(layer + 1);
            let (prev, next) = (&before[layer], &mut after[0]);
            let hidden = layer + 1 < layers;
            for (o, out) in next.iter_mut().enumerate() {
                let mut z = V::splat(b[o]);
                for (i, a) in prev.iter().enumerate() {
                    z = z.add(V::load(a).mul(V::splat(w[i * n_out + o])));
                }
                if hidden {
                    z = if leaky { z.leaky_relu(slope) } else { z.relu() };
                }
                z.store(out);
            }
        }
    }

    /// Backward through one chunk, last layer first, from the deltas at the outputs: adds each
    /// parameter's gradient to its lanes, and fills the deltas of the layers below.
    ///
    /// # Safety
    /// The CPU has the instructions `V` uses.
    #[inline(always)]
    unsafe fn backward<V: lanes::Vector>(
        &self,
        theta: &[f32],
        offsets: &[usize],
        acts: &[Vec<Lanes>],
        deltas: &mut [Vec<Lanes>],
        grad_lanes: &mut [Lanes],
        slope: V,
    ) {
        let (widths, leaky) = (&self.widths, self.activation == Activation::LeakyRelu);
        let layers = widths.len() - 1;
        for layer in (0..layers).rev() {
            let (n_in, n_out) = (widths[layer], widths[layer + 1]);
            let w_at = offsets[layer];
            let (before, after) = deltas.split_at_mut(layer + 1);
            let (delta_in, delta) = (&mut before[layer], &after[0]);
            let prev = &acts[layer];
            let (w_grads, rest) = grad_lanes[w_at..].split_at_mut(n_in * n_out);
            for (i, a) in prev.iter().enumerate() {
                let a = V::load(a);
                for (g, d) in w_grads[i * n_out..(i + 1) * n_out].iter_mut().zip(delta) {
                    V::load(g).add(a.mul(V::load(d))).store(g);
                }
            }
            for (g, d) in rest[..n_out].iter_mut().zip(delta) {
                V::load(g).add(V::load(d)).store(g);
            }
            if layer == 0 {
                break;
            }
            // The delta of the layer below: back through the weights, then the activation
            // (its derivative read off its output: positive where its input was).
            let w = &theta[w_at..w_at + n_in * n_out];
            for (i, (out, a)) in delta_in.iter_mut().zip(prev).enumerate() {
                let mut sum = V::splat(0.0);
                for (&weight, d) in w[i * n_out..(i + 1) * n_out].iter().zip(delta) {
                    sum = sum.add(V::splat(weight).mul(V::load(d)));
                }
                let a = V::load(a);
                let sum = if leaky { sum.scaled_where_negative(a, slope) } else { sum.kept_where_positive(a) };
                sum.store(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::objective::MseObjective;
    use crate::nn::{Init, Mlp, VectorIsa, with_vector_ceiling};
    use burn::prelude::Device;

    fn data(n: usize) -> (Vec<f32>, Vec<f32>) {
        let xs: Vec<f32> = (0..n).map(|i| -3.0 + 6.0 * i as f32 / n as f32).collect();
        let ys = xs.iter().map(|x| (2.0 * x).cos()).collect();
        (xs, ys)
    }

    #[test]
    fn a_hand_computed_network_gives_the_hand_computed_loss_and_gradient() {
        // 1-1-1, ReLU: f(x) = v · relu(w x + b) + c with w = 2, b = -1, v = 3, c = 0.5 on
        // x = (1, 0), y = (4, 1). Sample 1: z = 1, h = 1, f = 3.5, e = -0.5. Sample 2: z = -1,
        // h = 0, f = 0.5, e = -0.5. L = (0.25 + 0.25) / 2 = 0.25; dL/df = e (= 2e / 2).
        // dv = Σ e h = -0.5; dc = Σ e = -1; dw = Σ e v x [z > 0] = -1.5; db = Σ e v [z > 0] = -1.5.
        let mlp = HostMlp::new(&[1, 1, 1], Activation::Relu, &[1.0, 0.0], &[4.0, 1.0]);
        let (loss, grad) = mlp.loss_and_grad(&[2.0, -1.0, 3.0, 0.5]);
        assert_eq!(loss, 0.25);
        assert_eq!(grad, vec![-1.5, -1.5, -0.5, -1.0]);
    }

    #[test]
    fn it_agrees_with_burns_autodiff() {
        let device = Device::flex().autodiff();
        // 37 samples: two full steps of sixteen and a partial one.
        let (xs, ys) = data(37);
        for (widths, activation) in [(&[1, 12, 6, 1][..], Activation::Relu), (&[1, 5, 7, 1][..], Activation::LeakyRelu)]
        {
            let host = HostMlp::new(widths, activation, &xs, &ys);
            let burn = MseObjective::new(widths, activation, &xs, &ys, &device);
            for seed in 0..4 {
                let theta = Mlp::new(widths, activation, &mut Init::new(seed), &device).flat();
                let (loss, grad) = host.loss_and_grad(&theta);
                let (want_loss, want_grad) = burn.loss_and_grad(&theta);
                assert!((loss - want_loss).abs() <= 1e-6 * want_loss.abs().max(1.0), "{loss} vs {want_loss}");
                let scale = want_grad.iter().fold(0.0f32, |m, g| m.max(g.abs())).max(1e-3);
                for (k, (g, want)) in grad.iter().zip(&want_grad).enumerate() {
                    assert!((g - want).abs() <= 1e-5 * scale, "{widths:?} seed {seed} parameter {k}: {g} vs {want}");
                }
            }
        }
    }

    /// Each instruction set this CPU has, against the plain arrays, bit for bit: both
    /// activations, a partial last group of samples (1000 = 62 * 16 + 8).
    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let (xs, ys) = data(1000);
        for (widths, activation) in
            [(&[1, 12, 6, 1][..], Activation::Relu), (&[1, 5, 10, 5, 1][..], Activation::LeakyRelu)]
        {
            let host = HostMlp::new(widths, activation, &xs, &ys);
            let theta = Mlp::new(widths, activation, &mut Init::new(3), &Device::flex()).flat();
            // SAFETY: plain Rust.
            let reference = unsafe { host.pass::<lanes::Portable>(&theta) };
            let variants = VectorIsa::available()
                .into_iter()
                .map(|isa| (isa, with_vector_ceiling(isa, || host.loss_and_grad(&theta))));
            for (name, (loss, grad)) in variants {
                assert_eq!(loss.to_bits(), reference.0.to_bits(), "{name:?} {widths:?}: loss");
                let same = grad.iter().zip(&reference.1).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same && grad.len() == reference.1.len(), "{name:?} {widths:?}: gradient");
            }
            assert!(reference.1.iter().any(|&g| g != 0.0));
        }
    }
}
