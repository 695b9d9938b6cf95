//! What a forward pass needs in memory, computed from the network's shape and the attention
//! blocks, before it runs: on the CPU an allocation failure aborts the process, so there the
//! estimate is the protection (a batch that would not fit fails as out-of-memory, is halved, and
//! a single input that still does not fit gets [`Error::OutOfMemory`](crate::Error) naming it).

#[cfg(test)]
use crate::layers::attention::largest_attention_tensor;
use crate::layers::attention::Blocks;
use crate::models::shape::Shape;

/// The memory a forward pass over `rows` inputs padded to `seq_len` tokens holds at its peak,
/// in bytes, beyond the weights: the larger of the attention half of a layer (residual stream,
/// its norm, q/k/v and their rotated copies, the attention output and its merged copy, and a
/// block's scores three times: scores, f32 copy, softmax) and the feed-forward half (residual,
/// norm, and three intermediate-width tensors), with half again on top for the allocator and
/// the tensors this count leaves out.
pub(crate) fn forward_bytes(
    shape: &Shape,
    rows: usize,
    seq_len: usize,
    dtype_bytes: usize,
    block_elements: usize,
) -> u64 {
    let tokens = (rows * seq_len) as u64;
    let (hidden, q_width, kv_width) = (
        shape.hidden as u64,
        (shape.heads * shape.head_dim) as u64,
        (shape.kv_heads * shape.head_dim) as u64,
    );
    let blocks = Blocks::plan(rows, shape.heads, seq_len, block_elements);
    let scores = blocks.score_elements(shape.heads, seq_len) as u64;
    let attention = tokens * (2 * hidden + 4 * q_width + 4 * kv_width) * dtype_bytes as u64
        + scores * (2 * dtype_bytes as u64 + 4);
    let feed_forward = tokens * (2 * hidden + 3 * shape.intermediate as u64) * dtype_bytes as u64;
    attention.max(feed_forward) * 3 / 2
}

/// The largest single tensor, in elements, of a forward pass over `rows` inputs of `seq_len`
/// tokens: what must stay below 2^31 for candle's 32-bit-indexed CUDA kernels.
#[cfg(test)]
pub(crate) fn largest_tensor(
    shape: &Shape,
    rows: usize,
    seq_len: usize,
    block_elements: usize,
) -> usize {
    let tokens = rows * seq_len;
    let widths = [
        shape.hidden,
        shape.intermediate,
        shape.heads * shape.head_dim,
        3 * shape.heads * shape.head_dim, // a fused qkv projection
    ];
    let dense = widths.iter().map(|w| tokens * w).max().unwrap_or(0);
    dense.max(largest_attention_tensor(
        rows,
        shape.heads,
        shape.head_dim,
        seq_len,
        block_elements,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Qwen3-Embedding-8B's shape, from `models.toml`.
    fn qwen3_8b() -> Shape {
        crate::registry::Registry::shape_of("qwen3-embedding-8b")
    }

    #[test]
    fn no_tensor_of_a_qwen3_8b_forward_at_32k_tokens_reaches_2_pow_31() {
        for block in [1 << 22, 1 << 28] {
            let largest = largest_tensor(&qwen3_8b(), 1, 32_768, block);
            assert!(
                largest < 1 << 31,
                "{largest} elements with blocks of {block}"
            );
        }
        // What the plain (B, H, L, L) scores would have been: 2^35 elements.
        assert_eq!(32usize * 32_768 * 32_768, 1 << 35);
    }

    #[test]
    fn the_estimate_grows_with_the_tokens_and_stays_bounded_in_attention() {
        let shape = qwen3_8b();
        let one = forward_bytes(&shape, 1, 32_768, 2, 1 << 28);
        // bf16: 32,768 x (2 x 4096 + 3 x 12288) x 2 bytes x 1.5 = 4.4 GB, well under the 68 GB
        // the plain f32 scores alone would take.
        assert!(one > 4_000_000_000 && one < 8_000_000_000, "{one}");
        assert!(forward_bytes(&shape, 2, 32_768, 2, 1 << 28) > one);
        assert!(forward_bytes(&shape, 1, 512, 2, 1 << 28) < one / 32);
    }
}
