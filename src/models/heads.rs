//! Output heads some checkpoints train on top of the encoder, beside the pooled dense vector:
//! bge-m3's sparse lexical weights (`sparse_linear`) and ColBERT multi-vectors
//! (`colbert_linear`). One forward pass of the encoder feeds all of them.
//!
//! Reference: FlagEmbedding's `BGEM3FlagModel` (`_process_token_weights`,
//! `_process_colbert_vecs`) and its BGE-M3 model (`sparse_embedding`, `colbert_embedding`).
//!
//! The heads are loaded from `sparse_linear.safetensors` and `colbert_linear.safetensors` beside
//! the model's weights, whatever the architecture; bge-m3 publishes them as pickles, which rembed
//! never unpickles (the README shows the one-line conversion).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use ndarray::Array2;

use super::encoder::ModelInput;
use crate::layers::linear::Linear;
use crate::pooling::l2_normalize;

/// A text's lexical weights: `relu(sparse_linear(h))` per token, the largest per token id, special
/// tokens dropped, only positive weights kept. Sorted by token id, ready for a sparse index.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SparseEmbedding {
    /// Token ids, ascending.
    pub indices: Vec<u32>,
    /// The weight of each id.
    pub values: Vec<f32>,
}

/// The file of each head beside `model.safetensors`, and the pickle it is converted from.
pub(crate) const SPARSE_FILE: (&str, &str) = ("sparse_linear.safetensors", "sparse_linear.pt");
pub(crate) const COLBERT_FILE: (&str, &str) = ("colbert_linear.safetensors", "colbert_linear.pt");

/// Where a model's heads are, as the loader found them.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeadFiles {
    pub sparse: Option<PathBuf>,
    pub colbert: Option<PathBuf>,
    /// Tokens that get no lexical weight (the cls, eos, pad and unk tokens).
    pub special: Vec<u32>,
}

/// The heads of a model on one device; empty for models that ship none.
#[derive(Default)]
pub(crate) struct Heads {
    sparse: Option<Linear>,
    colbert: Option<Linear>,
    special: Vec<u32>,
}

/// A head's weights could not be read; the caller names the file.
pub(crate) struct HeadError {
    pub path: PathBuf,
    pub source: candle_core::Error,
}

impl Heads {
    /// Loads whichever heads the files name, in f32 (they run on f32 hidden states).
    pub(crate) fn load(files: &HeadFiles, device: &Device) -> Result<Self, HeadError> {
        Ok(Self {
            sparse: files
                .sparse
                .as_deref()
                .map(|p| linear(p, device))
                .transpose()?,
            colbert: files
                .colbert
                .as_deref()
                .map(|p| linear(p, device))
                .transpose()?,
            special: files.special.clone(),
        })
    }

    pub(crate) fn has_sparse(&self) -> bool {
        self.sparse.is_some()
    }

    pub(crate) fn has_colbert(&self) -> bool {
        self.colbert.is_some()
    }

    /// Lexical weights of each row of a batch's f32 hidden states `(B, L, H)`.
    pub(crate) fn sparse(
        &self,
        hidden: &Tensor,
        input: &ModelInput,
    ) -> candle_core::Result<Vec<SparseEmbedding>> {
        let head = self.sparse.as_ref().ok_or_else(|| missing("sparse"))?;
        let ids = input.input_ids.to_vec2::<u32>()?;
        // (B, L, H) -> (B, L, 1) -> (B, L)
        let weights = head.forward(hidden)?.relu()?.squeeze(2)?.to_vec2::<f32>()?;
        Ok(ids
            .iter()
            .zip(&weights)
            .zip(&input.lengths)
            .map(|((ids, weights), &len)| {
                let mut best: BTreeMap<u32, f32> = BTreeMap::new();
                for (&id, &w) in ids[..len].iter().zip(&weights[..len]) {
                    if w > 0.0 && !self.special.contains(&id) {
                        let entry = best.entry(id).or_insert(w);
                        *entry = entry.max(w);
                    }
                }
                SparseEmbedding {
                    indices: best.keys().copied().collect(),
                    values: best.values().copied().collect(),
                }
            })
            .collect())
    }

    /// ColBERT vectors of each row of a batch's f32 hidden states `(B, L, H)`: one normalized
    /// row per token after the first (the closing special token included, as FlagEmbedding
    /// keeps it), `(tokens - 1, out)`.
    pub(crate) fn colbert(
        &self,
        hidden: &Tensor,
        input: &ModelInput,
    ) -> candle_core::Result<Vec<Array2<f32>>> {
        let head = self.colbert.as_ref().ok_or_else(|| missing("colbert"))?;
        let (batch, seq_len, _) = hidden.dims3()?;
        let out_dim = head.out_features();
        if seq_len < 2 {
            return Ok(vec![Array2::zeros((0, out_dim)); batch]);
        }
        // Tokens after the first: (B, L - 1, out), each normalized; padding rows are cut below.
        let vectors = head.forward(&hidden.narrow(1, 1, seq_len - 1)?)?;
        let vectors = l2_normalize(&vectors)?.to_vec3::<f32>()?;
        vectors
            .into_iter()
            .zip(&input.lengths)
            .map(|(rows, &len)| {
                let tokens = len.saturating_sub(1);
                let flat: Vec<f32> = rows.into_iter().take(tokens).flatten().collect();
                Array2::from_shape_vec((tokens, out_dim), flat)
                    .map_err(|e| candle_core::Error::Msg(e.to_string()))
            })
            .collect()
    }
}

fn missing(head: &str) -> candle_core::Error {
    candle_core::Error::Msg(format!("the model has no {head} head"))
}

/// One linear head: `weight` and `bias`, as the `.pt` state dicts hold them.
fn linear(path: &Path, device: &Device) -> Result<Linear, HeadError> {
    let failed = |source| HeadError {
        path: path.to_path_buf(),
        source,
    };
    // SAFETY: memory-mapped like the model weights, and read once here.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[path], DType::F32, device) }
        .map_err(failed)?;
    let weight = vb.get_unchecked("weight").map_err(failed)?;
    let bias = vb.get_unchecked("bias").map_err(failed)?;
    Linear::new(weight, Some(bias)).map_err(failed)
}
