//! Raw f32 buffers of flex tensors, for the operations written by hand for flex (the conv block,
//! the sparse-input layer): in as a contiguous slice, out as a new tensor.

use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::{DType, Shape};
use burn::tensor::Bytes;

/// `t` in row-major order, to read with [`f32s`]: shared, not copied, where its values already
/// are, at any offset of its buffer. (burn's `to_contiguous` copies such a view unless it covers
/// its whole buffer, and every batch an evaluation slices from a split is one: a copy of the
/// batch per layer call, a sixth of an MLP evaluation's time in fresh pages and copies.)
pub fn contiguous(t: &FlexTensor) -> FlexTensor {
    assert_eq!(t.dtype(), DType::F32, "hand-written flex operations take f32 tensors only");
    if t.layout().contiguous_offsets().is_some() { t.clone() } else { t.to_contiguous() }
}

/// A contiguous f32 tensor's values in row-major order.
pub fn f32s(t: &FlexTensor) -> &[f32] {
    let (start, end) = t.layout().contiguous_offsets().expect("contiguous");
    &t.storage::<f32>()[start..end]
}

/// A tensor of `shape` holding `values` in row-major order.
pub fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    assert_eq!(values.len(), shape.iter().product::<usize>(), "values for a tensor of shape {shape:?}");
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(Shape::from(shape.to_vec())), DType::F32)
}

/// A tensor of `like`'s shape holding `values` in row-major order.
pub fn tensor_like(values: Vec<f32>, like: &FlexTensor) -> FlexTensor {
    let shape = like.layout().shape().clone();
    assert_eq!(values.len(), shape.num_elements(), "values for a tensor of shape {shape:?}");
    FlexTensor::new(Bytes::from_elems(values), Layout::contiguous(shape), DType::F32)
}

/// `t` as a tensor whose buffer holds exactly its values in row-major order, so the buffer can be
/// written in place (without a copy when `t` already is one and owns its buffer alone).
pub fn owned_exact(t: FlexTensor) -> FlexTensor {
    let n = t.layout().shape().num_elements();
    let exact = t.layout().contiguous_offsets() == Some((0, n)) && t.storage::<f32>().len() == n;
    if exact { t } else { tensor_like(f32s(&contiguous(&t)).to_vec(), &t) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::backend::ops::FloatTensorOps;
    use burn::tensor::Slice;

    #[test]
    fn a_row_slice_is_read_in_place_and_a_transpose_is_copied_in_order() {
        let whole = tensor((0..12).map(|v| v as f32).collect(), [4, 3]);
        let rows = Flex::float_slice(whole.clone(), &[Slice::new(1, Some(3), 1), Slice::new(0, None, 1)]);
        let shared = contiguous(&rows);
        assert_eq!(f32s(&shared), &[3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert!(std::ptr::eq(&f32s(&shared)[0], &f32s(&whole)[3]), "the slice's values, not a copy");
        let transposed = contiguous(&Flex::float_swap_dims(whole, 0, 1));
        assert_eq!(f32s(&transposed), &[0.0, 3.0, 6.0, 9.0, 1.0, 4.0, 7.0, 10.0, 2.0, 5.0, 8.0, 11.0]);
    }
}
