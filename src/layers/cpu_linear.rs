//! The dense linear layer on the CPU: `y = x Wᵀ + b` with `W` kept transposed, and in f32 one
//! kernel that runs the gemm into an output it does not zero first and adds the bias in place.
//!
//! The gemm kernel candle calls computes a row-major product as its transpose and wants that
//! problem's left operand, `Wᵀ` read row by row, with unit stride down its columns. A weight
//! stored as the checkpoint has it, `(out, in)`, is therefore repacked on every call (about 4% of
//! all-MiniLM's CPU time); stored once as a contiguous `(in, out)` matrix it is read as it lies,
//! and the wide Qwen3-0.6B projections run up to 1.6x faster. candle's matmul also zeroes its
//! output on the calling thread before the gemm overwrites it, a serial pass while the other
//! cores wait; and its broadcast add of the bias allocates a second output. Other dtypes
//! (f16/bf16 on the CPU) keep candle's matmul and add, on the transposed weight.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::layers::cpu_buffer::par_filled;

/// Rows of the output per task when the bias is added: enough work to outweigh the hand-off.
const ROWS_PER_TASK: usize = 64;

/// A dense layer whose weight lives on the CPU.
pub(crate) struct CpuLinear {
    /// `Wᵀ`, `(in, out)`, contiguous.
    weight_t: Tensor,
    bias: Option<Tensor>,
    /// The f32 kernel, when weight and bias are f32.
    kernel: Option<LinearF32>,
}

impl CpuLinear {
    /// The layer of `weight (out, in)` and `bias (out)`, both on the CPU.
    pub(crate) fn new(weight: &Tensor, bias: Option<Tensor>) -> candle_core::Result<Self> {
        let all_f32 =
            weight.dtype() == DType::F32 && bias.as_ref().is_none_or(|b| b.dtype() == DType::F32);
        let kernel = all_f32
            .then(|| -> candle_core::Result<LinearF32> {
                Ok(LinearF32 {
                    bias: bias
                        .as_ref()
                        .map(|b| b.to_vec1())
                        .transpose()?
                        .map(Arc::from),
                })
            })
            .transpose()?;
        let weight_t = if weight.dtype() == DType::F32 {
            weight.contiguous()?.apply_op1_no_bwd(&TransposeF32)?
        } else {
            weight.t()?.contiguous()?
        };
        Ok(Self {
            weight_t,
            bias,
            kernel,
        })
    }

    /// `x Wᵀ + b` for `x (..., in)`.
    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (in_features, out_features) = self.weight_t.dims2()?;
        let mut dims = x.dims().to_vec();
        if dims.last() != Some(&in_features) {
            candle_core::bail!(
                "linear layer of {in_features} inputs given a tensor of shape {:?}",
                x.dims()
            );
        }
        let rows = x.elem_count() / in_features.max(1);
        let x = x.reshape((rows, in_features))?;
        let y = match &self.kernel {
            Some(kernel) if x.dtype() == DType::F32 => {
                x.contiguous()?.apply_op2_no_bwd(&self.weight_t, kernel)?
            }
            _ => self.composed(&x)?,
        };
        if let Some(last) = dims.last_mut() {
            *last = out_features;
        }
        y.reshape(dims)
    }

    /// The same through candle's matmul and broadcast add, for other dtypes.
    fn composed(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = x.matmul(&self.weight_t)?;
        match &self.bias {
            Some(bias) => y.broadcast_add(bias),
            None => Ok(y),
        }
    }
}

/// The transpose of a contiguous f32 matrix, made in parallel blocks of output rows: each
/// block reads whole cache lines of the input (candle's strided copy goes one element at a
/// time on one thread, which made loading Qwen3-0.6B 1.6 s slower).
struct TransposeF32;

/// Output rows per task of the transpose: a 64-byte line of each input row.
const TRANSPOSE_ROWS: usize = 16;

impl CustomOp1 for TransposeF32 {
    fn name(&self) -> &'static str {
        "transpose-f32"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(data), Some((start, end)), Ok((rows, cols))) =
            (storage, layout.contiguous_offsets(), layout.shape().dims2())
        else {
            candle_core::bail!("{} takes a contiguous f32 matrix", self.name());
        };
        let w = &data[start..end];
        // out (cols, rows): out[r][c] = w[c][r].
        let out = par_filled(rows * cols, rows.max(1) * TRANSPOSE_ROWS, |first, block| {
            let (r0, n) = (first / rows.max(1), block.len() / rows.max(1));
            for c in 0..rows {
                let line = &w[c * cols + r0..c * cols + r0 + n];
                for (i, &v) in line.iter().enumerate() {
                    block[i * rows + c] = v;
                }
            }
        });
        Ok((CpuStorage::F32(out), Shape::from_dims(&[cols, rows])))
    }
}

/// `x Wᵀ + b` for contiguous f32 `x (rows, in)` and `Wᵀ (in, out)`.
struct LinearF32 {
    bias: Option<Arc<[f32]>>,
}

