//! What the layer tests share.

use candle_core::{DType, Tensor};

/// The largest absolute difference between two tensors of one shape, computed in f64.
pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    let to_f64 = |t: &Tensor| t.to_dtype(DType::F64).expect("to f64");
    (to_f64(a) - to_f64(b))
        .and_then(|d| d.abs())
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_scalar::<f64>())
        .expect("difference")
}
