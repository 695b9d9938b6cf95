//! bge-m3's two other outputs beside the dense vector: sparse lexical weights and ColBERT
//! multi-vectors, from the `sparse_linear` and `colbert_linear` heads FlagEmbedding trained on
//! top of the XLM-RoBERTa encoder. One forward pass gives all three.
//!
//! Reference: FlagEmbedding's `BGEM3FlagModel` (`_process_token_weights`,
//! `_process_colbert_vecs`) and its BGE-M3 model (`sparse_embedding`, `colbert_embedding`).
//!
//! # The head weights
//!
//! bge-m3 publishes the heads as PyTorch pickles (`sparse_linear.pt`, `colbert_linear.pt`) and
//! rembed never unpickles: unpickling can run arbitrary code. Convert them once, offline, into
//! `sparse_linear.safetensors` and `colbert_linear.safetensors` beside `model.safetensors` (in a
//! local copy of the model, or in the hub cache's snapshot directory):
//!
//! ```text
//! python3 -c "
//! import torch; from safetensors.torch import save_file
//! for name in ['sparse_linear', 'colbert_linear']:
//!     state = torch.load(name + '.pt', map_location='cpu', weights_only=True)
//!     save_file({k: v.contiguous() for k, v in state.items()}, name + '.safetensors')"
//! ```
//!
//! `weights_only=True` makes PyTorch refuse anything but tensors, so the conversion runs no code
//! from the file either. Each file holds `weight` and `bias`, as the `.pt` state dicts do.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use ndarray::Array2;
use tokenizers::Tokenizer;

use crate::embedder::{Embedder, Role};
use crate::error::{Error, Result};
use crate::loader::{read_json, FileSource};
use crate::models::ModelInput;
use crate::pooling::l2_normalize;
use crate::replicas::Replica;

/// All three bge-m3 outputs for a list of texts, in input order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BgeM3Output {
    /// Dense vectors, one row per text: CLS, normalized (as [`Embedder::embed`] returns them).
    pub dense: Array2<f32>,
    /// Lexical weights per text.
    pub sparse: Vec<SparseEmbedding>,
    /// ColBERT vectors per text: one L2-normalized row per token after `<s>` (the closing `</s>`
    /// included, as FlagEmbedding keeps it), `(tokens − 1, hidden)`.
    pub colbert: Vec<Array2<f32>>,
}

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

/// The heads, loaded with the model when its directory has them.
#[derive(Default)]
pub(crate) struct Heads {
    sparse: Option<Linear>,
    colbert: Option<Linear>,
    /// Tokens that get no lexical weight: `<s>`, `</s>`, `<pad>`, `<unk>` (FlagEmbedding's cls,
    /// eos, pad and unk tokens).
    special: Vec<u32>,
}

const SPARSE: (&str, &str) = ("sparse_linear.safetensors", "sparse_linear.pt");
const COLBERT: (&str, &str) = ("colbert_linear.safetensors", "colbert_linear.pt");

impl Heads {
    /// Loads whichever heads the model has, in f32 (they run on f32 hidden states).
    pub(crate) fn load(
        source: &dyn FileSource,
        tokenizer: &Tokenizer,
        device: &Device,
    ) -> Result<Self> {
        let linear = |file: &str| -> Result<Option<Linear>> {
            let Some(path) = source.get(file)? else {
                return Ok(None);
            };
            let malformed = |e: candle_core::Error| Error::Malformed {
                path: path.clone(),
                reason: e.to_string(),
            };
            // SAFETY: memory-mapped like the model weights, and read once here.
            let vb = unsafe {
                VarBuilder::from_mmaped_safetensors(std::slice::from_ref(&path), DType::F32, device)
            }
            .map_err(malformed)?;
            let weight = vb.get_unchecked("weight").map_err(malformed)?;
            let bias = vb.get_unchecked("bias").map_err(malformed)?;
            Ok(Some(Linear::new(weight, Some(bias))))
        };
        let sparse = linear(SPARSE.0)?;
        let colbert = linear(COLBERT.0)?;
        let special = if sparse.is_some() {
            special_tokens(source, tokenizer)?
        } else {
            Vec::new()
        };
        Ok(Self {
            sparse,
            colbert,
            special,
        })
    }
}

