//! Activations shared by the models; the place where a fused kernel would go.

use candle_core::Tensor;

/// SwiGLU's gating: `silu(gate) * up`, element-wise (Qwen3's `gate_proj`/`up_proj`, NomicBert's
/// `fc12`/`fc11`).
pub(crate) fn swiglu(gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    candle_nn::ops::silu(gate)? * up
}
