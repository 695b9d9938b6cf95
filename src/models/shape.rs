//! The sizes of a network, read once from its typed config: what FLOP counts, random weights,
//! the loader's length limits and config validation need, whatever names the config uses.

/// Sizes of a transformer encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Width of the hidden states: the full output dimension.
    pub hidden: usize,
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (fewer than `heads` under grouped-query attention).
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Width of the feed-forward block's inner layer.
    pub intermediate: usize,
    /// Rows of the token embedding table: ids at or above it are refused before a forward pass.
    pub vocab: usize,
    /// Positions the config declares (`max_position_embeddings`), if any: the default max length
    /// of a model its registry entry does not describe.
    pub max_positions: Option<usize>,
    /// Longest input the weights can take at all (absolute position tables); `None` for rotary
    /// positions, which extend to any length.
    pub position_capacity: Option<usize>,
}

impl Shape {
    /// Why a network of this shape cannot be built, checked before any tensor is: a zero size
    /// would divide by zero, heads that do not divide the width would fail on every input.
    pub(crate) fn check(&self, explicit_head_dim: bool) -> Result<(), String> {
        let sizes = [
            ("hidden size", self.hidden),
            ("layers", self.layers),
            ("attention heads", self.heads),
            ("key/value heads", self.kv_heads),
            ("head size", self.head_dim),
            ("intermediate size", self.intermediate),
            ("vocabulary size", self.vocab),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} is 0"));
        }
        if !explicit_head_dim && !self.hidden.is_multiple_of(self.heads) {
            return Err(format!(
                "{} attention heads do not divide the hidden size {}",
                self.heads, self.hidden
            ));
        }
        if !self.heads.is_multiple_of(self.kv_heads) {
            return Err(format!(
                "{} query heads cannot share {} key/value heads",
                self.heads, self.kv_heads
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(hidden: usize, heads: usize, kv_heads: usize) -> Shape {
        Shape {
            hidden,
            layers: 2,
            heads,
            kv_heads,
            head_dim: hidden.checked_div(heads).unwrap_or(0),
            intermediate: 4 * hidden,
            vocab: 100,
            max_positions: None,
            position_capacity: None,
        }
    }

    #[test]
    fn zero_and_non_dividing_heads_are_refused() {
        assert!(shape(384, 12, 12).check(false).is_ok());
        let zero = shape(384, 0, 0).check(false).unwrap_err();
        assert!(zero.contains("attention heads is 0"), "{zero}");
        let seven = shape(384, 7, 7).check(false).unwrap_err();
        assert!(seven.contains("7 attention heads"), "{seven}");
        // An explicit head size (Qwen3) need not divide the width.
        assert!(shape(384, 7, 7).check(true).is_ok());
        assert!(shape(384, 12, 5).check(false).is_err());
    }
}
