//! Raw f32 buffers of flex tensors, for the operations written by hand for flex (the conv block,
//! the sparse-input layer): in as a contiguous slice, out as a new tensor.

use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::{DType, Shape};
use burn::tensor::Bytes;

/// `t` in row-major order (shared, not copied, where it already is).
pub fn contiguous(t: &FlexTensor) -> FlexTensor {
    assert_eq!(t.dtype(), DType::F32, "hand-written flex operations take f32 tensors only");
    t.to_contiguous()
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
