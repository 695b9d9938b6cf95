//! Scaled dot-product attention over right-padded batches, with the padding (and optionally
//! causal) mask as an additive bias.

use candle_core::{DType, Device, Tensor};

/// Additive attention bias `(B, 1, Lq, L)`: 0 where a query may look, a large negative value
/// where it may not. Padding keys are always hidden; with `causal`, so are later positions.
///
/// Built for every batch the same way, so the causal part is never dropped, not even when all
/// sequences have the same length.
pub(crate) fn attention_bias(
    lengths: &[usize],
    seq_len: usize,
    causal: bool,
    dtype: DType,
    device: &Device,
) -> candle_core::Result<Tensor> {
    // The most negative finite value of the compute dtype: -inf would turn a fully masked row
    // (a padding query) into NaN, which then leaks through later matmuls on some kernels.
    let blocked = match dtype {
        DType::F16 => -65504.0f32,
        DType::BF16 => -3.38e38,
        _ => f32::MIN,
    };
    let query_rows = if causal { seq_len } else { 1 };
    let mut bias = Vec::with_capacity(lengths.len() * query_rows * seq_len);
    for &len in lengths {
        for q in 0..query_rows {
            for k in 0..seq_len {
                let visible = k < len && (!causal || k <= q);
                bias.push(if visible { 0.0 } else { blocked });
            }
        }
    }
    Tensor::from_vec(bias, (lengths.len(), 1, query_rows, seq_len), device)?.to_dtype(dtype)
}

/// `softmax(q kᵀ · scale + bias) v` for `q, k, v` of shape `(B, H, L, D)`; `k` and `v` may have
/// fewer heads than `q` (grouped-query attention), in which case they are shared across groups.
pub(crate) fn scaled_dot_product(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: &Tensor,
    scale: f64,
) -> candle_core::Result<Tensor> {
    let (_, q_heads, _, _) = q.dims4()?;
    let kv_heads = k.dim(1)?;
    let (k, v) = if kv_heads == q_heads {
        (k.clone(), v.clone())
    } else {
        let groups = q_heads / kv_heads;
        (repeat_kv(k, groups)?, repeat_kv(v, groups)?)
    };
    // The (B, H, Lq, L) score tensors are the largest of the forward pass. Each step replaces
    // the previous one (an assignment drops the old tensor; shadowing would keep it alive), so
    // at most the f32 scores and their softmax exist at once: 4 bytes x 2 per score, not 12.
    let mut scores = q.contiguous()?.matmul(&k.t()?.contiguous()?)?;
    scores = (scores * scale)?;
    scores = scores.broadcast_add(bias)?;
    // Softmax in f32: bf16 sums over thousands of keys lose the small weights.
    scores = scores.to_dtype(DType::F32)?;
    scores = candle_nn::ops::softmax_last_dim(&scores)?;
    let probs = scores.to_dtype(q.dtype())?;
    drop(scores);
    probs.matmul(&v.contiguous()?)
}

/// `(B, Hkv, L, D) -> (B, Hkv * groups, L, D)`, each key/value head repeated for its query group.
fn repeat_kv(x: &Tensor, groups: usize) -> candle_core::Result<Tensor> {
    let (b, h, l, d) = x.dims4()?;
    x.unsqueeze(2)?
        .expand((b, h, groups, l, d))?
        .reshape((b, h * groups, l, d))
}

/// `(B, L, H * D) -> (B, H, L, D)`.
pub(crate) fn split_heads(x: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (b, l, _) = x.dims3()?;
    x.reshape((b, l, heads, ()))?.transpose(1, 2)
}

/// `(B, H, L, D) -> (B, L, H * D)`.
pub(crate) fn merge_heads(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, _, l, _) = x.dims4()?;
    x.transpose(1, 2)?.contiguous()?.reshape((b, l, ()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_and_causal_masks() {
        let dev = Device::Cpu;
        let pad = attention_bias(&[2, 3], 3, false, DType::F32, &dev).unwrap();
        assert_eq!(pad.dims(), &[2, 1, 1, 3]);
        let rows = pad.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(&rows[..3], &[0.0, 0.0, f32::MIN]);
        assert_eq!(&rows[3..], &[0.0, 0.0, 0.0]);

        // Equal lengths: the causal part must still be there.
        let causal = attention_bias(&[3, 3], 3, true, DType::F32, &dev).unwrap();
        let rows = causal.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(
            &rows[..9],
            &[0.0, f32::MIN, f32::MIN, 0.0, 0.0, f32::MIN, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn grouped_heads_match_repeated_heads() {
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1.0, (1, 4, 3, 2), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (1, 2, 3, 2), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (1, 2, 3, 2), &dev).unwrap();
        let bias = attention_bias(&[3], 3, true, DType::F32, &dev).unwrap();
        let grouped = scaled_dot_product(&q, &k, &v, &bias, 0.5).unwrap();
        let full = scaled_dot_product(
            &q,
            &repeat_kv(&k, 2).unwrap(),
            &repeat_kv(&v, 2).unwrap(),
            &bias,
            0.5,
        )
        .unwrap();
        let diff = (grouped - full)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(diff, 0.0);
        // Head 1 uses kv head 0, head 2 uses kv head 1.
        let h2 = scaled_dot_product(
            &q.narrow(1, 2, 1).unwrap(),
            &k.narrow(1, 1, 1).unwrap(),
            &v.narrow(1, 1, 1).unwrap(),
            &bias,
            0.5,
        )
        .unwrap();
        let g2 = scaled_dot_product(&q, &k, &v, &bias, 0.5)
            .unwrap()
            .narrow(1, 2, 1)
            .unwrap();
        let diff = (h2 - g2)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6);
    }
}
