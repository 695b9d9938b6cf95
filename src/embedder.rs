//! [`Embedder`]: a loaded model, and the calls that embed with it.

use candle_core::DType;
use ndarray::Array2;
use tokenizers::Tokenizer;

use crate::device::{
    default_max_batch_tokens, describe, precision_of, resolve_device, resolve_dtype,
};
use crate::error::{Error, Result};
use crate::flops::FlopCount;
use crate::inputs::{sealed, Inputs};
use crate::loader;
use crate::long_text;
use crate::models::heads::{HeadFiles, COLBERT_FILE, SPARSE_FILE};
use crate::models::shape::Shape;
use crate::models::Config;
use crate::oom::SimulatedOom;
use crate::options::{Device, Options, Precision};
use crate::output::Embeddings;
use crate::pooling::PostProcess;
use crate::random_weights::placeholder_tokenizer;
use crate::registry::{ModelSpec, Registry};
use crate::replicas::Replica;
use crate::request::{LongText, Prompt, Request};
use crate::run::{self, Plan};
use crate::tokenize::TextTokenizer;
use crate::weights::{load_replica, WeightSource};

/// A text embedding model loaded on one or more devices. `Send + Sync`: share it between
/// threads.
pub struct Embedder {
    spec: ModelSpec,
    tokenizer: TextTokenizer,
    /// One copy of the network per device; never empty.
    replicas: Vec<Replica>,
    dtype: DType,
    shape: Shape,
    flops: FlopCount,
    max_batch_tokens: usize,
    /// The dimension calls return unless they ask for another.
    dim: usize,
    prompts: bool,
    simulated_oom: Option<SimulatedOom>,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("model", &self.spec.name)
            .field("devices", &self.devices())
            .field("precision", &self.precision())
            .field("dim", &self.dim)
            .finish()
    }
}

impl Embedder {
    /// Loads a model by registry name or alias (`all-minilm-l6-v2`, `qwen3-embedding:8b`), Hugging
    /// Face repo id (`BAAI/bge-m3`), local directory in sentence-transformers layout, GGUF file
    /// (`model.gguf`; Qwen3 and nomic-bert, quantized or not) or model in Ollama's store
    /// (`ollama:qwen3-embedding:8b`, read from `$OLLAMA_MODELS` or `~/.ollama/models`, its
    /// digest checked). A GGUF model runs in f32 activations, its matrices in their own type.
    pub fn load(model: &str, options: Options) -> Result<Self> {
        let files = loader::load(model, &options)?;
        Self::build(
            files.spec,
            &files.config,
            files.tokenizer,
            &files.weights,
            &files.heads,
            &options,
        )
    }

    /// The registry model `model` (name or alias) built from its `[model.config]` in
    /// `models.toml`, with random weights from `seed`: for measuring speed and memory where the
    /// weights cannot be downloaded. Its vectors mean nothing, and its tokenizer knows no words:
    /// feed it [`TokenIds`](crate::TokenIds). Devices, precision and batch budget come from
    /// `options` as for [`Embedder::load`].
    pub fn random_weights(model: &str, seed: u64, options: Options) -> Result<Self> {
        let registry = Registry::with_user_file(options.registry_file.as_deref())?;
        let mut spec = registry
            .find(model)
            .cloned()
            .ok_or_else(|| Error::UnknownModel {
                name: model.to_string(),
                suggestions: registry.suggestions(model),
            })?;
        let registry_path = options
            .registry_file
            .clone()
            .unwrap_or_else(|| "models.toml".into());
        let raw = spec.config.as_ref().ok_or_else(|| Error::Malformed {
            path: registry_path.clone(),
            reason: format!("model `{}` has no [model.config] table", spec.name),
        })?;
        let config = Config::parse(raw, &registry_path, &spec.name)?;
        // Nothing to append: inputs are ids the caller chose.
        spec.end_token = None;
        let tokenizer = placeholder_tokenizer(&spec.name)?;
        let weights = WeightSource::Random {
            seed,
            described_in: registry_path,
        };
        Self::build(
            spec,
            &config,
            tokenizer,
            &weights,
            &HeadFiles::default(),
            &options,
        )
    }

