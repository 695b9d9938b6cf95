//! Settling a model's metadata in three layers: the registry (its entry, or its architecture's
//! conventions), then the model directory's own sentence-transformers files, then the caller's
//! options. No model fact lives here: each comes from `models.toml`, the model's files or its
//! config.

use super::sentence_transformers::StSettings;
use crate::error::{Error, Result};
use crate::models::shape::Shape;
use crate::options::Options;
use crate::registry::ModelSpec;

/// `base` (the registry's) overridden by the directory's `settings`, then by `options`, for a
/// network of `shape`.
pub(crate) fn merge(
    mut spec: ModelSpec,
    settings: &StSettings,
    shape: &Shape,
    options: &Options,
) -> Result<ModelSpec> {
    if let Some(revision) = &options.revision {
        spec.revision = revision.clone();
    }
    spec.dim = shape.hidden;
    spec.matryoshka_dims.retain(|&d| d < shape.hidden);
    if let Some(pooling) = settings.pooling {
        spec.pooling = pooling;
    }
    if let Some(normalize) = options.normalize.or(settings.normalize) {
        spec.normalize = normalize;
    }
    // sentence-transformers' order: sentence_bert_config.json, else the tokenizer's limit.
    if let Some(max_length) = settings.max_length.or(settings.tokenizer_max_length) {
        spec.max_length = max_length;
    }
    // Absolute position tables cap the input length whatever the files say.
    if let Some(capacity) = shape.position_capacity {
        spec.max_length = spec.max_length.min(capacity);
    }
    if let Some(max_length) = options.max_length {
        let capacity = shape.position_capacity.unwrap_or(usize::MAX);
        if max_length == 0 || max_length > capacity {
            return Err(Error::InvalidOption {
                option: "max_length",
                reason: format!(
                    "{max_length} tokens: `{}` accepts 1 to {capacity}",
                    spec.name
                ),
            });
        }
        spec.max_length = max_length;
    }
    if let Some(prompt) = &settings.query_prompt {
        spec.query_prompt = prompt.clone();
    }
    if let Some(prompt) = &settings.document_prompt {
        spec.document_prompt = prompt.clone();
    }
    Ok(spec)
}
