//! [`Embeddings`]: what an [`Embedder::embed_with`](crate::Embedder::embed_with) call returns.

use std::ops::Range;

use ndarray::Array2;

use crate::halving::Failure;
use crate::models::heads::SparseEmbedding;

/// The result of a call: one row per input, in input order, and whatever else was asked for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Embeddings {
    /// One row per input. With [`Request::keep_going`](crate::Request::keep_going), rows of
    /// failed inputs are zero and the inputs are listed in `failures`.
    pub dense: Array2<f32>,
    /// Lexical weights per input, when asked for ([`Request::with_sparse`](crate::Request::with_sparse)).
    pub sparse: Option<Vec<SparseEmbedding>>,
    /// ColBERT vectors per input, `(tokens - 1, width)`, when asked for
    /// ([`Request::with_colbert`](crate::Request::with_colbert)).
    pub colbert: Option<Vec<Array2<f32>>>,
    /// Each input's chunks, when long texts are split
    /// ([`LongText::Chunks`](crate::LongText::Chunks)).
    pub chunks: Option<Vec<Chunks>>,
    /// Inputs that could not be embedded, by index (only with `keep_going`; otherwise the
    /// call fails instead).
    pub failures: Vec<Failure>,
    /// Tokens fed to the model (after truncation, before padding).
    pub tokens: usize,
    /// Inputs cut at the max length.
    pub truncated: usize,
    /// How often a batch was halved after running out of device memory.
    pub splits: usize,
}

/// A long text embedded as consecutive chunks, each within the model's max length.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Chunks {
    /// Byte range of each chunk in the text, in text order.
    pub ranges: Vec<Range<usize>>,
    /// One row per chunk.
    pub vectors: Array2<f32>,
}
