//! The model registry: `models.toml` parsed into [`ModelSpec`]s, looked up by name or alias.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::models::Architecture;
use crate::pooling::Pooling;

/// The registry shipped with the crate.
const BUILTIN: &str = include_str!("../models.toml");

/// Metadata of one model: its `models.toml` entry over its architecture's conventions (and,
/// once loaded, under its own files and the caller's options).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ModelSpec {
    /// Canonical name.
    pub name: String,
    /// Other names: Ollama tags, LM Studio ids, Hugging Face repo ids.
    pub aliases: Vec<String>,
    /// Hugging Face repo id.
    pub repo: String,
    /// Branch, tag or commit of the repo.
    pub revision: String,
    /// Network architecture.
    pub architecture: Architecture,
    /// How token vectors become the text vector.
    pub pooling: Pooling,
    /// Whether vectors are L2-normalized.
    pub normalize: bool,
    /// Output dimension.
    pub dim: usize,
    /// Smaller dimensions the model was trained to be truncated to.
    pub matryoshka_dims: Vec<usize>,
    /// Every dimension from this one up to `dim` is supported.
    pub matryoshka_min: Option<usize>,
    /// Tokens per input beyond which inputs are truncated.
    pub max_length: usize,
    /// Prepended to queries.
    pub query_prompt: String,
    /// Prepended to documents.
    pub document_prompt: String,
    /// The query prompt with a `{task}` placeholder, for models that take a task instruction
    /// (Qwen3-Embedding: `Instruct: {task}\nQuery:`); see [`Prompt::Task`](crate::Prompt::Task).
    pub query_template: Option<String>,
    /// A token every input must end with (Qwen3-Embedding pools `<|endoftext|>`); rembed appends
    /// it, with a warning, when the tokenizer's template does not.
    pub end_token: Option<String>,
    /// Layer norm without affine parameters over the pooled vector before Matryoshka truncation
    /// (nomic-embed-text v1.5's recipe); applied only when a dimension below `dim` is asked for.
    pub matryoshka_layer_norm: bool,
    /// The architecture fields of the repo's `config.json` (`[model.config]`), for building the
    /// model's exact shape with random weights; a loaded model always uses its own file.
    pub(crate) config: Option<serde_json::Value>,
}

/// What every model of an architecture does unless its entry (or its own files) says otherwise:
/// `[architecture.NAME]` in `models.toml`. Also all that is known of a model directory the
/// registry does not list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Conventions {
    /// How token vectors become the text vector.
    pub pooling: Pooling,
    /// Whether vectors are L2-normalized.
    #[serde(default)]
    pub normalize: bool,
    /// Max input length when neither the entry nor the model's config states one.
    pub max_length: usize,
    /// Every dimension from this one up to the full width is supported.
    #[serde(default)]
    pub matryoshka_min: Option<usize>,
    /// The query prompt with a `{task}` placeholder.
    #[serde(default)]
    pub query_template: Option<String>,
    /// A token every input must end with.
    #[serde(default)]
    pub end_token: Option<String>,
}

/// One `[[model]]` entry as written: fields it leaves out come from its architecture.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    repo: String,
    #[serde(default)]
    revision: Option<String>,
    architecture: Architecture,
    #[serde(default)]
    pooling: Option<Pooling>,
    #[serde(default)]
    normalize: Option<bool>,
    dim: usize,
    #[serde(default)]
    matryoshka_dims: Vec<usize>,
    #[serde(default)]
    matryoshka_min: Option<usize>,
    max_length: usize,
    #[serde(default)]
    query_prompt: String,
    #[serde(default)]
    document_prompt: String,
    #[serde(default)]
    query_template: Option<String>,
    #[serde(default)]
    end_token: Option<String>,
    #[serde(default)]
    matryoshka_layer_norm: bool,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

/// The revision of a repo that names none.
pub(crate) const DEFAULT_REVISION: &str = "main";

impl ModelSpec {
    /// What is known of a model from its architecture alone: a directory or repo the registry
    /// does not list, `dim` wide, reading at most `max_length` tokens.
    pub(crate) fn from_conventions(
        name: &str,
        architecture: Architecture,
        conventions: &Conventions,
        dim: usize,
        max_length: Option<usize>,
    ) -> Self {
        Self {
            name: name.to_string(),
            aliases: Vec::new(),
            repo: String::new(),
            revision: DEFAULT_REVISION.to_string(),
            architecture,
            pooling: conventions.pooling,
            normalize: conventions.normalize,
            dim,
            matryoshka_dims: Vec::new(),
            matryoshka_min: conventions.matryoshka_min,
            max_length: max_length.unwrap_or(conventions.max_length),
            query_prompt: String::new(),
            document_prompt: String::new(),
            query_template: conventions.query_template.clone(),
            end_token: conventions.end_token.clone(),
            matryoshka_layer_norm: false,
            config: None,
        }
    }

    fn from_entry(entry: Entry, conventions: &Conventions) -> Self {
        Self {
            name: entry.name,
            aliases: entry.aliases,
            repo: entry.repo,
            revision: entry
                .revision
                .unwrap_or_else(|| DEFAULT_REVISION.to_string()),
            architecture: entry.architecture,
            pooling: entry.pooling.unwrap_or(conventions.pooling),
            normalize: entry.normalize.unwrap_or(conventions.normalize),
            dim: entry.dim,
            matryoshka_dims: entry.matryoshka_dims,
            matryoshka_min: entry.matryoshka_min.or(conventions.matryoshka_min),
            max_length: entry.max_length,
            query_prompt: entry.query_prompt,
            document_prompt: entry.document_prompt,
            query_template: entry
                .query_template
                .or_else(|| conventions.query_template.clone()),
            end_token: entry.end_token.or_else(|| conventions.end_token.clone()),
            matryoshka_layer_norm: entry.matryoshka_layer_norm,
            config: entry.config,
        }
    }

