//! The first layer of the MNIST MLPs as its own operation: `x . W + b` where `x` is a batch of
//! images, about four fifths of whose pixels are exactly zero (`ToTensor()`, no normalisation).
//!
//! Why: in the study's largest MLPs the first layer holds two thirds of the weights, and its
//! forward pass and weight gradient are most of a training step's multiply-adds; a dense matrix
//! product spends four fifths of those on zero pixels. On flex this operation skips them: the
//! batch's non-zero pixels are listed once per call (compressed sparse rows), the forward pass is
//! `y[i] = b + Σ_k x[i,k] W[k]` over each image's listed pixels, and the weight gradient
//! `dW[k] = Σ_i x[i,k] dy[i]` is the same kernel over the listing transposed. The input gradient
//! (only where asked: the sensitivity experiment) and the bias gradient are burn's own. Skipping
//! a product with an exact zero changes no sum, only the order of its additions (rounding).
//! On libtorch's CPU the same kernel runs on libtorch's buffers ([`HostBuffers`]): its own
//! sparse-times-dense product is no faster than its dense one here.
//!
//! Where listing does not pay (narrow layers, dense batches: `kernel::SparseRows::worth_listing`)
//! and on CUDA, the operation is burn's `linear`, exactly as `nn::Linear` computes it.

// burn-tch is deprecated upstream; see conv_block.rs.
#![cfg_attr(feature = "tch", allow(deprecated))]

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::Linear;
use burn::prelude::*;

use super::flex_buffers;

#[backend_extension(Flex, LibTorch: cfg(feature = "tch"), Autodiff)]
pub trait SparseInputBackend: Backend {
    /// `x . weight + bias`: x `[N, K]`, weight `[K, M]`, bias `[M]`. The default body is burn's
    /// `linear`; flex, libtorch and autodiff over either list the batch where that pays.
    fn sparse_input_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::linear(x, weight, Some(bias))
    }
}

/// `layer` applied to `x` `[N, K]`, a batch of mostly zero inputs.
pub fn sparse_input_linear(x: Tensor<2>, layer: &Linear) -> Tensor<2> {
    let Some(bias) = layer.bias.as_ref() else {
        return layer.forward(x);
    };
    let out = <Dispatch as SparseInputBackend>::sparse_input_linear(
        x.into_dispatch(),
        layer.weight.val().into_dispatch(),
        bias.val().into_dispatch(),
    );
    Tensor::from_dispatch(out)
}

impl SparseInputBackend for Flex {
    fn sparse_input_linear(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        listed_or_linear::<Flex>(x, weight, bias)
    }
}

#[cfg(feature = "tch")]
impl SparseInputBackend for burn::backend::LibTorch {
    fn sparse_input_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        listed_or_linear::<Self>(x, weight, bias)
    }
}

/// Without autodiff: the listed product where it pays, else burn's `linear`.
fn listed_or_linear<B: HostBuffers>(x: FloatTensor<B>, weight: FloatTensor<B>, bias: FloatTensor<B>) -> FloatTensor<B> {
    match listed_forward::<B>(&x, &weight, &bias) {
        Some((_, out)) => out,
        None => B::linear(x, weight, Some(bias)),
    }
}

impl<B: HostBuffers, C: CheckpointStrategy> SparseInputBackend for Autodiff<B, C> {
    fn sparse_input_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let Some((rows, out)) = listed_forward::<B>(x.primitive(), weight.primitive(), bias.primitive()) else {
            return Self::linear(x, weight, Some(bias));
        };
        match SparseInputBackward.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                prep.finish(Arc::new(Saved::<B> { rows, weight: weight.primitive().clone() }), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

/// Backends whose float tensors can live in host memory as f32 values: flex always, libtorch on
/// its CPU. The listed product runs there; elsewhere (CUDA) the operation is burn's `linear`.
pub trait HostBuffers: Backend {
    /// `read(values, shape)` on the tensor's values in row-major order, if they are host f32s.
    fn with_host_values<R>(t: &FloatTensor<Self>, read: impl FnOnce(&[f32], &[usize]) -> R) -> Option<R>;
    /// A tensor of `shape` from row-major values, on the device of `like`.
    fn from_host_values(values: Vec<f32>, shape: [usize; 2], like: &FloatTensor<Self>) -> FloatTensor<Self>;
}

impl HostBuffers for Flex {
    fn with_host_values<R>(t: &FlexTensor, read: impl FnOnce(&[f32], &[usize]) -> R) -> Option<R> {
        if t.dtype() != burn::backend::DType::F32 {
            return None;
        }
        let t = flex_buffers::contiguous(t);
        Some(read(flex_buffers::f32s(&t), t.layout().shape()))
    }

    fn from_host_values(values: Vec<f32>, shape: [usize; 2], _like: &FlexTensor) -> FlexTensor {
        flex_buffers::tensor(values, shape)
    }
}

#[cfg(feature = "tch")]
impl HostBuffers for burn::backend::LibTorch {
    fn with_host_values<R>(t: &FloatTensor<Self>, read: impl FnOnce(&[f32], &[usize]) -> R) -> Option<R> {
        if t.tensor.device() != tch::Device::Cpu || t.tensor.kind() != tch::Kind::Float {
            return None;
        }
        let t = t.tensor.contiguous();
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let len = shape.iter().product::<usize>();
        if len == 0 {
            return Some(read(&[], &shape));
        }
        // SAFETY: a contiguous f32 tensor on the CPU holds `len` floats from its data pointer,
        // and `t` outlives the borrow.
        let values = unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, len) };
        Some(read(values, &shape))
    }

    fn from_host_values(values: Vec<f32>, shape: [usize; 2], like: &FloatTensor<Self>) -> FloatTensor<Self> {
        let tensor = tch::Tensor::from_slice(&values).reshape([shape[0] as i64, shape[1] as i64]);
        burn::backend::libtorch::TchTensor::new(tensor.to_device(like.tensor.device()))
    }
}