/// The ids of the cls, eos, pad and unk tokens as `tokenizer_config.json` names them (XLM-R's
/// names where it does not).
fn special_tokens(source: &dyn FileSource, tokenizer: &Tokenizer) -> Result<Vec<u32>> {
    let config = match source.get("tokenizer_config.json")? {
        Some(path) => read_json(&path)?,
        None => serde_json::Value::Null,
    };
    let defaults = [
        ("cls_token", "<s>"),
        ("eos_token", "</s>"),
        ("pad_token", "<pad>"),
        ("unk_token", "<unk>"),
    ];
    let mut ids: Vec<u32> = defaults
        .iter()
        .filter_map(|(key, default)| {
            let named = config.get(key);
            // A plain string, or an added-token object with its text in `content`.
            let token = named
                .and_then(|v| v.as_str().or_else(|| v.get("content")?.as_str()))
                .unwrap_or(default);
            tokenizer.token_to_id(token)
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// One text's three outputs.
struct Row {
    dense: Vec<f32>,
    sparse: SparseEmbedding,
    colbert: Array2<f32>,
}

impl Embedder {
    /// bge-m3's dense, sparse and ColBERT outputs from one forward pass per batch, with the same
    /// batching, token budget and out-of-memory halving as [`Embedder::embed`] (documents: the
    /// model's document prompt, none for bge-m3).
    ///
    /// Needs `sparse_linear.safetensors` and `colbert_linear.safetensors` in the model directory;
    /// without them this fails with [`Error::MissingHead`]. The module docs of `bge_m3` show the
    /// conversion from the published `.pt` files:
    ///
    /// ```text
    /// python3 -c "
    /// import torch; from safetensors.torch import save_file
    /// for name in ['sparse_linear', 'colbert_linear']:
    ///     state = torch.load(name + '.pt', map_location='cpu', weights_only=True)
    ///     save_file({k: v.contiguous() for k, v in state.items()}, name + '.safetensors')"
    /// ```
    pub fn embed_all<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<BgeM3Output> {
        let missing = |(file, pickle): (&str, &str)| Error::MissingHead {
            model: self.spec().name.clone(),
            file: file.to_string(),
            pickle: pickle.to_string(),
        };
        // Every replica loaded the same files, so the first tells whether the heads exist.
        let first = &self.replicas()[0].bge_m3;
        first.sparse.as_ref().ok_or_else(|| missing(SPARSE))?;
        first.colbert.as_ref().ok_or_else(|| missing(COLBERT))?;
        let per_batch = |replica: &Replica, hidden: &Tensor, input: &ModelInput| {
            let heads = &replica.bge_m3;
            match (&heads.sparse, &heads.colbert) {
                (Some(sparse), Some(colbert)) => {
                    self.all_outputs(hidden, input, sparse, colbert, &heads.special)
                }
                _ => Err(candle_core::Error::Msg(
                    "bge-m3 heads missing on a replica".into(),
                )),
            }
        };
        let tokens = self.tokenize(texts, self.prompt(Role::Document))?;
        let run = self.run_batches(tokens, false, &per_batch)?;

        let mut rows: Vec<Option<Row>> = (0..texts.len()).map(|_| None).collect();
        for (index, row) in run.outcome.rows {
            rows[index] = Some(row);
        }
        let mut dense = Array2::zeros((texts.len(), self.dim()));
        let mut out_sparse = Vec::with_capacity(texts.len());
        let mut out_colbert = Vec::with_capacity(texts.len());
        for (i, row) in rows.into_iter().enumerate() {
            // Without keep-going every input either has a row or the call failed above.
            let row = row.ok_or_else(|| {
                Error::Candle(candle_core::Error::Msg(format!(
                    "input {i} was not embedded"
                )))
            })?;
            dense
                .row_mut(i)
                .assign(&ndarray::ArrayView1::from(&row.dense));
            out_sparse.push(row.sparse);
            out_colbert.push(row.colbert);
        }
        Ok(BgeM3Output {
            dense,
            sparse: out_sparse,
            colbert: out_colbert,
        })
    }

    /// The three outputs of one batch's hidden states `(B, L, H)`.
    fn all_outputs(
        &self,
        hidden: &Tensor,
        input: &ModelInput,
        sparse: &Linear,
        colbert: &Linear,
        special: &[u32],
    ) -> candle_core::Result<Vec<Row>> {
        let dense = self.pool(hidden, input)?.to_vec2::<f32>()?;
        let hidden = hidden.to_dtype(DType::F32)?;
        let (batch, seq_len, _) = hidden.dims3()?;
        let ids = input.input_ids.to_vec2::<u32>()?;
        // (B, L, H) -> (B, L, 1) -> (B, L)
        let weights = sparse
            .forward(&hidden)?
            .relu()?
            .squeeze(2)?
            .to_vec2::<f32>()?;
        // Tokens after <s>: (B, L - 1, H), each normalized; padding rows are cut below.
        let vectors = if seq_len > 1 {
            let v = colbert.forward(&hidden.narrow(1, 1, seq_len - 1)?)?;
            l2_normalize(&v)?.to_vec3::<f32>()?
        } else {
            vec![Vec::new(); batch]
        };
        let out_dim = colbert.weight().dim(0)?;

        let mut rows = Vec::with_capacity(batch);
        for (b, ((dense, vectors), &len)) in dense
            .into_iter()
            .zip(vectors)
            .zip(&input.lengths)
            .enumerate()
        {
            let mut best: std::collections::BTreeMap<u32, f32> = Default::default();
            for (&id, &w) in ids[b][..len].iter().zip(&weights[b][..len]) {
                if w > 0.0 && !special.contains(&id) {
                    let entry = best.entry(id).or_insert(w);
                    *entry = entry.max(w);
                }
            }
            let tokens = len.saturating_sub(1);
            let flat: Vec<f32> = vectors.into_iter().take(tokens).flatten().collect();
            let colbert = Array2::from_shape_vec((tokens, out_dim), flat)
                .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
            rows.push(Row {
                dense,
                sparse: SparseEmbedding {
                    indices: best.keys().copied().collect(),
                    values: best.values().copied().collect(),
                },
                colbert,
            });
        }
        Ok(rows)
    }
}
