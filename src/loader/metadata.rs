//! Merging what is known about a model: registry defaults, overridden by the model directory's
//! own files, overridden by the caller's options.

use std::path::{Path, PathBuf};

use super::{read_json, FileSource, HubRepo, LocalDir, StSettings};
use crate::error::{Error, Result};
use crate::models::Architecture;
use crate::options::Options;
use crate::pooling::Pooling;
use crate::registry::{ModelSpec, Registry};

/// A model located and described, ready to have its tokenizer and weights read.
pub(crate) struct Located {
    pub spec: ModelSpec,
    pub source: Box<dyn FileSource>,
    pub settings: StSettings,
    pub config: serde_json::Value,
    pub config_path: PathBuf,
}

/// Finds `model` (directory, registry name or alias, or hub repo id) and settles its metadata.
pub(crate) fn locate(model: &str, options: &Options) -> Result<Located> {
    let mut registry = Registry::builtin();
    if let Some(file) = &options.registry_file {
        registry.extend_from_file(file)?;
    }
    let path = Path::new(model);
    let (source, registered): (Box<dyn FileSource>, Option<ModelSpec>) = if path.is_dir() {
        (Box::new(LocalDir(path.to_path_buf())), None)
    } else if let Some(spec) = registry.find(model) {
        let revision = options.revision.as_deref().unwrap_or(&spec.revision);
        (
            Box::new(HubRepo::open(
                &spec.repo,
                revision,
                options.cache_dir.clone(),
                options.offline,
            )?),
            Some(spec.clone()),
        )
    } else if looks_like_repo_id(model) {
        let revision = options.revision.as_deref().unwrap_or("main");
        (
            Box::new(HubRepo::open(
                model,
                revision,
                options.cache_dir.clone(),
                options.offline,
            )?),
            None,
        )
    } else if model.contains(std::path::MAIN_SEPARATOR) || model.starts_with('.') {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::ErrorKind::NotFound.into(),
        });
    } else {
        return Err(Error::UnknownModel {
            name: model.to_string(),
            suggestions: registry.suggestions(model),
        });
    };

    let settings = StSettings::read(source.as_ref())?;
    let config_path = source.require(&settings.transformer_file("config.json"))?;
    let config = read_json(&config_path)?;
    let model_type = config
        .get("model_type")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let architecture = Architecture::from_model_type(model_type).ok_or_else(|| {
        Error::UnsupportedArchitecture {
            model: source.describe(),
            architecture: model_type.to_string(),
            supported: "bert, xlm-roberta, nomic_bert, qwen3".into(),
        }
    })?;
    // A directory can still be a registry model, with its registry-only metadata (Matryoshka
    // dimensions, query template, ...): a hub snapshot folder, or a checkpoint whose config
    // names where it came from.
    let registered = registered.or_else(|| {
        path.is_dir()
            .then(|| directory_origin(path, &config))
            .flatten()
            .and_then(|origin| registry.find(&origin))
            .filter(|spec| spec.architecture == architecture)
            .cloned()
    });
    let spec = merge(
        model,
        source.as_ref(),
        registered,
        &settings,
        &config,
        &config_path,
        architecture,
        options,
    )?;
    Ok(Located {
        spec,
        source,
        settings,
        config,
        config_path,
    })
}

/// The repo a model directory came from: `models--owner--name/snapshots/<commit>` in a hub
/// cache, else `_name_or_path` in its `config.json`.
fn directory_origin(path: &Path, config: &serde_json::Value) -> Option<String> {
    let absolute = path.canonicalize().ok()?;
    let snapshot = absolute
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == "snapshots"))
        .and_then(Path::parent)
        .and_then(|repo| {
            repo.file_name()?
                .to_str()?
                .strip_prefix("models--")
                .map(|r| r.replace("--", "/"))
        });
    snapshot.or_else(|| config.get("_name_or_path")?.as_str().map(str::to_string))
}

/// `owner/name`: one slash, no path-like parts.
fn looks_like_repo_id(s: &str) -> bool {
    let mut parts = s.split('/');
    let valid = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None) if valid(a) && valid(b))
}

