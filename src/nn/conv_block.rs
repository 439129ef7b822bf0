//! The CNNs' conv block as one backend operation: a 2-D convolution (stride 1, no padding, with
//! bias), ReLU, then a 2x2 max-pool of stride 2 (floor mode), exactly PyTorch's
//! `F.max_pool2d(F.relu(conv(x)), 2)`.
//!
//! Why its own operation: on flex, burn's generic convolution (and the convolutions its backward
//! pass is built from) and its max-pool cost about twice PyTorch's time per CNN step
//! (bench/results/conv-block-2026-11-27/). Here the block is unfold-then-multiply: cache-sized chunks of images are
//! unfolded into `[C*k*k, images*positions]` matrices, so the forward pass and both weight and
//! input gradients are three matrix products per chunk (the gemm kernels burn-flex itself uses),
//! and ReLU and pooling are fused into one pass that remembers each window's winner for the
//! backward pass.
//! On libtorch the block is burn's `conv2d`, `relu` and `max_pool2d` (oneDNN / cuDNN underneath).

// burn-tch is deprecated upstream; it is still the way to libtorch and CUDA here (and the
// extension macro names it in code it generates, so the allowance is for the whole module).
#![cfg_attr(feature = "tch", allow(deprecated))]

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use rayon::prelude::*;

#[backend_extension(Flex, LibTorch: cfg(feature = "tch"), Autodiff)]
pub trait ConvBlockBackend: Backend {
    /// `max_pool2d(relu(conv2d(x, weight, bias)), 2)`: x `[N, C, H, W]`, weight `[Co, C, k, k]`,
    /// bias `[Co]`; the result is `[N, Co, (H-k+1)/2, (W-k+1)/2]`. This default body composes
    /// burn's operations (libtorch, and autodiff over it).
    fn conv_relu_pool(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        let y = Self::relu(Self::conv2d(x, weight, Some(bias), options));
        Self::max_pool2d(y, [2, 2], [2, 2], [0, 0], [1, 1], false)
    }
}

/// The conv block of `conv` (which must have a bias) on `x` `[N, C, H, W]`.
pub fn conv_relu_pool(x: Tensor<4>, conv: &Conv2d) -> Tensor<4> {
    let bias = conv.bias.as_ref().expect("the study's convolutions have a bias").val();
    let out = <Dispatch as ConvBlockBackend>::conv_relu_pool(
        x.into_dispatch(),
        conv.weight.val().into_dispatch(),
        bias.into_dispatch(),
    );
    Tensor::from_dispatch(out)
}

impl ConvBlockBackend for Flex {
    fn conv_relu_pool(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        kernel::forward(&x, &weight, &bias).0
    }
}

#[cfg(feature = "tch")]
impl ConvBlockBackend for burn::backend::LibTorch {}

#[cfg(feature = "tch")]
impl<C: CheckpointStrategy> ConvBlockBackend for Autodiff<burn::backend::LibTorch, C> {}

impl<C: CheckpointStrategy> ConvBlockBackend for Autodiff<Flex, C> {
    fn conv_relu_pool(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        match ConvReluPoolBackward.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let (out, saved) = kernel::forward(x.primitive(), weight.primitive(), bias.primitive());
                prep.finish(Arc::new(saved), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(kernel::forward(x.primitive(), weight.primitive(), bias.primitive()).0)
            }
        }
    }
}

#[derive(Debug)]
struct ConvReluPoolBackward;

impl Backward<Flex, 3> for ConvReluPoolBackward {
    type State = Arc<kernel::Saved>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let g = kernel::backward(&ops.state, &grad, node_x.is_some());
        if let (Some(node), Some(dx)) = (node_x, g.x) {
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_weight {
            grads.register::<Flex>(node.id, g.weight);
        }
        if let Some(node) = node_bias {
            grads.register::<Flex>(node.id, g.bias);
        }
    }
}

/// The block on raw f32 buffers, a few images at a time so that the unfolded images stay in the
/// cache (the whole batch unfolded is tens of MB, written once and read once per step).
///
/// Layouts: `x` `[N, C, H, W]`; weight `[Co, K]` with `K = C*k*k` ordered (c, kh, kw), as
/// PyTorch's; the result `[N, Co, Hp, Wp]`. For a chunk of `B` images, the unfolded input `cols`
/// is `[K, B*P]` and the convolution `y` `[Co, B*P]`, where an image's `P = 4*Hp*Wp` columns are
/// the convolution outputs that fall in a pooling window, ordered by their place in the window
/// first: (di, dj, pi, pj) for output (2*pi + di, 2*pj + dj). A window's four candidates then sit
/// at the same offset of four contiguous blocks, so pooling is element-wise over the blocks (and
/// vectorises), and the row and column that floor-mode pooling drops are never computed. Each
/// chunk's passes are compiled for the widest vectors the CPU has (`widest_vectors!`), and the
/// chunks' gradients are added up in the chunks' order, so the bits depend on neither.
mod kernel {
    use super::*;
    use crate::nn::flex_buffers::{contiguous, f32s, tensor};

    /// A window whose maximum is not positive: ReLU zeroes it, so no gradient flows back.
    const NO_WINNER: u8 = u8::MAX;
    /// Unfolded floats per chunk: 256 KB, so that the chunk's unfolded images, its convolution
    /// and the matrix kernels' packed blocks share a core's L2 cache (the fastest of 128 KB to
    /// 1 MB on a CNN step here, bench/results/conv-block-2026-11-27/).
    const CHUNK_FLOATS: usize = 1 << 16;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Dims {
        pub n: usize,
        pub c: usize,
        pub h: usize,
        pub w: usize,
        pub co: usize,
        pub k: usize,
    }

