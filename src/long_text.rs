//! [`Embedder::embed_long`]: embedding a text longer than the model's max length as its chunks,
//! so no part of it is silently truncated.

use std::ops::Range;

use ndarray::{Array1, Array2, Axis};

use crate::chunk::{CountTokens, TextSplitter};
use crate::embedder::Embedder;
use crate::error::{Error, Result};

/// A long text embedded as consecutive chunks, each within the model's max length.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LongEmbedding {
    /// Byte range of each chunk in the text, in text order.
    pub ranges: Vec<Range<usize>>,
    /// One row per chunk, as [`Embedder::embed`] returns it.
    pub embeddings: Array2<f32>,
    /// Whether the model normalizes its vectors, and so whether [`LongEmbedding::mean`] does.
    normalized: bool,
}

impl LongEmbedding {
    /// The mean of the chunk vectors, re-normalized to unit length when the model's vectors are
    /// (the mean of unit vectors is shorter than 1, which would skew dot-product scores). Every
    /// chunk weighs the same, however short: a document's last, partial chunk counts as much as
    /// the others.
    pub fn mean(&self) -> Array1<f32> {
        let mut mean = self
            .embeddings
            .mean_axis(Axis(0))
            .unwrap_or_else(|| Array1::zeros(self.embeddings.ncols()));
        if self.normalized {
            let norm = mean.dot(&mean).sqrt();
            if norm > 0.0 {
                mean /= norm;
            }
        }
        mean
    }
}

/// Counts a chunk as the embedder will see it: document prompt, text and special tokens, with the
/// embedder's own (truncating) tokenizer. Only "fits or not" matters: an encoding shorter than
/// the max length was not truncated and its count is exact; one that reaches the max length may
/// have been cut (a truncating tokenizer stops tokenizing there, and one without special tokens
/// leaves no trace of the cut), so it is reported as over. That costs at most one token of room
/// and spares cloning the tokenizer on every call.
struct Prompted<'a> {
    embedder: &'a Embedder,
    prompt: &'a str,
}

impl CountTokens for Prompted<'_> {
    fn count_tokens(&self, text: &str) -> Result<usize> {
        let encoding = self
            .embedder
            .tokenizer()
            .encode(format!("{}{text}", self.prompt), true)
            .map_err(|e| Error::Tokenizer {
                model: self.embedder.spec().name.clone(),
                reason: e.to_string(),
            })?;
        let max_length = self.embedder.spec().max_length;
        if encoding.get_overflowing().is_empty() && encoding.len() < max_length {
            Ok(encoding.len())
        } else {
            Ok(max_length + 1)
        }
    }
}

impl Embedder {
    /// Embeds a text of any length as document chunks that each fit the model's max length (see
    /// [`TextSplitter`] for where it breaks), with consecutive chunks sharing up to
    /// `overlap_tokens` tokens. Returns each chunk's vector and byte range;
    /// [`LongEmbedding::mean`] gives one vector for the whole text.
    ///
    /// Chunks are sized with the model's document prompt counted in, even when prompts are
    /// turned off, so they always fit. An empty text is embedded as one empty chunk, as
    /// [`Embedder::embed`] would.
    ///
    /// Fails with [`Error::InvalidOption`] when the overlap leaves no room in a chunk (it must be
    /// below the max length minus the prompt and special tokens), or with the embedder's own
    /// errors.
    pub fn embed_long(&self, text: &str, overlap_tokens: usize) -> Result<LongEmbedding> {
        let counter = Prompted {
            embedder: self,
            prompt: &self.spec().document_prompt,
        };
        // The overlap is counted like a chunk, prompt and special tokens included.
        let fixed = if overlap_tokens == 0 {
            0
        } else {
            counter.count_tokens("")?
        };
        let chunks = TextSplitter::new(self.spec().max_length)
            .with_overlap(overlap_tokens + fixed)
            .split(text, &counter)?;
        let (ranges, texts): (Vec<_>, Vec<_>) = if chunks.is_empty() {
            (std::iter::once(0..0).collect(), vec![""])
        } else {
            chunks.iter().map(|c| (c.range.clone(), c.text)).unzip()
        };
        Ok(LongEmbedding {
            ranges,
            embeddings: self.embed(&texts)?,
            normalized: self.spec().normalize,
        })
    }
}
