//! What a model is, rather than what it was called: SHA-256 digests of its weight files and of
//! its config files (config, tokenizer, sentence-transformers settings), and the hub commit
//! where it came from the hub. Resume compares these, so the same weights copied to another
//! path add to an output, and new weights saved over the old path are refused.
//!
//! The files are found from the `--model` argument: a local directory is hashed as is; a
//! registry name or repo id is looked up in the Hugging Face cache (`HF_HUB_CACHE`, else
//! `$HF_HOME/hub`, else `~/.cache/huggingface/hub`), at the commit its revision points to.
//! The cache names each weight blob by its SHA-256 (the LFS object id), so a hub snapshot is not
//! read at all; a local directory is read once per run (about 1 s per GB).
//!
//! A GGUF model (a `.gguf` path, or `ollama:NAME:TAG`) is its one file: weights, config and
//! tokenizer in one, so its digest is the weights digest (an Ollama blob is named by its digest,
//! which loading verified, so it is not read again).
//!
//! A file's digest does not depend on where it is, and the model's digest is taken over the
//! sorted `relative path  file digest` lines, so a copy of a hub snapshot has the snapshot's
//! digests.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::Error;
use crate::gguf::ollama;
use crate::ModelSpec;

/// Directory levels searched for model files (`2_Dense/model.safetensors` is one down).
const DEPTH: usize = 3;

/// Digests and commit of a model's files; `None` where they could not be found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelIdentity {
    /// SHA-256 over the model's `*.safetensors` files.
    pub weights_sha256: Option<String>,
    /// SHA-256 over its `*.json`, `*.txt` and `*.model` files (config, tokenizer, pooling).
    pub config_sha256: Option<String>,
    /// The hub commit of the snapshot, when the files are one.
    pub commit: Option<String>,
    /// Where the files were read.
    pub files: Option<PathBuf>,
}

impl ModelIdentity {
    /// Identifies the model loaded from `source` (the string given to `Embedder::load`) whose
    /// resolved spec is `spec`.
    pub(crate) fn find(source: &str, spec: &ModelSpec) -> Result<Self, Error> {
        if let Some(file) = gguf_file(source) {
            let file = file.canonicalize().unwrap_or(file);
            return Ok(Self {
                weights_sha256: Some(gguf_sha256(&file)?),
                config_sha256: None,
                commit: None,
                files: Some(file),
            });
        }
        let dir = Path::new(source);
        let dir = if dir.is_dir() {
            dir.to_path_buf()
        } else {
            match hub_snapshot(&spec.repo, &spec.revision) {
                Some(dir) => dir,
                None => {
                    tracing::warn!(target: "rembed::job", model = source,
                        "no local files found for the model: the output records it by name only");
                    return Ok(Self::default());
                }
            }
        };
        let dir = dir.canonicalize().unwrap_or(dir);
        let commit = dir
            .parent()
            .filter(|p| p.file_name().is_some_and(|n| n == "snapshots"))
            .and_then(|_| dir.file_name()?.to_str())
            .filter(|name| is_hex(name, 40))
            .map(str::to_string);
        let mut files = Vec::new();
        collect(&dir, &dir, DEPTH, &mut files)?;
        files.sort();
        let digest = |wanted: fn(&str) -> bool| -> Result<Option<String>, Error> {
            let mut lines = Sha256::new();
            let mut any = false;
            for (relative, path) in files.iter().filter(|(r, _)| wanted(r)) {
                lines.update(format!("{relative}  {}\n", file_sha256(path)?));
                any = true;
            }
            Ok(any.then(|| hex(&lines.finalize())))
        };
        Ok(Self {
            weights_sha256: digest(|r| r.ends_with(".safetensors"))?,
            config_sha256: digest(|r| [".json", ".txt", ".model"].iter().any(|e| r.ends_with(e)))?,
            commit,
            files: Some(dir),
        })
    }
}

/// The snapshot directory of `repo` at `revision` in the local hub cache, if there is one.
/// The GGUF file `source` names: a `.gguf` path, or an Ollama model's blob.
fn gguf_file(source: &str) -> Option<PathBuf> {
    if let Some(reference) = source.strip_prefix(ollama::PREFIX) {
        return ollama::resolve(&ollama::default_store()?, reference).ok();
    }
    let path = Path::new(source);
    let is_gguf = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    (is_gguf && path.is_file()).then(|| path.to_path_buf())
}

/// An Ollama blob's digest from its name (`sha256-<hex>`), any other file's by reading it.
fn gguf_sha256(path: &Path) -> Result<String, Error> {
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("sha256-"))
        .filter(|hex| is_hex(hex, 64));
    match named {
        Some(hex) => Ok(hex.to_ascii_lowercase()),
        None => file_sha256(path),
    }
}

fn hub_snapshot(repo: &str, revision: &str) -> Option<PathBuf> {
    if repo.is_empty() {
        return None;
    }
    let cache = std::env::var_os("HF_HUB_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HF_HOME").map(|h| PathBuf::from(h).join("hub")))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface/hub"))
        })?;
    let repo_dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    let commit = if is_hex(revision, 40) {
        revision.to_string()
    } else {
        std::fs::read_to_string(repo_dir.join("refs").join(revision))
            .ok()?
            .trim()
            .to_string()
    };
    let dir = repo_dir.join("snapshots").join(commit);
    dir.is_dir().then_some(dir)
}

/// Files under `dir` (following links, as the hub cache's snapshots are links), as
/// (`/`-separated path relative to `root`, path).
fn collect(
    root: &Path,
    dir: &Path,
    depth: usize,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), Error> {
    for entry in std::fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let path = entry.map_err(Error::io("list", dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if depth > 1 {
                collect(root, &path, depth - 1, out)?;
            }
        } else if path.is_file() {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let relative: Vec<_> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((relative.join("/"), path));
        }
    }
    Ok(())
}

/// A file's SHA-256: from the name of the blob a hub-cache link points to (the hub names weight
/// blobs by their SHA-256), else by reading it.
fn file_sha256(path: &Path) -> Result<String, Error> {
    if let Ok(target) = std::fs::read_link(path) {
        if let Some(name) = target.file_name().and_then(|n| n.to_str()) {
            if is_hex(name, 64) {
                return Ok(name.to_ascii_lowercase());
            }
        }
    }
    let mut file = File::open(path).map_err(Error::io("open", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(Error::io("read", path))?;
        if n == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ollama_blob_is_known_by_its_name_and_a_gguf_file_by_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let named = "ab".repeat(32);
        let blob = dir.path().join(format!("sha256-{named}"));
        std::fs::write(&blob, b"not what the name says").unwrap();
        assert_eq!(gguf_sha256(&blob).unwrap(), named);
        let file = dir.path().join("model.gguf");
        std::fs::write(&file, b"abc").unwrap();
        assert_eq!(
            gguf_sha256(&file).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(gguf_file(&file.to_string_lossy()), Some(file.clone()));
        assert_eq!(gguf_file(&dir.path().to_string_lossy()), None);
    }

    #[test]
    #[cfg(unix)]
    fn sha256_of_a_file_and_of_a_hub_blob_link() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model.safetensors");
        std::fs::write(&file, b"abc").unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(file_sha256(&file).unwrap(), abc);
        // A link to a blob named by a digest is trusted without reading (here a wrong one).
        let blob = dir.path().join("0".repeat(64));
        std::fs::write(&blob, b"not read").unwrap();
        let link = dir.path().join("link.safetensors");
        std::os::unix::fs::symlink(&blob, &link).unwrap();
        assert_eq!(file_sha256(&link).unwrap(), "0".repeat(64));
    }
}
