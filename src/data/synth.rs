//! The synthetic targets of spec sections 1 (and 3): 300 points on [-1.5, 1.5).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Function {
    /// sin(5 pi x) / (5 pi x)
    F1,
    /// sign(sin(5 pi x))
    F2,
}

impl Function {
    pub fn name(self) -> &'static str {
        match self {
            Function::F1 => "f1",
            Function::F2 => "f2",
        }
    }

    pub fn formula(self) -> &'static str {
        match self {
            Function::F1 => "sin(5πx)/(5πx)",
            Function::F2 => "sign(sin(5πx))",
        }
    }

    /// The target at `x`, in f64 (cast to f32 by the caller, as the original did).
    pub fn eval(self, x: f64) -> f64 {
        let t = 5.0 * std::f64::consts::PI * x;
        match self {
            Function::F1 => t.sin() / t,
            Function::F2 => t.sin().signum(),
        }
    }
}

/// `np.arange(-1.5, 1.5, 0.01)`: 300 points in f64, computed as numpy does: x_i = start + i * d
/// with d = (start + step) - start, which is not exactly 0.01. That is why x_150 is 1.3e-15, not 0.
pub fn grid() -> Vec<f64> {
    arange(-1.5, 1.5, 0.01)
}

/// numpy's `arange` for floats.
pub fn arange(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let n = ((stop - start) / step).ceil() as usize;
    let delta = (start + step) - start;
    (0..n).map(|i| start + i as f64 * delta).collect()
}

/// (x, y) of `function` on the grid, both cast to f32.
pub fn sample(function: Function) -> (Vec<f32>, Vec<f32>) {
    let xs = grid();
    let ys = xs.iter().map(|&x| function.eval(x) as f32).collect();
    (xs.iter().map(|&x| x as f32).collect(), ys)
}

/// `torch.linspace(start, end, steps)` in f32, as PyTorch computes it: the first half counts up
/// from `start`, the second half down from `end`, so both ends are exact.
pub fn linspace_f32(start: f32, end: f32, steps: usize) -> Vec<f32> {
    let step = (end - start) / (steps - 1) as f32;
    let half = steps / 2;
    (0..steps).map(|i| if i < half { start + step * i as f32 } else { end - step * (steps - 1 - i) as f32 }).collect()
}

/// The grad_norm target (spec section 4): sign(sin(f32(5π)·x)) computed in f32 (`torch.sign`,
/// so an exact 0 stays 0).
pub fn sign_sin_5pi_f32(x: f32) -> f32 {
    // The factor is 5π computed in f64 and then rounded to f32 (15.70796299, just below 5π), as
    // `torch.sin(5 * np.pi * X)` does; 5 * f32(π) would round up instead and flip the sign at x = ±1.
    let five_pi = (5.0 * std::f64::consts::PI) as f32;
    let s = (five_pi * x).sin();
    if s > 0.0 {
        1.0
    } else if s < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// The grad_norm data: 200 points of linspace(-1, 1) and their sign target.
pub fn grad_norm_data() -> (Vec<f32>, Vec<f32>) {
    let xs = linspace_f32(-1.0, 1.0, 200);
    let ys = xs.iter().map(|&x| sign_sin_5pi_f32(x)).collect();
    (xs, ys)
}

/// The min_ratio data (spec section 5): x = 20·U[0,1) − 10 (f32), drawn once from `seed`, y = cos x.
pub fn cosine_data(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    use rand::{Rng, SeedableRng};
    let mut rng = crate::rng::SeededRng::seed_from_u64(seed);
    let xs: Vec<f32> = (0..n).map(|_| 20.0 * rng.random::<f32>() - 10.0).collect();
    let ys = xs.iter().map(|x| x.cos()).collect();
    (xs, ys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_the_originals() {
        let xs = grid();
        assert_eq!(xs.len(), 300);
        assert_eq!(xs[0], -1.5);
        assert!((xs[299] - 1.49).abs() < 1e-12);
        // x_150 is a rounding residue, not 0, so f1 has no 0/0 there.
        assert!(xs[150] != 0.0 && xs[150].abs() < 1e-14);
        assert_eq!(xs[150], 1.3322676295501878e-15);
    }

    #[test]
    fn f1_range_and_variance_match_the_spec() {
        let (_, y) = sample(Function::F1);
        let max = y.iter().cloned().fold(f32::MIN, f32::max);
        let min = y.iter().cloned().fold(f32::MAX, f32::min);
        assert!((max - 1.0).abs() < 1e-6 && (min + 0.2168).abs() < 1e-3, "{min} {max}");
        let mean = y.iter().sum::<f32>() / 300.0;
        let var = y.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 300.0;
        assert!((var - 0.0613).abs() < 5e-4, "{var}");
    }

    #[test]
    fn f2_is_the_closed_form() {
        let (_, y) = sample(Function::F2);
        for (i, v) in y.iter().enumerate() {
            let expected = if ((i + 10) / 20) % 2 == 0 { 1.0 } else { -1.0 };
            assert_eq!(*v, expected, "i = {i}");
        }
        assert_eq!(y.iter().filter(|v| **v > 0.0).count(), 150);
    }

    #[test]
    fn grad_norm_target_matches_the_spec() {
        let (xs, ys) = grad_norm_data();
        assert_eq!((xs[0], xs[199]), (-1.0, 1.0));
        assert_eq!(ys.iter().filter(|&&y| y == 1.0).count(), 100);
        assert_eq!(ys.iter().filter(|&&y| y == -1.0).count(), 100);
        // +1 where floor(5x) is even, except at the ends: x = +1 -> +1 and x = -1 -> -1.
        assert_eq!((ys[0], ys[199]), (-1.0, 1.0));
        for (x, y) in xs.iter().zip(&ys).skip(1).take(198) {
            let even = (5.0 * x).floor() as i64 % 2 == 0;
            assert_eq!(*y, if even { 1.0 } else { -1.0 }, "x = {x}");
        }
    }

    #[test]
    fn cosine_data_is_on_the_interval_and_seeded() {
        let (xs, ys) = cosine_data(1000, 5);
        assert!(xs.iter().all(|x| (-10.0..10.0).contains(x)));
        assert!((ys[3] - xs[3].cos()).abs() < 1e-7);
        assert_eq!(cosine_data(1000, 5).0, xs);
        let var = ys.iter().map(|y| y * y).sum::<f32>() / 1000.0 - (ys.iter().sum::<f32>() / 1000.0).powi(2);
        assert!((var - 0.5).abs() < 0.05, "Var(cos) ≈ 0.5, got {var}");
    }
}