    /// Puts a model on the options' devices, in their precision, with their limits.
    fn build(
        spec: ModelSpec,
        config: &Config,
        tokenizer: Tokenizer,
        weights: &WeightSource,
        heads: &HeadFiles,
        options: &Options,
    ) -> Result<Self> {
        if options.max_batch_tokens == Some(0) {
            return Err(Error::InvalidOption {
                option: "max_batch_tokens",
                reason: "must be at least 1".into(),
            });
        }
        if options.devices.is_empty() {
            return Err(Error::InvalidOption {
                option: "devices",
                reason: "name at least one device".into(),
            });
        }
        let dim = options.dim.unwrap_or(spec.dim);
        post_process(&spec, dim)?;
        let tokenizer = TextTokenizer::new(tokenizer, &spec)?;
        let devices = options
            .devices
            .iter()
            .map(|&choice| resolve_device(choice))
            .collect::<Result<Vec<_>>>()?;
        if options.heap_retention && devices.iter().any(|device| device.is_cpu()) {
            crate::heap_retention::retain_freed_memory();
        }
        let dtype = activation_dtype(weights, options.precision, &devices[0], &spec.name)?;
        let replicas = devices
            .into_iter()
            .map(|device| load_replica(config, weights, heads, device, dtype))
            .collect::<Result<Vec<_>>>()?;
        let shape = config.shape()?;
        let embedder = Self {
            flops: FlopCount::new(&shape, config.gated(), config.causal()),
            shape,
            max_batch_tokens: options
                .max_batch_tokens
                .unwrap_or_else(|| default_max_batch_tokens(&replicas[0].device)),
            spec,
            tokenizer,
            replicas,
            dtype,
            dim,
            prompts: options.prompts,
            simulated_oom: options.simulated_oom.clone(),
        };
        tracing::info!(model = %embedder.spec.name, devices = ?embedder.devices(), ?dtype, dim, max_length = embedder.spec.max_length, "model loaded");
        Ok(embedder)
    }

    /// Embeds documents (with the model's document prompt, if it has one): one row per text,
    /// in input order.
    pub fn embed<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Array2<f32>> {
        self.embed_with(texts, &Request::documents())
            .map(|e| e.dense)
    }

    /// Embeds search queries (with the model's query prompt, if it has one).
    pub fn embed_queries<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Array2<f32>> {
        self.embed_with(texts, &Request::queries()).map(|e| e.dense)
    }

    /// Embeds texts or [`TokenIds`](crate::TokenIds) as `request` asks: another prompt or task,
    /// another dimension, keep going past failures, sparse and ColBERT outputs, long texts as
    /// chunks. The same batching, token budget and out-of-memory halving as [`Embedder::embed`].
    ///
    /// ```
    /// # fn main() -> rembed::Result<()> {
    /// use rembed::{Embedder, Options, Prompt, Request};
    /// let embedder = Embedder::load("all-minilm-l6-v2", Options::default())?;
    /// let request = Request::default()
    ///     .with_prompt(Prompt::Text("clustering: ".into()))
    ///     .keep_going(true);
    /// let out = embedder.embed_with(&["a text", "another"], &request)?;
    /// assert!(out.failures.is_empty());
    /// assert_eq!(out.dense.nrows(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn embed_with<I: Inputs + ?Sized>(
        &self,
        inputs: &I,
        request: &Request,
    ) -> Result<Embeddings> {
        let post = post_process(&self.spec, request.dim.unwrap_or(self.dim))?;
        self.check_heads(request)?;
        let prompt = self.resolve_prompt(&request.prompt)?;
        let texts = sealed::Tokenize::texts(inputs);
        if texts.is_none() && request.prompt != Prompt::default() {
            return Err(Error::InvalidOption {
                option: "prompt",
                reason: "token ids are fed as given and take no prompt".into(),
            });
        }
        let plan = Plan {
            replicas: &self.replicas,
            pooling: self.spec.pooling,
            post,
            max_batch_tokens: self.max_batch_tokens,
            sparse: request.sparse,
            colbert: request.colbert,
            keep_going: request.keep_going,
            simulated_oom: self.simulated_oom.as_ref(),
            shape: self.shape,
            dtype_bytes: self.dtype.size_in_bytes(),
        };
        match (request.long_text, texts) {
            (LongText::Truncate, _) => {
                let tokens =
                    sealed::Tokenize::tokens(inputs, &self.tokenizer, &prompt, self.shape.vocab)?;
                run::run(&plan, tokens)
            }
            (LongText::Chunks { overlap_tokens }, Some(texts)) => {
                long_text::embed_chunked(&plan, &self.tokenizer, &texts, &prompt, overlap_tokens)
            }
            (LongText::Chunks { .. }, None) => Err(Error::InvalidOption {
                option: "long_text",
                reason: "token ids cannot be split into chunks; give texts".into(),
            }),
        }
    }

    /// The token ids the model reads for each text under `request`'s prompt: prompt, truncation
    /// and any end token rembed appends included. Feed them back as
    /// [`TokenIds`](crate::TokenIds), or count them to estimate cost.
    pub fn tokenize<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        request: &Request,
    ) -> Result<Vec<Vec<u32>>> {
        let prompt = self.resolve_prompt(&request.prompt)?;
        let tokens = self.tokenizer.encode_all(texts, &prompt)?;
        Ok(tokens.into_iter().map(|t| t.ids).collect())
    }

    /// The prefix `prompt` puts in front of every text: the model's document or query prompt
    /// (empty when prompts are turned off), a task in its instruction template, or the text
    /// given.
    pub fn resolve_prompt(&self, prompt: &Prompt) -> Result<String> {
        Ok(match prompt {
            Prompt::Document if self.prompts => self.spec.document_prompt.clone(),
            Prompt::Query if self.prompts => self.spec.query_prompt.clone(),
            Prompt::Document | Prompt::Query | Prompt::None => String::new(),
            Prompt::Text(text) => text.clone(),
            Prompt::Task(task) => self
                .spec
                .query_template
                .as_deref()
                .ok_or_else(|| Error::UnsupportedTask {
                    model: self.spec.name.clone(),
                })?
                .replace("{task}", task),
        })
    }

    /// Output dimension of calls that ask for none.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The model's metadata, after the registry, its own files and the options were merged.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Every device holding a replica of the model, in the order they were given (`Auto`
    /// resolved to what it picked).
    pub fn devices(&self) -> Vec<Device> {
        self.replicas.iter().map(|r| describe(&r.device)).collect()
    }

    /// The precision the network runs in (`Auto` resolved).
    pub fn precision(&self) -> Precision {
        precision_of(self.dtype)
    }

    /// Padded tokens per forward pass (the option, or the device's default).
    pub fn max_batch_tokens(&self) -> usize {
        self.max_batch_tokens
    }

    /// Rows of the token embedding matrix: token ids must be below it.
    pub fn vocab_size(&self) -> usize {
        self.shape.vocab
    }

    /// What a forward pass costs, for throughput-to-utilisation figures.
    pub fn flops(&self) -> FlopCount {
        self.flops
    }

    /// The tokenizer, with truncation at the model's max length and no padding.
    pub fn tokenizer(&self) -> &Tokenizer {
        self.tokenizer.tokenizer()
    }

    /// The candle devices of the replicas, for the memory probes.
    pub(crate) fn candle_devices(&self) -> impl Iterator<Item = &candle_core::Device> {
        self.replicas.iter().map(|r| &r.device)
    }

    /// Refuses outputs the model has no head for, before any work is done.
    fn check_heads(&self, request: &Request) -> Result<()> {
        // Every replica loaded the same files, so the first tells.
        let heads = self.replicas[0].network.heads();
        let missing = |(file, pickle): (&str, &str)| Error::MissingHead {
            model: self.spec.name.clone(),
            file: file.to_string(),
            pickle: pickle.to_string(),
        };
        if request.sparse && !heads.has_sparse() {
            return Err(missing(SPARSE_FILE));
        }
        if request.colbert && !heads.has_colbert() {
            return Err(missing(COLBERT_FILE));
        }
        Ok(())
    }
}

