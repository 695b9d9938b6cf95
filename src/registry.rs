//! The model registry: `models.toml` parsed into [`ModelSpec`]s, looked up by name or alias.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::models::Architecture;
use crate::pooling::Pooling;

/// The registry shipped with the crate.
const BUILTIN: &str = include_str!("../models.toml");

/// Metadata of one model, as `models.toml` states it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ModelSpec {
    /// Canonical name.
    pub name: String,
    /// Other names: Ollama tags, LM Studio ids, Hugging Face repo ids.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Hugging Face repo id.
    pub repo: String,
    /// Branch, tag or commit of the repo.
    #[serde(default = "main")]
    pub revision: String,
    /// Network architecture.
    pub architecture: Architecture,
    /// How token vectors become the text vector.
    pub pooling: Pooling,
    /// Whether vectors are L2-normalized.
    #[serde(default)]
    pub normalize: bool,
    /// Output dimension.
    pub dim: usize,
    /// Smaller dimensions the model was trained to be truncated to.
    #[serde(default)]
    pub matryoshka_dims: Vec<usize>,
    /// Every dimension from this one up to `dim` is supported.
    #[serde(default)]
    pub matryoshka_min: Option<usize>,
    /// Tokens per input beyond which inputs are truncated.
    pub max_length: usize,
    /// Prepended to queries.
    #[serde(default)]
    pub query_prompt: String,
    /// Prepended to documents.
    #[serde(default)]
    pub document_prompt: String,
    /// The query prompt with a `{task}` placeholder, for models that take a task instruction
    /// (Qwen3-Embedding: `Instruct: {task}\nQuery:`); see `Embedder::embed_queries_with`.
    #[serde(default)]
    pub query_template: Option<String>,
    /// A token every input must end with (Qwen3-Embedding pools `<|endoftext|>`); rembed appends
    /// it, with a warning, when the tokenizer's template does not.
    #[serde(default)]
    pub end_token: Option<String>,
    /// Layer norm without affine parameters over the pooled vector before Matryoshka truncation
    /// (nomic-embed-text v1.5's recipe); applied only when a dimension below `dim` is asked for.
    #[serde(default)]
    pub matryoshka_layer_norm: bool,
    /// The architecture fields of the repo's `config.json`, for building the model's exact shape
    /// with random weights (benchmarks where the weights cannot be downloaded). A loaded model
    /// always uses its own `config.json`.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

fn main() -> String {
    "main".to_string()
}

impl ModelSpec {
    /// Whether the model can produce vectors of this dimension.
    pub fn supports_dim(&self, dim: usize) -> bool {
        dim == self.dim
            || self.matryoshka_dims.contains(&dim)
            || self
                .matryoshka_min
                .is_some_and(|min| (min..=self.dim).contains(&dim))
    }

    /// The supported dimensions, for error messages (a range is shown by its ends).
    pub fn supported_dims(&self) -> Vec<usize> {
        match self.matryoshka_min {
            Some(min) => vec![min, self.dim],
            None => {
                let mut dims = self.matryoshka_dims.clone();
                dims.push(self.dim);
                dims.sort_unstable();
                dims.dedup();
                dims
            }
        }
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str())
            .chain(self.aliases.iter().map(String::as_str))
            .chain(std::iter::once(self.repo.as_str()))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    #[serde(default)]
    model: Vec<ModelSpec>,
}

/// A set of known models.
#[derive(Debug, Clone)]
pub struct Registry {
    models: Vec<ModelSpec>,
}

impl Registry {
    /// The models shipped in the crate's `models.toml`.
    pub fn builtin() -> Self {
        Self::parse(BUILTIN, Path::new("models.toml"))
            .unwrap_or_else(|e| unreachable!("the bundled models.toml is checked by tests: {e}"))
    }

