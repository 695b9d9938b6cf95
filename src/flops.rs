//! Floating-point operations of a forward pass, from the architecture's config: what model FLOP
//! utilisation (MFU) is measured against.
//!
//! Counted as useful work, the way MFU is usually reported: two FLOPs per weight per token for
//! every matrix of every layer, plus the attention products (scores and weighted sum, `4 * L *
//! width` per token and layer, half of it for causal models whose masked half is waste).
//! Embedding lookups, norms, activations and padding cost time but count nothing.

use crate::models::shape::Shape;

/// What one forward pass of a model costs per token.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct FlopCount {
    /// Weights in the layers' matrices (embeddings excluded).
    pub matrix_weights: u64,
    /// Transformer layers.
    pub layers: u64,
    /// Heads times head size: the width of the attention products.
    pub attention_width: u64,
    /// Whether tokens attend only to earlier tokens (decoder models such as Qwen3).
    pub causal: bool,
}

impl FlopCount {
    /// From a network's sizes. Every architecture has its q/k/v and output projections
    /// (`heads * head_dim` wide for queries and output, `kv_heads * head_dim` for keys and
    /// values) and a feed-forward block; a gated one (SwiGLU: NomicBert, Qwen3) has three
    /// matrices where BERT's has two.
    pub(crate) fn new(shape: &Shape, gated: bool, causal: bool) -> Self {
        let [hidden, heads, kv_heads, head_dim, inner, layers] = [
            shape.hidden,
            shape.heads,
            shape.kv_heads,
            shape.head_dim,
            shape.intermediate,
            shape.layers,
        ]
        .map(|v| v as u64);
        let attention = 2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim;
        let feed_forward = if gated { 3 } else { 2 } * hidden * inner;
        Self {
            matrix_weights: (attention + feed_forward) * layers,
            layers,
            attention_width: heads * head_dim,
            causal,
        }
    }

    /// FLOPs of one input of `tokens` tokens.
    pub fn per_sequence(&self, tokens: usize) -> f64 {
        let tokens = tokens as f64;
        let matrices = 2.0 * self.matrix_weights as f64 * tokens;
        let share = if self.causal { 0.5 } else { 1.0 };
        let attention =
            4.0 * share * self.layers as f64 * self.attention_width as f64 * tokens * tokens;
        matrices + attention
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Config;
    use crate::registry::Registry;

    fn count(name: &str) -> FlopCount {
        let registry = Registry::builtin();
        let spec = registry.find(name).unwrap();
        let path = std::path::Path::new("models.toml");
        let config = Config::parse(spec.config.as_ref().unwrap(), path, name).unwrap();
        FlopCount::new(&config.shape().unwrap(), config.gated(), config.causal())
    }

    #[test]
    fn qwen3_8b_is_about_14_gflop_per_token() {
        // 6.95e9 matrix weights in 36 layers: the ~14.0 GFLOP/token that the 8B compute ceiling
        // (about 70k tokens/s on an H100) is usually derived from.
        let qwen = count("qwen3-embedding-8b");
        assert_eq!(
            qwen.matrix_weights,
            36 * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 12288)
        );
        let per_token = qwen.per_sequence(512) / 512.0 / 1e9;
        assert!((13.9..14.3).contains(&per_token), "{per_token}");
    }

    #[test]
    fn minilm_counts_its_22m_layer_weights() {
        // 6 layers of 4 * 384^2 + 2 * 384 * 1536: 10.6M of all-MiniLM's 22.7M weights; the rest
        // is the embedding table.
        assert_eq!(count("all-minilm-l6-v2").matrix_weights, 10_616_832);
        let nomic = count("nomic-embed-text-v1.5");
        assert_eq!(nomic.matrix_weights, 12 * (4 * 768 * 768 + 3 * 768 * 3072));
    }
}
