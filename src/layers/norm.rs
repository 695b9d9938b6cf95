//! Normalization layers loaded under the names checkpoints actually use.

use candle_nn::{LayerNorm, VarBuilder};

/// A layer norm stored as `weight`/`bias`, or `gamma`/`beta` in checkpoints converted from
/// TensorFlow BERT.
pub(crate) fn layer_norm(size: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<LayerNorm> {
    let (w, b) = if vb.contains_tensor("weight") {
        ("weight", "bias")
    } else {
        ("gamma", "beta")
    };
    Ok(LayerNorm::new(vb.get(size, w)?, vb.get(size, b)?, eps))
}
