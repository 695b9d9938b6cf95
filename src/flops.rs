//! Floating-point operations of a forward pass, from the architecture's config: what model FLOP
//! utilisation (MFU) is measured against.
//!
//! Counted as useful work, the way MFU is usually reported: two FLOPs per weight per token for
//! every matrix of every layer, plus the attention products (scores and weighted sum, `4 * L *
//! width` per token and layer, half of it for causal models whose masked half is waste).
//! Embedding lookups, norms, activations and padding cost time but count nothing.

use crate::models::Architecture;

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
    /// From `config.json`; `None` when a field it needs is missing.
    pub(crate) fn from_config(
        architecture: Architecture,
        config: &serde_json::Value,
    ) -> Option<Self> {
        let field = |names: &[&str]| names.iter().find_map(|n| config.get(*n)?.as_u64());
        let hidden = field(&["hidden_size", "n_embd"])?;
        let layers = field(&["num_hidden_layers", "n_layer"])?;
        let heads = field(&["num_attention_heads", "n_head"])?;
        let inner = field(&["intermediate_size", "n_inner"]).unwrap_or(4 * hidden);
        let (per_layer, width, causal) = match architecture {
            Architecture::Bert | Architecture::XlmRoberta => {
                (4 * hidden * hidden + 2 * hidden * inner, hidden, false)
            }
            // Fused q/k/v and output, then SwiGLU's two input matrices and one output matrix.
            Architecture::NomicBert => (4 * hidden * hidden + 3 * hidden * inner, hidden, false),
            Architecture::Qwen3 => {
                let head_dim = field(&["head_dim"]).unwrap_or(hidden / heads);
                let kv_heads = field(&["num_key_value_heads"]).unwrap_or(heads);
                let q_and_o = 2 * hidden * heads * head_dim;
                let k_and_v = 2 * hidden * kv_heads * head_dim;
                (
                    q_and_o + k_and_v + 3 * hidden * inner,
                    heads * head_dim,
                    true,
                )
            }
        };
        Some(Self {
            matrix_weights: per_layer * layers,
            layers,
            attention_width: width,
            causal,
        })
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
    use crate::registry::Registry;

    fn count(name: &str) -> FlopCount {
        let registry = Registry::builtin();
        let spec = registry.find(name).unwrap();
        FlopCount::from_config(spec.architecture, spec.config.as_ref().unwrap()).unwrap()
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
