//! Ollama's model store: `ollama:NAME[:TAG]` to the GGUF blob Ollama pulled, with its digest
//! checked. The store is `$OLLAMA_MODELS`, else `~/.ollama/models`; a tag's manifest is
//! `manifests/registry.ollama.ai/library/NAME/TAG` (`NAMESPACE/NAME` for others' models), and
//! the weights are the layer of media type `application/vnd.ollama.image.model`, in
//! `blobs/sha256-<hex>`.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, OllamaMissing, Result};

/// The prefix that asks for a model in Ollama's store.
pub(crate) const PREFIX: &str = "ollama:";
const REGISTRY: &str = "registry.ollama.ai";
const MODEL_LAYER: &str = "application/vnd.ollama.image.model";

/// `NAME[:TAG]` split, `latest` when no tag is given.
pub(crate) fn name_and_tag(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (reference, "latest"),
    }
}

/// Where Ollama keeps its models on this machine.
pub(crate) fn default_store() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("OLLAMA_MODELS").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(|home| Path::new(&home).join(".ollama").join("models"))
}

/// The verified GGUF blob of `reference` (`NAME[:TAG]`) in `store`.
pub(crate) fn resolve(store: &Path, reference: &str) -> Result<PathBuf> {
    let (name, tag) = name_and_tag(reference);
    let model = format!("{name}:{tag}");
    let missing = |what: OllamaMissing, path: PathBuf| Error::OllamaNotFound {
        model: model.clone(),
        missing: what,
        path,
    };
    if !store.is_dir() {
        return Err(missing(OllamaMissing::Store, store.to_path_buf()));
    }
    let namespaced = if name.contains('/') {
        name.to_string()
    } else {
        format!("library/{name}")
    };
    let manifest_path = store
        .join("manifests")
        .join(REGISTRY)
        .join(&namespaced)
        .join(tag);
    if !manifest_path.is_file() {
        return Err(missing(OllamaMissing::Manifest, manifest_path));
    }
    let manifest = read_manifest(&manifest_path)?;
    let layer = manifest
        .get("layers")
        .and_then(|l| l.as_array())
        .and_then(|layers| {
            layers
                .iter()
                .find(|l| l.get("mediaType").and_then(|m| m.as_str()) == Some(MODEL_LAYER))
        })
        .ok_or_else(|| missing(OllamaMissing::ModelLayer, manifest_path.clone()))?;
    let digest = layer
        .get("digest")
        .and_then(|d| d.as_str())
        .and_then(|d| d.strip_prefix("sha256:"))
        .filter(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| Error::Malformed {
            path: manifest_path.clone(),
            reason: "the model layer has no `sha256:<64 hex digits>` digest".into(),
        })?;
    let blob = store.join("blobs").join(format!("sha256-{digest}"));
    if !blob.is_file() {
        return Err(missing(OllamaMissing::Blob, blob));
    }
    verify(&blob, digest)?;
    Ok(blob)
}

fn read_manifest(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Malformed {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Checks that `path` hashes to `expected` (lower-case hex SHA-256): a blob cut short by an
/// interrupted pull, or changed since, is refused.
fn verify(path: &Path, expected: &str) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    let actual: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if actual != expected.to_ascii_lowercase() {
        return Err(Error::DigestMismatch {
            path: path.to_path_buf(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_default_to_latest() {
        assert_eq!(
            name_and_tag("qwen3-embedding:8b"),
            ("qwen3-embedding", "8b")
        );
        assert_eq!(
            name_and_tag("nomic-embed-text"),
            ("nomic-embed-text", "latest")
        );
        assert_eq!(name_and_tag("user/model:q4"), ("user/model", "q4"));
    }
}
