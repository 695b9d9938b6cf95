//! GGUF models: `ollama:NAME[:TAG]` (Ollama's store) or a path ending in `.gguf`. The network's
//! shape, pooling and context length come from the file's metadata, its tokenizer from
//! `tokenizer.ggml.*`; prompts, Matryoshka dimensions and the end token from the registry entry
//! the Ollama name is an alias of (`qwen3-embedding:8b`), else the architecture's conventions.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::files::ModelFiles;
use super::merge::merge;
use super::sentence_transformers::StSettings;
use crate::error::{Error, OllamaMissing, Result};
use crate::gguf::{ollama, GgufFile};
use crate::models::heads::HeadFiles;
use crate::options::Options;
use crate::registry::{ModelSpec, Registry};
use crate::weights::WeightSource;

/// The GGUF model `model` names, or `None` when it names no GGUF model.
pub(crate) fn load(
    model: &str,
    registry: &Registry,
    options: &Options,
) -> Result<Option<ModelFiles>> {
    let (path, registered) = if let Some(reference) = model.strip_prefix(ollama::PREFIX) {
        let store = ollama::default_store().ok_or_else(|| Error::OllamaNotFound {
            model: reference.to_string(),
            missing: OllamaMissing::Store,
            path: PathBuf::from("~/.ollama/models"),
        })?;
        (
            ollama::resolve(&store, reference)?,
            ollama_entry(registry, reference),
        )
    } else if Path::new(model)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
    {
        (PathBuf::from(model), None)
    } else {
        return Ok(None);
    };
    let file = GgufFile::open(&path)?;
    let config = file.config()?;
    let shape = config.shape()?;
    let architecture = file.architecture();
    if let Some(spec) = registered
        .as_ref()
        .filter(|s| s.architecture != architecture)
    {
        return Err(file.malformed(format!(
            "architecture `{architecture}`, but the registry lists `{}` as `{}`",
            spec.name, spec.architecture
        )));
    }
    let facts = file.facts()?;
    let base = match registered {
        Some(spec) => spec,
        None => {
            let conventions = registry.conventions(architecture).ok_or_else(|| {
                file.malformed(format!("no [architecture.{architecture}] conventions"))
            })?;
            ModelSpec::from_conventions(
                model,
                architecture,
                conventions,
                shape.hidden,
                Some(facts.context_length),
            )
        }
    };
    // What llama.cpp and Ollama do with these files: the file's pooling, vectors normalized,
    // inputs up to the context length.
    let settings = StSettings {
        pooling: facts.pooling,
        normalize: Some(true),
        max_length: Some(facts.context_length),
        ..StSettings::default()
    };
    let mut spec = merge(base, &settings, &shape, options)?;
    // The weights are this file, not the registry's Hugging Face repo: nothing downstream (the
    // corpus job's provenance) may take the repo's files for them.
    spec.repo.clear();
    let tokenizer = file.tokenizer(&spec.name)?;
    Ok(Some(ModelFiles {
        spec,
        config,
        tokenizer,
        weights: WeightSource::Gguf(Arc::new(file)),
        heads: HeadFiles::default(),
    }))
}

/// The registry entry of an Ollama model: `NAME:TAG` as an alias, else `NAME:` and the tag's
/// size part (`8b` of `8b-q4_K_M`), else none: a quantization tag names the same model.
fn ollama_entry(registry: &Registry, reference: &str) -> Option<ModelSpec> {
    let (name, tag) = ollama::name_and_tag(reference);
    let size = tag.split('-').next().unwrap_or(tag);
    registry
        .find(&format!("{name}:{tag}"))
        .or_else(|| registry.find(&format!("{name}:{size}")))
        .cloned()
}
