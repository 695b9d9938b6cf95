//! Normalization layers loaded under the names checkpoints actually use.

use candle_nn::{LayerNorm, RmsNorm, VarBuilder};

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

/// An RMS norm (`x / sqrt(mean(x²) + eps) · weight`, no mean subtraction, no bias) as Qwen3 uses it.
/// candle's kernel accumulates the mean square in f32 whatever the input dtype, as the reference
/// does; a non-contiguous input takes a slower path, so callers pass contiguous rows.
pub(crate) fn rms_norm(size: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<RmsNorm> {
    candle_nn::rms_norm(size, eps, vb)
}