/// The listed product where it pays (see `kernel::SparseRows::worth_listing`): the listing, kept
/// for the weight gradient, and `x . weight + bias`.
fn listed_forward<B: HostBuffers>(
    x: &FloatTensor<B>,
    weight: &FloatTensor<B>,
    bias: &FloatTensor<B>,
) -> Option<(kernel::SparseRows, FloatTensor<B>)> {
    let shape = weight.shape();
    if shape.num_dims() != 2 {
        return None;
    }
    let width = shape[1];
    let rows = B::with_host_values(x, |xs, shape| kernel::SparseRows::worth_listing(xs, shape, width))??;
    let out =
        B::with_host_values(weight, |ws, _| B::with_host_values(bias, |bs, _| kernel::forward(&rows, ws, bs, width)))??;
    let out = B::from_host_values(out, [rows.len(), width], x);
    Some((rows, out))
}

/// What the backward pass needs: the listing (for the weight gradient) and the weight (for the
/// input gradient; shared, not copied).
struct Saved<B: Backend> {
    rows: kernel::SparseRows,
    weight: FloatTensor<B>,
}

impl<B: Backend> std::fmt::Debug for Saved<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saved").field("rows", &self.rows).finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct SparseInputBackward;

impl<B: HostBuffers> Backward<B, 3> for SparseInputBackward {
    type State = Arc<Saved<B>>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let saved = ops.state;
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::linear_x_backward(saved.weight.clone(), grad.clone()));
        }
        if let Some(node) = node_weight {
            let width = grad.shape()[1];
            let dw = B::with_host_values(&grad, |g, _| kernel::weight_grad(&saved.rows, g, width))
                .expect("the gradient of a listed product is on the host, as its input was");
            grads.register::<B>(node.id, B::from_host_values(dw, [saved.rows.cols(), width], &grad));
        }
        if let Some(node) = node_bias {
            grads.register::<B>(node.id, B::linear_bias_backward(grad));
        }
    }
}

mod kernel {
    use rayon::prelude::*;

    /// The listing is used only where at most this share of the entries is non-zero: a listed
    /// multiply-add costs about three times a dense one (a load from L2 each, against the dense
    /// kernels' register blocking). MNIST batches are 19 % non-zero.
    const MOST_NONZERO: f64 = 0.4;
    /// ... and only for layers at least this wide: listing a batch costs a pass over it whatever
    /// the layer, which narrower layers do not win back (measured by `cargo run --release
    /// --example sparse_first_layer`; bench/results/sparse-first-layer-2026-11-27/).
    const LEAST_WIDTH: usize = 128;
    /// Output rows per task. A task sweeps the dense operand one tile of columns at a time, so a
    /// tile of it (at most 784 rows of 256 bytes here) stays in the core's L2 cache across the
    /// task's rows.
    const CHUNK_ROWS: usize = 64;
    // The weight gradient's tasks take whole pairs of result rows (`PairedColumns`).
    const _: () = assert!(CHUNK_ROWS.is_multiple_of(2));

    /// A `[rows, cols]` matrix by its non-zero entries, row by row: row `r`'s columns and values
    /// are `index[starts[r]..starts[r + 1]]` and `value[..]` alike, columns ascending.
    pub struct SparseRows {
        rows: usize,
        cols: usize,
        starts: Vec<usize>,
        index: Vec<u32>,
        value: Vec<f32>,
    }