    impl Dims {
        fn ho(&self) -> usize {
            self.h + 1 - self.k
        }
        fn wo(&self) -> usize {
            self.w + 1 - self.k
        }
        /// Convolution outputs per image that fall in a pooling window.
        fn p(&self) -> usize {
            4 * self.q()
        }
        /// Pooling windows per image and channel.
        fn q(&self) -> usize {
            self.hp() * self.wp()
        }
        /// Rows of the unfolded input: one per weight of an output channel.
        fn kk(&self) -> usize {
            self.c * self.k * self.k
        }
        fn hp(&self) -> usize {
            self.ho() / 2
        }
        fn wp(&self) -> usize {
            self.wo() / 2
        }
        /// Pooled outputs per image.
        fn pooled(&self) -> usize {
            self.co * self.hp() * self.wp()
        }
        fn image(&self) -> usize {
            self.c * self.h * self.w
        }
        /// Distinct stride-2 sub-planes per image: (channel, row offset, column offset), the
        /// offsets in 0..=k (see [`im2col`]; [`col2im`] sums into them).
        fn sub_planes(&self) -> usize {
            self.c * (self.k + 1) * (self.k + 1)
        }
        /// Sub-plane `i` as (channel, row offset, column offset).
        fn sub_plane(&self, i: usize) -> (usize, usize, usize) {
            let side = self.k + 1;
            (i / (side * side), (i / side) % side, i % side)
        }
        /// Per unfolded row (c, kh, kw), where its four window slots' values start, given where
        /// sub-plane (c, a, e) starts (`at`): slot (di, dj) reads sub-plane (c, kh + di, kw + dj).
        fn slot_sources(&self, at: impl Fn(usize, usize, usize) -> usize) -> Vec<[usize; 4]> {
            let k = self.k;
            (0..self.kk())
                .map(|r| {
                    let (c, kh, kw) = (r / (k * k), (r / k) % k, r % k);
                    [0, 1, 2, 3].map(|s| {
                        let (di, dj) = slot(s);
                        at(c, kh + di, kw + dj)
                    })
                })
                .collect()
        }
        /// Where sub-plane (c, a, e) starts in an image's sub-planes, one after another.
        fn sub_plane_start(&self, c: usize, a: usize, e: usize) -> usize {
            let side = self.k + 1;
            ((c * side + a) * side + e) * self.q()
        }
        /// [`Dims::slot_sources`] in an image's sub-planes ([`Dims::sub_plane_start`]).
        fn sub_plane_offsets(&self) -> Vec<[usize; 4]> {
            self.slot_sources(|c, a, e| self.sub_plane_start(c, a, e))
        }
        /// Rows of a tall sub-plane (see [`im2col`]): enough for every row offset of its parity.
        fn tall_rows(&self) -> usize {
            self.hp() + self.k / 2
        }
        /// Tall sub-planes per image: (channel, row parity, column offset in 0..=k).
        fn tall_planes(&self) -> usize {
            self.c * 2 * (self.k + 1)
        }
        /// Where tall sub-plane (c, row parity, column offset) starts in an image's tall planes.
        fn tall_plane(&self, c: usize, parity: usize, e: usize) -> usize {
            ((c * 2 + parity) * (self.k + 1) + e) * self.tall_rows() * self.wp()
        }
        /// [`Dims::slot_sources`] in an image's tall sub-planes: sub-plane (c, a, e) is rows
        /// a/2.. of tall plane (c, a % 2, e).
        fn tall_plane_offsets(&self) -> Vec<[usize; 4]> {
            self.slot_sources(|c, a, e| self.tall_plane(c, a % 2, e) + a / 2 * self.wp())
        }
        /// Images per chunk.
        fn chunk(&self) -> usize {
            (CHUNK_FLOATS / (self.kk() * self.p()).max(1)).clamp(1, self.n.max(1))
        }
    }

    /// Images per chunk for these shapes of x and weight.
    #[cfg(test)]
    pub fn chunk_for(x_shape: &[usize; 4], w_shape: &[usize; 4]) -> usize {
        let [n, c, h, w] = *x_shape;
        let [co, _, k, _] = *w_shape;
        Dims { n, c, h, w, co, k }.chunk()
    }

    /// What the backward pass needs: the input (shared, not copied), the weight, and each pooling
    /// window's winner (0-3 within the window, row-major, or [`NO_WINNER`]).
    pub struct Saved {
        dims: Dims,
        x: FlexTensor,
        weight: Vec<f32>,
        winners: Vec<u8>,
    }

