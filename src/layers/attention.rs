//! Scaled dot-product attention over right-padded batches, computed one block of queries at a
//! time so that no intermediate tensor outgrows a fixed number of elements, however long the
//! input.
//!
//! Why blocks: the plain computation materializes `(B, H, L, L)` scores, 25.8 GB for one
//! 32,768-token input with 6 heads, and on CUDA candle's kernels index in 32 bits, so a tensor
//! past 2^31 elements is read and written out of bounds. Each block here holds at most
//! [`attention_block_elements`] scores (far below 2^31), the padding/causal mask is computed on
//! the device from the sequence lengths for that block only, and grouped-query attention
//! reshapes the queries instead of repeating keys and values. Softmax stays in f32.

use candle_core::{DType, Device, Tensor};

use crate::device::attention_block_elements;
use crate::layers::cpu_attention;

/// Which keys each query may see: the real tokens of its own row (padding keys are hidden) and,
/// when `causal`, only positions up to its own. Built once per forward pass; the additive bias
/// of each block is computed from it on the device, never as a host `(B, 1, L, L)` tensor.
pub(crate) struct AttentionMask {
    /// Real tokens per row, as they came from the batch.
    lengths: Vec<usize>,
    /// `(B, 1, 1, 1)` u32 lengths on the compute device.
    lengths_on_device: Tensor,
    causal: bool,
}

impl AttentionMask {
    /// The mask of a right-padded batch with these real lengths.
    pub(crate) fn new(
        lengths: &[usize],
        causal: bool,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let as_u32: Vec<u32> = lengths.iter().map(|&l| l as u32).collect();
        Ok(Self {
            lengths: lengths.to_vec(),
            lengths_on_device: Tensor::from_vec(as_u32, (lengths.len(), 1, 1, 1), device)?,
            causal,
        })
    }

    /// Additive bias for batch rows `rows.start..rows.end`, queries `q0..q0 + queries` and keys
    /// `0..keys`: `(b, 1, queries or 1, keys)`, 0 where visible, the most negative finite value
    /// of `dtype` where not (-inf would turn a fully masked row into NaN, which leaks through
    /// later matmuls on some kernels).
    fn block_bias(
        &self,
        rows: std::ops::Range<usize>,
        q0: usize,
        queries: usize,
        keys: usize,
        dtype: DType,
    ) -> candle_core::Result<Tensor> {
        let device = self.lengths_on_device.device();
        let lengths = self.lengths_on_device.narrow(0, rows.start, rows.len())?;
        let key_pos = Tensor::arange(0u32, keys as u32, device)?.reshape((1, 1, 1, keys))?;
        let mut visible = key_pos.broadcast_lt(&lengths)?; // (b, 1, 1, keys) u8
        if self.causal {
            let query_pos = Tensor::arange(q0 as u32, (q0 + queries) as u32, device)?
                .reshape((1, 1, queries, 1))?;
            visible = visible.broadcast_mul(&key_pos.broadcast_le(&query_pos)?)?;
        }
        let blocked = blocked_value(dtype);
        // 1 -> 0, 0 -> blocked (exact: |blocked| * 1 - |blocked| is 0).
        visible
            .to_dtype(DType::F32)?
            .affine(-blocked, blocked)?
            .to_dtype(dtype)
    }
}

/// The most negative finite value of a compute dtype, used as "not visible".
fn blocked_value(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => -65504.0,
        DType::BF16 => -3.38e38,
        _ => f32::MIN as f64,
    }
}

/// How a `(B, Hq, L, D)` attention is cut: `batch_rows` rows and `query_rows` queries at a time,
/// so that a block's scores (`batch_rows · Hq · query_rows · L`) stay within `max_elements`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Blocks {
    pub batch_rows: usize,
    pub query_rows: usize,
}

impl Blocks {
    /// The blocks for a batch of `batch` rows of `seq_len` tokens and `heads` query heads.
    /// Queries are blocked first; rows are split too only when even [`MIN_QUERY_ROWS`]
    /// queries of every row would exceed the budget (fewer rows per matmul waste the
    /// hardware). At least one query of one row per block.
    pub(crate) fn plan(batch: usize, heads: usize, seq_len: usize, max_elements: usize) -> Self {
        let per_query = (heads * seq_len).max(1);
        let min_rows = MIN_QUERY_ROWS.min(seq_len).max(1);
        let batch_rows = (max_elements / (per_query * min_rows)).clamp(1, batch.max(1));
        let query_rows = (max_elements / (per_query * batch_rows)).clamp(1, seq_len.max(1));
        Self {
            batch_rows,
            query_rows,
        }
    }

