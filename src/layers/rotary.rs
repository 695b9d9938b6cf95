//! Rotary position embeddings (RoPE) in the "rotate half" layout (GPT-NeoX, Llama, Qwen, nomic's
//! non-interleaved setting), with optional dynamic NTK scaling decided per sequence.
//!
//! Angles and the rotation are computed in f32 whatever the compute dtype: in bf16 a position
//! like 1995 rounds to 2000 and neighbouring tokens would share an angle.

use candle_core::{DType, Device, Tensor, D};

use crate::layers::cpu_rotary;

/// Dynamic NTK scaling: a sequence longer than the trained positions gets a larger rotary base,
/// `base · (factor · len / trained − (factor − 1))^(dim / (dim − 2))`, as nomic's and
/// transformers' dynamic rotary embeddings compute it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DynamicNtk {
    /// Positions the model was trained on; sequences up to this length are not scaled.
    pub trained_positions: usize,
    /// The scaling factor (nomic's `rotary_scaling_factor`).
    pub factor: f64,
}

/// A rotary embedding over the first `dim` components of each head.
#[derive(Debug, Clone)]
pub(crate) struct Rotary {
    dim: usize,
    base: f64,
    ntk: Option<DynamicNtk>,
}

/// The cos/sin tables of one batch, `(L, dim/2)` when every row shares them or `(B, L, dim/2)`
/// when dynamic NTK gives rows their own base, in f32.
pub(crate) struct RotaryTables {
    cos: Tensor,
    sin: Tensor,
    dim: usize,
}

impl Rotary {
    /// `dim` rotated components per head (even), rotary `base` (`rope_theta`).
    pub(crate) fn new(dim: usize, base: f64, ntk: Option<DynamicNtk>) -> candle_core::Result<Self> {
        if dim == 0 || !dim.is_multiple_of(2) || (ntk.is_some() && dim <= 2) {
            candle_core::bail!("rotary dimension {dim} must be even and larger than 2");
        }
        Ok(Self { dim, base, ntk })
    }

    /// The base a sequence of `len` tokens is rotated with.
    fn base_for(&self, len: usize) -> f64 {
        match self.ntk {
            Some(ntk) if len > ntk.trained_positions => {
                let stretch =
                    ntk.factor * len as f64 / ntk.trained_positions as f64 - (ntk.factor - 1.0);
                self.base * stretch.powf(self.dim as f64 / (self.dim as f64 - 2.0))
            }
            _ => self.base,
        }
    }

    /// Inverse frequencies `1 / base^(2i / dim)`, in f32 the way PyTorch computes them, so the
    /// angles round like the reference's.
    fn inv_freq(&self, base: f64) -> Vec<f32> {
        let base = base as f32;
        (0..self.dim)
            .step_by(2)
            .map(|i| 1.0 / base.powf(i as f32 / self.dim as f32))
            .collect()
    }

    /// Tables for a right-padded batch of sequences with these lengths, padded to `seq_len`.
    ///
    /// With dynamic NTK each row's base comes from its own length, never from the batch's
    /// longest row, so a text's vector does not depend on what it is batched with.
    pub(crate) fn tables(
        &self,
        lengths: &[usize],
        seq_len: usize,
        device: &Device,
    ) -> candle_core::Result<RotaryTables> {
        let half = self.dim / 2;
        let positions = Tensor::arange(0u32, seq_len as u32, device)?.to_dtype(DType::F32)?;
        let bases: Vec<f64> = lengths.iter().map(|&len| self.base_for(len)).collect();
        let shared = bases.iter().all(|&b| b == self.base);
        let angles = if shared {
            let inv_freq = Tensor::from_vec(self.inv_freq(self.base), (1, half), device)?;
            // (L, 1) x (1, dim/2) -> (L, dim/2)
            positions.unsqueeze(1)?.broadcast_mul(&inv_freq)?
        } else {
            let inv_freq: Vec<f32> = bases.iter().flat_map(|&b| self.inv_freq(b)).collect();
            let inv_freq = Tensor::from_vec(inv_freq, (lengths.len(), 1, half), device)?;
            // (1, L, 1) x (B, 1, dim/2) -> (B, L, dim/2)
            positions
                .reshape((1, seq_len, 1))?
                .broadcast_mul(&inv_freq)?
        };
        Ok(RotaryTables {
            cos: angles.cos()?.contiguous()?,
            sin: angles.sin()?.contiguous()?,
            dim: self.dim,
        })
    }
}