#[allow(clippy::too_many_arguments)]
fn merge(
    name: &str,
    source: &dyn FileSource,
    registered: Option<ModelSpec>,
    settings: &StSettings,
    config: &serde_json::Value,
    config_path: &Path,
    architecture: Architecture,
    options: &Options,
) -> Result<ModelSpec> {
    let field = |key: &str| config.get(key).and_then(|v| v.as_u64()).map(|v| v as usize);
    let hidden = field("hidden_size")
        .or_else(|| field("n_embd"))
        .ok_or_else(|| Error::Malformed {
            path: config_path.to_path_buf(),
            reason: "no `hidden_size`".into(),
        })?;
    let (default_pooling, default_normalize) = match architecture {
        Architecture::Qwen3 => (Pooling::LastToken, true),
        _ => (Pooling::Mean, false),
    };
    // Absolute position embeddings cap the input length; XLM-R's first positions are reserved.
    let position_capacity = match architecture {
        Architecture::Bert => field("max_position_embeddings"),
        Architecture::XlmRoberta => field("max_position_embeddings")
            .map(|p| p.saturating_sub(field("pad_token_id").unwrap_or(1) + 1)),
        _ => None,
    };

    let mut spec = registered.unwrap_or_else(|| ModelSpec {
        name: name.to_string(),
        aliases: Vec::new(),
        repo: if source.describe() == name && !Path::new(name).is_dir() {
            name.to_string()
        } else {
            String::new()
        },
        revision: options.revision.clone().unwrap_or_else(|| "main".into()),
        architecture,
        pooling: default_pooling,
        normalize: default_normalize,
        dim: hidden,
        matryoshka_dims: Vec::new(),
        // Qwen3-Embedding's conventions (every size truncates to 32..=dim, task instructions,
        // a final <|endoftext|>), for Qwen3 directories the registry does not know.
        matryoshka_min: (architecture == Architecture::Qwen3).then_some(32),
        max_length: field("max_position_embeddings").unwrap_or(512),
        query_prompt: String::new(),
        document_prompt: String::new(),
        query_template: (architecture == Architecture::Qwen3)
            .then(|| "Instruct: {task}\nQuery:".to_string()),
        end_token: (architecture == Architecture::Qwen3).then(|| "<|endoftext|>".to_string()),
        matryoshka_layer_norm: false,
        config: None,
    });
    if let Some(revision) = &options.revision {
        spec.revision = revision.clone();
    }
    spec.architecture = architecture;
    spec.dim = hidden;
    spec.matryoshka_dims.retain(|&d| d < hidden);
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
    if let Some(capacity) = position_capacity {
        spec.max_length = spec.max_length.min(capacity);
    }
    if let Some(max_length) = options.max_length {
        if max_length == 0 || position_capacity.is_some_and(|c| max_length > c) {
            return Err(Error::InvalidOption {
                option: "max_length",
                reason: format!(
                    "{max_length} tokens: `{}` accepts 1 to {}",
                    spec.name,
                    position_capacity.unwrap_or(usize::MAX)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_know_their_origin() {
        let tmp = tempfile::tempdir().unwrap();
        let snapshot = tmp
            .path()
            .join("models--nomic-ai--nomic-embed-text-v1.5/snapshots/abc");
        std::fs::create_dir_all(&snapshot).unwrap();
        let none = serde_json::json!({});
        assert_eq!(
            directory_origin(&snapshot, &none).as_deref(),
            Some("nomic-ai/nomic-embed-text-v1.5")
        );
        let named = serde_json::json!({"_name_or_path": "BAAI/bge-m3"});
        assert_eq!(
            directory_origin(tmp.path(), &named).as_deref(),
            Some("BAAI/bge-m3")
        );
        assert_eq!(directory_origin(tmp.path(), &none), None);
    }

    #[test]
    fn repo_ids() {
        assert!(looks_like_repo_id("BAAI/bge-m3"));
        assert!(looks_like_repo_id("nomic-ai/nomic-embed-text-v1.5"));
        assert!(!looks_like_repo_id("bge-m3"));
        assert!(!looks_like_repo_id("./x/y"));
        assert!(!looks_like_repo_id("a/b/c"));
    }

    #[test]
    fn unknown_names_and_missing_dirs() {
        let err = locate("all-minilm-l6", &Options::default()).err().unwrap();
        assert!(
            matches!(&err, Error::UnknownModel { suggestions, .. } if suggestions.iter().any(|s| s == "all-minilm-l6-v2")),
            "{err}"
        );
        let err = locate("./no/such/dir", &Options::default()).err().unwrap();
        assert!(err.to_string().contains("no/such/dir"), "{err}");
    }
}
