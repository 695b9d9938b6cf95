//! The crate's error type.

use std::path::PathBuf;

/// Result alias used throughout rembed.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while loading a model or embedding text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Occurs when a model name is neither a registry entry, a Hugging Face repo id nor a directory.
    #[error("unknown model `{name}`{}", suggest(.suggestions))]
    UnknownModel {
        /// What the caller asked for.
        name: String,
        /// Registry names and aliases that are spelled closest to it.
        suggestions: Vec<String>,
    },

    /// Occurs when a file the model needs is absent from its directory or repo.
    #[error("model `{model}` has no `{file}`")]
    MissingFile {
        /// The model directory or repo id.
        model: String,
        /// The file name inside it.
        file: String,
    },

    /// Occurs when a model ships only pickle weights, which rembed never executes.
    #[error("model `{model}` has only pickle weights ({file}); convert them to safetensors first (e.g. with `safetensors.torch.save_file` in Python)")]
    PickleWeights {
        /// The model directory or repo id.
        model: String,
        /// The pickle file that was found.
        file: String,
    },

    /// Occurs when a file cannot be read.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// Occurs when a JSON or TOML file does not parse or lacks a required field.
    #[error("malformed {}: {reason}", .path.display())]
    Malformed {
        /// The offending file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },

    /// Occurs when `config.json` names an architecture rembed does not implement.
    #[error("model `{model}` has architecture `{architecture}`, which rembed does not support (supported: {supported})")]
    UnsupportedArchitecture {
        /// The model directory or repo id.
        model: String,
        /// The `model_type` found.
        architecture: String,
        /// Comma-separated supported architectures.
        supported: String,
    },

    /// Occurs when an output dimension is asked for that the model was not trained to produce.
    #[error(
        "model `{model}` cannot produce {requested}-dimensional vectors; it can produce {supported}"
    )]
    UnsupportedDimension {
        /// The model name.
        model: String,
        /// The requested dimension.
        requested: usize,
        /// The dimensions the model supports, in words (`any of 32 to 1024`, `256 or 768`).
        supported: String,
    },

    /// Occurs when an option holds a value that cannot work (zero token budget, a bad device string).
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// Occurs when a CUDA device is asked for but the crate was built without the `cuda` feature
    /// or no such device is present.
    #[error("device `{device}` is not available: {reason}")]
    DeviceUnavailable {
        /// The device asked for.
        device: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// Occurs when the Hugging Face hub cannot provide a file (offline, network, missing repo).
    #[error("cannot fetch `{file}` of `{repo}` from the Hugging Face hub: {reason}")]
    Hub {
        /// The repo id.
        repo: String,
        /// The file asked for.
        file: String,
        /// What went wrong.
        reason: String,
    },

    /// Occurs when the tokenizer fails on a file or an input.
    #[error("tokenizer of `{model}`: {reason}")]
    Tokenizer {
        /// The model name.
        model: String,
        /// What the tokenizer said.
        reason: String,
    },

    /// Occurs when a pre-tokenized input cannot be fed to the model (empty, too long, or an id
    /// outside the vocabulary).
    #[error("input {index}: {reason}")]
    InvalidInput {
        /// Position of the input in the caller's slice.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// Occurs when a single input does not fit in device memory even alone.
    #[error("input {index} ({tokens} tokens) does not fit in device memory even alone: {reason}")]
    OutOfMemory {
        /// Position of the input in the caller's slice.
        index: usize,
        /// Its token count after truncation.
        tokens: usize,
        /// The device's own message.
        reason: String,
    },

    /// Occurs when a task instruction is given to a model whose queries take none (it has no
    /// `query_template`).
    #[error(
        "model `{model}` takes no task instruction (it has no query_template); use Prompt::Text for a free-form prompt"
    )]
    UnsupportedTask {
        /// The model name.
        model: String,
    },

    /// Occurs when sparse or ColBERT output is asked for but the head's weights are not in the
    /// model directory as safetensors (bge-m3 publishes them as pickle `.pt` files, which rembed
    /// never loads; the README shows the one-line conversion).
    #[error("model `{model}` has no `{file}`: convert its `{pickle}` to safetensors (see the README, \"bge-m3\")")]
    MissingHead {
        /// The model name.
        model: String,
        /// The safetensors file looked for.
        file: String,
        /// The published pickle file it is converted from.
        pickle: String,
    },

    /// Occurs when the model produces a vector that is not finite (NaN or infinity) for an input:
    /// f16 overflow on a large model, or broken weights. Retrying in bf16 or f32 usually helps.
    #[error("input {index} ({tokens} tokens): the model produced a vector that is not finite (NaN or infinity); f16 can overflow on large models (use bf16 or f32), or the weights are broken")]
    NotFinite {
        /// Position of the input in the caller's slice.
        index: usize,
        /// Its token count after truncation.
        tokens: usize,
    },

    /// Occurs when rembed breaks one of its own invariants (an input neither embedded nor
    /// reported failed). A bug: please report it with the message.
    #[error("internal error: {reason}")]
    Internal {
        /// What went wrong.
        reason: String,
    },

    /// Occurs when an `ollama:` model is not in Ollama's store: no store, no manifest for the
    /// tag, no model layer in the manifest, or no blob for it.
    #[error("Ollama model `{model}`: {missing} (looked at {})", .path.display())]
    OllamaNotFound {
        /// `NAME:TAG` as resolved.
        model: String,
        /// What was missing.
        missing: OllamaMissing,
        /// Where rembed looked for it.
        path: PathBuf,
    },

    /// Occurs when a file's SHA-256 differs from the digest it is stored under (an interrupted
    /// download, or a file changed since).
    #[error("{} does not match its digest: expected sha256 {expected}, found {actual}", .path.display())]
    DigestMismatch {
        /// The file.
        path: PathBuf,
        /// The digest it should have.
        expected: String,
        /// The digest it has.
        actual: String,
    },

    /// Occurs when a file given as a GGUF model is not one (wrong magic, truncated header).
    #[error("{} is not a GGUF file: {reason}", .path.display())]
    NotGguf {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// Occurs when the tensor library fails (shape mismatch in a checkpoint, kernel failure).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// What was missing from Ollama's store (see [`Error::OllamaNotFound`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OllamaMissing {
    /// The store directory itself (`$OLLAMA_MODELS`, else `~/.ollama/models`).
    Store,
    /// The tag's manifest: the model was never pulled, or under another tag.
    Manifest,
    /// A layer of media type `application/vnd.ollama.image.model` in the manifest.
    ModelLayer,
    /// The blob the manifest names.
    Blob,
}

impl std::fmt::Display for OllamaMissing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Store => "no Ollama model store (set OLLAMA_MODELS to its directory)",
            Self::Manifest => "not pulled: no manifest for this tag (`ollama pull` it)",
            Self::ModelLayer => "the manifest lists no model layer",
            Self::Blob => "the model blob is missing from the store",
        })
    }
}

fn suggest(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", suggestions.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_model_lists_suggestions() {
        let e = Error::UnknownModel {
            name: "minilm".into(),
            suggestions: vec!["all-minilm-l6-v2".into()],
        };
        assert_eq!(
            e.to_string(),
            "unknown model `minilm`; did you mean all-minilm-l6-v2?"
        );
    }
}
