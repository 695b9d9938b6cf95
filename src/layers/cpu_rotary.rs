//! The rotary embedding on the CPU in f32 as one parallel op: it reads the head views of a
//! projection where they lie (strided, as `Wqkv`'s q/k or a reshaped projection give them),
//! rotates the first `dim` components of each head vector and copies the rest, into a new
//! contiguous `(B, H, L, D)` tensor. candle's `rope` wants a contiguous input, and making the
//! view contiguous is a copy on the calling thread while the other cores wait (3% of
//! nomic-embed's samples, twice that of its wall time on two cores).

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use crate::layers::cpu_buffer::par_filled;

/// Head vectors per parallel task.
const VECTORS_PER_TASK: usize = 64;

/// `x (B, H, L, D)` f32 with a unit last stride, rotated over its first `2 · half` components by
/// `cos`/`sin`, contiguous `(L, half)` or `(B, L, half)` f32 tables.
pub(crate) fn rotate(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    x.apply_op3_no_bwd(cos, sin, &RotateHalf)
}

struct RotateHalf;

impl CustomOp3 for RotateHalf {
    fn name(&self) -> &'static str {
        "rotary-f32"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        cos: &CpuStorage,
        cos_layout: &Layout,
        sin: &CpuStorage,
        sin_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, h, l, d) = x_layout.shape().dims4()?;
        let stride: [usize; 4] = x_layout
            .stride()
            .try_into()
            .map_err(|_| candle_core::Error::Msg("rotary-f32: x is not 4-d".into()))?;
        let (
            CpuStorage::F32(x),
            CpuStorage::F32(cos),
            Some((cs, ce)),
            CpuStorage::F32(sin),
            Some((ss, se)),
        ) = (
            x,
            cos,
            cos_layout.contiguous_offsets(),
            sin,
            sin_layout.contiguous_offsets(),
        )
        else {
            candle_core::bail!("rotary-f32 takes f32 x and contiguous f32 tables");
        };
        let (cos, sin) = (&cos[cs..ce], &sin[ss..se]);
        let table_dims = cos_layout.shape().dims();
        let (per_row, half) = match *table_dims {
            [tl, half] if tl == l => (false, half),
            [tb, tl, half] if tb == b && tl == l => (true, half),
            _ => candle_core::bail!(
                "rotary-f32: tables {:?} for x {:?}",
                table_dims,
                x_layout.shape()
            ),
        };
        if stride[3] != 1 || sin_layout.shape() != cos_layout.shape() || 2 * half > d {
            candle_core::bail!(
                "rotary-f32: x {:?} (strides {stride:?}) with tables {table_dims:?}",
                x_layout.shape()
            );
        }
        let x = &x[x_layout.start_offset()..];
        let out = par_filled(b * h * l * d, d.max(1) * VECTORS_PER_TASK, |start, out| {
            for (i, out) in out.chunks_exact_mut(d).enumerate() {
                let vector = start / d + i;
                let (row, head, pos) = (vector / (h * l), vector / l % h, vector % l);
                let at = row * stride[0] + head * stride[1] + pos * stride[2];
                let input = &x[at..at + d];
                let table = if per_row { row * l + pos } else { pos } * half;
                let (cos, sin) = (&cos[table..table + half], &sin[table..table + half]);
                rotate_vector(out, input, cos, sin);
            }
        });
        Ok((CpuStorage::F32(out), Shape::from_dims(&[b, h, l, d])))
    }
}

/// `out[i] = x[i]·cos − x[i+half]·sin` and `out[i+half] = x[i+half]·cos + x[i]·sin` for
/// `i < half`, then the rest of `x` as it is.
fn rotate_vector(out: &mut [f32], x: &[f32], cos: &[f32], sin: &[f32]) {
    let half = cos.len();
    let (first, rest) = x.split_at(half);
    let (second, tail) = rest.split_at(half);
    let (out_first, out_rest) = out.split_at_mut(half);
    let (out_second, out_tail) = out_rest.split_at_mut(half);
    for i in 0..half {
        out_first[i] = first[i] * cos[i] - second[i] * sin[i];
        out_second[i] = second[i] * cos[i] + first[i] * sin[i];
    }
    out_tail.copy_from_slice(tail);
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, D};

    use super::*;
    use crate::layers::test_support::max_abs_diff;

    /// candle's `rope` on a contiguous copy, the tail concatenated back.
    fn plain(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
        let dim = 2 * cos.dim(D::Minus1).unwrap();
        let d = x.dim(D::Minus1).unwrap();
        let rot = x.narrow(D::Minus1, 0, dim).unwrap().contiguous().unwrap();
        let rot = candle_nn::rotary_emb::rope(&rot, cos, sin).unwrap();
        let pass = x.narrow(D::Minus1, dim, d - dim).unwrap();
        Tensor::cat(&[&rot, &pass], D::Minus1).unwrap()
    }

    /// Strided head views of a fused q/k/v projection, shared and per-row tables, whole and
    /// partial rotation: the same numbers as candle's rope, in a contiguous tensor.
    #[test]
    fn matches_candles_rope_on_strided_heads() {
        let dev = Device::Cpu;
        let (b, l, h, d) = (3, 7, 4, 16);
        let qkv = Tensor::randn(0f32, 1.0, (b, l, 3 * h * d), &dev).unwrap();
        let k = qkv
            .reshape((b, l, 3, h, d))
            .unwrap()
            .permute((2, 0, 3, 1, 4))
            .unwrap()
            .narrow(0, 1, 1)
            .unwrap()
            .squeeze(0)
            .unwrap();
        assert!(!k.is_contiguous(), "{:?} {:?}", k.dims(), k.stride());
        for (half, per_row) in [(8, false), (6, true), (8, true)] {
            let dims: Vec<usize> = if per_row {
                vec![b, l, half]
            } else {
                vec![l, half]
            };
            let angles = Tensor::randn(0f32, 3.0, dims, &dev).unwrap();
            let (cos, sin) = (angles.cos().unwrap(), angles.sin().unwrap());
            let got = rotate(&k, &cos, &sin).unwrap();
            assert!(got.is_contiguous());
            let diff = max_abs_diff(&got, &plain(&k, &cos, &sin));
            assert!(diff < 1e-6, "half {half}, per row {per_row}: {diff}");
        }
    }
}