    /// Whether the model can produce vectors of this dimension.
    pub fn supports_dim(&self, dim: usize) -> bool {
        dim == self.dim
            || self.matryoshka_dims.contains(&dim)
            || self
                .matryoshka_min
                .is_some_and(|min| (min..=self.dim).contains(&dim))
    }

    /// The supported dimensions in words, for messages: `any of 32 to 1024`, or the list
    /// (`64, 128, 256, 512 or 768`).
    pub fn supported_dims(&self) -> String {
        match self.matryoshka_min {
            Some(min) => format!("any of {min} to {}", self.dim),
            None => {
                let mut dims = self.matryoshka_dims.clone();
                dims.push(self.dim);
                dims.sort_unstable();
                dims.dedup();
                let mut words: Vec<String> = dims.iter().map(usize::to_string).collect();
                let last = words.pop().unwrap_or_default();
                if words.is_empty() {
                    last
                } else {
                    format!("{} or {last}", words.join(", "))
                }
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
    architecture: BTreeMap<Architecture, Conventions>,
    #[serde(default)]
    model: Vec<Entry>,
}

/// A set of known models.
#[derive(Debug, Clone)]
pub struct Registry {
    conventions: BTreeMap<Architecture, Conventions>,
    models: Vec<ModelSpec>,
}

impl Registry {
    /// The models shipped in the crate's `models.toml`.
    pub fn builtin() -> Self {
        Self::parse_over(BUILTIN, Path::new("models.toml"), None)
            .unwrap_or_else(|e| unreachable!("the bundled models.toml is checked by tests: {e}"))
    }

    /// Parses a registry in `models.toml` format. A file may rely on the conventions of
    /// `base` (the built-in registry, for a user's file) for architectures it does not describe.
    fn parse_over(text: &str, path: &Path, base: Option<&Self>) -> Result<Self> {
        let malformed = |reason: String| Error::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        let file: RegistryFile = toml::from_str(text).map_err(|e| malformed(e.to_string()))?;
        let mut conventions = base.map(|b| b.conventions.clone()).unwrap_or_default();
        conventions.extend(file.architecture);
        let models = file
            .model
            .into_iter()
            .map(|entry| {
                let arch = entry.architecture;
                let known = conventions.get(&arch).ok_or_else(|| {
                    malformed(format!(
                        "model `{}`: no [architecture.{arch}] conventions",
                        entry.name
                    ))
                })?;
                Ok(ModelSpec::from_entry(entry, known))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            conventions,
            models,
        })
    }

    /// Parses a registry in `models.toml` format, on top of the built-in conventions.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        Self::parse_over(text, path, Some(&Self::builtin()))
    }

    /// The conventions of an architecture.
    pub fn conventions(&self, architecture: Architecture) -> Option<&Conventions> {
        self.conventions.get(&architecture)
    }

    /// The built-in registry, with the user's file on top when there is one.
    pub(crate) fn with_user_file(file: Option<&Path>) -> Result<Self> {
        let mut registry = Self::builtin();
        if let Some(file) = file {
            registry.extend_from_file(file)?;
        }
        Ok(registry)
    }

    /// The network shape of a built-in model's `[model.config]`, for tests that reason about
    /// full-size models without building them.
    #[cfg(test)]
    pub(crate) fn shape_of(name: &str) -> crate::models::shape::Shape {
        let registry = Self::builtin();
        let spec = registry.find(name).expect("a built-in model");
        let config = spec.config.as_ref().expect("[model.config]");
        crate::models::Config::parse(config, Path::new("models.toml"), name)
            .and_then(|c| Ok(c.shape()?))
            .expect("a valid config")
    }

    /// Adds the models of a user's file; an entry whose name is already known replaces it.
    pub fn extend_from_file(&mut self, path: &Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let added = Self::parse_over(&text, path, Some(self))?;
        self.conventions = added.conventions;
        for spec in added.models {
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
            // The architecture table agrees with the entry: its type, and its width is the
            // output dimension.
            let config = m
                .config
                .as_ref()
                .expect("every built-in model has [model.config]");
            let config = crate::models::Config::parse(config, Path::new("models.toml"), &m.name)
                .unwrap_or_else(|e| panic!("{}: {e}", m.name));
            assert_eq!(config.architecture(), m.architecture, "{}", m.name);
            assert_eq!(config.shape().unwrap().hidden, m.dim, "{}", m.name);
        }
        for architecture in Architecture::ALL {
            assert!(
                registry.conventions(architecture).is_some(),
                "{architecture}"
            );
        }
    }

    #[test]
    fn entries_take_what_they_leave_out_from_their_architecture() {
        let qwen = Registry::builtin();
        let qwen = qwen.find("qwen3-embedding-8b").unwrap();
        assert_eq!(qwen.pooling, Pooling::LastToken);
        assert_eq!(qwen.end_token.as_deref(), Some("<|endoftext|>"));
        assert_eq!(
            qwen.query_template.as_deref(),
            Some("Instruct: {task}\nQuery:")
        );
        assert_eq!(qwen.matryoshka_min, Some(32));
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
        assert_eq!(nomic.supported_dims(), "64, 128, 256, 512 or 768");
        assert_eq!(qwen.supported_dims(), "any of 32 to 1024");
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
