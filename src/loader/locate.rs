//! Finding a model (a directory, a registry name or alias, or a hub repo id) and reading
//! everything an embedder is built from: metadata, typed config, tokenizer, weights and heads.

use std::path::{Path, PathBuf};

use tokenizers::Tokenizer;

use super::files::ModelFiles;
use super::heads::find_heads;
use super::hub::HubRepo;
use super::merge::merge;
use super::sentence_transformers::StSettings;
use super::source::{read_json, FileSource, LocalDir};
use super::weights::safetensors_files;
use crate::error::{Error, Result};
use crate::models::Config;
use crate::options::Options;
use crate::registry::{ModelSpec, Registry, DEFAULT_REVISION};
use crate::weights::WeightSource;

/// Finds `model` and reads its files; the registry comes from `options` (built-in, plus the
/// user's file).
pub(crate) fn load(model: &str, options: &Options) -> Result<ModelFiles> {
    let registry = Registry::with_user_file(options.registry_file.as_deref())?;
    if let Some(files) = super::gguf::load(model, &registry, options)? {
        return Ok(files);
    }
    let (source, registered) = find(model, &registry, options)?;
    let settings = StSettings::read(source.as_ref())?;
    let config_path = source.require(&settings.transformer_file("config.json"))?;
    let raw_config = read_json(&config_path)?;
    let config = Config::parse(&raw_config, &config_path, &source.describe())?;
    let architecture = config.architecture();
    let shape = config.shape()?;
    // A directory can still be a registry model, with its registry-only metadata (Matryoshka
    // dimensions, query template, ...): a hub snapshot folder, or a checkpoint whose config
    // names where it came from.
    let path = Path::new(model);
    if let Some(spec) = registered
        .as_ref()
        .filter(|s| s.architecture != architecture)
    {
        return Err(Error::Malformed {
            path: config_path,
            reason: format!(
                "model type `{architecture}`, but the registry lists `{}` as `{}`",
                spec.name, spec.architecture
            ),
        });
    }
    let registered = registered.or_else(|| {
        path.is_dir()
            .then(|| directory_origin(path, &raw_config))
            .flatten()
            .and_then(|origin| registry.find(&origin))
            .filter(|spec| spec.architecture == architecture)
            .cloned()
    });
    let base = match registered {
        Some(spec) => spec,
        None => {
            let conventions =
                registry
                    .conventions(architecture)
                    .ok_or_else(|| Error::Malformed {
                        path: options
                            .registry_file
                            .clone()
                            .unwrap_or_else(|| PathBuf::from("models.toml")),
                        reason: format!("no [architecture.{architecture}] conventions"),
                    })?;
            let mut spec = ModelSpec::from_conventions(
                model,
                architecture,
                conventions,
                shape.hidden,
                shape.max_positions,
            );
            if looks_like_repo_id(model) && !path.is_dir() {
                spec.repo = model.to_string();
            }
            spec
        }
    };
    let spec = merge(base, &settings, &shape, options)?;

    let tokenizer_path = source.require(&settings.transformer_file("tokenizer.json"))?;
    let tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| Error::Malformed {
        path: tokenizer_path.clone(),
        reason: e.to_string(),
    })?;
    let weights = WeightSource::Files(safetensors_files(
        source.as_ref(),
        &settings.transformer_dir,
    )?);
    let heads = find_heads(source.as_ref(), &tokenizer)?;
    Ok(ModelFiles {
        spec,
        config,
        tokenizer,
        weights,
        heads,
    })
}

/// Where `model`'s files are, and its registry entry when it was named by one.
fn find(
    model: &str,
    registry: &Registry,
    options: &Options,
) -> Result<(Box<dyn FileSource>, Option<ModelSpec>)> {
    let path = Path::new(model);
    let registered = registry.find(model);
    // A bare registry name means the registry's model even where a folder of that name sits in
    // the working directory; `./name` means the folder.
    if path.is_dir() && (registered.is_none() || looks_like_path(model)) {
        return Ok((Box::new(LocalDir(path.to_path_buf())), None));
    }
    if path.is_dir() {
        tracing::warn!(
            model,
            "a folder of the same name is in the working directory; loading the registry model (write ./{model} for the folder)"
        );
    }
    if let Some(spec) = registered {
        let revision = options.revision.as_deref().unwrap_or(&spec.revision);
        let repo = HubRepo::open(
            &spec.repo,
            revision,
            options.cache_dir.clone(),
            options.offline,
        )?;
        return Ok((Box::new(repo), Some(spec.clone())));
    }
    if looks_like_repo_id(model) {
        let revision = options.revision.as_deref().unwrap_or(DEFAULT_REVISION);
        let repo = HubRepo::open(model, revision, options.cache_dir.clone(), options.offline)?;
        return Ok((Box::new(repo), None));
    }
    if looks_like_path(model) {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::ErrorKind::NotFound.into(),
        });
    }
    Err(Error::UnknownModel {
        name: model.to_string(),
        suggestions: registry.suggestions(model),
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

/// Whether `model` is written as a path (`./name`, `/abs`, `dir/sub/name`) rather than a name.
fn looks_like_path(model: &str) -> bool {
    model.starts_with('.')
        || model.starts_with('/')
        || model.matches('/').count() > 1
        || model.contains(std::path::MAIN_SEPARATOR) && !looks_like_repo_id(model)
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
    fn paths_and_names() {
        assert!(looks_like_path("./all-minilm-l6-v2"));
        assert!(looks_like_path("/models/x"));
        assert!(looks_like_path("models/owner/name"));
        assert!(!looks_like_path("all-minilm-l6-v2"));
        assert!(!looks_like_path("BAAI/bge-m3"));
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
        let err = load("all-minilm-l6", &Options::default()).err().unwrap();
        assert!(
            matches!(&err, Error::UnknownModel { suggestions, .. } if suggestions.iter().any(|s| s == "all-minilm-l6-v2")),
            "{err}"
        );
        let err = load("./no/such/dir", &Options::default()).err().unwrap();
        assert!(err.to_string().contains("no/such/dir"), "{err}");
    }
}
