//! The CPU kernels of the shared layers beside the candle compositions they replace, reachable
//! from `benches/kernels.rs`. Not part of the supported API: names and signatures may change in
//! any release.

use candle_core::{Result, Tensor};
use candle_nn::{Activation, LayerNorm};

use crate::layers::{activation, attention, cpu_rotary, linear, norm};

/// A dense layer `x Wᵀ + b` as the models build it (on the CPU: the weight kept transposed, and
/// in f32 the gemm and bias as one op).
pub struct Linear(linear::Linear);

impl Linear {
    /// The layer of `weight (out, in)` and `bias (out)`.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        linear::Linear::new(weight, bias).map(Self)
    }

    /// `x Wᵀ + b` for `x (..., in)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_core::Module::forward(&self.0, x)
    }
}

/// The exact GELU as the models run it (the vectorized kernel on f32 CPU tensors).
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    activation::activate(Activation::Gelu, x)
}

/// SwiGLU's `silu(gate) · up` as the models run it (one vectorized pass on f32 CPU tensors).
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    activation::swiglu(gate, up)
}

/// `norm(x + residual)` as the models run it (one fused pass on f32 CPU tensors).
pub fn add_layer_norm(norm: &LayerNorm, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
    norm::add_layer_norm(norm, x, residual)
}

/// Attention over `(B, H, L, D)` heads of right-padded rows with these lengths, as the models
/// run it (the fused kernel on f32 CPU tensors).
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    lengths: &[usize],
    causal: bool,
) -> Result<Tensor> {
    let (mask, scale) = mask_and_scale(q, lengths, causal)?;
    attention::scaled_dot_product(q, k, v, &mask, scale)
}

/// The mask of right-padded rows with these lengths and the usual `1/√D` scale.
fn mask_and_scale(
    q: &Tensor,
    lengths: &[usize],
    causal: bool,
) -> Result<(attention::AttentionMask, f64)> {
    let mask = attention::AttentionMask::new(lengths, causal, q.device())?;
    Ok((mask, 1.0 / (q.dim(3)? as f64).sqrt()))
}

/// The same attention composed of candle ops over blocks of queries (the path CUDA and half
/// precision take), for comparison.
pub fn attention_composed(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    lengths: &[usize],
    causal: bool,
) -> Result<Tensor> {
    let (mask, scale) = mask_and_scale(q, lengths, causal)?;
    attention::composed(q, k, v, &mask, scale)
}

/// The rotary embedding of `x (B, H, L, D)` (any strides with a unit last one) by `(L, D/2)`
/// tables, as the models run it on f32 CPU tensors: one op into a contiguous result.
pub fn rotary(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    cpu_rotary::rotate(x, cos, sin)
}

/// The same as candle's `rope` after a contiguous copy, for comparison.
pub fn rotary_composed(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    candle_nn::rotary_emb::rope(&x.contiguous()?, cos, sin)
}

/// An RMS norm as the models run it (one vectorized pass per row, many rows per task, on f32
/// CPU tensors).
pub struct RmsNorm(norm::RmsNorm);

impl RmsNorm {
    /// The norm of this weight.
    pub fn new(weight: Tensor, eps: f64) -> Result<Self> {
        norm::RmsNorm::new(weight, eps).map(Self)
    }

    /// `x / sqrt(mean(x²) + eps) · weight` over the last dimension.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_core::Module::forward(&self.0, x)
    }
}
