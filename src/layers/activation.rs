//! Activations shared by the models, with the CPU kernels that replace candle's where candle's
//! are slow.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};
use candle_nn::Activation;

use crate::layers::cpu_buffer::par_copied;
use crate::layers::vector_math::{gelu_erf_in_place, swiglu_in_place};

/// SwiGLU's gating: `silu(gate) * up`, element-wise (Qwen3's `gate_proj`/`up_proj`, NomicBert's
/// `fc12`/`fc11`). On the CPU in f32 one vectorized pass; elsewhere candle's two ops.
pub(crate) fn swiglu(gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    let fused = gate.device().is_cpu()
        && gate.dtype() == DType::F32
        && up.dtype() == DType::F32
        && gate.shape() == up.shape();
    if fused {
        gate.contiguous()?
            .apply_op2_no_bwd(&up.contiguous()?, &SwiGlu)
    } else {
        candle_nn::ops::silu(gate)? * up
    }
}

/// `silu(gate) · up` on f32 CPU tensors of one shape.
struct SwiGlu;

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "swiglu-f32"
    }

    fn cpu_fwd(
        &self,
        gate: &CpuStorage,
        gate_layout: &Layout,
        up: &CpuStorage,
        up_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(gate), Some((gs, ge)), CpuStorage::F32(up), Some((us, ue))) = (
            gate,
            gate_layout.contiguous_offsets(),
            up,
            up_layout.contiguous_offsets(),
        ) else {
            candle_core::bail!("swiglu-f32 takes contiguous f32 tensors");
        };
        let up = &up[us..ue];
        let out = par_copied(&gate[gs..ge], GELU_CHUNK, |start, gate| {
            swiglu_in_place(gate, &up[start..start + gate.len()])
        });
        Ok((CpuStorage::F32(out), gate_layout.shape().clone()))
    }
}

/// A config's activation applied to `x`. The exact (erf) GELU of BERT models runs as a
/// vectorized kernel on the CPU in f32 (candle's calls a scalar `erf` per element, about a tenth
/// of all-MiniLM's CPU time); everything else is candle's.
pub(crate) fn activate(activation: Activation, x: &Tensor) -> candle_core::Result<Tensor> {
    match activation {
        Activation::Gelu if x.device().is_cpu() && x.dtype() == DType::F32 => {
            x.contiguous()?.apply_op1_no_bwd(&GeluErf)
        }
        other => x.apply(&other),
    }
}

/// The exact GELU, `0.5 · x · (1 + erf(x / √2))`, on f32 CPU tensors.
struct GeluErf;

/// Elements per parallel task (GELU and SwiGLU): large enough to amortize the task, small enough to stay in L2.
const GELU_CHUNK: usize = 16 * 1024;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "gelu-erf-f32"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("gelu-erf-f32 takes f32, not {:?}", storage.dtype());
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("gelu-erf-f32 takes a contiguous tensor");
        };
        let out = par_copied(&data[start..end], GELU_CHUNK, |_, xs| gelu_erf_in_place(xs));
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::test_support::max_abs_diff;
    use candle_core::Device;

    #[test]
    fn swiglu_kernel_matches_silu_times_up() {
        let dev = Device::Cpu;
        let gate = Tensor::randn(0f32, 4.0, (2, 19, 1031), &dev).unwrap();
        let up = Tensor::randn(0f32, 1.0, (2, 19, 1031), &dev).unwrap();
        let ours = swiglu(&gate, &up).unwrap();
        // silu(g) · up in f64.
        let (g, u) = (
            gate.to_dtype(DType::F64).unwrap(),
            up.to_dtype(DType::F64).unwrap(),
        );
        let plain = ((&g / (g.neg().unwrap().exp().unwrap() + 1.0).unwrap()).unwrap() * u).unwrap();
        let diff = max_abs_diff(&ours, &plain);
        assert!(diff < 1e-5, "{diff}");
    }

    #[test]
    fn gelu_kernel_matches_candles_exact_gelu() {
        let x = Tensor::randn(0f32, 3.0, (3, 17, 1537), &Device::Cpu).unwrap();
        let ours = activate(Activation::Gelu, &x).unwrap();
        // candle's exact GELU, computed in f64 so that its own rounding does not count.
        let plain = x
            .to_dtype(DType::F64)
            .unwrap()
            .gelu_erf()
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        let diff = max_abs_diff(&ours, &plain);
        assert!(diff < 5e-6, "{diff}");
        // A strided view goes through the same kernel.
        let t = x.transpose(1, 2).unwrap();
        let ours = activate(Activation::Gelu, &t).unwrap();
        let plain = t.gelu_erf().unwrap();
        assert!(max_abs_diff(&ours, &plain) < 5e-6);
    }
}
