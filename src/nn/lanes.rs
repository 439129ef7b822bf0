//! Sixteen f32 lanes as one value, with the few operations the hand-written kernels need, per
//! instruction set (the host MLP's pass, the conv block's dot products). Each operation is the same
//! IEEE operation on every lane in every implementation (a fused multiply-add where it says so,
//! comparisons false on NaN), so a kernel written over [`Vector`] gives the same bits on each.

/// Lanes per value.
pub const LANES: usize = 16;
/// A value's lanes in memory.
pub type Lanes = [f32; LANES];

/// # Safety
/// Implementations may use instructions the CPU must have: only call them from code that
/// checked ([`super::VectorIsa::chosen`]), in functions compiled for them.
pub unsafe trait Vector: Copy {
    fn splat(v: f32) -> Self;
    fn load(lanes: &Lanes) -> Self;
    fn store(self, lanes: &mut Lanes);
    fn add(self, other: Self) -> Self;
    fn mul(self, other: Self) -> Self;
    /// `self + a * b` per lane, rounded once (a fused multiply-add). Needs FMA beside AVX2.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// `if gate > 0 { v } else { 0 }` per lane: ReLU's derivative applied.
    fn kept_where_positive(self, gate: Self) -> Self;
    /// `if gate < 0 { v * slope } else { v }` per lane: leaky ReLU's derivative applied.
    fn scaled_where_negative(self, gate: Self, slope: Self) -> Self;
    /// `if v > 0 { v } else { 0 }` per lane.
    #[inline(always)]
    fn relu(self) -> Self {
        self.kept_where_positive(self)
    }
    /// `if v < 0 { v * slope } else { v }` per lane.
    #[inline(always)]
    fn leaky_relu(self, slope: Self) -> Self {
        self.scaled_where_negative(self, slope)
    }
}

/// Plain arrays, for CPUs without the vector instructions below (and as the reference in tests).
#[derive(Clone, Copy)]
pub struct Portable(Lanes);

impl Portable {
    #[inline(always)]
    fn zip(self, other: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        Portable(std::array::from_fn(|lane| f(self.0[lane], other.0[lane])))
    }
}

// SAFETY: plain Rust, no instruction-set requirement.
unsafe impl Vector for Portable {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Portable([v; LANES])
    }
    #[inline(always)]
    fn load(lanes: &Lanes) -> Self {
        Portable(*lanes)
    }
    #[inline(always)]
    fn store(self, lanes: &mut Lanes) {
        *lanes = self.0;
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        self.zip(other, |a, b| a + b)
    }
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        self.zip(other, |a, b| a * b)
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        Portable(std::array::from_fn(|l| a.0[l].mul_add(b.0[l], self.0[l])))
    }
    #[inline(always)]
    fn kept_where_positive(self, gate: Self) -> Self {
        self.zip(gate, |v, g| if g > 0.0 { v } else { 0.0 })
    }
    #[inline(always)]
    fn scaled_where_negative(self, gate: Self, slope: Self) -> Self {
        Portable(std::array::from_fn(|l| if gate.0[l] < 0.0 { self.0[l] * slope.0[l] } else { self.0[l] }))
    }
}

/// One AVX-512 register.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub struct Avx512(std::arch::x86_64::__m512);