    impl std::fmt::Debug for Saved {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Saved").field("dims", &self.dims).finish_non_exhaustive()
        }
    }

    pub struct Grads {
        pub x: Option<FlexTensor>,
        pub weight: FlexTensor,
        pub bias: FlexTensor,
    }

    pub fn forward(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> (FlexTensor, Saved) {
        let x = contiguous(x);
        let (weight, bias) = (contiguous(weight), contiguous(bias));
        let (x_shape, w_shape) = (x.layout().shape().to_vec(), weight.layout().shape().to_vec());
        let [n, c, h, w] = x_shape[..] else { panic!("conv block: x must be [N, C, H, W], got {x_shape:?}") };
        let [co, wc, k, k2] = w_shape[..] else { panic!("conv block: weight must be [Co, C, k, k], got {w_shape:?}") };
        let (ws, bs) = (f32s(&weight), f32s(&bias));
        assert!(
            wc == c && k == k2 && k <= h && k <= w && bs.len() == co,
            "conv block: shapes {x_shape:?}, {w_shape:?}"
        );
        let d = Dims { n, c, h, w, co, k };

        let xs = f32s(&x);
        let mut out = vec![0.0; n * d.pooled()];
        let mut winners = vec![NO_WINNER; out.len()];
        let chunk = d.chunk();
        out.par_chunks_mut(chunk * d.pooled())
            .zip(winners.par_chunks_mut(chunk * d.pooled()))
            .zip(xs.par_chunks(chunk * d.image()))
            .for_each_init(ForwardScratch::default, |scratch, ((out, winners), xs)| {
                let chunk = ForwardChunk { xs, weight: ws, bias: bs, out, winners };
                forward_chunk_widest(&d, chunk, scratch)
            });
        let out = tensor(out, [n, co, d.hp(), d.wp()]);
        let saved = Saved { dims: d, weight: ws.to_vec(), winners, x };
        (out, saved)
    }

    pub fn backward(saved: &Saved, grad: &FlexTensor, wants_x: bool) -> Grads {
        let d = saved.dims;
        let grad = contiguous(grad);
        let (g, xs, ws) = (f32s(&grad), f32s(&saved.x), &saved.weight[..]);
        let mut dx = vec![0.0; if wants_x { d.n * d.image() } else { 0 }];
        let chunk = d.chunk();
        // Each chunk's slice of dx, or an empty one where x needs no gradient (the images).
        let dx_parts: Vec<&mut [f32]> = match wants_x {
            true => dx.chunks_mut(chunk * d.image()).collect(),
            false => (0..d.n.div_ceil(chunk)).map(|_| Default::default()).collect(),
        };
        let zero = || GradSums { weight: vec![0.0f32; d.co * d.kk()], bias: vec![0.0f64; d.co] };
        // Each chunk's weight and bias gradients, added up in the chunks' order: the same bits on
        // any number of threads. (A parallel fold adds them up in whatever groups the work was
        // split into, and with more than one thread that depends on which thread stole what.)
        let parts: Vec<GradSums> = g
            .par_chunks(chunk * d.pooled())
            .zip(saved.winners.par_chunks(chunk * d.pooled()))
            .zip(xs.par_chunks(chunk * d.image()))
            .zip(dx_parts)
            .map_init(BackwardScratch::default, |scratch, (((g, winners), xs), dx)| {
                let mut sums = zero();
                backward_chunk_widest(&d, BackwardChunk { g, winners, xs, weight: ws, dx }, &mut sums, scratch);
                sums
            })
            .collect();
        let sums = parts
            .into_iter()
            .reduce(|mut sums, part| {
                sums.weight.iter_mut().zip(part.weight).for_each(|(a, b)| *a += b);
                sums.bias.iter_mut().zip(part.bias).for_each(|(a, b)| *a += b);
                sums
            })
            .unwrap_or_else(zero);
        let (dw, db) = (sums.weight, sums.bias);
        Grads {
            x: wants_x.then(|| tensor(dx, [d.n, d.c, d.h, d.w])),
            weight: tensor(dw, [d.co, d.c, d.k, d.k]),
            bias: tensor(db.into_iter().map(|v| v as f32).collect(), [d.co]),
        }
    }

    /// A chunk of images in the forward pass: the images `[B, C, H, W]`, the weight `[Co, K]` and
    /// bias, and where the pooled output and each window's winner go (both `[B, Co, Hp, Wp]`).
    struct ForwardChunk<'a> {
        xs: &'a [f32],
        weight: &'a [f32],
        bias: &'a [f32],
        out: &'a mut [f32],
        winners: &'a mut [u8],
    }

    /// Buffers a thread reuses from chunk to chunk: the unfolded images and their convolution.
    #[derive(Default)]
    struct ForwardScratch {
        cols: Vec<f32>,
        y: Vec<f32>,
    }

    widest_vectors!(
        fn forward_chunk_widest => forward_chunk(d: &Dims, chunk: ForwardChunk<'_>, scratch: &mut ForwardScratch)
    );

    /// The forward pass of a chunk: unfolded, multiplied, pooled. Inlined into each instruction
    /// set's variant ([`forward_chunk_widest`]).
    #[inline(always)]
    fn forward_chunk(d: &Dims, chunk: ForwardChunk, scratch: &mut ForwardScratch) {
        let ForwardScratch { cols, y } = scratch;
        let b = chunk.xs.len() / d.image();
        im2col(chunk.xs, d, cols);
        // y [Co, B*P] = weight [Co, K] . cols [K, B*P]
        matmul(y, d.co, b * d.p(), d.kk(), Mat::rows(chunk.weight, d.kk()), Mat::rows(cols, b * d.p()), false);
        bias_relu_pool(y, chunk.bias, d, chunk.out, chunk.winners);
    }

    /// A chunk of images in the backward pass: the pooled gradient `g` and the winners (both
    /// `[B, Co, Hp, Wp]`), the images `xs` `[B, C, H, W]`, the weight `[Co, K]`, and where the
    /// images' gradient goes (empty where the images need none).
    struct BackwardChunk<'a> {
        g: &'a [f32],
        winners: &'a [u8],
        xs: &'a [f32],
        weight: &'a [f32],
        dx: &'a mut [f32],
    }

    /// The weight gradient `[Co, K]` and the bias gradient (in f64, rounded once at the end) of
    /// a chunk.
    struct GradSums {
        weight: Vec<f32>,
        bias: Vec<f64>,
    }

    /// Buffers a thread reuses from chunk to chunk: the unpooled gradient, the unfolded images
    /// and their gradient.
    #[derive(Default)]
    struct BackwardScratch {
        dy: Vec<f32>,
        cols: Vec<f32>,
        dcols: Vec<f32>,
    }

    widest_vectors!(fn backward_chunk_widest => backward_chunk(
        d: &Dims,
        chunk: BackwardChunk<'_>,
        sums: &mut GradSums,
        scratch: &mut BackwardScratch,
    ));

    /// The backward pass of a chunk: the gradient unpooled, the weight gradient added to `sums`,
    /// and the images' gradient, if wanted, folded back from the unfolded one. Inlined into each
    /// instruction set's variant ([`backward_chunk_widest`]).
    #[inline(always)]
    fn backward_chunk(d: &Dims, chunk: BackwardChunk, sums: &mut GradSums, scratch: &mut BackwardScratch) {
        let BackwardScratch { dy, cols, dcols } = scratch;
        let b = chunk.xs.len() / d.image();
        unpool(chunk.g, chunk.winners, d, b, dy, &mut sums.bias);
        im2col(chunk.xs, d, cols);
        // dW [Co, K] += dy [Co, B*P] . cols^T [B*P, K]: dot products of rows, each as long as
        // the chunk's columns. Few of them (the first conv's) are what gemm's lane-summing path
        // was for; that order depends on the vector width, so they take our own dot kernel.
        if d.co * d.kk() <= FEW_DOTS {
            add_row_dots(&mut sums.weight, d.co, d.kk(), b * d.p(), dy, cols);
        } else {
            let (dy_m, cols_t) = (Mat::rows(dy, b * d.p()), Mat::columns(cols, b * d.p()));
            matmul(&mut sums.weight, d.co, d.kk(), b * d.p(), dy_m, cols_t, true);
        }
        if !chunk.dx.is_empty() {
            // dcols [K, B*P] = weight^T [K, Co] . dy [Co, B*P], folded back onto the images.
            let (w_t, dy_m) = (Mat::columns(chunk.weight, d.kk()), Mat::rows(dy, b * d.p()));
            matmul(dcols, d.kk(), b * d.p(), d.co, w_t, dy_m, false);
            col2im(dcols, d, chunk.dx);
        }
    }

    /// Products with at most this many results (as gemm upstream decides) are summed by
    /// [`add_row_dots`].
    const FEW_DOTS: usize = 256;

    /// `dst[i * n + j] += Σ_p lhs[i * k + p] * rhs[j * k + p]` for `lhs` `[m, k]` and `rhs`
    /// `[n, k]`, both row-major. Each dot product is summed as 16 interleaved chains of fused
    /// multiply-adds (term `p` in chain `p % 16`, from zero), then the chains pairwise (lane
    /// `l` plus lane `l + 8`, then `l + 4`, ...): one order, so the same bits for every vector
    /// width (one AVX-512 register, two AVX2 ones, or sixteen scalars with libm's fma).
    fn add_row_dots(dst: &mut [f32], m: usize, n: usize, k: usize, lhs: &[f32], rhs: &[f32]) {
        use crate::nn::{VectorIsa, lanes};
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            unsafe fn avx512(dst: &mut [f32], m: usize, n: usize, k: usize, lhs: &[f32], rhs: &[f32]) {
                row_dots::<lanes::Avx512>(dst, m, n, k, lhs, rhs)
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2(dst: &mut [f32], m: usize, n: usize, k: usize, lhs: &[f32], rhs: &[f32]) {
                row_dots::<lanes::Avx2>(dst, m, n, k, lhs, rhs)
            }
            match VectorIsa::chosen() {
                // SAFETY (both): `chosen` picks only a set this CPU has.
                VectorIsa::Avx512 => return unsafe { avx512(dst, m, n, k, lhs, rhs) },
                VectorIsa::Avx2 => return unsafe { avx2(dst, m, n, k, lhs, rhs) },
                VectorIsa::Baseline => {}
            }
        }
        row_dots::<lanes::Portable>(dst, m, n, k, lhs, rhs)
    }

    /// [`add_row_dots`] on `V`'s lanes. The rows are swept in strips short enough for the strips
    /// of a tile's rows to stay in the L1 cache, and each tile takes two rows of `lhs` against
    /// four of `rhs` (eight chains in registers, six loads for eight multiply-adds); a chain's
    /// terms still come in the stated order. Inlined into each instruction set's variant.
    #[inline(always)]
    fn row_dots<V: crate::nn::lanes::Vector>(dst: &mut [f32], m: usize, n: usize, k: usize, lhs: &[f32], rhs: &[f32]) {
        use crate::nn::lanes::{LANES, Lanes};
        /// Floats of each row per sweep (a multiple of LANES): six rows' strips take 12 KB.
        const STRIP: usize = 512;
        let full = k / LANES * LANES;
        let mut chains = vec![V::splat(0.0); m * n];
        let mut operands = Operands { chains: &mut chains, n, k, lhs, rhs };
        for from in (0..full).step_by(STRIP) {
            let strip = from..(from + STRIP).min(full);
            let mut i = 0;
            while i < m {
                let rows = if m - i >= 2 { 2 } else { 1 };
                let mut j = 0;
                while j < n {
                    let cols = if n - j >= 4 { 4 } else { 1 };
                    match (rows, cols) {
                        (2, 4) => tile::<V, 2, 4>(&mut operands, (i, j), strip.clone()),
                        (2, _) => tile::<V, 2, 1>(&mut operands, (i, j), strip.clone()),
                        (_, 4) => tile::<V, 1, 4>(&mut operands, (i, j), strip.clone()),
                        _ => tile::<V, 1, 1>(&mut operands, (i, j), strip.clone()),
                    }
                    j += cols;
                }
                i += rows;
            }
        }
        for (e, chain) in chains.iter().enumerate() {
            let (row, col) = (&lhs[e / n * k..][..k], &rhs[e % n * k..][..k]);
            let mut lanes: Lanes = [0.0; LANES];
            chain.store(&mut lanes);
            for p in full..k {
                lanes[p - full] = row[p].mul_add(col[p], lanes[p - full]);
            }
            let mut half = LANES / 2;
            while half > 0 {
                for l in 0..half {
                    lanes[l] += lanes[l + half];
                }
                half /= 2;
            }
            dst[e] += lanes[0];
        }
    }

    /// What [`tile`] reads and the chains it carries on (`[m, n]`, one per dot product).
    struct Operands<'a, V> {
        chains: &'a mut [V],
        n: usize,
        k: usize,
        lhs: &'a [f32],
        rhs: &'a [f32],
    }

    /// Carries on the chains of rows `i..i + I` of `lhs` against rows `j..j + J` of `rhs` over
    /// the terms `strip` (whole lanes).
    #[inline(always)]
    fn tile<V: crate::nn::lanes::Vector, const I: usize, const J: usize>(
        o: &mut Operands<'_, V>,
        (i, j): (usize, usize),
        strip: std::ops::Range<usize>,
    ) {
        use crate::nn::lanes::{LANES, Lanes};
        let load = |values: &[f32], at: usize| -> V {
            let lanes: &Lanes = values[at..at + LANES].try_into().expect("sixteen values");
            V::load(lanes)
        };
        let mut acc: [[V; J]; I] = std::array::from_fn(|a| std::array::from_fn(|b| o.chains[(i + a) * o.n + j + b]));
        for p in strip.step_by(LANES) {
            let xs: [V; I] = std::array::from_fn(|a| load(o.lhs, (i + a) * o.k + p));
            let ys: [V; J] = std::array::from_fn(|b| load(o.rhs, (j + b) * o.k + p));
            for (row, x) in acc.iter_mut().zip(&xs) {
                for (chain, y) in row.iter_mut().zip(&ys) {
                    *chain = chain.mul_add(*x, *y);
                }
            }
        }
        for (a, row) in acc.iter().enumerate() {
            for (b, chain) in row.iter().enumerate() {
                o.chains[(i + a) * o.n + j + b] = *chain;
            }
        }
    }

    /// The place of a window's candidates: slot `s` (row-major in the 2x2 window) is the output
    /// (2*pi + s/2, 2*pj + s%2), stored at `s*Q + pi*Wp + pj` of the image's columns.
    fn slot(s: usize) -> (usize, usize) {
        (s / 2, s % 2)
    }

    /// cols[(c, kh, kw), b*P + (s, pi, pj)] = x[b, c, 2*pi + di + kh, 2*pj + dj + kw] for the
    /// chunk's images `xs`, (di, dj) = slot(s).
    ///
    /// An entry depends on (kh, di) and (kw, dj) only through their sums a and e, so per image
    /// and channel there are only (k+1)^2 distinct stride-2 sub-planes `x[c, 2*pi + a, 2*pj + e]`,
    /// against 4*k^2 unfolded runs; and the sub-planes of a and a + 2 are the same rows shifted
    /// by one. So each channel's rows are gathered once per column offset e into two tall
    /// sub-planes (even and odd rows), and every unfolded row of an image is four contiguous
    /// copies out of them.
    #[inline(always)]
    fn im2col(xs: &[f32], d: &Dims, cols: &mut Vec<f32>) {
        let (p, q, wp) = (d.p(), d.q(), d.wp());
        let b = xs.len() / d.image();
        // Every entry is written below; resizing only zero-fills when the buffer grows.
        cols.resize(d.kk() * b * p, 0.0);
        let mut planes = vec![0.0; d.tall_planes() * d.tall_rows() * wp];
        let sources = d.tall_plane_offsets();
        // Rows of the image that some sub-plane reads (the rest of a tall plane is never read).
        let rows = d.h.min(2 * d.tall_rows());
        for (bi, image) in xs.chunks_exact(d.image()).enumerate() {
            for c in 0..d.c {
                for r in 0..rows {
                    // To the image's end, not the row's: the vector path may read one value past a run.
                    let row = &image[(c * d.h + r) * d.w..];
                    for e in 0..=d.k {
                        let at = d.tall_plane(c, r % 2, e) + r / 2 * wp;
                        every_other(&mut planes[at..at + wp], &row[e..]);
                    }
                }
            }
            for (row, sources) in cols.chunks_exact_mut(b * p).zip(&sources) {
                for (dst, &at) in row[bi * p..][..p].chunks_exact_mut(q).zip(sources) {
                    copy_run(dst, &planes[at..][..q]);
                }
            }
        }
    }

    /// The adjoint of [`im2col`]: every unfolded entry added onto the pixel it came from (summed
    /// per sub-plane first, then spread onto the image). It keeps the square sub-planes, not
    /// `im2col`'s tall ones: summing into tall planes would add a pixel's contributions in another
    /// order, so the input gradient, and the CNNs' training, would change in their last bits.
    #[inline(always)]
    fn col2im(dcols: &[f32], d: &Dims, dx: &mut [f32]) {
        let (p, q) = (d.p(), d.q());
        let b = dx.len() / d.image();
        let mut planes = vec![0.0f32; d.sub_planes() * q];
        let sources = d.sub_plane_offsets();
        #[cfg(target_arch = "x86_64")]
        let gathered = d.w <= wide::MAX_WIDTH && crate::nn::VectorIsa::chosen() == crate::nn::VectorIsa::Avx512;
        for (bi, image) in dx.chunks_exact_mut(d.image()).enumerate() {
            planes.fill(0.0);
            for (r, sources) in sources.iter().enumerate() {
                for (src, &at) in dcols[r * b * p + bi * p..][..p].chunks_exact(q).zip(sources) {
                    let sub = &mut planes[at..][..q];
                    sub.iter_mut().zip(src).for_each(|(acc, v)| *acc += v);
                }
            }
            #[cfg(target_arch = "x86_64")]
            if gathered {
                // SAFETY: the CPU has AVX-512F (chosen above) and the image is at most MAX_WIDTH wide.
                unsafe { wide::gather_sub_planes(&planes, d, image) };
                continue;
            }
            for (i, sub) in planes.chunks_exact(q).enumerate() {
                let (c, a, e) = d.sub_plane(i);
                let plane = &mut image[c * d.h * d.w..][..d.h * d.w];
                for (pi, src) in sub.chunks_exact(d.wp()).enumerate() {
                    add_to_every_other(&mut plane[(2 * pi + a) * d.w + e..], src);
                }
            }
        }
    }

    /// [`col2im`]'s spreading of the sub-planes onto the image, gathered per image row on
    /// AVX-512. Spreading sub-plane after sub-plane adds short runs (four values in the study's
    /// second layers) one column apart onto the same rows, and each add's load waits for the
    /// overlapping store before it. Here each row of the image is summed in two registers, one
    /// per column parity, from the sub-plane rows that reach it, each loaded (under a mask)
    /// already shifted to its columns, and stored once. A pixel receives the same terms in the
    /// same order as from the spreading (sub-planes in their order, rows of a sub-plane reach
    /// distinct image rows), starting from +0.0 as the zeroed image does; lanes outside a run
    /// add +0.0, which changes no sum that starts from +0.0 (only -0.0 + -0.0 is -0.0). So the
    /// bits are the spreading's (tested against it).
    #[cfg(target_arch = "x86_64")]
    mod wide {
        use super::Dims;
        use std::arch::x86_64::*;

        /// The widest image handled: two column parities of eight lanes each fill a register.
        pub const MAX_WIDTH: usize = 16;

        /// Writes every pixel of `image` (`[C, H, W]`, W at most [`MAX_WIDTH`]) from the
        /// image's summed sub-planes `planes` (laid out as [`Dims::sub_plane_start`] says).
        ///
        /// # Safety
        /// The CPU must have AVX-512F.
        #[target_feature(enable = "avx512f")]
        pub unsafe fn gather_sub_planes(planes: &[f32], d: &Dims, image: &mut [f32]) {
            let (k, hp, wp, q) = (d.k, d.hp(), d.wp(), d.q());
            assert!(d.w <= MAX_WIDTH && planes.len() == d.sub_planes() * q && image.len() == d.image());
            // Lane 2j of a row takes lane j of the even columns' sum, lane 2j + 1 lane j of the odd ones'.
            let interleave = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            let run: __mmask16 = (1u16 << wp) - 1;
            let row_mask: __mmask16 = ((1u32 << d.w) - 1) as __mmask16;
            for c in 0..d.c {
                for y in 0..d.h {
                    let (parity, half) = (y % 2, y / 2);
                    let (mut even, mut odd) = (_mm512_setzero_ps(), _mm512_setzero_ps());
                    for a in (parity..=k).step_by(2) {
                        // Row pi of sub-plane (c, a, e) lands on image row 2 * pi + a.
                        let Some(pi) = half.checked_sub(a / 2).filter(|&pi| pi < hp) else { continue };
                        for e in 0..=k {
                            // Sub-plane (c, a, e)'s row pi, its value j at column 2 * (j + e / 2) + e % 2.
                            let shift = e / 2;
                            let from =
                                planes[d.sub_plane_start(c, a, e) + pi * wp..][..wp].as_ptr().wrapping_sub(shift);
                            // SAFETY: the mask selects lanes shift..shift + wp, which read the
                            // run's wp values (in bounds above); masked lanes are not read.
                            let v = unsafe { _mm512_maskz_loadu_ps(run << shift, from) };
                            if e % 2 == 0 {
                                even = _mm512_add_ps(even, v);
                            } else {
                                odd = _mm512_add_ps(odd, v);
                            }
                        }
                    }
                    let row = _mm512_permutex2var_ps(even, interleave, odd);
                    let at = &mut image[(c * d.h + y) * d.w..][..d.w];
                    // SAFETY: the mask selects the row's d.w lanes, in bounds above.
                    unsafe { _mm512_mask_storeu_ps(at.as_mut_ptr(), row_mask, row) };
                }
            }
        }
    }

    /// `dst = src` for runs of 16 or 144 values: eight at a time inline (a `memcpy` call per run
    /// costs more than the copy).
    #[inline(always)]
    fn copy_run(dst: &mut [f32], src: &[f32]) {
        let mut dst8 = dst.chunks_exact_mut(8);
        let mut src8 = src.chunks_exact(8);
        for (d8, s8) in (&mut dst8).zip(&mut src8) {
            let s8: &[f32; 8] = s8.try_into().expect("eight");
            d8.copy_from_slice(s8);
        }
        for (d, s) in dst8.into_remainder().iter_mut().zip(src8.remainder()) {
            *d = *s;
        }
    }

    /// `dst[j] = src[2 * j]`. The unfolding's runs are short (4 or 12 values here) and strided,
    /// which the compiler leaves scalar (a quarter of a CNN step); on x86-64 four values at a time
    /// come from two loads and a shuffle (SSE, always there). `src` may be longer than needed.
    #[inline(always)]
    fn every_other(dst: &mut [f32], src: &[f32]) {
        assert!(src.len() + 1 >= 2 * dst.len(), "conv block: run out of its plane");
        #[allow(unused_mut)]
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        while done + 4 <= dst.len() && 2 * done + 8 <= src.len() {
            use std::arch::x86_64::{_mm_loadu_ps, _mm_shuffle_ps, _mm_storeu_ps};
            // SAFETY: reads src[2*done .. 2*done + 8] and writes dst[done .. done + 4], both in
            // bounds by the loop condition.
            unsafe {
                let a = _mm_loadu_ps(src.as_ptr().add(2 * done));
                let b = _mm_loadu_ps(src.as_ptr().add(2 * done + 4));
                _mm_storeu_ps(dst.as_mut_ptr().add(done), _mm_shuffle_ps::<0b10_00_10_00>(a, b));
            }
            done += 4;
        }
        for (j, v) in dst.iter_mut().enumerate().skip(done) {
            *v = src[2 * j];
        }
    }

    /// `dst[2 * j] += src[j]`, the adjoint of [`every_other`]. On x86-64 the odd entries in
    /// between get `+ 0.0`: the same values, so `dst` must not extend into another thread's
    /// data (callers pass one image's plane).
    #[inline(always)]
    fn add_to_every_other(dst: &mut [f32], src: &[f32]) {
        assert!(dst.len() + 1 >= 2 * src.len(), "conv block: run out of its plane");
        #[allow(unused_mut)]
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        while done + 4 <= src.len() && 2 * done + 8 <= dst.len() {
            use std::arch::x86_64::{_mm_add_ps, _mm_loadu_ps, _mm_setzero_ps, _mm_storeu_ps};
            use std::arch::x86_64::{_mm_unpackhi_ps, _mm_unpacklo_ps};
            // SAFETY: reads src[done .. done + 4], reads and writes dst[2*done .. 2*done + 8],
            // in bounds by the loop condition.
            unsafe {
                let v = _mm_loadu_ps(src.as_ptr().add(done));
                let zero = _mm_setzero_ps();
                let at = dst.as_mut_ptr().add(2 * done);
                _mm_storeu_ps(at, _mm_add_ps(_mm_loadu_ps(at), _mm_unpacklo_ps(v, zero)));
                _mm_storeu_ps(at.add(4), _mm_add_ps(_mm_loadu_ps(at.add(4)), _mm_unpackhi_ps(v, zero)));
            }
            done += 4;
        }
        for (j, v) in src.iter().enumerate().skip(done) {
            dst[2 * j] += v;
        }
    }

    /// Adds the bias, takes each 2x2 window's maximum (the first one on ties, NaN winning, as
    /// PyTorch does), and applies ReLU to it (ReLU and max commute), for the chunk's `y`.
    /// Branch-free over the four candidate blocks, so that it vectorises: on real data each
    /// comparison is a coin flip a branch would mispredict.
    #[inline(always)]
    fn bias_relu_pool(y: &[f32], bias: &[f32], d: &Dims, out: &mut [f32], winners: &mut [u8]) {
        let (p, q) = (d.p(), d.q());
        let bp = y.len() / d.co;
        for (i, (out, winners)) in out.chunks_exact_mut(q).zip(winners.chunks_exact_mut(q)).enumerate() {
            let (b, co) = (i / d.co, i % d.co);
            let plane = &y[co * bp + b * p..][..p];
            let [b0, b1, b2, b3] = [0, 1, 2, 3].map(|s| &plane[s * q..][..q]);
            let bias = bias[co];
            let candidates = b0.iter().zip(b1).zip(b2).zip(b3);
            for ((out, winner), (((&v0, &v1), &v2), &v3)) in out.iter_mut().zip(winners.iter_mut()).zip(candidates) {
                let (mut best, mut slot) = (v0 + bias, 0u8);
                for (s, v) in [(1u8, v1), (2, v2), (3, v3)] {
                    let v = v + bias;
                    let take = (v > best) | v.is_nan();
                    best = if take { v } else { best };
                    slot = if take { s } else { slot };
                }
                let alive = (best > 0.0) | best.is_nan();
                *out = if alive { best } else { 0.0 };
                *winner = if alive { slot } else { NO_WINNER };
            }
        }
    }

    /// The pooled gradient `g` (the chunk's `[B, Co, Hp, Wp]`) routed to each window's winner:
    /// `dy` `[Co, B*P]`, every entry written (the winner's slot gets the gradient, the other three
    /// zero: one branch-free pass instead of a fill and a scatter). Each channel's routed
    /// gradient is also added to `db` (the bias gradient: the sum of `dy`'s row, taken over the
    /// windows, whose gradient went somewhere, instead of over four times as many entries).
    #[inline(always)]
    fn unpool(g: &[f32], winners: &[u8], d: &Dims, b: usize, dy: &mut Vec<f32>, db: &mut [f64]) {
        let (p, q) = (d.p(), d.q());
        // Every entry is written below; resizing only zero-fills when the buffer grows.
        dy.resize(d.co * b * p, 0.0);
        for (i, (g, winners)) in g.chunks_exact(q).zip(winners.chunks_exact(q)).enumerate() {
            let (bi, co) = (i / d.co, i % d.co);
            let plane = &mut dy[co * b * p + bi * p..][..p];
            let (s01, s23) = plane.split_at_mut(2 * q);
            let ((s0, s1), (s2, s3)) = (s01.split_at_mut(q), s23.split_at_mut(q));
            let slots = s0.iter_mut().zip(s1.iter_mut()).zip(s2.iter_mut().zip(s3.iter_mut()));
            for (((d0, d1), (d2, d3)), (&gv, &winner)) in slots.zip(g.iter().zip(winners)) {
                *d0 = if winner == 0 { gv } else { 0.0 };
                *d1 = if winner == 1 { gv } else { 0.0 };
                *d2 = if winner == 2 { gv } else { 0.0 };
                *d3 = if winner == 3 { gv } else { 0.0 };
            }
        }
        for (i, sum) in live_sums(g, winners, q).into_iter().enumerate() {
            db[i % d.co] += sum;
        }
    }

    /// Each plane's (`q` windows') sum of the gradients of its live windows, in f64, added in
    /// order from -0.0: the bits of `filter(live).sum()` (a dead window adds -0.0, which leaves
    /// every value as it is). Four planes at a time, so that four chains of additions are in
    /// flight rather than each addition waiting on the one before.
    #[inline(always)]
    fn live_sums(g: &[f32], winners: &[u8], q: usize) -> Vec<f64> {
        let term = |at: usize| if winners[at] != NO_WINNER { f64::from(g[at]) } else { -0.0 };
        let mut sums = vec![-0.0f64; g.len() / q];
        let mut groups = sums.chunks_exact_mut(4);
        for (group, sums) in (&mut groups).enumerate() {
            let start = group * 4 * q;
            for window in 0..q {
                for (plane, sum) in sums.iter_mut().enumerate() {
                    *sum += term(start + plane * q + window);
                }
            }
        }
        let rest = groups.into_remainder();
        let start = g.len() - rest.len() * q;
        for (plane, sum) in rest.iter_mut().enumerate() {
            for window in 0..q {
                *sum += term(start + plane * q + window);
            }
        }
        sums
    }

    /// A read-only matrix in a buffer: element (i, j) at `i * row_stride + j * col_stride`.
    struct Mat<'a> {
        data: &'a [f32],
        row_stride: usize,
        col_stride: usize,
    }

    impl<'a> Mat<'a> {
        /// Row-major with `width` columns.
        fn rows(data: &'a [f32], width: usize) -> Self {
            Mat { data, row_stride: width, col_stride: 1 }
        }
        /// The transpose of a row-major matrix with `width` columns.
        fn columns(data: &'a [f32], width: usize) -> Self {
            Mat { data, row_stride: 1, col_stride: width }
        }
        fn check(&self, rows: usize, cols: usize) {
            let last = (rows - 1) * self.row_stride + (cols - 1) * self.col_stride;
            assert!(last < self.data.len(), "conv block: matrix out of its buffer");
        }
    }

    /// dst `[m, n]` (row-major) = lhs `[m, k]` . rhs `[k, n]`, or `+=` with `accumulate`
    /// (then `dst` must hold m * n values already; otherwise it is resized).
    fn matmul(dst: &mut Vec<f32>, m: usize, n: usize, k: usize, lhs: Mat, rhs: Mat, accumulate: bool) {
        if accumulate {
            assert_eq!(dst.len(), m * n, "conv block: accumulating into a matrix of another size");
        } else {
            // The product overwrites every entry (gemm does not read `dst` then): resizing only
            // zero-fills when the buffer grows, and what an earlier chunk left is overwritten.
            dst.resize(m * n, 0.0);
            if k == 0 {
                dst.fill(0.0);
            }
        }
        if m == 0 || n == 0 || k == 0 {
            return;
        }
        lhs.check(m, k);
        rhs.check(k, n);
        // SAFETY: the three buffers hold every element the strides address (checked above), and
        // `dst` is exclusively borrowed and disjoint from the inputs. Parallelism is across chunks
        // of images, so each product runs on the calling thread.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                1,
                n as isize,
                accumulate,
                lhs.data.as_ptr(),
                lhs.col_stride as isize,
                lhs.row_stride as isize,
                rhs.data.as_ptr(),
                rhs.col_stride as isize,
                rhs.row_stride as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// The dot products follow the stated order on every instruction set: 16 chains of
        /// fused multiply-adds (term p in chain p % 16), then pairwise; lengths with and without
        /// a tail, and a count of products that is not a multiple of four.
        #[test]
        fn row_dots_sum_in_the_stated_order() {
            use crate::nn::{VectorIsa, with_vector_ceiling};
            use rand::{Rng, SeedableRng};
            let mut rng = crate::rng::SeededRng::seed_from_u64(8);
            let stated = |a: &[f32], b: &[f32]| {
                let mut chains = [0.0f32; 16];
                for (p, (x, y)) in a.iter().zip(b).enumerate() {
                    chains[p % 16] = x.mul_add(*y, chains[p % 16]);
                }
                for half in [8, 4, 2, 1] {
                    for l in 0..half {
                        chains[l] += chains[l + half];
                    }
                }
                chains[0]
            };
            for (m, n, k) in [(3, 7, 5), (10, 16, 4032), (2, 9, 1000), (1, 1, 16)] {
                let random = |len: usize, rng: &mut crate::rng::SeededRng| -> Vec<f32> {
                    (0..len).map(|_| rng.random_range(-1.0f32..1.0) * 10f32.powi(rng.random_range(-3..3))).collect()
                };
                let (lhs, rhs, start) = (random(m * k, &mut rng), random(n * k, &mut rng), random(m * n, &mut rng));
                let expected: Vec<u32> = (0..m * n)
                    .map(|e| (start[e] + stated(&lhs[e / n * k..][..k], &rhs[e % n * k..][..k])).to_bits())
                    .collect();
                for isa in VectorIsa::available() {
                    let mut dst = start.clone();
                    with_vector_ceiling(isa, || add_row_dots(&mut dst, m, n, k, &lhs, &rhs));
                    let ours: Vec<u32> = dst.iter().map(|v| v.to_bits()).collect();
                    assert!(ours == expected, "{m}x{n}x{k} on {isa:?}");
                }
            }
        }

        /// Plane by plane the bits of the plain sum over live windows: planes of one window and
        /// of several, a count of planes that is not a multiple of four, signed zeros, dead
        /// windows among live ones and planes all dead.
        #[test]
        fn live_sums_are_the_plain_sums() {
            use rand::{Rng, SeedableRng};
            let mut rng = crate::rng::SeededRng::seed_from_u64(3);
            for (q, planes) in [(1, 3), (16, 9), (144, 70)] {
                let g: Vec<f32> = (0..q * planes)
                    .map(|i| match i % 11 {
                        0 => -0.0,
                        1 => 0.0,
                        _ => rng.random_range(-1.0f32..1.0) * 10f32.powi(rng.random_range(-8..3)),
                    })
                    .collect();
                let winners: Vec<u8> = (0..q * planes)
                    .map(|i| if i / q == 2 || rng.random_bool(0.4) { NO_WINNER } else { rng.random_range(0..4) })
                    .collect();
                let plain: Vec<f64> = g
                    .chunks_exact(q)
                    .zip(winners.chunks_exact(q))
                    .map(|(g, w)| g.iter().zip(w).filter(|&(_, &w)| w != NO_WINNER).map(|(&v, _)| v as f64).sum())
                    .collect();
                let ours = live_sums(&g, &winners, q);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&ours), bits(&plain), "q {q}, {planes} planes");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::values;
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::TensorData;
    use burn::tensor::activation::relu;

    /// The reference: burn's own Conv2d, relu and MaxPool2d modules, composed (as CNNs here were
    /// built before this operation).
    fn composed(x: Tensor<4>, conv: &Conv2d) -> Tensor<4> {
        MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init().forward(relu(conv.forward(x)))
    }

    fn flat(t: Tensor<4>) -> Vec<f32> {
        values(t)
    }

    fn assert_close(ours: &[f32], reference: &[f32], tol: f32, what: &str) {
        assert_eq!(ours.len(), reference.len(), "{what}: lengths");
        for (i, (a, b)) in ours.iter().zip(reference).enumerate() {
            assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{what}[{i}]: {a} vs {b}");
        }
    }

    /// x `[N, C, H, W]`, weight `[Co, C, k, k]`, bias, and a weighting `r` of the outputs (so
    /// the loss's gradient differs per output).
    struct Case {
        x_shape: [usize; 4],
        w_shape: [usize; 4],
        x: Vec<f32>,
        weight: Vec<f32>,
        bias: Vec<f32>,
        r: Vec<f32>,
    }

    impl Case {
        /// Uniform values, seeded: the same case on every run.
        fn new(x_shape: [usize; 4], w_shape: [usize; 4]) -> Case {
            use rand::{Rng, SeedableRng};
            let mut rng = crate::rng::SeededRng::seed_from_u64(7);
            let mut uniform = |n: usize, bound: f32, shift: f32| -> Vec<f32> {
                (0..n).map(|_| rng.random_range(-bound..bound) + shift).collect()
            };
            let out =
                x_shape[0] * w_shape[0] * ((x_shape[2] + 1 - w_shape[2]) / 2) * ((x_shape[3] + 1 - w_shape[3]) / 2);
            let fan_in = w_shape[1] * w_shape[2] * w_shape[3];
            Case {
                x_shape,
                w_shape,
                x: uniform(x_shape.iter().product(), 1.0, 0.0),
                weight: uniform(w_shape.iter().product(), 1.0 / (fan_in as f32).sqrt(), 0.0),
                // A negative bias, so that some windows are wholly negative (ReLU cuts their gradient).
                bias: uniform(w_shape[0], 0.3, -0.6),
                r: uniform(out, 1.0, 0.0),
            }
        }

        fn out_shape(&self) -> [usize; 4] {
            let [n, _, h, w] = self.x_shape;
            let [co, _, k, _] = self.w_shape;
            [n, co, (h + 1 - k) / 2, (w + 1 - k) / 2]
        }

        /// A conv layer (tracked parameters on an autodiff device) with the case's weight and bias.
        fn conv(&self, device: &Device) -> Conv2d {
            let [co, c, k, _] = self.w_shape;
            let mut conv = Conv2dConfig::new([c, co], [k, k]).init(device);
            conv.weight = burn::module::Param::from_tensor(tensor(&self.weight, self.w_shape, device));
            conv.bias = Some(burn::module::Param::from_tensor(tensor(&self.bias, [co], device)));
            conv
        }

        /// Output, and gradients for x, weight and bias of sum(block(x) * r), with `block` this
        /// operation or the reference, each on fresh leaves.
        fn run(&self, block: fn(Tensor<4>, &Conv2d) -> Tensor<4>, device: &Device) -> [Vec<f32>; 4] {
            let conv = self.conv(device);
            let x = tensor(&self.x, self.x_shape, device).require_grad();
            let out = block(x.clone(), &conv);
            assert_eq!(out.dims(), self.out_shape());
            let grads = (out.clone() * tensor(&self.r, self.out_shape(), device)).sum().backward();
            let bias = conv.bias.as_ref().unwrap().val();
            [
                values(out),
                values(x.grad(&grads).unwrap()),
                values(conv.weight.val().grad(&grads).unwrap()),
                values(bias.grad(&grads).unwrap()),
            ]
        }
    }

    fn tensor<const D: usize>(values: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
    }

    fn assert_same_as_composed(case: &Case, device: &Device) {
        let [out, dx, dw, db] = case.run(conv_relu_pool, device);
        let [ref_out, ref_dx, ref_dw, ref_db] = case.run(composed, device);
        // Sums of up to 200 products in another order: f32 rounding, a few 1e-6 relative.
        assert_close(&out, &ref_out, 1e-5, "forward");
        let positive = out.iter().filter(|&&v| v > 0.0).count();
        assert!(positive > out.len() / 10 && positive < out.len() * 9 / 10, "active and dead windows: {positive}");
        assert_close(&dx, &ref_dx, 5e-5, "d/dx");
        assert_close(&dw, &ref_dw, 5e-5, "d/dweight");
        assert_close(&db, &ref_db, 5e-5, "d/dbias");
        assert!(dx.iter().any(|&v| v != 0.0) && dw.iter().any(|&v| v != 0.0));
    }

    /// Odd convolution outputs (9 - 3 + 1 = 7 rows, 8 - 3 + 1 = 6 columns) exercise floor-mode
    /// pooling; two input channels and a batch of three the unfolding's index arithmetic.
    #[test]
    fn forward_and_gradients_equal_burns_composed_operations() {
        let device = Device::flex().autodiff();
        assert_same_as_composed(&Case::new([3, 2, 9, 8], [4, 2, 3, 3]), &device);
    }

    /// 100 unfolded rows x 144 pooled positions per image: four images per chunk, so seven
    /// images make a full chunk and a partial one, and the weight gradient sums over chunks.
    #[test]
    fn a_batch_of_several_chunks_gives_the_same() {
        let device = Device::flex().autodiff();
        let case = Case::new([7, 4, 16, 16], [6, 4, 5, 5]);
        assert_eq!(kernel::chunk_for(&case.x_shape, &case.w_shape), 4);
        assert_same_as_composed(&case, &device);
    }

    /// The kernels compiled for each instruction set this CPU has give the same bits: output and
    /// all three gradients, on a batch of several chunks, on odd sizes, and on the study's second
    /// layers (12x12 inputs, kernels 4 and 5), where the input gradient is gathered per row on
    /// AVX-512 and spread sub-plane by sub-plane otherwise.
    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        use crate::nn::{VectorIsa, with_vector_ceiling};
        let device = Device::flex().autodiff();
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let bits =
            |values: &[Vec<f32>; 4]| values.each_ref().map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        for (x_shape, w_shape) in [
            ([7, 4, 16, 16], [6, 4, 5, 5]),
            ([3, 2, 9, 8], [4, 2, 3, 3]),
            ([5, 10, 12, 12], [20, 10, 4, 4]),
            ([5, 10, 12, 12], [15, 10, 5, 5]),
            // The first conv of CNN1: a weight gradient of few long dot products (`add_row_dots`).
            ([9, 1, 28, 28], [10, 1, 4, 4]),
        ] {
            let case = Case::new(x_shape, w_shape);
            let run = |isa| one.install(|| with_vector_ceiling(isa, || case.run(conv_relu_pool, &device)));
            let reference = run(VectorIsa::Baseline);
            assert!(reference[1].iter().any(|&v| v != 0.0), "an input gradient to compare");
            assert!(reference[2].iter().any(|&v| v != 0.0), "a weight gradient to compare");
            for isa in VectorIsa::available() {
                assert_eq!(bits(&run(isa)), bits(&reference), "{isa:?}, x {x_shape:?}, weight {w_shape:?}");
            }
        }
    }

    /// The same bits on one thread as on several: the chunks' gradients are added up in their
    /// order, not in the groups the threads happened to take (ten chunks of four images).
    #[test]
    fn the_gradients_do_not_depend_on_the_number_of_threads() {
        let device = Device::flex().autodiff();
        let case = Case::new([40, 4, 16, 16], [6, 4, 5, 5]);
        assert_eq!(kernel::chunk_for(&case.x_shape, &case.w_shape), 4);
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let values = pool.install(|| case.run(conv_relu_pool, &device));
            values.map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
        };
        let one = run(1);
        for threads in [2, 4] {
            assert_eq!(run(threads), one, "{threads} threads");
        }
    }

    #[test]
    fn without_autodiff_the_forward_is_the_same() {
        let device = Device::flex();
        let case = Case::new([3, 2, 9, 8], [4, 2, 3, 3]);
        let conv = case.conv(&device);
        let x = tensor(&case.x, case.x_shape, &device);
        assert_close(&flat(conv_relu_pool(x.clone(), &conv)), &flat(composed(x, &conv)), 1e-6, "forward");
    }

    /// By hand: x = 1..9 on a 3x3 grid, weight [[1, 0], [0, 1]], so y(i, j) = x(i, j) +
    /// x(i+1, j+1) + b. With b = -10 the conv is (-4, -2; 2, 4): the pool's winner is (1, 1) = 4,
    /// so dL/db = 1, dL/dW = the winner's patch [[5, 6], [8, 9]], and dL/dx is the weight placed
    /// at (1, 1). With b = -20 every window is negative: output 0, no gradient anywhere.
    #[test]
    fn a_hand_computed_block() {
        let device = Device::flex().autodiff();
        for (b, out, dw, db, dx) in [
            (-10.0, 4.0, [5.0, 6.0, 8.0, 9.0], 1.0, [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]),
            (-20.0, 0.0, [0.0; 4], 0.0, [0.0; 9]),
        ] {
            let mut conv = Conv2dConfig::new([1, 1], [2, 2]).init(&device);
            let w = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0], [1, 1, 2, 2]), &device);
            conv.weight = burn::module::Param::from_tensor(w);
            let bias = Tensor::<1>::from_data(TensorData::new(vec![b as f32], [1]), &device);
            conv.bias = Some(burn::module::Param::from_tensor(bias));
            let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
            let x = Tensor::<4>::from_data(TensorData::new(x, [1, 1, 3, 3]), &device).require_grad();
            let y = conv_relu_pool(x.clone(), &conv);
            assert_eq!(flat(y.clone()), vec![out]);
            let grads = y.sum().backward();
            assert_eq!(flat(conv.weight.val().grad(&grads).unwrap()), dw.to_vec());
            let bias_grad = conv.bias.as_ref().unwrap().val().grad(&grads).unwrap();
            assert_eq!(values(bias_grad), vec![db]);
            assert_eq!(flat(x.grad(&grads).unwrap()), dx.to_vec());
        }
    }
}
