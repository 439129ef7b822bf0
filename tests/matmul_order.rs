//! The order of summation of every matrix product on flex (burn's `matmul`, the conv block's
//! products), which the vendored gemm fixes (vendor/README.md), checked here.
//!
//! The reference order of an f32 product `dst = lhs . rhs` through the general kernels: the depth
//! `k` is cut into blocks of `kc` (`kc = min(k, 512)` when both `m` and `n` are at most 64,
//! else `ceil(k / ceil(k / 512))`); each entry of a block is one chain of fused multiply-adds
//! from zero in depth order, and the blocks' sums are added to the entry in block order. Products
//! with a depth of at most 2, or a single column (row) stored column-major, take gemm's own
//! element-wise paths, whose order depends on the shape only. Whatever the path, the bits are the
//! same for every instruction set, cache size and thread count.

use gemm::Parallelism;
use rand::{Rng, SeedableRng};

use repro::nn::{VectorIsa, with_vector_ceiling};
use repro::rng::SeededRng;

/// How an operand is stored.
#[derive(Clone, Copy, Debug)]
enum Stored {
    RowMajor,
    ColumnMajor,
}

/// `dst [m, n]` (row-major) `= lhs [m, k] . rhs [k, n]` through `gemm::gemm`, or `+=` onto
/// `start` when given.
fn gemm_product(
    (m, n, k): (usize, usize, usize),
    (lhs, lhs_stored): (&[f32], Stored),
    (rhs, rhs_stored): (&[f32], Stored),
    start: Option<&[f32]>,
    parallelism: Parallelism,
) -> Vec<f32> {
    let strides = |stored: Stored, rows: usize, cols: usize| -> (isize, isize) {
        // (column stride, row stride)
        match stored {
            Stored::RowMajor => (1, cols as isize),
            Stored::ColumnMajor => (rows as isize, 1),
        }
    };
    let (lhs_cs, lhs_rs) = strides(lhs_stored, m, k);
    let (rhs_cs, rhs_rs) = strides(rhs_stored, k, n);
    let mut dst = start.map_or_else(|| vec![f32::NAN; m * n], <[f32]>::to_vec);
    // SAFETY: every buffer holds the elements its strides address, and `dst` is not aliased.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            start.is_some(),
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    dst
}

/// The reference order of the general kernels (module docs), on values in logical layout.
fn reference(
    m: usize,
    n: usize,
    k: usize,
    lhs: impl Fn(usize, usize) -> f32,
    rhs: impl Fn(usize, usize) -> f32,
    start: Option<&[f32]>,
) -> Vec<f32> {
    let kc = if m <= 64 && n <= 64 { k.min(512) } else { k.div_ceil(k.div_ceil(512)) };
    let mut dst = start.map_or_else(|| vec![0.0f32; m * n], <[f32]>::to_vec);
    for i in 0..m {
        for j in 0..n {
            for (b, block) in (0..k).step_by(kc).enumerate() {
                let sum = (block..(block + kc).min(k)).fold(0.0f32, |acc, p| lhs(i, p).mul_add(rhs(p, j), acc));
                let entry = &mut dst[i * n + j];
                *entry = if b == 0 && start.is_none() { sum } else { *entry + sum };
            }
        }
    }
    dst
}

fn random(len: usize, rng: &mut SeededRng) -> Vec<f32> {
    // Mixed magnitudes, so that a different order of the sums shows in the last bits.
    (0..len).map(|_| rng.random_range(-1.0f32..1.0) * 10f32.powi(rng.random_range(-3..3))).collect()
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// Shapes that reach every path of gemm: depth 1 and 2, single rows and columns, tiny products
/// (which upstream sums across vector lanes), the small-matrix path with a depth below and above
/// one block, and large products whose depth spans several blocks.
const SHAPES: [(usize, usize, usize); 11] = [
    (5, 7, 1),
    (9, 3, 2),
    (33, 1, 700),
    (1, 40, 300),
    (4, 4, 1000),
    (16, 16, 37),
    (20, 50, 511),
    (64, 64, 1300),
    (100, 17, 1536),
    (130, 90, 1025),
    (10, 250, 4096),
];

const LAYOUTS: [(Stored, Stored); 4] = [
    (Stored::RowMajor, Stored::RowMajor),
    (Stored::RowMajor, Stored::ColumnMajor),
    (Stored::ColumnMajor, Stored::RowMajor),
    (Stored::ColumnMajor, Stored::ColumnMajor),
];

/// Every product, for each shape, layout and accumulation, under the given ceiling and
/// parallelism (on a one-thread pool, which the ceiling reaches).
fn all_products(ceiling: VectorIsa, parallelism: Parallelism) -> Vec<Vec<u32>> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    pool.install(|| {
        with_vector_ceiling(ceiling, || {
            let mut rng = SeededRng::seed_from_u64(11);
            let mut out = Vec::new();
            for (m, n, k) in SHAPES {
                let (lhs, rhs, start) = (random(m * k, &mut rng), random(k * n, &mut rng), random(m * n, &mut rng));
                for (ls, rs) in LAYOUTS {
                    for start in [None, Some(&start[..])] {
                        out.push(bits(&gemm_product((m, n, k), (&lhs, ls), (&rhs, rs), start, parallelism)));
                    }
                }
            }
            out
        })
    })
}

