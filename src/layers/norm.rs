//! Normalization layers loaded under the names checkpoints actually use.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Module, Shape, Tensor};
use candle_nn::{LayerNorm, VarBuilder};

use crate::layers::cpu_buffer::par_filled;
use crate::layers::vector_math::{add_layer_norm_row, rms_norm_row};

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
/// The mean square is accumulated in f32 whatever the input dtype, as the reference does (here
/// in f32 on the CPU, in candle's kernel elsewhere).
pub(crate) fn rms_norm(size: usize, eps: f64, vb: VarBuilder) -> candle_core::Result<RmsNorm> {
    RmsNorm::new(vb.get(size, "weight")?, eps)
}

/// An RMS norm: on the CPU in f32 one vectorized pass per row, in tasks of many rows (candle's
/// kernel sums each row in scalar order, divides every element, and makes each row of Qwen3's
/// per-head q/k norms, 128 floats, a task of its own); elsewhere candle's.
pub(crate) struct RmsNorm {
    norm: candle_nn::RmsNorm,
    cpu: Option<RmsNormF32>,
}

impl RmsNorm {
    /// The norm of this weight.
    pub(crate) fn new(weight: Tensor, eps: f64) -> candle_core::Result<Self> {
        let cpu = (weight.device().is_cpu() && weight.dtype() == DType::F32)
            .then(|| weight.to_vec1::<f32>())
            .transpose()?
            .map(|weight| RmsNormF32 {
                weight,
                eps: eps as f32,
            });
        Ok(Self {
            norm: candle_nn::RmsNorm::new(weight, eps),
            cpu,
        })
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.cpu {
            Some(op) if x.device().is_cpu() && x.dtype() == DType::F32 => {
                x.contiguous()?.apply_op1_no_bwd(op)
            }
            _ => self.norm.forward(x),
        }
    }
}

struct RmsNormF32 {
    weight: Vec<f32>,
    eps: f32,
}

