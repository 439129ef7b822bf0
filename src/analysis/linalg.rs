//! PCA, symmetric eigenvalues, finite-difference Hessian-vector products and the minimal ratio (nalgebra does the
//! decompositions; nothing here is hand-rolled linear algebra).

use nalgebra::{DMatrix, SymmetricEigen};

/// The first two principal components of `rows` (one observation per row).
pub struct Pca {
    /// Each observation's coordinates on PC1 and PC2.
    pub projected: Vec<[f64; 2]>,
    /// Share of the total variance on PC1 and PC2.
    pub explained: [f64; 2],
    /// The two unit directions, in the space of the rows.
    pub components: [Vec<f64>; 2],
}

/// Centres each column over all rows, eigen-decomposes the scatter matrix (symmetric), keeps the
/// two largest eigenvalues' vectors, and projects. Each direction's sign is fixed so that its
/// largest-magnitude entry is positive, so results do not flip between runs or machines.
pub fn pca2(rows: &[Vec<f64>]) -> Pca {
    let (n, d) = (rows.len(), rows[0].len());
    let mut x = DMatrix::from_fn(n, d, |i, j| rows[i][j]);
    for j in 0..d {
        let mean = x.column(j).mean();
        x.column_mut(j).add_scalar_mut(-mean);
    }
    let scatter = x.transpose() * &x;
    let eig = SymmetricEigen::new(scatter);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let total: f64 = eig.eigenvalues.iter().map(|v| v.max(0.0)).sum();
    let component = |k: usize| -> Vec<f64> {
        let v: Vec<f64> = eig.eigenvectors.column(order[k]).iter().cloned().collect();
        let pivot = v.iter().cloned().fold(0.0f64, |a, b| if b.abs() > a.abs() { b } else { a });
        if pivot < 0.0 { v.iter().map(|x| -x).collect() } else { v }
    };
    let components = [component(0), component(1)];
    let projected = (0..n)
        .map(|i| {
            let row = x.row(i);
            [0, 1].map(|k| row.iter().zip(&components[k]).map(|(a, b)| a * b).sum())
        })
        .collect();
    let explained = [0, 1].map(|k| if total > 0.0 { eig.eigenvalues[order[k]].max(0.0) / total } else { 0.0 });
    Pca { projected, explained, components }
}

/// Eigenvalues of a symmetric matrix, ascending.
///
/// Rows (and columns) that are exactly zero are taken out first and stand for eigenvalues that are
/// exactly 0: nalgebra's symmetric solver can return NaN on such matrices (nalgebra issue #379),
/// and Hessians of ReLU networks have many of them (dead units).
pub fn symmetric_eigenvalues(matrix: &[Vec<f64>]) -> Vec<f64> {
    let live: Vec<usize> = (0..matrix.len()).filter(|&i| matrix[i].iter().any(|&v| v != 0.0)).collect();
    let n = live.len();
    let m = DMatrix::from_fn(n, n, |i, j| matrix[live[i]][live[j]]);
    let mut values: Vec<f64> =
        if n == 0 { Vec::new() } else { SymmetricEigen::new(m).eigenvalues.iter().cloned().collect() };
    values.resize(matrix.len(), 0.0);
    values.sort_by(f64::total_cmp);
    values
}

/// The probes of [`hvp_from`]: θ ± h·v/|v| (none when v = 0).
pub fn hvp_probes(theta: &[f32], v: &[f32], h: f32) -> Vec<Vec<f32>> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        return Vec::new();
    }
    let scale = h / norm;
    [1.0f32, -1.0].iter().map(|sign| theta.iter().zip(v).map(|(t, d)| t + sign * scale * d).collect()).collect()
}

/// Hessian-vector product by a central difference of gradients along `v` (scaled to length `h`),
/// from the gradients at [`hvp_probes`] (so that many products can share one batched pass).
pub fn hvp_from(probe_grads: &[Vec<f32>], v: &[f32], h: f32) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if probe_grads.is_empty() || norm == 0.0 {
        return vec![0.0; v.len()];
    }
    let scale = h / norm;
    probe_grads[0].iter().zip(&probe_grads[1]).map(|(p, m)| (p - m) / (2.0 * scale)).collect()
}

/// Solves (A + λI) x = b for a symmetric positive (semi)definite A (Cholesky; None if it fails).
pub fn solve_damped(a: &[Vec<f64>], lambda: f64, b: &[f64]) -> Option<Vec<f64>> {
    let n = a.len();
    let m = DMatrix::from_fn(n, n, |i, j| a[i][j] + if i == j { lambda } else { 0.0 });
    let chol = nalgebra::Cholesky::new(m)?;
    Some(chol.solve(&nalgebra::DVector::from_column_slice(b)).iter().cloned().collect())
}

/// A·B for square matrices given as rows.
pub fn matmul(a: &[Vec<f64>], b: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = a.len();
    let (ma, mb) = (DMatrix::from_fn(n, n, |i, j| a[i][j]), DMatrix::from_fn(n, n, |i, j| b[i][j]));
    let c = ma * mb;
    (0..n).map(|i| (0..n).map(|j| c[(i, j)]).collect()).collect()
}