    /// Parses a registry in `models.toml` format.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let file: RegistryFile = toml::from_str(text).map_err(|e| Error::Malformed {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(Self { models: file.model })
    }

    /// Adds the models of a user's file; an entry whose name is already known replaces it.
    pub fn extend_from_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        for spec in Self::parse(&text, path)?.models {
            self.models
                .retain(|m| !m.name.eq_ignore_ascii_case(&spec.name));
            self.models.push(spec);
        }
        Ok(())
    }

    /// Every model, in file order.
    pub fn models(&self) -> &[ModelSpec] {
        &self.models
    }

    /// The model with this name, alias or repo id (case-insensitive).
    pub fn find(&self, name: &str) -> Option<&ModelSpec> {
        self.models
            .iter()
            .find(|m| m.names().any(|n| n.eq_ignore_ascii_case(name)))
    }

    /// Known names that look like `name`, closest first, for "did you mean" messages.
    pub fn suggestions(&self, name: &str) -> Vec<String> {
        let wanted = name.to_ascii_lowercase();
        let mut scored: Vec<(f64, &str)> = self
            .models
            .iter()
            .flat_map(|m| m.names())
            .map(|n| {
                let lower = n.to_ascii_lowercase();
                let contains = lower.contains(&wanted) || wanted.contains(&lower);
                let score =
                    strsim::jaro_winkler(&wanted, &lower) + if contains { 0.5 } else { 0.0 };
                (score, n)
            })
            .filter(|(score, _)| *score > 0.8)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut out: Vec<String> = Vec::new();
        for (_, n) in scored {
            if !out.iter().any(|o| o == n) && out.len() < 5 {
                out.push(n.to_string());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_entry_parses_with_consistent_dims() {
        let registry = Registry::builtin();
        assert!(registry.models().len() >= 8);
        for m in registry.models() {
            assert!(m.dim > 0 && m.max_length > 0, "{}", m.name);
            assert!(m.matryoshka_dims.iter().all(|&d| d < m.dim), "{}", m.name);
            assert!(m.supports_dim(m.dim));
            // The architecture table agrees with the entry: its width is the output dimension.
            let config = m
                .config
                .as_ref()
                .expect("every built-in model has [model.config]");
            let hidden = ["hidden_size", "n_embd"]
                .iter()
                .find_map(|k| config.get(*k)?.as_u64());
            assert_eq!(hidden, Some(m.dim as u64), "{}", m.name);
        }
    }

    #[test]
    fn lookup_by_alias_is_case_insensitive() {
        let registry = Registry::builtin();
        assert_eq!(
            registry.find("Qwen3-Embedding:8B").unwrap().name,
            "qwen3-embedding-8b"
        );
        assert_eq!(registry.find("qwen/qwen3-embedding-8b").unwrap().dim, 4096);
        assert_eq!(
            registry
                .find("text-embedding-qwen3-embedding-8b")
                .unwrap()
                .architecture,
            Architecture::Qwen3
        );
        assert!(registry.find("gpt2").is_none());
    }

    #[test]
    fn suggestions_find_close_names() {
        let registry = Registry::builtin();
        let s = registry.suggestions("all-minilm-l6");
        assert!(s.iter().any(|n| n == "all-minilm-l6-v2"), "{s:?}");
        assert!(registry.suggestions("zzzzzzzz").is_empty());
    }

    #[test]
    fn dimension_support() {
        let registry = Registry::builtin();
        let qwen = registry.find("qwen3-embedding:0.6b").unwrap();
        assert!(qwen.supports_dim(32) && qwen.supports_dim(777) && !qwen.supports_dim(31));
        let nomic = registry.find("nomic-embed-text-v1.5").unwrap();
        assert!(nomic.supports_dim(256) && !nomic.supports_dim(300));
        assert_eq!(nomic.supported_dims(), vec![64, 128, 256, 512, 768]);
    }

    #[test]
    fn user_file_adds_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.toml");
        std::fs::write(
            &path,
            r#"[[model]]
name = "my-model"
repo = "me/my-model"
architecture = "bert"
pooling = "mean"
dim = 8
max_length = 16
"#,
        )
        .unwrap();
        let mut registry = Registry::builtin();
        let before = registry.models().len();
        registry.extend_from_file(&path).unwrap();
        assert_eq!(registry.models().len(), before + 1);
        assert_eq!(registry.find("me/my-model").unwrap().dim, 8);

        std::fs::write(&path, "[[model]]\nname = 1\n").unwrap();
        let err = registry.extend_from_file(&path).unwrap_err();
        assert!(err.to_string().contains("mine.toml"), "{err}");
    }
}