impl CustomOp1 for RmsNormF32 {
    fn name(&self) -> &'static str {
        "rms-norm-f32"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let width = self.weight.len();
        let (CpuStorage::F32(data), Some((start, end))) = (storage, layout.contiguous_offsets())
        else {
            candle_core::bail!("{} takes a contiguous f32 input", self.name());
        };
        let x = &data[start..end];
        if layout.shape().dims().last() != Some(&width) || width == 0 {
            candle_core::bail!(
                "{}: rows of {:?} against a norm of width {width}",
                self.name(),
                layout.shape()
            );
        }
        let rows_per_task = (RMS_ELEMENTS_PER_TASK / width).max(1);
        let out = par_filled(x.len(), width * rows_per_task, |start, out| {
            let x = &x[start..start + out.len()];
            for (o, x) in out.chunks_exact_mut(width).zip(x.chunks_exact(width)) {
                rms_norm_row(o, x, &self.weight, self.eps);
            }
        });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// Floats per parallel task of the RMS norm.
const RMS_ELEMENTS_PER_TASK: usize = 16 * 1024;

/// `norm(x + residual)`, the post-norm residual step of BERT-style blocks. On the CPU in f32 the
/// sum and the norm are one pass over each row (no summed tensor is written and read back);
/// elsewhere candle's add and layer norm.
pub(crate) fn add_layer_norm(
    norm: &LayerNorm,
    x: &Tensor,
    residual: &Tensor,
) -> candle_core::Result<Tensor> {
    let fused = x.device().is_cpu()
        && x.dtype() == DType::F32
        && residual.dtype() == DType::F32
        && x.shape() == residual.shape()
        && norm.remove_mean()
        && norm.bias().is_some();
    match norm.bias() {
        Some(bias) if fused => {
            let op = AddLayerNorm {
                weight: norm.weight().to_dtype(DType::F32)?.to_vec1()?,
                bias: bias.to_dtype(DType::F32)?.to_vec1()?,
                eps: norm.eps() as f32,
            };
            x.contiguous()?
                .apply_op2_no_bwd(&residual.contiguous()?, &op)
        }
        _ => norm.forward(&(x + residual)?),
    }
}

struct AddLayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 32;

impl CustomOp2 for AddLayerNorm {
    fn name(&self) -> &'static str {
        "add-layer-norm-f32"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        residual: &CpuStorage,
        residual_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(x_data), Some((xs, xe))) = (x, x_layout.contiguous_offsets()) else {
            candle_core::bail!("add-layer-norm-f32 takes a contiguous f32 input");
        };
        let (CpuStorage::F32(r_data), Some((rs, re))) =
            (residual, residual_layout.contiguous_offsets())
        else {
            candle_core::bail!("add-layer-norm-f32 takes a contiguous f32 residual");
        };
        let width = self.weight.len();
        let (x_data, r_data) = (&x_data[xs..xe], &r_data[rs..re]);
        if x_layout.shape().dims().last() != Some(&width) || self.bias.len() != width {
            candle_core::bail!(
                "add-layer-norm-f32: rows of {:?} against a norm of width {width}",
                x_layout.shape()
            );
        }
        if x_data.len() != r_data.len() || width == 0 || x_data.len() % width != 0 {
            candle_core::bail!(
                "add-layer-norm-f32: an input of {} against a residual of {}, rows of {width}",
                x_data.len(),
                r_data.len()
            );
        }
        let out = par_filled(x_data.len(), width * ROWS_PER_TASK, |start, out| {
            let end = start + out.len();
            for ((o, x), r) in out
                .chunks_exact_mut(width)
                .zip(x_data[start..end].chunks_exact(width))
                .zip(r_data[start..end].chunks_exact(width))
            {
                add_layer_norm_row(o, x, r, &self.weight, &self.bias, self.eps);
            }
        });
        Ok((CpuStorage::F32(out), x_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::test_support::max_abs_diff;
    use candle_core::Device;

    #[test]
    fn rms_norm_matches_the_plain_computation() {
        let dev = Device::Cpu;
        for width in [128, 67] {
            let weight = Tensor::randn(1f32, 0.2, width, &dev).unwrap();
            let vb = VarBuilder::from_tensors(
                [("weight".to_string(), weight.clone())]
                    .into_iter()
                    .collect(),
                DType::F32,
                &dev,
            );
            let norm = rms_norm(width, 1e-6, vb).unwrap();
            let x = (Tensor::randn(0f32, 2.0, (2, 37, width), &dev).unwrap() + 0.5).unwrap();
            let ours = norm.forward(&x).unwrap();
            // In f64: x / sqrt(mean(x²) + eps) · weight.
            let x64 = x.to_dtype(DType::F64).unwrap();
            let rms = (x64.sqr().unwrap().mean_keepdim(2).unwrap() + 1e-6)
                .unwrap()
                .sqrt()
                .unwrap();
            let plain = x64
                .broadcast_div(&rms)
                .unwrap()
                .broadcast_mul(&weight.to_dtype(DType::F64).unwrap())
                .unwrap();
            let diff = max_abs_diff(&ours, &plain);
            assert!(diff < 1e-5, "width {width}: {diff}");
        }
    }

    #[test]
    fn fused_add_norm_matches_add_then_norm() {
        let dev = Device::Cpu;
        let width = 67;
        let weight = Tensor::randn(1f32, 0.2, width, &dev).unwrap();
        let bias = Tensor::randn(0f32, 0.2, width, &dev).unwrap();
        let norm = LayerNorm::new(weight, bias, 1e-12);
        // Rows with an offset mean, as hidden states have.
        let x = (Tensor::randn(0f32, 2.0, (3, 41, width), &dev).unwrap() + 5.0).unwrap();
        let residual = Tensor::randn(0f32, 1.0, (3, 41, width), &dev).unwrap();
        let fused = add_layer_norm(&norm, &x, &residual).unwrap();
        // The plain computation in f64.
        let sum =
            (x.to_dtype(DType::F64).unwrap() + residual.to_dtype(DType::F64).unwrap()).unwrap();
        let mean = sum.mean_keepdim(2).unwrap();
        let centered = sum.broadcast_sub(&mean).unwrap();
        let var = centered.sqr().unwrap().mean_keepdim(2).unwrap();
        let plain = centered
            .broadcast_div(&(var + 1e-12).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(&norm.weight().to_dtype(DType::F64).unwrap())
            .unwrap()
            .broadcast_add(&norm.bias().unwrap().to_dtype(DType::F64).unwrap())
            .unwrap();
        let diff = max_abs_diff(&fused, &plain);
        assert!(diff < 1e-5, "{diff}");
    }
}