// SAFETY: every operation is an AVX-512F instruction; the trait's contract has callers check.
#[cfg(target_arch = "x86_64")]
unsafe impl Vector for Avx512 {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        // SAFETY (here and below): the CPU has AVX-512F (the trait's contract); loads and
        // stores address the sixteen floats of a `Lanes`.
        unsafe { Avx512(std::arch::x86_64::_mm512_set1_ps(v)) }
    }
    #[inline(always)]
    fn load(lanes: &Lanes) -> Self {
        unsafe { Avx512(std::arch::x86_64::_mm512_loadu_ps(lanes.as_ptr())) }
    }
    #[inline(always)]
    fn store(self, lanes: &mut Lanes) {
        unsafe { std::arch::x86_64::_mm512_storeu_ps(lanes.as_mut_ptr(), self.0) }
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        unsafe { Avx512(std::arch::x86_64::_mm512_add_ps(self.0, other.0)) }
    }
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        unsafe { Avx512(std::arch::x86_64::_mm512_mul_ps(self.0, other.0)) }
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        unsafe { Avx512(std::arch::x86_64::_mm512_fmadd_ps(a.0, b.0, self.0)) }
    }
    #[inline(always)]
    fn kept_where_positive(self, gate: Self) -> Self {
        use std::arch::x86_64::*;
        unsafe {
            let positive = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(gate.0, _mm512_setzero_ps());
            Avx512(_mm512_maskz_mov_ps(positive, self.0))
        }
    }
    #[inline(always)]
    fn scaled_where_negative(self, gate: Self, slope: Self) -> Self {
        use std::arch::x86_64::*;
        unsafe {
            let negative = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(gate.0, _mm512_setzero_ps());
            Avx512(_mm512_mask_mul_ps(self.0, negative, self.0, slope.0))
        }
    }
}

/// Two AVX registers.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub struct Avx2([std::arch::x86_64::__m256; 2]);

#[cfg(target_arch = "x86_64")]
impl Avx2 {
    #[inline(always)]
    fn each(
        self,
        other: Self,
        f: impl Fn(std::arch::x86_64::__m256, std::arch::x86_64::__m256) -> std::arch::x86_64::__m256,
    ) -> Self {
        Avx2([f(self.0[0], other.0[0]), f(self.0[1], other.0[1])])
    }
}

// SAFETY: every operation is an AVX instruction; the trait's contract has callers check.
#[cfg(target_arch = "x86_64")]
unsafe impl Vector for Avx2 {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        // SAFETY (here and below): the CPU has AVX2 (the trait's contract); loads and stores
        // address the two halves of a `Lanes`.
        unsafe { Avx2([std::arch::x86_64::_mm256_set1_ps(v); 2]) }
    }
    #[inline(always)]
    fn load(lanes: &Lanes) -> Self {
        use std::arch::x86_64::_mm256_loadu_ps;
        unsafe { Avx2([_mm256_loadu_ps(lanes.as_ptr()), _mm256_loadu_ps(lanes.as_ptr().add(8))]) }
    }
    #[inline(always)]
    fn store(self, lanes: &mut Lanes) {
        use std::arch::x86_64::_mm256_storeu_ps;
        unsafe {
            _mm256_storeu_ps(lanes.as_mut_ptr(), self.0[0]);
            _mm256_storeu_ps(lanes.as_mut_ptr().add(8), self.0[1]);
        }
    }
    #[inline(always)]
    fn add(self, other: Self) -> Self {
        self.each(other, |a, b| unsafe { std::arch::x86_64::_mm256_add_ps(a, b) })
    }
    #[inline(always)]
    fn mul(self, other: Self) -> Self {
        self.each(other, |a, b| unsafe { std::arch::x86_64::_mm256_mul_ps(a, b) })
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        use std::arch::x86_64::_mm256_fmadd_ps;
        // SAFETY: as above, and the CPU has FMA (every AVX2 CPU the kernels run on: `VectorIsa`).
        Avx2([0, 1].map(|h| unsafe { _mm256_fmadd_ps(a.0[h], b.0[h], self.0[h]) }))
    }
    #[inline(always)]
    fn kept_where_positive(self, gate: Self) -> Self {
        use std::arch::x86_64::*;
        self.each(gate, |v, g| unsafe { _mm256_and_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(g, _mm256_setzero_ps()), v) })
    }
    #[inline(always)]
    fn scaled_where_negative(self, gate: Self, slope: Self) -> Self {
        use std::arch::x86_64::*;
        let scaled = self.mul(slope);
        let negative = gate.each(gate, |g, _| unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(g, _mm256_setzero_ps()) });
        Avx2([0, 1].map(|h| unsafe { _mm256_blendv_ps(self.0[h], scaled.0[h], negative.0[h]) }))
    }
}