/// The minimal ratio: the share of eigenvalues greater than `tolerance`.
pub fn minimal_ratio(eigenvalues: &[f64], tolerance: f64) -> f64 {
    eigenvalues.iter().filter(|&&l| l > tolerance).count() as f64 / eigenvalues.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rotation of the plane by `a` applied to coordinates (x, y).
    fn rotate(a: f64, x: f64, y: f64) -> [f64; 2] {
        [a.cos() * x - a.sin() * y, a.sin() * x + a.cos() * y]
    }

    #[test]
    fn pca_recovers_known_axes_and_variances() {
        // Points spread 3:1 along two orthogonal directions rotated by 30 degrees, plus an offset.
        let a = std::f64::consts::PI / 6.0;
        let mut rows = Vec::new();
        for (u, v) in [(3.0, 0.0), (-3.0, 0.0), (0.0, 1.0), (0.0, -1.0)] {
            let [x, y] = rotate(a, u, v);
            rows.push(vec![x + 5.0, y - 2.0, 7.0]);
        }
        let pca = pca2(&rows);
        let pc1 = &pca.components[0];
        // PC1 is the rotated x axis (sign fixed so the largest entry is positive).
        assert!((pc1[0] - a.cos()).abs() < 1e-9 && (pc1[1] - a.sin()).abs() < 1e-9 && pc1[2].abs() < 1e-9, "{pc1:?}");
        // Variances 2*9 and 2*1 of a total 20.
        assert!((pca.explained[0] - 0.9).abs() < 1e-12 && (pca.explained[1] - 0.1).abs() < 1e-12);
        assert!((pca.projected[0][0] - 3.0).abs() < 1e-9 && pca.projected[0][1].abs() < 1e-9);
        assert!((pca.projected[2][1].abs() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn eigenvalues_and_minimal_ratio_of_a_known_matrix() {
        // Q diag(-2, 0, 0.5, 3) Qᵀ with Q a rotation in the (0,1) and (2,3) planes.
        let lambdas = [-2.0, 0.0, 0.5, 3.0];
        let (c, s) = (0.6f64, 0.8f64);
        let q = [[c, -s, 0.0, 0.0], [s, c, 0.0, 0.0], [0.0, 0.0, c, s], [0.0, 0.0, -s, c]];
        let m: Vec<Vec<f64>> =
            (0..4).map(|i| (0..4).map(|j| (0..4).map(|k| q[i][k] * lambdas[k] * q[j][k]).sum()).collect()).collect();
        let eig = symmetric_eigenvalues(&m);
        for (got, want) in eig.iter().zip(lambdas) {
            assert!((got - want).abs() < 1e-12, "{eig:?}");
        }
        assert_eq!(minimal_ratio(&eig, 1e-9), 0.5);
        assert_eq!(minimal_ratio(&eig, 1.0), 0.25);
        // The same with a zero row and column inserted: one more exact 0, nothing else changes.
        let mut padded: Vec<Vec<f64>> = m.iter().map(|r| [&r[..2], &[0.0], &r[2..]].concat()).collect();
        padded.insert(2, vec![0.0; 5]);
        let eig = symmetric_eigenvalues(&padded);
        for (got, want) in eig.iter().zip([-2.0, 0.0, 0.0, 0.5, 3.0]) {
            assert!((got - want).abs() < 1e-12, "{eig:?}");
        }
    }

    #[test]
    fn damped_solve_matches_a_hand_solution() {
        // (A + 1·I) x = b with A = [[3, 1], [1, 2]]: [[4, 1], [1, 3]] x = [1, 2] -> x = [1/11, 7/11].
        let x = solve_damped(&[vec![3.0, 1.0], vec![1.0, 2.0]], 1.0, &[1.0, 2.0]).unwrap();
        assert!((x[0] - 1.0 / 11.0).abs() < 1e-12 && (x[1] - 7.0 / 11.0).abs() < 1e-12, "{x:?}");
        assert_eq!(
            matmul(&[vec![1.0, 2.0], vec![0.0, 1.0]], &[vec![1.0, 0.0], vec![3.0, 1.0]]),
            [vec![7.0, 2.0], vec![3.0, 1.0]]
        );
    }

    #[test]
    fn finite_difference_hvp_of_a_quadratic_is_exact() {
        // f(θ) = ½ θᵀAθ + bᵀθ has gradient Aθ + b and Hessian A.
        let a = [[4.0f32, 1.0, 0.0], [1.0, 3.0, -2.0], [0.0, -2.0, 5.0]];
        let grad =
            |t: &[f32]| -> Vec<f32> { (0..3).map(|i| (0..3).map(|j| a[i][j] * t[j]).sum::<f32>() + 1.0).collect() };
        let grads = |ts: &[Vec<f32>]| -> Vec<Vec<f32>> { ts.iter().map(|t| grad(t)).collect() };
        let v = [1.0, 0.0, 2.0];
        let hv = hvp_from(&grads(&hvp_probes(&[0.3, -0.2, 1.1], &v, 1e-2)), &v, 1e-2);
        assert!((hv[0] - 4.0).abs() < 1e-3 && (hv[1] + 3.0).abs() < 1e-3 && (hv[2] - 10.0).abs() < 1e-3, "{hv:?}");
    }
}
