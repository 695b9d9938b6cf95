//! What the loader hands the embedder: everything a model is built from.

use tokenizers::Tokenizer;

use crate::models::heads::HeadFiles;
use crate::models::Config;
use crate::registry::ModelSpec;
use crate::weights::WeightSource;

/// A model found and read, ready to be put on devices.
pub(crate) struct ModelFiles {
    pub spec: ModelSpec,
    pub config: Config,
    pub tokenizer: Tokenizer,
    /// Safetensors files (shards in index order), or a GGUF file.
    pub weights: WeightSource,
    pub heads: HeadFiles,
}