    impl std::fmt::Debug for SparseRows {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "SparseRows {}x{}, {} non-zero", self.rows, self.cols, self.value.len())
        }
    }

    impl SparseRows {
        /// The listing of `x` (values of `shape`) if its product with a weight `[K, width]` is one
        /// where listing pays: `width` at least [`LEAST_WIDTH`], `x` 2-D and at most
        /// [`MOST_NONZERO`] non-zero.
        pub fn worth_listing(x: &[f32], shape: &[usize], width: usize) -> Option<SparseRows> {
            let [rows, cols] = shape[..] else { return None };
            let fits = |n: usize| n > 0 && u32::try_from(n).is_ok();
            if width < LEAST_WIDTH || !fits(rows) || !fits(cols) {
                return None;
            }
            let kernel = Kernel::best();
            let nonzero = count_nonzero(x, kernel);
            if nonzero as f64 > MOST_NONZERO * x.len() as f64 {
                return None;
            }
            Some(Self::from_dense(x, rows, cols, nonzero, kernel))
        }

        /// Rows of the listed matrix.
        pub fn len(&self) -> usize {
            self.rows
        }

        /// Columns of the listed matrix.
        pub fn cols(&self) -> usize {
            self.cols
        }

        /// The listing of `xs` (`[rows, cols]`, `nonzero` entries not zero), by `kernel`'s loop:
        /// every kernel lists the same entries in the same order.
        fn from_dense(xs: &[f32], rows: usize, cols: usize, nonzero: usize, kernel: Kernel) -> SparseRows {
            // Room past the last entry: the loops write a whole vector (or one entry) at the end
            // of the listing whatever the share of it that is kept.
            let slack = 16;
            let mut listing = SparseRows {
                rows,
                cols,
                starts: Vec::with_capacity(rows + 1),
                index: vec![0; nonzero + slack],
                value: vec![0.0; nonzero + slack],
            };
            listing.starts.push(0);
            match kernel {
                // SAFETY: `Kernel::best` found AVX-512F; `index` and `value` hold `nonzero` entries
                // and a vector's more, and `nonzero` is the count of the entries listed (the
                // function checks that it never writes past them).
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx512 => unsafe { avx512::list_rows(xs, cols, &mut listing) },
                _ => listing.list_rows_portably(xs, cols),
            }
            assert_eq!(listing.starts.last(), Some(&nonzero), "sparse input layer: listed as many as counted");
            listing.index.truncate(nonzero);
            listing.value.truncate(nonzero);
            listing
        }

        /// [`SparseRows::from_dense`]'s loop in plain Rust.
        fn list_rows_portably(&mut self, xs: &[f32], cols: usize) {
            // Branch-free: every entry is written at the end of the listing, which grows only
            // past the non-zero ones (a branch per pixel would mispredict about a fifth of them).
            let (index, value) = (&mut self.index[..], &mut self.value[..]);
            let mut len = 0;
            for row in xs.chunks_exact(cols) {
                for (c, &v) in row.iter().enumerate() {
                    index[len] = c as u32;
                    value[len] = v;
                    len += is_listed(v) as usize;
                }
                self.starts.push(len);
            }
        }

        /// The transpose's listing (a counting sort by column; rows stay ascending in each).
        fn transpose(&self) -> SparseRows {
            let mut starts = vec![0; self.cols + 1];
            for &c in &self.index {
                starts[c as usize + 1] += 1;
            }
            for c in 0..self.cols {
                starts[c + 1] += starts[c];
            }
            let mut next = starts.clone();
            let (mut index, mut value) = (vec![0u32; self.index.len()], vec![0.0f32; self.value.len()]);
            for r in 0..self.rows {
                for e in self.row(r) {
                    let at = &mut next[self.index[e] as usize];
                    (index[*at], value[*at]) = (r as u32, self.value[e]);
                    *at += 1;
                }
            }
            SparseRows { rows: self.cols, cols: self.rows, starts, index, value }
        }

        fn row(&self, r: usize) -> std::ops::Range<usize> {
            self.starts[r]..self.starts[r + 1]
        }

        /// The transpose's listing by pairs of columns (a counting sort by pair; rows stay
        /// ascending in each).
        fn paired_columns(&self) -> PairedColumns {
            let pairs = self.cols.div_ceil(2);
            // Each row's entries in one pair are adjacent (columns ascend): one entry of the
            // pair's listing per run of them.
            let opens_a_run = |r: usize, e: usize| e == self.starts[r] || self.index[e] / 2 != self.index[e - 1] / 2;
            let mut starts = vec![0; pairs + 1];
            for r in 0..self.rows {
                for e in self.row(r).filter(|&e| opens_a_run(r, e)) {
                    starts[self.index[e] as usize / 2 + 1] += 1;
                }
            }
            for p in 0..pairs {
                starts[p + 1] += starts[p];
            }
            let total = starts[pairs];
            let mut listing =
                PairedColumns { starts, row: vec![0; total], first: vec![0.0; total], second: vec![0.0; total] };
            let mut next = listing.starts.clone();
            for r in 0..self.rows {
                let mut slot = usize::MAX;
                for e in self.row(r) {
                    let column = self.index[e] as usize;
                    if opens_a_run(r, e) {
                        slot = next[column / 2];
                        next[column / 2] += 1;
                        listing.row[slot] = r as u32;
                    }
                    let side = if column.is_multiple_of(2) { &mut listing.first } else { &mut listing.second };
                    side[slot] = self.value[e];
                }
            }
            listing
        }
    }

    /// Whether an entry is listed: NaN is, so that it spreads as it would through the product;
    /// -0.0 is not (a product with it adds a zero).
    fn is_listed(v: f32) -> bool {
        v != 0.0
    }

    /// How many entries of `x` are listed, by `kernel`'s loop.
    fn count_nonzero(x: &[f32], kernel: Kernel) -> usize {
        match kernel {
            // SAFETY: `Kernel::best` found AVX-512F.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { avx512::count_nonzero(x) },
            _ => x.iter().filter(|&&v| is_listed(v)).count(),
        }
    }

    /// `x . weight + bias` for `x` listed in `rows`: weight `[K, width]`, bias `[width]`, the
    /// result `[N, width]`, row-major.
    pub fn forward(rows: &SparseRows, weight: &[f32], bias: &[f32], width: usize) -> Vec<f32> {
        assert_eq!(bias.len(), width, "sparse input layer: a bias of {} for {width} outputs", bias.len());
        let mut out = bias.repeat(rows.rows);
        accumulate(rows, weight, width, &mut out);
        out
    }

    /// `x^T . grad` for `x` listed in `rows`: grad `[N, width]`, the result `[K, width]`.
    pub fn weight_grad(rows: &SparseRows, grad: &[f32], width: usize) -> Vec<f32> {
        weight_grad_on(rows, grad, width, Kernel::best())
    }

    /// [`weight_grad`] with `kernel` (one this CPU has): on AVX-512 two rows of the result at a
    /// time ([`PairedColumns`]), elsewhere the product over the transposed listing. Each entry of
    /// the result is the same chain of fused multiply-adds either way, hence the same bits.
    fn weight_grad_on(rows: &SparseRows, grad: &[f32], width: usize, kernel: Kernel) -> Vec<f32> {
        assert_eq!(grad.len(), rows.rows * width, "sparse input layer: gradient of another size");
        let mut out = vec![0.0; rows.cols * width];
        match kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 if width > 0 => {
                let pairs = rows.paired_columns();
                out.par_chunks_mut(CHUNK_ROWS * width).enumerate().for_each(|(chunk, out)| {
                    // SAFETY: `Kernel::best` found AVX-512F; `grad` holds `width` floats for each
                    // listed row (checked above), and `out` two rows per pair from the chunk's first
                    // (CHUNK_ROWS is even), the last pair's second only where `cols` has it.
                    unsafe { avx512::accumulate_pairs(&pairs, chunk * CHUNK_ROWS / 2, grad, width, out) }
                });
            }
            _ => accumulate_on(&rows.transpose(), grad, width, &mut out, kernel),
        }
        out
    }

    /// The transpose of a listing with its rows taken two at a time: for each pair of the listed
    /// matrix's columns (2p, 2p + 1), the rows that have an entry in either, ascending, with both
    /// entries, `0.0` where one is absent (a listed entry is never zero, so `0.0` means absent).
    /// Adjacent pixels are mostly non-zero in the same images, so a pair's rows are few more
    /// than either column's, and each row of the dense operand loaded serves both.
    pub struct PairedColumns {
        starts: Vec<usize>,
        row: Vec<u32>,
        first: Vec<f32>,
        second: Vec<f32>,
    }

    impl PairedColumns {
        fn pair(&self, p: usize) -> std::ops::Range<usize> {
            self.starts[p]..self.starts[p + 1]
        }
    }

    /// `out[r] += Σ value * dense[column]` over row `r`'s listed entries, for every row:
    /// `dense` `[list.cols, width]`, `out` `[list.rows, width]`, both row-major.
    fn accumulate(list: &SparseRows, dense: &[f32], width: usize, out: &mut [f32]) {
        accumulate_on(list, dense, width, out, Kernel::best());
    }

    /// The loops that can run the product on this CPU.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Kernel {
        Portable,
        /// x86-64 with AVX2 and FMA: 64 columns in eight 256-bit registers.
        Avx2,
        /// x86-64 with AVX-512F: 128 columns in eight 512-bit registers. Each output is the same
        /// chain of fused multiply-adds as with AVX2, so the same bits (tested).
        Avx512,
    }

    impl Kernel {
        /// Every kernel this CPU can run, narrowest first (the tests compare them).
        #[cfg(test)]
        fn on_this_cpu() -> Vec<Kernel> {
            crate::nn::VectorIsa::available().into_iter().map(Kernel::for_isa).collect()
        }

        fn best() -> Kernel {
            Kernel::for_isa(crate::nn::VectorIsa::chosen())
        }

        fn for_isa(isa: crate::nn::VectorIsa) -> Kernel {
            match isa {
                #[cfg(target_arch = "x86_64")]
                crate::nn::VectorIsa::Avx512 => Kernel::Avx512,
                #[cfg(target_arch = "x86_64")]
                crate::nn::VectorIsa::Avx2 => Kernel::Avx2,
                _ => Kernel::Portable,
            }
        }
    }

    /// [`accumulate`] with `kernel` (one this CPU has).
    fn accumulate_on(list: &SparseRows, dense: &[f32], width: usize, out: &mut [f32], kernel: Kernel) {
        assert_eq!(dense.len(), list.cols * width, "sparse input layer: dense operand of another size");
        assert_eq!(out.len(), list.rows * width, "sparse input layer: output of another size");
        if width == 0 {
            return;
        }
        out.par_chunks_mut(CHUNK_ROWS * width).enumerate().for_each(|(chunk, out)| {
            let first = chunk * CHUNK_ROWS;
            match kernel {
                // SAFETY (both): `Kernel::best` found the CPU features; the sizes are checked
                // above, and every listed column is below `list.cols` by construction.
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx512 => unsafe { avx512::accumulate_rows(list, first, dense, width, out) },
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx2 => unsafe { avx2::accumulate_rows(list, first, dense, width, out) },
                Kernel::Portable => {
                    for (r, out) in out.chunks_exact_mut(width).enumerate() {
                        for e in list.row(first + r) {
                            let (column, v) = (list.index[e] as usize, list.value[e]);
                            for (o, &w) in out.iter_mut().zip(&dense[column * width..][..width]) {
                                *o += v * w;
                            }
                        }
                    }
                }
                #[cfg(not(target_arch = "x86_64"))]
                _ => unreachable!("no vector kernel on this architecture"),
            }
        });
    }

    /// The product by the portable loop and by every vector kernel this CPU has (fastest last); x
    /// has 70 rows (two tasks), 20 % of them non-zero.
    #[cfg(test)]
    pub fn every_path(width: usize) -> Vec<Vec<f32>> {
        let (n, k) = (70, 30);
        let x: Vec<f32> = (0..n * k).map(|e| if e % 5 == 2 { (e % 7) as f32 - 2.5 } else { 0.0 }).collect();
        let dense: Vec<f32> = (0..k * width).map(|e| ((e * 37) % 101) as f32 / 50.0 - 1.0).collect();
        let list = SparseRows::from_dense(&x, n, k, count_nonzero(&x, Kernel::Portable), Kernel::Portable);
        let run = |kernel| {
            let mut out = vec![0.5; n * width];
            accumulate_on(&list, &dense, width, &mut out, kernel);
            out
        };
        let kernels = Kernel::on_this_cpu();
        kernels.into_iter().map(run).collect()
    }

    /// The vector kernel's loops, written once for every instruction set: a module defines
    /// `LANES` (floats per vector) and the vector operations (`zero`, `load`, `store`, `splat`,
    /// `fmadd`, and `mask`, `load_masked`, `store_masked` for the last columns), and this
    /// generates its `accumulate_rows`: eight vectors of columns accumulate in registers while a
    /// row's entries stream by, then one vector, then the last few under a mask. Each output is
    /// the same chain of fused multiply-adds whatever the set, hence the same bits.
    #[cfg(target_arch = "x86_64")]
    macro_rules! vector_kernel {
        ($features:literal) => {
            /// [`super::accumulate`] for the rows `first..` that `out` holds, `8 * LANES` columns
            /// at a time, then `LANES`, then the last few under a mask.
            #[target_feature(enable = $features)]
            pub unsafe fn accumulate_rows(
                list: &SparseRows,
                first: usize,
                dense: &[f32],
                width: usize,
                out: &mut [f32],
            ) {
                let mut j = 0;
                while j + 8 * LANES <= width {
                    // SAFETY (here and below): columns j..j + R * LANES are within `width`.
                    unsafe { tile::<8>(list, first, dense, width, out, j) };
                    j += 8 * LANES;
                }
                while j + LANES <= width {
                    unsafe { tile::<1>(list, first, dense, width, out, j) };
                    j += LANES;
                }
                if j < width {
                    // SAFETY: as above, for the last `width - j` < LANES columns, masked.
                    unsafe { tail(list, first, dense, width, out, j) };
                }
            }

            /// Columns `j..j + R * LANES` of every row in `out`.
            #[target_feature(enable = $features)]
            #[inline]
            unsafe fn tile<const R: usize>(
                list: &SparseRows,
                first: usize,
                dense: &[f32],
                width: usize,
                out: &mut [f32],
                j: usize,
            ) {
                for r in 0..out.len() / width {
                    // SAFETY: row r of `out` holds `width` floats from r * width, and
                    // j + R * LANES <= width; a listed column c < list.cols has `width` floats of
                    // `dense` from c * width.
                    unsafe {
                        let o = out.as_mut_ptr().add(r * width + j);
                        let mut acc = [zero(); R];
                        for (i, a) in acc.iter_mut().enumerate() {
                            *a = load(o.add(LANES * i));
                        }
                        for e in list.row(first + r) {
                            let v = splat(*list.value.get_unchecked(e));
                            let w = dense.as_ptr().add(*list.index.get_unchecked(e) as usize * width + j);
                            for (i, a) in acc.iter_mut().enumerate() {
                                *a = fmadd(v, load(w.add(LANES * i)), *a);
                            }
                        }
                        for (i, a) in acc.iter().enumerate() {
                            store(o.add(LANES * i), *a);
                        }
                    }
                }
            }

            /// Columns `j..width` (fewer than LANES) of every row in `out`: masked loads and
            /// stores touch no memory past them.
            #[target_feature(enable = $features)]
            unsafe fn tail(list: &SparseRows, first: usize, dense: &[f32], width: usize, out: &mut [f32], j: usize) {
                let m = mask(width - j);
                // SAFETY: the mask keeps every access within columns j..width of a row that holds
                // `width` floats, in `out` (row r) and in `dense` (a listed column c < list.cols).
                unsafe {
                    for r in 0..out.len() / width {
                        let o = out.as_mut_ptr().add(r * width + j);
                        let mut acc = load_masked(o, m);
                        for e in list.row(first + r) {
                            let v = splat(*list.value.get_unchecked(e));
                            let w = dense.as_ptr().add(*list.index.get_unchecked(e) as usize * width + j);
                            acc = fmadd(v, load_masked(w, m), acc);
                        }
                        store_masked(o, m, acc);
                    }
                }
            }
        };
    }

    /// AVX2 and FMA: 256-bit vectors of eight floats.
    #[cfg(target_arch = "x86_64")]
    mod avx2 {
        use super::SparseRows;
        use std::arch::x86_64::*;

        const LANES: usize = 8;

        #[target_feature(enable = "avx2,fma")]
        #[inline]
        fn zero() -> __m256 {
            _mm256_setzero_ps()
        }

        #[target_feature(enable = "avx2,fma")]
        #[inline]
        fn splat(v: f32) -> __m256 {
            _mm256_set1_ps(v)
        }

        #[target_feature(enable = "avx2,fma")]
        #[inline]
        fn fmadd(a: __m256, b: __m256, c: __m256) -> __m256 {
            _mm256_fmadd_ps(a, b, c)
        }

        /// SAFETY (the loads and stores): `p` points at `LANES` floats, or at the masked-in ones.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn load(p: *const f32) -> __m256 {
            unsafe { _mm256_loadu_ps(p) }
        }

        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn store(p: *mut f32, v: __m256) {
            unsafe { _mm256_storeu_ps(p, v) }
        }

        /// The first `n` lanes.
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        fn mask(n: usize) -> __m256i {
            let lanes: [i32; LANES] = std::array::from_fn(|lane| if lane < n { -1 } else { 0 });
            // SAFETY: `lanes` holds exactly 256 bits.
            unsafe { _mm256_loadu_si256(lanes.as_ptr() as *const __m256i) }
        }

        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn load_masked(p: *const f32, m: __m256i) -> __m256 {
            unsafe { _mm256_maskload_ps(p, m) }
        }

        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn store_masked(p: *mut f32, m: __m256i, v: __m256) {
            unsafe { _mm256_maskstore_ps(p, m, v) }
        }

        vector_kernel!("avx2,fma");
    }

    /// AVX-512F: 512-bit vectors of sixteen floats.
    #[cfg(target_arch = "x86_64")]
    mod avx512 {
        use super::{PairedColumns, SparseRows};
        use std::arch::x86_64::*;

        const LANES: usize = 16;

        #[target_feature(enable = "avx512f")]
        #[inline]
        fn zero() -> __m512 {
            _mm512_setzero_ps()
        }

        #[target_feature(enable = "avx512f")]
        #[inline]
        fn splat(v: f32) -> __m512 {
            _mm512_set1_ps(v)
        }

        #[target_feature(enable = "avx512f")]
        #[inline]
        fn fmadd(a: __m512, b: __m512, c: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, c)
        }

        /// SAFETY (the loads and stores): `p` points at `LANES` floats, or at the masked-in ones.
        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn load(p: *const f32) -> __m512 {
            unsafe { _mm512_loadu_ps(p) }
        }

        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn store(p: *mut f32, v: __m512) {
            unsafe { _mm512_storeu_ps(p, v) }
        }

        /// The first `n` lanes.
        #[target_feature(enable = "avx512f")]
        #[inline]
        fn mask(n: usize) -> __mmask16 {
            ((1u32 << n) - 1) as __mmask16
        }

        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn load_masked(p: *const f32, m: __mmask16) -> __m512 {
            unsafe { _mm512_maskz_loadu_ps(m, p) }
        }

        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn store_masked(p: *mut f32, m: __mmask16, v: __m512) {
            unsafe { _mm512_mask_storeu_ps(p, m, v) }
        }

        vector_kernel!("avx512f");

        /// [`super::count_nonzero`] sixteen entries at a time.
        #[target_feature(enable = "avx512f")]
        pub unsafe fn count_nonzero(x: &[f32]) -> usize {
            let mut count = 0;
            for j in (0..x.len()).step_by(LANES) {
                let m = mask((x.len() - j).min(LANES));
                // SAFETY: the mask keeps the load within x[j..].
                let v = unsafe { load_masked(x.as_ptr().add(j), m) };
                count += listed(m, v).count_ones() as usize;
            }
            count
        }

        /// Which of the lanes in `m` hold an entry that is listed ([`super::is_listed`]: not
        /// equal to zero, unordered, so NaN is).
        #[target_feature(enable = "avx512f")]
        #[inline]
        fn listed(m: __mmask16, v: __m512) -> __mmask16 {
            _mm512_mask_cmp_ps_mask::<_CMP_NEQ_UQ>(m, v, zero())
        }

        /// [`SparseRows::from_dense`]'s loop, sixteen entries at a time: the listed lanes of a
        /// vector of entries, and of their columns, are packed to its front and stored whole at
        /// the end of the listing, which then grows by their number.
        ///
        /// SAFETY: the CPU has AVX-512F; `listing.index` and `listing.value` have room for the
        /// listed entries of `xs` and one vector more.
        #[target_feature(enable = "avx512f")]
        pub unsafe fn list_rows(xs: &[f32], cols: usize, listing: &mut SparseRows) {
            let room = listing.value.len().min(listing.index.len());
            let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            let mut len = 0;
            for row in xs.chunks_exact(cols) {
                for j in (0..cols).step_by(LANES) {
                    let m = mask((cols - j).min(LANES));
                    // A miscount would write past the listing: stop instead.
                    assert!(len + LANES <= room, "sparse input layer: more entries than counted");
                    // SAFETY: the mask keeps the load within the row; the stores are within
                    // `room`, checked just above.
                    unsafe {
                        let v = load_masked(row.as_ptr().add(j), m);
                        let keep = listed(m, v);
                        let columns = _mm512_add_epi32(lanes, _mm512_set1_epi32(j as i32));
                        store(listing.value.as_mut_ptr().add(len), _mm512_maskz_compress_ps(keep, v));
                        _mm512_storeu_si512(
                            listing.index.as_mut_ptr().add(len).cast(),
                            _mm512_maskz_compress_epi32(keep, columns),
                        );
                        len += keep.count_ones() as usize;
                    }
                }
                listing.starts.push(len);
            }
        }

        /// [`super::weight_grad_on`]'s product on AVX-512: rows `2 * first_pair..` of the result,
        /// which `out` holds, a pair at a time. Columns `8 * LANES` at a time, then `LANES`, then
        /// the last few under a mask, as [`accumulate_rows`]; each entry of a pair's listing loads
        /// the dense operand's row once and adds it into both result rows, each under a mask that
        /// is empty where the entry is absent, so each row gets the chain of fused multiply-adds
        /// it gets from the transposed listing.
        ///
        /// SAFETY: the CPU has AVX-512F; `dense` holds `width` floats for each listed row; `out`
        /// holds whole rows of `width` floats, two per pair from `first_pair` (the last may be
        /// short of its second where the listed matrix has an odd number of columns).
        #[target_feature(enable = "avx512f")]
        pub unsafe fn accumulate_pairs(
            pairs: &PairedColumns,
            first_pair: usize,
            dense: &[f32],
            width: usize,
            out: &mut [f32],
        ) {
            let mut j = 0;
            while j + 8 * LANES <= width {
                // SAFETY (here and below): columns j..j + R * LANES are within `width`.
                unsafe { pair_tile::<8>(pairs, first_pair, dense, width, out, j, mask(LANES)) };
                j += 8 * LANES;
            }
            while j + LANES <= width {
                unsafe { pair_tile::<1>(pairs, first_pair, dense, width, out, j, mask(LANES)) };
                j += LANES;
            }
            if j < width {
                // SAFETY: the mask keeps every access within columns j..width.
                unsafe { pair_tile::<1>(pairs, first_pair, dense, width, out, j, mask(width - j)) };
            }
        }

        /// Columns `j..j + R * LANES` (those of them in `lanes`) of every pair of rows in `out`.
        #[target_feature(enable = "avx512f")]
        #[inline]
        unsafe fn pair_tile<const R: usize>(
            pairs: &PairedColumns,
            first_pair: usize,
            dense: &[f32],
            width: usize,
            out: &mut [f32],
            j: usize,
            lanes: __mmask16,
        ) {
            let rows = out.len() / width;
            let every_lane_if = |listed: bool| if listed { mask(LANES) } else { 0 };
            for local in (0..rows).step_by(2) {
                let has_second = local + 1 < rows;
                // SAFETY: rows `local` and (where `has_second`) `local + 1` of `out` hold `width`
                // floats from j; a listed row of `dense` holds `width` floats from its start;
                // every access is under `lanes`, within j..width.
                unsafe {
                    let (a, b) =
                        (out.as_mut_ptr().add(local * width + j), out.as_mut_ptr().add((local + 1) * width + j));
                    let (mut acc_a, mut acc_b) = ([zero(); R], [zero(); R]);
                    for i in 0..R {
                        acc_a[i] = load_masked(a.add(LANES * i), lanes);
                        if has_second {
                            acc_b[i] = load_masked(b.add(LANES * i), lanes);
                        }
                    }
                    for e in pairs.pair(first_pair + local / 2) {
                        let (first, second) = (*pairs.first.get_unchecked(e), *pairs.second.get_unchecked(e));
                        let (keep_a, keep_b) =
                            (every_lane_if(super::is_listed(first)), every_lane_if(super::is_listed(second)));
                        let (first, second) = (splat(first), splat(second));
                        let w = dense.as_ptr().add(*pairs.row.get_unchecked(e) as usize * width + j);
                        for i in 0..R {
                            let w = load_masked(w.add(LANES * i), lanes);
                            acc_a[i] = _mm512_mask3_fmadd_ps(first, w, acc_a[i], keep_a);
                            acc_b[i] = _mm512_mask3_fmadd_ps(second, w, acc_b[i], keep_b);
                        }
                    }
                    for i in 0..R {
                        store_masked(a.add(LANES * i), lanes, acc_a[i]);
                        if has_second {
                            store_masked(b.add(LANES * i), lanes, acc_b[i]);
                        }
                    }
                }
            }
        }
    }

    /// The weight gradient by every loop this CPU has (portable first) for an x of 70 rows (the
    /// result's rows in two tasks) and `k` columns, 30 % non-zero, two adjacent columns empty.
    #[cfg(test)]
    pub fn every_weight_grad_path(k: usize, width: usize) -> Vec<Vec<f32>> {
        let n = 70;
        let x: Vec<f32> = (0..n * k)
            .map(|e| if e % 10 < 3 && !(4..6).contains(&(e % k)) { ((e * 7) % 13) as f32 - 6.5 } else { 0.0 })
            .collect();
        let grad: Vec<f32> = (0..n * width).map(|e| ((e * 37) % 101) as f32 / 50.0 - 1.0).collect();
        let list = SparseRows::from_dense(&x, n, k, count_nonzero(&x, Kernel::Portable), Kernel::Portable);
        let kernels = Kernel::on_this_cpu();
        kernels.into_iter().map(|kernel| weight_grad_on(&list, &grad, width, kernel)).collect()
    }

    /// A listing as plain values, to compare: row starts, columns, value bits, and the count.
    #[cfg(test)]
    #[derive(Debug, PartialEq)]
    pub struct ListingBits(pub Vec<usize>, pub Vec<u32>, pub Vec<u32>, pub usize);

    /// The listing of `x` (`[rows, cols]`) by every loop this CPU has, portable first.
    #[cfg(test)]
    pub fn every_listing(x: &[f32], rows: usize, cols: usize) -> Vec<ListingBits> {
        let kernels = match Kernel::best() {
            Kernel::Avx512 => vec![Kernel::Portable, Kernel::Avx512],
            _ => vec![Kernel::Portable],
        };
        kernels
            .into_iter()
            .map(|kernel| {
                let count = count_nonzero(x, kernel);
                let list = SparseRows::from_dense(x, rows, cols, count, kernel);
                ListingBits(list.starts, list.index, list.value.iter().map(|v| v.to_bits()).collect(), count)
            })
            .collect()
    }

    /// Whether a batch of these values would be listed for a layer of this width.
    #[cfg(test)]
    pub fn listed(x: &[f32], shape: [usize; 2], width: usize) -> bool {
        SparseRows::worth_listing(x, &shape, width).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::values;
    use burn::nn::LinearConfig;
    use burn::tensor::TensorData;
    use rand::{Rng, SeedableRng};

    fn tensor<const D: usize>(values: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
    }

    /// A layer `k -> m` with seeded weights, and an input `[n, k]` with the given share of
    /// non-zero entries (seeded, uniform in (0, 1], like pixels).
    fn case(n: usize, k: usize, m: usize, nonzero: f64, device: &Device) -> (Linear, Vec<f32>) {
        let mut rng = crate::rng::SeededRng::seed_from_u64(11);
        let layer = LinearConfig::new(k, m).init(device);
        let x = (0..n * k).map(|_| if rng.random_bool(nonzero) { 1.0 - rng.random::<f32>() } else { 0.0 }).collect();
        (layer, x)
    }

    /// Output, and gradients for x, weight and bias of sum(f(x) * r), on fresh leaves.
    fn run(
        f: fn(Tensor<2>, &Linear) -> Tensor<2>,
        layer: &Linear,
        x: &[f32],
        n: usize,
        device: &Device,
    ) -> [Vec<f32>; 4] {
        let [k, m] = layer.weight.dims();
        let x = tensor(x, [n, k], device).require_grad();
        let out = f(x.clone(), layer);
        let r: Vec<f32> = (0..n * m).map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.5).collect();
        let grads = (out.clone() * tensor(&r, [n, m], device)).sum().backward();
        let bias = layer.bias.as_ref().unwrap().val();
        [
            values(out),
            values(x.grad(&grads).unwrap()),
            values(layer.weight.val().grad(&grads).unwrap()),
            values(bias.grad(&grads).unwrap()),
        ]
    }

    fn plain(x: Tensor<2>, layer: &Linear) -> Tensor<2> {
        layer.forward(x)
    }

    fn assert_close(ours: &[f32], reference: &[f32], what: &str) {
        assert_eq!(ours.len(), reference.len(), "{what}: lengths");
        for (i, (a, b)) in ours.iter().zip(reference).enumerate() {
            // Sums of up to ~200 products in another order: f32 rounding.
            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{what}[{i}]: {a} vs {b}");
        }
    }

    /// 150 rows make three tasks (the last partial), 139 output columns two 64-wide tiles, one
    /// 8-wide and three under a mask: every path of the kernel against burn's own layer.
    /// On flex, and in the tch build on libtorch's CPU too (the same kernel on its buffers).
    #[test]
    fn forward_and_gradients_equal_burns_linear() {
        #[allow(unused_mut)]
        let mut devices = vec![Device::flex().autodiff()];
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        devices.push(Device::libtorch().autodiff());
        for device in devices {
            let (layer, x) = case(150, 90, 139, 0.2, &device);
            assert!(kernel::listed(&x, [150, 90], 139), "a 20 % non-zero batch is listed");
            let ours = run(sparse_input_linear, &layer, &x, 150, &device);
            let reference = run(plain, &layer, &x, 150, &device);
            for (what, (a, b)) in ["forward", "d/dx", "d/dweight", "d/dbias"].iter().zip(ours.iter().zip(&reference)) {
                assert!(b.iter().any(|&v| v != 0.0), "{what} on {device:?}: a non-trivial case");
                assert_close(a, b, what);
            }
        }
    }

    /// Without autodiff (evaluation), and for a batch with an all-zero row and column.
    #[test]
    fn without_autodiff_and_with_empty_rows_the_forward_is_the_same() {
        let device = Device::flex();
        let (layer, mut x) = case(5, 16, 131, 0.3, &device);
        x[16..32].fill(0.0);
        x.iter_mut().step_by(16).for_each(|v| *v = 0.0);
        assert!(kernel::listed(&x, [5, 16], 131));
        let ours = values(sparse_input_linear(tensor(&x, [5, 16], &device), &layer));
        let reference = values(layer.forward(tensor(&x, [5, 16], &device)));
        assert_close(&ours, &reference, "forward");
        let bias = values(layer.bias.as_ref().unwrap().val());
        assert_eq!(&ours[131..262], &bias[..], "an all-zero row gets the bias alone");
    }

    /// A dense batch, or a narrow layer, is not listed: burn's linear, bit for bit.
    #[test]
    fn dense_batches_and_narrow_layers_are_burns_linear_exactly() {
        let device = Device::flex().autodiff();
        for (nonzero, width) in [(0.9, 140), (0.2, 20)] {
            let (layer, x) = case(70, 20, width, nonzero, &device);
            assert!(!kernel::listed(&x, [70, 20], width));
            assert_eq!(run(sparse_input_linear, &layer, &x, 70, &device), run(plain, &layer, &x, 70, &device));
        }
    }

    /// The portable loop (for CPUs without AVX2) computes what the vector kernels compute, up
    /// to rounding (fused multiply-adds there); the AVX2 and AVX-512 kernels compute the same
    /// bits, over every tile path of each (full tiles, single vectors, a masked tail).
    #[test]
    fn the_portable_loop_agrees_with_the_vector_kernels_which_agree_bit_for_bit() {
        for width in [3, 17, 64, 139, 272, 400] {
            let paths = kernel::every_path(width);
            assert!(paths[0].iter().any(|&v| v != 0.5));
            assert_paths_agree(&paths, &format!("width {width}"));
        }
    }

    /// Results of the portable loop, then AVX2, then AVX-512 (those this CPU has): the vector
    /// ones agree with the portable one up to rounding, and with each other bit for bit.
    fn assert_paths_agree(paths: &[Vec<f32>], what: &str) {
        for vector in &paths[1..] {
            assert_close(&paths[0], vector, &format!("{what}: portable vs vector"));
        }
        if let [_, avx2, avx512] = paths {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(avx2), bits(avx512), "{what}");
        }
    }

    /// The weight gradient two rows at a time (AVX-512) has the bits of the one over the
    /// transposed listing (AVX2), over every tile path, an odd number of inputs (a last pair of
    /// one) and an even one, empty inputs; the portable loop agrees up to rounding.
    #[test]
    fn every_weight_gradient_loop_agrees_and_the_vector_ones_bit_for_bit() {
        for k in [31, 40] {
            for width in [3, 17, 139, 272] {
                let paths = kernel::every_weight_grad_path(k, width);
                assert!(paths[0].iter().any(|&v| v != 0.0));
                assert!(paths[0][4 * width..6 * width].iter().all(|&v| v == 0.0), "empty inputs, no gradient");
                assert_paths_agree(&paths, &format!("{k} inputs, width {width}"));
            }
        }
    }

    /// Every loop lists the same entries, in the same order, with the same bits: NaN listed,
    /// both zeros not, rows whose width is not a whole number of vectors (a masked last part),
    /// empty rows and a row of nothing but entries. Checked against the listing by hand.
    #[test]
    fn every_listing_loop_lists_the_same_entries() {
        let by_hand = [0.0, 2.0, -0.0, f32::NAN, 0.0, -1.5, 0.0];
        let listings = kernel::every_listing(&by_hand, 1, 7);
        for kernel::ListingBits(starts, index, value, count) in &listings {
            assert_eq!((starts.as_slice(), index.as_slice(), *count), (&[0, 3][..], &[1, 3, 5][..], 3));
            assert_eq!(value, &[2.0f32.to_bits(), f32::NAN.to_bits(), (-1.5f32).to_bits()]);
        }
        let mut rng = crate::rng::SeededRng::seed_from_u64(5);
        for cols in [1, 15, 16, 17, 37, 784] {
            let rows = 9;
            let pick = [0.0, -0.0, f32::NAN, 1.0, -2.5, f32::MIN_POSITIVE / 2.0];
            let mut x: Vec<f32> = (0..rows * cols)
                .map(|_| if rng.random_bool(0.3) { pick[rng.random_range(0..6)] } else { 0.0 })
                .collect();
            x[cols..2 * cols].fill(0.0);
            x[2 * cols..3 * cols].fill(0.25);
            let listings = kernel::every_listing(&x, rows, cols);
            let portable = &listings[0];
            assert_eq!(portable.0[3] - portable.0[2], cols, "the full row is listed whole");
            assert_eq!(portable.0[2], portable.0[1], "the empty row lists nothing");
            for other in &listings[1..] {
                assert_eq!(other, portable, "{cols} columns");
            }
        }
    }

    /// By hand: x = [[0, 2, 0], [0, 0, 0], [1, 0, 3]], W[k, j] = (k + 1)(j + 1), b[j] = -j, for
    /// 130 outputs j: y[0] = b + 2*2(j + 1), y[1] = b, y[2] = b + (1*1 + 3*3)(j + 1). With the
    /// loss sum(y): dW[k, j] = Σ_i x[i, k] = (1, 2, 3)[k], db[j] = 3 (three rows).
    #[test]
    fn a_hand_computed_layer() {
        let device = Device::flex().autodiff();
        let m = 130;
        let mut layer = LinearConfig::new(3, m).init(&device);
        let weight: Vec<f32> = (0..3 * m).map(|e| ((e / m + 1) * (e % m + 1)) as f32).collect();
        let bias: Vec<f32> = (0..m).map(|j| -(j as f32)).collect();
        layer.weight = burn::module::Param::from_tensor(tensor(&weight, [3, m], &device));
        layer.bias = Some(burn::module::Param::from_tensor(tensor(&bias, [m], &device)));
        let x = [0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 3.0];
        assert!(kernel::listed(&x, [3, 3], m));
        let y = sparse_input_linear(tensor(&x, [3, 3], &device), &layer);
        let expected: Vec<f32> = [4.0, 0.0, 10.0]
            .iter()
            .flat_map(|per_unit| (0..m).map(move |j| -(j as f32) + per_unit * (j + 1) as f32))
            .collect();
        assert_eq!(values(y.clone()), expected);
        let grads = y.sum().backward();
        let dw: Vec<f32> = (0..3 * m).map(|e| (e / m + 1) as f32).collect();
        assert_eq!(values(layer.weight.val().grad(&grads).unwrap()), dw);
        assert_eq!(values(layer.bias.as_ref().unwrap().val().grad(&grads).unwrap()), vec![3.0; m]);
    }
}