#[test]
fn every_instruction_set_gives_the_same_products() {
    let widest = *VectorIsa::available().last().unwrap();
    let expected = all_products(widest, Parallelism::None);
    for isa in VectorIsa::available() {
        assert!(all_products(isa, Parallelism::None) == expected, "{isa:?} differs from {widest:?}");
    }
}

/// gemm's packing decisions (its tuning knobs, which upstream sets per machine) change how operands
/// are copied into blocks, never the order of the sums.
#[test]
fn packing_thresholds_do_not_change_a_product() {
    let expected = all_products(VectorIsa::Avx512, Parallelism::None);
    let defaults = (gemm::get_rhs_packing_threshold(), gemm::get_lhs_packing_threshold_single_thread());
    for (rhs, lhs) in [(1, 1), (64, 64)] {
        gemm::set_rhs_packing_threshold(rhs);
        gemm::set_lhs_packing_threshold_single_thread(lhs);
        let products = all_products(VectorIsa::Avx512, Parallelism::None);
        gemm::set_rhs_packing_threshold(defaults.0);
        gemm::set_lhs_packing_threshold_single_thread(defaults.1);
        assert!(products == expected, "packing thresholds {rhs}, {lhs}");
    }
}

#[test]
fn the_thread_count_does_not_change_a_product() {
    let expected = all_products(VectorIsa::Avx512, Parallelism::None);
    for threads in [1, 3, 8] {
        assert!(all_products(VectorIsa::Avx512, Parallelism::Rayon(threads)) == expected, "{threads} threads");
    }
}

/// The general kernels follow the reference order, blocks included, on every instruction set.
#[test]
fn the_general_kernels_sum_in_the_reference_order() {
    let mut rng = SeededRng::seed_from_u64(5);
    for (m, n, k) in [(16, 16, 37), (20, 50, 511), (64, 64, 1300), (100, 17, 1536), (130, 90, 1025)] {
        let (lhs, rhs, start) = (random(m * k, &mut rng), random(k * n, &mut rng), random(m * n, &mut rng));
        for start in [None, Some(&start[..])] {
            let expected = reference(m, n, k, |i, p| lhs[i * k + p], |p, j| rhs[p * n + j], start);
            for isa in VectorIsa::available() {
                let ours = with_vector_ceiling(isa, || {
                    gemm_product(
                        (m, n, k),
                        (&lhs, Stored::RowMajor),
                        (&rhs, Stored::RowMajor),
                        start,
                        Parallelism::None,
                    )
                });
                assert!(bits(&ours) == bits(&expected), "{m}x{n}x{k} on {isa:?}, accumulating: {}", start.is_some());
            }
        }
    }
}

/// The depth blocking depends on the depth alone, not on the register tile of the instruction set
/// (nor, by construction, on the caches: see vendor/README.md).
#[test]
fn the_depth_blocking_depends_on_the_depth_alone() {
    for k in [1usize, 100, 512, 513, 1300, 4096, 70_000] {
        let expected = k.div_ceil(k.div_ceil(512));
        for (mr, nr) in [(2, 4), (24, 4), (48, 8), (16, 6)] {
            for (m, n) in [(65, 65), (1000, 70), (70, 5000)] {
                assert_eq!(gemm_common::cache::kernel_params(m, n, k, mr, nr, 4).kc, expected, "k {k}, tile {mr}x{nr}");
            }
        }
    }
}