/// The precision the network runs in: the options' (resolved for the device), unless the weights
/// dictate one (GGUF: f32), which an explicit other choice cannot override.
fn activation_dtype(
    weights: &WeightSource,
    precision: Precision,
    device: &candle_core::Device,
    model: &str,
) -> Result<DType> {
    match weights.activation_dtype() {
        None => Ok(resolve_dtype(precision, device)),
        Some(fixed) if precision == Precision::Auto || precision_of(fixed) == precision => Ok(fixed),
        Some(fixed) => Err(Error::InvalidOption {
            option: "precision",
            reason: format!(
                "`{model}` is a GGUF model, which runs in {fixed:?} (its matrices keep their own type)"
            ),
        }),
    }
}

/// The steps from a pooled vector to a `dim`-wide result; refuses a dimension the model was not
/// trained for.
fn post_process(spec: &ModelSpec, dim: usize) -> Result<PostProcess> {
    if !spec.supports_dim(dim) {
        return Err(Error::UnsupportedDimension {
            model: spec.name.clone(),
            requested: dim,
            supported: spec.supported_dims(),
        });
    }
    Ok(PostProcess {
        // nomic v1.5's recipe is for truncated vectors; at full size the model's own pipeline
        // (pool, normalize) applies.
        layer_norm: spec.matryoshka_layer_norm && dim < spec.dim,
        dim,
        normalize: spec.normalize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every registry model's exact layer shape builds and embeds: its config with one layer
    /// and a small vocabulary (the full sizes take gigabytes), seeded random weights.
    #[test]
    fn every_registry_model_shape_builds_and_embeds() {
        let registry = Registry::builtin();
        for spec in registry.models() {
            let mut raw = spec.config.clone().expect("[model.config]");
            for key in ["num_hidden_layers", "n_layer"] {
                if raw.get(key).is_some() {
                    raw[key] = 1.into();
                }
            }
            raw["vocab_size"] = 300.into();
            let path = std::path::Path::new("models.toml");
            let config = Config::parse(&raw, path, &spec.name).unwrap();
            let mut spec = spec.clone();
            spec.end_token = None;
            let weights = WeightSource::Random {
                seed: 1,
                described_in: path.into(),
            };
            let options = Options::default().with_device(Device::Cpu);
            let tokenizer = placeholder_tokenizer(&spec.name).unwrap();
            let embedder = Embedder::build(
                spec,
                &config,
                tokenizer,
                &weights,
                &HeadFiles::default(),
                &options,
            )
            .unwrap();
            let ids = vec![vec![1u32, 7, 299, 2], vec![5, 6]];
            let out = embedder
                .embed_with(&crate::TokenIds(&ids), &Request::default())
                .unwrap();
            let name = &embedder.spec().name;
            assert_eq!(out.dense.dim(), (2, embedder.spec().dim), "{name}");
            assert!(out.dense.iter().all(|v| v.is_finite()), "{name}");
            assert!(out.dense.row(0) != out.dense.row(1), "{name}");
        }
    }

    #[test]
    fn embedder_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Embedder>();
    }
}
