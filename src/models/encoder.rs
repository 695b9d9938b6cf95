//! What every network receives and returns, so the batching and pooling code needs to know no
//! architecture.

use candle_core::Tensor;

/// One padded batch, as every model receives it.
pub(crate) struct ModelInput {
    /// `(B, L)` u32 token ids, right-padded.
    pub input_ids: Tensor,
    /// Real tokens per row.
    pub lengths: Vec<usize>,
}

/// A loaded network: token ids in, hidden states `(B, L, H)` out, in the compute dtype.
pub(crate) trait Encoder: Send + Sync {
    fn forward(&self, input: &ModelInput) -> candle_core::Result<Tensor>;
}