    /// Elements of the largest score tensor one block materializes.
    pub(crate) fn score_elements(&self, heads: usize, seq_len: usize) -> usize {
        self.batch_rows * heads * self.query_rows * seq_len
    }
}

/// Fewest queries per block before the batch is split by rows instead.
const MIN_QUERY_ROWS: usize = 32;

/// `softmax(q kᵀ · scale + bias) v` for `q` of shape `(B, Hq, L, D)` and `k, v` of shape
/// `(B, Hkv, L, D)`, `Hkv` dividing `Hq` (grouped-query attention: query head `h` reads key/value
/// head `h / (Hq / Hkv)`). Returns `(B, Hq, L, D)`.
///
/// On the CPU in f32 this is one fused kernel ([`cpu_attention`]), bounded by the same budget;
/// elsewhere a sequence of candle ops over blocks of queries.
pub(crate) fn scaled_dot_product(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &AttentionMask,
    scale: f64,
) -> candle_core::Result<Tensor> {
    if q.device().is_cpu() && q.dtype() == DType::F32 {
        return cpu_attention::attention(
            q,
            k,
            v,
            &mask.lengths,
            mask.causal,
            scale,
            attention_block_elements(q.device()),
        );
    }
    composed(q, k, v, mask, scale)
}

/// [`scaled_dot_product`] as candle ops over blocks of queries, whatever the device.
pub(crate) fn composed(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &AttentionMask,
    scale: f64,
) -> candle_core::Result<Tensor> {
    let blocks = Blocks::plan(
        q.dim(0)?,
        q.dim(1)?,
        q.dim(2)?,
        attention_block_elements(q.device()),
    );
    blocked_attention(q, k, v, mask, scale, blocks)
}