impl RotaryTables {
    /// Rotates `x` of shape `(B, H, L, D)`: the first `dim` components of each head, the rest
    /// untouched (partial rotary). The result has `x`'s dtype.
    pub(crate) fn apply(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if x.device().is_cpu() && x.dtype() == DType::F32 && x.stride().last() == Some(&1) {
            return cpu_rotary::rotate(x, &self.cos, &self.sin);
        }
        let dtype = x.dtype();
        let x = x.to_dtype(DType::F32)?;
        let head_dim = x.dim(D::Minus1)?;
        let rotated = if self.dim == head_dim {
            candle_nn::rotary_emb::rope(&x.contiguous()?, &self.cos, &self.sin)?
        } else {
            let rot = x.narrow(D::Minus1, 0, self.dim)?.contiguous()?;
            let pass = x.narrow(D::Minus1, self.dim, head_dim - self.dim)?;
            let rot = candle_nn::rotary_emb::rope(&rot, &self.cos, &self.sin)?;
            Tensor::cat(&[&rot, &pass], D::Minus1)?
        };
        rotated.to_dtype(dtype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::test_support::max_abs_diff;

    /// The textbook rotation of one head vector at one position.
    fn rotate(x: &[f32], pos: usize, base: f64) -> Vec<f32> {
        let half = x.len() / 2;
        let mut out = x.to_vec();
        for i in 0..half {
            let angle = pos as f64 / base.powf(2.0 * i as f64 / x.len() as f64);
            let (s, c) = angle.sin_cos();
            out[i] = (x[i] as f64 * c - x[i + half] as f64 * s) as f32;
            out[i + half] = (x[i + half] as f64 * c + x[i] as f64 * s) as f32;
        }
        out
    }

    #[test]
    fn matches_the_textbook_rotation() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (1, 1, 5, 4), &dev).unwrap();
        let rotary = Rotary::new(4, 100.0, None).unwrap();
        let out = rotary.tables(&[5], 5, &dev).unwrap().apply(&x).unwrap();
        let x = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let out = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for pos in 0..5 {
            let want = rotate(&x[pos * 4..pos * 4 + 4], pos, 100.0);
            for (a, b) in out[pos * 4..pos * 4 + 4].iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "{pos}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn dynamic_ntk_is_per_sequence() {
        let dev = Device::Cpu;
        let ntk = DynamicNtk {
            trained_positions: 4,
            factor: 2.0,
        };
        let rotary = Rotary::new(4, 1000.0, Some(ntk)).unwrap();
        assert_eq!(rotary.base_for(4), 1000.0);
        // len 8: 1000 * (2 * 8 / 4 - 1)^(4 / 2) = 9000
        assert!((rotary.base_for(8) - 9000.0).abs() < 1e-9);

        // A short row keeps the plain base even beside a long one.
        let x = Tensor::randn(0f32, 1.0, (2, 1, 8, 4), &dev).unwrap();
        let mixed = rotary.tables(&[8, 3], 8, &dev).unwrap().apply(&x).unwrap();
        let short_alone = rotary
            .tables(&[3], 8, &dev)
            .unwrap()
            .apply(&x.narrow(0, 1, 1).unwrap())
            .unwrap();
        let long_alone = rotary
            .tables(&[8], 8, &dev)
            .unwrap()
            .apply(&x.narrow(0, 0, 1).unwrap())
            .unwrap();
        let together = Tensor::cat(&[long_alone, short_alone], 0).unwrap();
        let diff = max_abs_diff(&mixed, &together);
        assert_eq!(diff, 0.0);
    }

    #[test]
    fn partial_rotary_leaves_the_tail_alone() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (1, 2, 3, 6), &dev).unwrap();
        let rotary = Rotary::new(4, 10.0, None).unwrap();
        let out = rotary.tables(&[3], 3, &dev).unwrap().apply(&x).unwrap();
        let tail = |t: &Tensor| {
            t.narrow(D::Minus1, 4, 2)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_eq!(tail(&out), tail(&x));
    }
}