impl CustomOp2 for LinearF32 {
    fn name(&self) -> &'static str {
        "linear-f32"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        w: &CpuStorage,
        w_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (
            CpuStorage::F32(x),
            Some((xs, xe)),
            CpuStorage::F32(w),
            Some((ws, we)),
            Ok((rows, k)),
            Ok((wk, n)),
        ) = (
            x,
            x_layout.contiguous_offsets(),
            w,
            w_layout.contiguous_offsets(),
            x_layout.shape().dims2(),
            w_layout.shape().dims2(),
        )
        else {
            candle_core::bail!(
                "{} takes a contiguous f32 matrix and weight, not {:?} and {:?}",
                self.name(),
                x_layout.shape(),
                w_layout.shape()
            );
        };
        if wk != k || self.bias.as_ref().is_some_and(|b| b.len() != n) {
            candle_core::bail!(
                "{}: {rows}x{k} input, {wk}x{n} weight, bias of {:?}",
                self.name(),
                self.bias.as_ref().map(|b| b.len())
            );
        }
        let (x, w) = (&x[xs..xe], &w[ws..we]);
        let len = rows * n;
        let mut out: Vec<f32> = Vec::with_capacity(len);
        if k == 0 || len == 0 {
            out.resize(len, 0.0);
        } else {
            let threads = candle_core::utils::get_num_threads();
            // SAFETY: x is rows×k and w is k×n, both row-major and contiguous (checked above);
            // out has room for rows×n. With read_dst false the gemm writes every element of
            // dst and reads none, so the length is set only after it has run.
            unsafe {
                gemm::gemm(
                    rows,
                    n,
                    k,
                    out.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    x.as_ptr(),
                    1,
                    k as isize,
                    w.as_ptr(),
                    1,
                    n as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    if threads > 1 {
                        gemm::Parallelism::Rayon(threads)
                    } else {
                        gemm::Parallelism::None
                    },
                );
                out.set_len(len);
            }
        }
        if let Some(bias) = &self.bias {
            if n > 0 {
                out.par_chunks_mut(n * ROWS_PER_TASK)
                    .for_each(|rows| add_to_rows(rows, bias));
            }
        }
        Ok((CpuStorage::F32(out), Shape::from_dims(&[rows, n])))
    }
}

/// `rows[i] += bias[i % bias.len()]`; the compiler vectorizes the inner zip.
fn add_to_rows(rows: &mut [f32], bias: &[f32]) {
    for row in rows.chunks_exact_mut(bias.len()) {
        for (y, b) in row.iter_mut().zip(bias) {
            *y += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Module};

    use super::*;
    use crate::layers::test_support::max_abs_diff;

    /// The transposed layer gives candle's `Linear` on the same tensors, for 2-d and 3-d inputs,
    /// with and without a bias, over widths that are not multiples of the vector width.
    #[test]
    fn matches_the_plain_layer() {
        let device = Device::Cpu;
        for (inputs, outputs, bias) in [(7, 5, true), (64, 33, false), (384, 1536, true)] {
            let w = Tensor::randn(0f32, 0.1, (outputs, inputs), &device).unwrap();
            let b = Tensor::randn(0f32, 0.1, outputs, &device).unwrap();
            let b = bias.then_some(b);
            let plain = candle_nn::Linear::new(w.clone(), b.clone());
            let fast = CpuLinear::new(&w, b).unwrap();
            for shape in [vec![3, inputs], vec![2, 9, inputs]] {
                let x = Tensor::randn(0f32, 1.0, shape, &device).unwrap();
                let (got, want) = (fast.forward(&x).unwrap(), plain.forward(&x).unwrap());
                assert_eq!(got.dims(), want.dims());
                let diff = max_abs_diff(&got, &want);
                assert!(diff < 1e-4, "{inputs}->{outputs}: {diff}");
            }
        }
    }

    /// Half precision on the CPU takes candle's matmul on the transposed weight.
    #[test]
    fn half_precision_matches_the_plain_layer() {
        let device = Device::Cpu;
        for dtype in [DType::F16, DType::BF16] {
            let w = Tensor::randn(0f32, 0.1, (40, 24), &device).unwrap();
            let b = Tensor::randn(0f32, 0.1, 40, &device).unwrap();
            let x = Tensor::randn(0f32, 1.0, (2, 5, 24), &device).unwrap();
            let (w, b, x) = (
                w.to_dtype(dtype).unwrap(),
                b.to_dtype(dtype).unwrap(),
                x.to_dtype(dtype).unwrap(),
            );
            let got = CpuLinear::new(&w, Some(b.clone()))
                .unwrap()
                .forward(&x)
                .unwrap();
            let want = candle_nn::Linear::new(w, Some(b)).forward(&x).unwrap();
            assert_eq!(got.dtype(), dtype);
            let diff = max_abs_diff(&got, &want);
            assert!(diff < 2e-2, "{dtype:?}: {diff}");
        }
    }

    #[test]
    fn the_wrong_width_is_refused() {
        let device = Device::Cpu;
        let w = Tensor::zeros((4, 3), DType::F32, &device).unwrap();
        let layer = CpuLinear::new(&w, None).unwrap();
        let x = Tensor::zeros((2, 5), DType::F32, &device).unwrap();
        assert!(layer.forward(&x).is_err());
    }
}
