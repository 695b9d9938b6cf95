//! Texts longer than the model reads, embedded as chunks that each fit (see
//! [`LongText::Chunks`](crate::LongText::Chunks)), so no part of a text is silently truncated.

use ndarray::{Array1, Array2, Axis};

use crate::chunk::{CountTokens, TextSplitter};
use crate::error::{Error, Result};
use crate::halving::Failure;
use crate::output::{Chunks, Embeddings};
use crate::run::{self, Plan};
use crate::tokenize::TextTokenizer;

/// Splits every text into chunks that fit with `prompt` in front, embeds all chunks in one run
/// and gives each text the mean of its chunk vectors (re-normalized when the model normalizes:
/// the mean of unit vectors is shorter than 1, which would skew dot-product scores). Every
/// chunk weighs the same, however short. An empty text is one empty chunk, as a plain call
/// would embed it. A text fails if any of its chunks does.
pub(crate) fn embed_chunked(
    plan: &Plan<'_>,
    tokenizer: &TextTokenizer,
    texts: &[&str],
    prompt: &str,
    overlap_tokens: usize,
) -> Result<Embeddings> {
    if plan.sparse || plan.colbert {
        return Err(Error::InvalidOption {
            option: "long_text",
            reason: "sparse and ColBERT outputs are per token; ask for them without chunking"
                .into(),
        });
    }
    let counter = tokenizer.counter(prompt);
    // The overlap is counted like a chunk, prompt and special tokens included.
    let fixed = if overlap_tokens == 0 {
        0
    } else {
        counter.count_tokens("")?
    };
    let splitter = TextSplitter::new(tokenizer.max_length()).with_overlap(overlap_tokens + fixed);
    let mut owners = Vec::new();
    let mut pieces: Vec<&str> = Vec::new();
    let mut ranges = Vec::with_capacity(texts.len());
    for (index, text) in texts.iter().enumerate() {
        let chunks = splitter.split(text, &counter)?;
        let text_ranges: Vec<_> = if chunks.is_empty() {
            pieces.push("");
            std::iter::once(0..0).collect()
        } else {
            pieces.extend(chunks.iter().map(|c| c.text));
            chunks.iter().map(|c| c.range.clone()).collect()
        };
        owners.extend(std::iter::repeat_n(index, text_ranges.len()));
        ranges.push(text_ranges);
    }

    let tokens = tokenizer.encode_all(&pieces, prompt)?;
    let lengths: Vec<usize> = tokens.iter().map(|t| t.ids.len()).collect();
    let run = run::run(plan, tokens)?;
    let mut failed = vec![None; texts.len()];
    for failure in run.failures {
        let owner = owners[failure.index];
        failed[owner].get_or_insert(Failure {
            index: owner,
            tokens: lengths
                .iter()
                .zip(&owners)
                .filter(|(_, &o)| o == owner)
                .map(|(l, _)| l)
                .sum(),
            ..failure
        });
    }

    let dim = run.dense.ncols();
    let mut dense = Array2::zeros((texts.len(), dim));
    let mut chunks = Vec::with_capacity(texts.len());
    let mut first = 0;
    for (index, text_ranges) in ranges.into_iter().enumerate() {
        let count = text_ranges.len();
        let vectors = run
            .dense
            .slice(ndarray::s![first..first + count, ..])
            .to_owned();
        first += count;
        if failed[index].is_none() {
            dense
                .row_mut(index)
                .assign(&mean(&vectors, plan.post.normalize));
        }
        chunks.push(Chunks {
            ranges: text_ranges,
            vectors,
        });
    }
    Ok(Embeddings {
        dense,
        sparse: None,
        colbert: None,
        chunks: Some(chunks),
        failures: failed.into_iter().flatten().collect(),
        tokens: run.tokens,
        truncated: run.truncated,
        splits: run.splits,
    })
}

/// The mean of chunk vectors, re-normalized to unit length when `normalize`.
fn mean(vectors: &Array2<f32>, normalize: bool) -> Array1<f32> {
    let mut mean = vectors
        .mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(vectors.ncols()));
    if normalize {
        let norm = mean.dot(&mean).sqrt();
        if norm > 0.0 {
            mean /= norm;
        }
    }
    mean
}
