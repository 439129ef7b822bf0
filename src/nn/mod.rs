//! Models, initialisation, optimiser and losses, matching PyTorch's defaults (spec section 0).

/// `widest_vectors!(fn NAME => BODY(arg: Type, ...))` defines `NAME`, which calls `BODY` (an
/// `#[inline(always)]` function of those arguments, returning nothing) compiled for AVX-512F or
/// AVX2 where this CPU has them (and [`vectors_allowed`] allows them), and for the baseline
/// otherwise. The binary runs on any x86-64, so the compiler's own choice is SSE2: four lanes
/// where these CPUs have eight or sixteen. For loops whose lanes are independent (copies,
/// comparisons, element-wise IEEE arithmetic without fused multiply-adds) the bits are the same
/// on every variant, only faster on wider ones.
macro_rules! widest_vectors {
    (fn $name:ident => $body:ident ($($arg:ident: $ty:ty),* $(,)?)) => {
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                use $crate::nn::{VectorIsa, vectors_allowed};
                if vectors_allowed(VectorIsa::Avx512) && std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F, checked just above.
                    return unsafe { avx512($($arg),*) };
                }
                if vectors_allowed(VectorIsa::Avx2) && std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

pub mod backend;
pub mod classify;
pub mod cnn;
pub mod conv_block;
pub mod flat;
pub mod flex_buffers;
pub mod full_batch;
pub mod host_mlp;
pub mod init;
pub mod leaky_relu;
pub mod loss;
pub mod mlp;
pub mod optim;
pub mod shape;
pub mod snapshot;
pub mod sparse_input;
pub mod stacked;

pub use backend::Compute;
pub use init::Init;
pub use mlp::{Activation, Mlp};

/// The instruction sets `widest_vectors!` compiles kernels for, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum VectorIsa {
    Baseline,
    Avx2,
    Avx512,
}

impl VectorIsa {
    /// Those this CPU has.
    pub fn available() -> Vec<VectorIsa> {
        let mut isas = vec![VectorIsa::Baseline];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                isas.push(VectorIsa::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                isas.push(VectorIsa::Avx512);
            }
        }
        isas
    }
}

thread_local! {
    static VECTOR_CEILING: std::cell::Cell<VectorIsa> = const { std::cell::Cell::new(VectorIsa::Avx512) };
}

/// Whether `widest_vectors!` kernels on this thread may use `isa` (the CPU must have it too).
pub fn vectors_allowed(isa: VectorIsa) -> bool {
    VECTOR_CEILING.with(|ceiling| isa <= ceiling.get())
}

/// `f` with the `widest_vectors!` kernels of this thread limited to `ceiling`, so that tests can
/// compare the variants (run it on a one-thread pool: the limit does not reach other threads).
pub fn with_vector_ceiling<R>(ceiling: VectorIsa, f: impl FnOnce() -> R) -> R {
    let before = VECTOR_CEILING.with(|c| c.replace(ceiling));
    let result = f();
    VECTOR_CEILING.with(|c| c.set(before));
    result
}

use burn::prelude::*;

/// A column tensor `[n, 1]` from values.
pub fn column(values: &[f32], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values.to_vec(), [values.len(), 1]), device)
}

/// The values of a tensor, flattened row-major.
pub fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor.into_data().convert::<f32>().try_to_vec::<f32>().expect("float tensor")
}

/// A scalar tensor's value.
pub fn scalar(tensor: Tensor<1>) -> f32 {
    values(tensor)[0]
}

/// Inverted dropout (`nn.Dropout(p)` in train mode) with a mask from our own seeded generator,
/// so that runs are reproducible whatever else runs at the same time.
pub fn dropout(x: Tensor<2>, p: f32, rng: &mut crate::rng::SeededRng) -> Tensor<2> {
    use rand::Rng;
    let dims = x.dims();
    let device = x.device();
    let keep = 1.0 - p;
    let mask: Vec<f32> =
        (0..dims[0] * dims[1]).map(|_| if rng.random::<f32>() < keep { 1.0 / keep } else { 0.0 }).collect();
    x * Tensor::from_data(TensorData::new(mask, dims), &device)
}
