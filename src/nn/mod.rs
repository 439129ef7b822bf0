//! Models, initialisation, optimiser and losses, matching PyTorch's defaults (spec section 0).

/// `widest_vectors!(fn NAME => BODY(arg: Type, ...))` defines `NAME`, which calls `BODY` (an
/// `#[inline(always)]` function of those arguments, returning nothing) compiled for AVX-512F or
/// AVX2 with FMA, or for the baseline, as [`VectorIsa::chosen`] picks. The binary runs on any x86-64, so
/// the compiler's own choice is SSE2: four lanes where these CPUs have eight or sixteen. For
/// loops whose lanes are independent (copies, comparisons, element-wise IEEE arithmetic without
/// fused multiply-adds) the bits are the same on every variant, only faster on wider ones.
macro_rules! widest_vectors {
    (fn $name:ident => $body:ident ($($arg:ident: $ty:ty),* $(,)?)) => {
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,fma")]
                unsafe fn avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                use $crate::nn::VectorIsa;
                match VectorIsa::chosen() {
                    // SAFETY (both): `chosen` picks only a set this CPU has.
                    VectorIsa::Avx512 => return unsafe { avx512($($arg),*) },
                    VectorIsa::Avx2 => return unsafe { avx2($($arg),*) },
                    VectorIsa::Baseline => {}
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
pub mod lanes;
pub mod leaky_relu;
pub mod loss;
pub mod mlp;
pub mod objective;
pub mod optim;
pub mod shape;
pub mod snapshot;
pub mod sparse_input;
pub mod stacked;

pub use backend::Compute;
pub use init::Init;
pub use mlp::{Activation, Mlp};

/// The instruction sets the hand-written kernels are compiled for (`widest_vectors!`, the host
/// MLP's pass, the sparse first layer), narrowest first. Every kernel picks its set through
/// [`VectorIsa::chosen`], so one detection, and one ceiling for the tests, reaches them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum VectorIsa {
    Baseline,
    /// AVX2 with FMA (the sparse layer's kernel fuses; every CPU with AVX2 has both).
    Avx2,
    Avx512,
}

impl VectorIsa {
    const ALL: [VectorIsa; 3] = [VectorIsa::Baseline, VectorIsa::Avx2, VectorIsa::Avx512];

    /// Whether this CPU has it.
    fn on_this_cpu(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            match self {
                VectorIsa::Baseline => true,
                VectorIsa::Avx2 => {
                    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
                }
                VectorIsa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == VectorIsa::Baseline
        }
    }

    /// Those this CPU has, narrowest first.
    pub fn available() -> Vec<VectorIsa> {
        Self::ALL.into_iter().filter(|isa| isa.on_this_cpu()).collect()
    }

    /// The set kernels on this thread run: the widest this CPU has within the thread's ceiling
    /// ([`with_vector_ceiling`]).
    pub fn chosen() -> VectorIsa {
        let ceiling = VECTOR_CEILING.with(|ceiling| ceiling.get());
        Self::ALL.into_iter().rev().find(|&isa| isa <= ceiling && isa.on_this_cpu()).unwrap_or(VectorIsa::Baseline)
    }
}

thread_local! {
    static VECTOR_CEILING: std::cell::Cell<VectorIsa> = const { std::cell::Cell::new(VectorIsa::Avx512) };
}

/// `f` with the kernels of this thread limited to `ceiling` ([`VectorIsa::chosen`]), gemm's
/// matrix kernels included, so that tests can compare the variants (run it on a one-thread pool:
/// the limit does not reach other threads).
pub fn with_vector_ceiling<R>(ceiling: VectorIsa, f: impl FnOnce() -> R) -> R {
    use gemm_common::vector_ceiling::{self, Ceiling};
    let before = VECTOR_CEILING.with(|c| c.replace(ceiling));
    let gemm_before = vector_ceiling::set(Some(match ceiling {
        VectorIsa::Baseline => Ceiling::Scalar,
        VectorIsa::Avx2 => Ceiling::Fma,
        VectorIsa::Avx512 => Ceiling::Avx512,
    }));
    let result = f();
    VECTOR_CEILING.with(|c| c.set(before));
    vector_ceiling::set(gemm_before);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Under each ceiling the kernels run that set if the CPU has it, else the widest below it it
    /// has; the baseline is always there, and the ceiling ends with its closure.
    #[test]
    fn the_chosen_set_is_the_widest_the_cpu_has_under_the_ceiling() {
        let available = VectorIsa::available();
        assert_eq!(available[0], VectorIsa::Baseline);
        let widest = *available.last().unwrap();
        for ceiling in VectorIsa::ALL {
            let expected = *available.iter().rev().find(|&&isa| isa <= ceiling).unwrap();
            assert_eq!(with_vector_ceiling(ceiling, VectorIsa::chosen), expected, "ceiling {ceiling:?}");
        }
        assert_eq!(VectorIsa::chosen(), widest);
    }
}