/// [`scaled_dot_product`] with the blocks given.
fn blocked_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &AttentionMask,
    scale: f64,
    blocks: Blocks,
) -> candle_core::Result<Tensor> {
    let (b, q_heads, l, d) = q.dims4()?;
    let kv_heads = k.dim(1)?;
    if kv_heads == 0 || q_heads % kv_heads != 0 || mask.lengths.len() != b {
        candle_core::bail!(
            "attention over {q_heads} query heads, {kv_heads} key/value heads and {} lengths \
             for {b} rows",
            mask.lengths.len()
        );
    }
    let groups = q_heads / kv_heads;
    // Contiguous once per layer (B·Hkv·L·D, the size of the input): the matmuls read kᵀ as a
    // strided view of it, so no transposed copy is made.
    let k = k.contiguous()?;
    let v = v.contiguous()?;
    let mut rows_out = Vec::new();
    for b0 in (0..b).step_by(blocks.batch_rows) {
        let nb = blocks.batch_rows.min(b - b0);
        // (nb, Hq, L, D) -> (nb, Hkv, G, L, D): query head h = kv * G + g.
        let q_rows = q.narrow(0, b0, nb)?.reshape((nb, kv_heads, groups, l, d))?;
        let (k_rows, v_rows) = (k.narrow(0, b0, nb)?, v.narrow(0, b0, nb)?);
        let mut blocks_out = Vec::new();
        for q0 in (0..l).step_by(blocks.query_rows) {
            let nq = blocks.query_rows.min(l - q0);
            // Causal: keys after the block's last query are hidden from all of its queries, so
            // they are left out rather than computed and masked.
            let keys = if mask.causal { q0 + nq } else { l };
            let (k_blk, v_blk) = (k_rows.narrow(2, 0, keys)?, v_rows.narrow(2, 0, keys)?);
            // (nb, Hkv, G, nq, D) -> (nb, Hkv, G·nq, D): one matmul per key/value head. The
            // scale goes on the queries: D values per query row instead of `keys`.
            let q_blk = q_rows.narrow(3, q0, nq)?.contiguous()?;
            let q_blk = (q_blk.reshape((nb, kv_heads, groups * nq, d))? * scale)?;
            // Each step replaces the previous one (an assignment drops the old tensor), so at
            // most two block-sized score tensors exist at once.
            // Scores (nb, Hkv, G·nq, keys).
            let mut scores = q_blk.matmul(&k_blk.t()?)?;
            // A block whose keys are all real and, when causal, that has one query sees every
            // key: no bias to build or add (bidirectional batches of equal lengths).
            let padded = mask.lengths[b0..b0 + nb].iter().any(|&len| len < keys);
            if padded || (mask.causal && nq > 1) {
                // (nb, 1, 1, nq or 1, keys)
                let bias = mask.block_bias(b0..b0 + nb, q0, nq, keys, q.dtype())?;
                scores = scores
                    .reshape((nb, kv_heads, groups, nq, keys))?
                    .broadcast_add(&bias.unsqueeze(1)?)?;
            }
            // Softmax in f32: bf16 sums over thousands of keys lose the small weights.
            scores = scores.to_dtype(DType::F32)?;
            scores = candle_nn::ops::softmax_last_dim(&scores)?;
            let probs = scores
                .to_dtype(q.dtype())?
                .reshape((nb, kv_heads, groups * nq, keys))?;
            drop(scores);
            let out = probs.matmul(&v_blk)?; // (nb, Hkv, G·nq, D)
            blocks_out.push(out.reshape((nb, q_heads, nq, d))?);
        }
        rows_out.push(Tensor::cat(&blocks_out, 2)?);
    }
    Tensor::cat(&rows_out, 0)
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

/// The largest tensor, in elements, that attention materializes for a `(B, Hq, L, D)` query
/// on a device whose block budget is `max_elements`: a block's scores, or the output and the
/// per-layer copies of q/k/v, whichever is larger.
#[cfg(test)]
pub(crate) fn largest_attention_tensor(
    batch: usize,
    heads: usize,
    head_dim: usize,
    seq_len: usize,
    max_elements: usize,
) -> usize {
    let blocks = Blocks::plan(batch, heads, seq_len, max_elements);
    blocks
        .score_elements(heads, seq_len)
        .max(batch * heads * seq_len * head_dim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::test_support::max_abs_diff;
    use proptest::prelude::*;

    /// The plain computation, as it was before blocking: a host `(B, 1, L, L)` bias, K/V
    /// repeated for every query group, full `(B, H, L, L)` scores.
    fn plain(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        lengths: &[usize],
        causal: bool,
        scale: f64,
    ) -> Tensor {
        let (b, hq, l, d) = q.dims4().unwrap();
        let hkv = k.dim(1).unwrap();
        let g = hq / hkv;
        let repeat = |x: &Tensor| {
            x.unsqueeze(2)
                .unwrap()
                .expand((b, hkv, g, l, d))
                .unwrap()
                .reshape((b, hq, l, d))
                .unwrap()
        };
        let mut bias = Vec::new();
        for &len in lengths {
            for qi in 0..l {
                for ki in 0..l {
                    let visible = ki < len && (!causal || ki <= qi);
                    bias.push(if visible { 0.0 } else { f32::MIN });
                }
            }
        }
        let bias = Tensor::from_vec(bias, (b, 1, l, l), q.device()).unwrap();
        let scores = (q.matmul(&repeat(k).t().unwrap()).unwrap() * scale)
            .unwrap()
            .broadcast_add(&bias)
            .unwrap();
        let probs = candle_nn::ops::softmax(&scores, candle_core::D::Minus1).unwrap();
        probs.matmul(&repeat(v)).unwrap()
    }

    #[test]
    fn masks_from_lengths() {
        let dev = Device::Cpu;
        let pad = AttentionMask::new(&[2, 3], false, &dev).unwrap();
        let bias = pad.block_bias(0..2, 0, 3, 3, DType::F32).unwrap();
        assert_eq!(bias.dims(), &[2, 1, 1, 3]);
        let rows = bias.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(rows, [0.0, 0.0, f32::MIN, 0.0, 0.0, 0.0]);

        // Equal lengths: the causal part must still be there; a block starting at query 1.
        let causal = AttentionMask::new(&[3, 3], true, &dev).unwrap();
        let bias = causal.block_bias(1..2, 1, 2, 3, DType::F32).unwrap();
        assert_eq!(bias.dims(), &[1, 1, 2, 3]);
        let rows = bias.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(rows, [0.0, 0.0, f32::MIN, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn blocks_stay_within_the_budget() {
        for (b, h, l, max) in [
            (1, 32, 32_768, 1 << 24),
            (64, 12, 512, 1 << 20),
            (3, 4, 5, 7),
        ] {
            let blocks = Blocks::plan(b, h, l, max);
            assert!(blocks.batch_rows >= 1 && blocks.query_rows >= 1);
            let elements = blocks.score_elements(h, l);
            // Over the budget only when a single query of a single row already is.
            assert!(elements <= max || (blocks.query_rows == 1 && blocks.batch_rows == 1));
        }
        // A Qwen3-8B-shaped layer (32 heads, 8 kv heads, head_dim 128) at 32,768 tokens: on
        // every device's budget, no attention tensor reaches 2^31 elements.
        for max in [attention_block_elements(&Device::Cpu), CUDA_BLOCK] {
            let largest = largest_attention_tensor(1, 32, 128, 32_768, max);
            assert!(largest < 1 << 31, "{largest}");
        }
    }

    const CUDA_BLOCK: usize = 1 << 28;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The fused CPU kernel equals the plain computation, reading q/k/v as the strided
        /// head views of `(B, L, H·D)` projections, with query blocks that do not divide L.
        #[test]
        fn fused_cpu_equals_plain(
            batch in 1usize..4,
            kv_heads in 1usize..3,
            groups in 1usize..4,
            seq_len in 1usize..40,
            head_dim in 1usize..9,
            causal in any::<bool>(),
            max_elements in 1usize..200,
            cuts in prop::collection::vec(0usize..40, 4),
        ) {
            let dev = Device::Cpu;
            let lengths: Vec<usize> = (0..batch)
                .map(|i| if i == 0 { seq_len } else { 1 + cuts[i] % seq_len })
                .collect();
            let hq = kv_heads * groups;
            let projection = |heads: usize| {
                let x = Tensor::randn(0f32, 1.0, (batch, seq_len, heads * head_dim), &dev).unwrap();
                split_heads(&x, heads).unwrap() // (B, H, L, D), not contiguous
            };
            let (q, k, v) = (projection(hq), projection(kv_heads), projection(kv_heads));
            let scale = 1.0 / (head_dim as f64).sqrt();
            let fused = cpu_attention::attention(&q, &k, &v, &lengths, causal, scale, max_elements)
                .unwrap();
            prop_assert_eq!(fused.dims(), q.dims());
            let want = plain(
                &q.contiguous().unwrap(),
                &k.contiguous().unwrap(),
                &v.contiguous().unwrap(),
                &lengths,
                causal,
                scale,
            );
            let diff = max_abs_diff(&fused, &want);
            prop_assert!(diff < 1e-5, "max diff {}", diff);
            // Merging the heads of the fused output needs no copy.
            prop_assert!(fused.transpose(1, 2).unwrap().is_contiguous());
        }

        /// Blocked attention equals the plain computation: block edges that do not divide L,
        /// grouped-query attention, causal and bidirectional, padding and mixed lengths.
        #[test]
        fn blocked_equals_plain(
            batch in 1usize..4,
            kv_heads in 1usize..3,
            groups in 1usize..4,
            seq_len in 1usize..24,
            head_dim in 1usize..6,
            causal in any::<bool>(),
            batch_rows in 1usize..4,
            query_rows in 1usize..10,
            cuts in prop::collection::vec(0usize..24, 4),
        ) {
            let dev = Device::Cpu;
            // Mixed lengths: one row is full (as the batch's longest always is), others padded.
            let lengths: Vec<usize> = (0..batch)
                .map(|i| if i == 0 { seq_len } else { 1 + cuts[i] % seq_len })
                .collect();
            let hq = kv_heads * groups;
            let q = Tensor::randn(0f32, 1.0, (batch, hq, seq_len, head_dim), &dev).unwrap();
            let k = Tensor::randn(0f32, 1.0, (batch, kv_heads, seq_len, head_dim), &dev).unwrap();
            let v = Tensor::randn(0f32, 1.0, (batch, kv_heads, seq_len, head_dim), &dev).unwrap();
            let mask = AttentionMask::new(&lengths, causal, &dev).unwrap();
            let blocks = Blocks { batch_rows, query_rows };
            let got = blocked_attention(&q, &k, &v, &mask, 0.7, blocks).unwrap();
            let want = plain(&q, &k, &v, &lengths, causal, 0.7);
            prop_assert_eq!(got.dims(), want.dims());
            let diff = max_abs_diff(&got, &want);
            prop_assert!(diff < 1e-5, "max abs diff {diff}");
            // The budgeted entry point agrees too.
            let budgeted = scaled_dot_product(&q, &k, &v, &mask, 0.7).unwrap();
            prop_assert!(max_abs_diff(&budgeted, &want) < 1e-5);
        }
    }
}
