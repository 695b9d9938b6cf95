//! [`Embedder`]: a loaded model and the batching that feeds it.

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use ndarray::Array2;
use tokenizers::{Tokenizer, TruncationParams};

use crate::batch::{self, Tokens};
use crate::device::{resolve_device, resolve_dtype};
use crate::error::{Error, Result};
use crate::halving::{Failure, Outcome};
use crate::loader::{locate, safetensors_files};
use crate::models::{self, Architecture, ModelInput};
use crate::options::Options;
use crate::pooling::PostProcess;
use crate::registry::ModelSpec;
use crate::replicas::{run_spread, Replica};

/// Whether texts are embedded as documents or as queries, which selects the model's prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// Texts to be searched; the model's document prompt, if any.
    Document,
    /// Search queries; the model's query prompt, if any.
    Query,
}

/// Embeddings of a call that keeps going past inputs that fail.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PartialEmbeddings {
    /// One row per input, in input order; rows of failed inputs are zero.
    pub embeddings: Array2<f32>,
    /// The inputs that could not be embedded, by index.
    pub failures: Vec<Failure>,
    /// Tokens fed to the model (after truncation, before padding).
    pub tokens: usize,
    /// Inputs cut at the max length.
    pub truncated: usize,
    /// How often a batch was halved after running out of device memory.
    pub splits: usize,
}

/// What [`Embedder::assemble`] builds a model from.
pub(crate) struct Parts<'a> {
    pub spec: ModelSpec,
    pub tokenizer: Tokenizer,
    pub config: &'a serde_json::Value,
    /// Named in errors about the config.
    pub config_path: &'a std::path::Path,
    /// The weights on a device, in a dtype.
    pub weights: &'a dyn Fn(&candle_core::Device, DType) -> Result<VarBuilder<'static>>,
    /// How a tensor-library error while building the network is reported (it usually means the
    /// weights do not fit the config).
    pub weights_error: &'a dyn Fn(candle_core::Error) -> Error,
    /// bge-m3's extra heads on a device, where the model has them.
    pub heads: &'a dyn Fn(&candle_core::Device) -> Result<crate::bge_m3::Heads>,
}

/// A text embedding model loaded on a device. `Send + Sync`: share it between threads.
pub struct Embedder {
    spec: ModelSpec,
    tokenizer: Tokenizer,
    /// One copy of the network per device; never empty.
    replicas: Vec<Replica>,
    dtype: DType,
    /// Rows of the token embedding matrix, when `config.json` says: ids beyond it are refused
    /// before they reach a device, where they would be an out-of-bounds read.
    vocab_size: Option<usize>,
    flops: Option<crate::flops::FlopCount>,
    post: PostProcess,
    max_batch_tokens: usize,
    prompts: bool,
    /// The end token to append to every input, when the model needs one (Qwen3's
    /// `<|endoftext|>`) and its tokenizer's template does not add it.
    append_end: Option<u32>,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("model", &self.spec.name)
            .field("devices", &self.devices())
            .field("dtype", &self.dtype)
            .field("dim", &self.post.dim)
            .finish()
    }
}

impl Embedder {
    /// Loads a model by registry name or alias (`all-minilm-l6-v2`, `qwen3-embedding:8b`), Hugging
    /// Face repo id (`BAAI/bge-m3`) or local directory in sentence-transformers layout.
    pub fn load(model: &str, options: Options) -> Result<Self> {
        let located = locate(model, &options)?;
        let tokenizer_path = located
            .source
            .require(&located.settings.transformer_file("tokenizer.json"))?;
        let tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| Error::Malformed {
            path: tokenizer_path.clone(),
            reason: e.to_string(),
        })?;
        let weights =
            safetensors_files(located.source.as_ref(), &located.settings.transformer_dir)?;
        let weights_error = |e: candle_core::Error| Error::Malformed {
            path: weights[0].clone(),
            reason: e.to_string(),
        };
        let load_weights = |device: &candle_core::Device, dtype: DType| {
            // SAFETY: the weight files are memory-mapped; like every mmap-based loader we rely
            // on them not being modified while the model is alive.
            unsafe { VarBuilder::from_mmaped_safetensors(&weights, dtype, device) }
                .map_err(weights_error)
        };
        let architecture = located.spec.architecture;
        let load_heads = |device: &candle_core::Device| {
            if architecture == Architecture::XlmRoberta {
                crate::bge_m3::Heads::load(located.source.as_ref(), &tokenizer, device)
            } else {
                Ok(crate::bge_m3::Heads::default())
            }
        };
        Self::assemble(
            Parts {
                spec: located.spec,
                tokenizer: tokenizer.clone(),
                config: &located.config,
                config_path: &located.config_path,
                weights: &load_weights,
                weights_error: &weights_error,
                heads: &load_heads,
            },
            &options,
        )
    }

    /// Puts a model together from its metadata, tokenizer, config and a source of weights, with
    /// the options' devices, dtype and limits: shared by [`Embedder::load`] and
    /// [`Embedder::random_weights`].
    pub(crate) fn assemble(parts: Parts<'_>, options: &Options) -> Result<Self> {
        let Parts {
            spec,
            mut tokenizer,
            config,
            config_path,
            weights,
            weights_error,
            heads,
        } = parts;
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
        if !spec.supports_dim(dim) {
            return Err(Error::UnsupportedDimension {
                model: spec.name.clone(),
                requested: dim,
                supported: spec.supported_dims(),
            });
        }

        tokenizer.with_padding(None);
        let append_end = match &spec.end_token {
            Some(token) => batch::missing_end_token(&tokenizer, token, &spec.name)?,
            None => None,
        };
        if let (Some(_), Some(token)) = (append_end, &spec.end_token) {
            tracing::warn!(
                model = %spec.name,
                token = %token,
                "the tokenizer does not end inputs with the model's end token; rembed appends it"
            );
        }
        tokenizer
            .with_truncation(Some(TruncationParams {
                // The appended end token counts toward the max length, as a template's would.
                max_length: spec.max_length
                    - usize::from(append_end.is_some() && spec.max_length > 1),
                ..Default::default()
            }))
            .map_err(|e| Error::Tokenizer {
                model: spec.name.clone(),
                reason: e.to_string(),
            })?;

        let devices = options
            .devices
            .iter()
            .map(|&choice| resolve_device(choice))
            .collect::<Result<Vec<_>>>()?;
        let dtype = resolve_dtype(options.precision, &devices[0]);
        let load_replica = |device: candle_core::Device| -> Result<Replica> {
            let model = models::load(
                spec.architecture,
                config,
                config_path,
                weights(&device, dtype)?,
            )
            .map_err(|e| match e {
                Error::Candle(e) => weights_error(e),
                other => other,
            })?;
            Ok(Replica {
                model,
                bge_m3: heads(&device)?,
                device,
            })
        };
        let replicas = devices
            .into_iter()
            .map(load_replica)
            .collect::<Result<Vec<_>>>()?;
        let vocab_size = config
            .get("vocab_size")
            .and_then(|v| v.as_u64())
            .and_then(|v| usize::try_from(v).ok());
        let flops = crate::flops::FlopCount::from_config(spec.architecture, config);
        let post = PostProcess {
            // nomic v1.5's recipe is for truncated vectors; at full size the model's own
            // pipeline (pool, normalize) applies.
            layer_norm: spec.matryoshka_layer_norm && dim < spec.dim,
            dim,
            normalize: spec.normalize,
        };
        let max_batch_tokens =
            options
                .max_batch_tokens
                .unwrap_or(if replicas[0].device.is_cuda() {
                    16_384
                } else {
                    2_048
                });
        let loaded = Self {
            spec,
            tokenizer,
            replicas,
            dtype,
            vocab_size,
            flops,
            post,
            max_batch_tokens,
            prompts: options.prompts,
            append_end,
        };
        tracing::info!(model = %loaded.spec.name, devices = ?loaded.devices(), ?dtype, dim, max_length = loaded.spec.max_length, "model loaded");
        Ok(loaded)
    }

    /// Embeds documents (with the model's document prompt, if it has one): one row per text,
    /// in input order.
    pub fn embed<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Array2<f32>> {
        self.run(texts, self.prompt(Role::Document), false)
            .map(|p| p.embeddings)
    }

    /// Embeds search queries (with the model's query prompt, if it has one).
    pub fn embed_queries<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Array2<f32>> {
        self.run(texts, self.prompt(Role::Query), false)
            .map(|p| p.embeddings)
    }

    /// Embeds search queries with your own task in the model's instruction template, in place of
    /// the default task of its query prompt: Qwen3-Embedding's queries read
    /// `Instruct: {task}\nQuery:{text}`. Applied whatever [`Options::with_prompts`] says, since
    /// the call asks for it. Fails with [`Error::UnsupportedTask`] for a model without an
    /// instruction template (use [`Embedder::embed_with_prompt`] for a free-form prefix).
    pub fn embed_queries_with<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        task: &str,
    ) -> Result<Array2<f32>> {
        let template =
            self.spec
                .query_template
                .as_deref()
                .ok_or_else(|| Error::UnsupportedTask {
                    model: self.spec.name.clone(),
                })?;
        let prompt = template.replace("{task}", task);
        self.run(texts, &prompt, false).map(|p| p.embeddings)
    }

    /// Embeds texts with an explicit prompt in place of the model's (e.g. nomic's `clustering: `).
    pub fn embed_with_prompt<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        prompt: &str,
    ) -> Result<Array2<f32>> {
        self.run(texts, prompt, false).map(|p| p.embeddings)
    }

    /// Embeds texts, recording inputs that fail (one that does not fit in device memory even
    /// alone, a batch whose forward pass fails) instead of stopping, so no finished work is lost.
    pub fn embed_partial<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        role: Role,
    ) -> Result<PartialEmbeddings> {
        self.run(texts, self.prompt(role), true)
    }

    /// Embeds inputs that are already token ids, special tokens included (as
    /// [`Embedder::token_ids`] returns them), e.g. a corpus tokenized once for several runs, or
    /// a benchmark's synthetic inputs. No prompt or end token is added. Each input must be
    /// non-empty, at most the model's max length, with every id inside the vocabulary;
    /// otherwise [`Error::InvalidInput`] names the first one that is not.
    pub fn embed_token_ids(&self, inputs: &[Vec<u32>]) -> Result<Array2<f32>> {
        let max_length = self.spec.max_length;
        let mut tokens = Vec::with_capacity(inputs.len());
        for (index, ids) in inputs.iter().enumerate() {
            let invalid = |reason: String| Error::InvalidInput { index, reason };
            if ids.is_empty() {
                return Err(invalid("no tokens".into()));
            }
            if ids.len() > max_length {
                return Err(invalid(format!(
                    "{} tokens, more than the model's max length of {max_length}",
                    ids.len()
                )));
            }
            if let (Some(vocab), Some(&id)) = (self.vocab_size, ids.iter().max()) {
                if id as usize >= vocab {
                    return Err(invalid(format!(
                        "token id {id} is outside the vocabulary of {vocab}"
                    )));
                }
            }
            tokens.push(Tokens {
                ids: ids.clone(),
                truncated: false,
            });
        }
        self.run_tokens(tokens, false).map(|p| p.embeddings)
    }

    /// Token counts of documents as the model would see them (prompt included, after
    /// truncation), e.g. to estimate cost or plan a corpus job.
    pub fn count_tokens<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<usize>> {
        let tokens = self.tokenize(texts, self.prompt(Role::Document))?;
        Ok(tokens.iter().map(|t| t.ids.len()).collect())
    }

    /// The token ids the model sees for each text in a role: prompt, truncation and any end
    /// token rembed appends included.
    pub fn token_ids<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        role: Role,
    ) -> Result<Vec<Vec<u32>>> {
        let tokens = self.tokenize(texts, self.prompt(role))?;
        Ok(tokens.into_iter().map(|t| t.ids).collect())
    }

    /// Output dimension.
    pub fn dim(&self) -> usize {
        self.post.dim
    }

    /// The model's metadata, after the registry, its own files and the options were merged.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The device the model runs on (the first one, when it has several replicas).
    pub fn device(&self) -> &candle_core::Device {
        &self.replicas[0].device
    }

    pub(crate) fn replicas(&self) -> &[Replica] {
        &self.replicas
    }

    /// Every device holding a replica of the model, in the order they were given.
    pub fn devices(&self) -> Vec<&candle_core::Device> {
        self.replicas.iter().map(|r| &r.device).collect()
    }

    /// Rows of the token embedding matrix (`vocab_size` in `config.json`), when known.
    pub fn vocab_size(&self) -> Option<usize> {
        self.vocab_size
    }

    /// What a forward pass costs, for throughput-to-utilisation figures; `None` when the config
    /// lacks a field it needs.
    pub fn flops(&self) -> Option<crate::flops::FlopCount> {
        self.flops
    }

    /// The compute dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The tokenizer, with truncation at the model's max length and no padding.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The prompt `embed` (documents) or `embed_queries` (queries) prepends: the model's, or
    /// empty when prompts are turned off.
    pub fn prompt(&self, role: Role) -> &str {
        match (self.prompts, role) {
            (false, _) => "",
            (true, Role::Document) => &self.spec.document_prompt,
            (true, Role::Query) => &self.spec.query_prompt,
        }
    }

    pub(crate) fn tokenize<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        prompt: &str,
    ) -> Result<Vec<Tokens>> {
        batch::tokenize(
            &self.tokenizer,
            texts,
            prompt,
            self.append_end,
            &self.spec.name,
        )
    }

    fn run<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        prompt: &str,
        keep_going: bool,
    ) -> Result<PartialEmbeddings> {
        self.run_tokens(self.tokenize(texts, prompt)?, keep_going)
    }

    fn run_tokens(&self, tokens: Vec<Tokens>, keep_going: bool) -> Result<PartialEmbeddings> {
        let count = tokens.len();
        let per_batch =
            |_: &Replica, hidden: &Tensor, input: &ModelInput| self.pool(hidden, input)?.to_vec2();
        let run = self.run_batches(tokens, keep_going, &per_batch)?;
        let mut embeddings = Array2::zeros((count, self.dim()));
        for (index, row) in run.outcome.rows {
            embeddings
                .row_mut(index)
                .assign(&ndarray::ArrayView1::from(&row));
        }
        Ok(PartialEmbeddings {
            embeddings,
            failures: run.outcome.failures,
            tokens: run.tokens,
            truncated: run.truncated,
            splits: run.outcome.splits,
        })
    }

    /// Cuts tokenized inputs into length-sorted batches within the token budget, runs each
    /// batch through the network on some replica (halving on out-of-memory) and hands its hidden
    /// states `(B, L, H)` to `per_batch`, which returns one value per row. Rows come back
    /// unordered, with their input index.
    pub(crate) fn run_batches<T: Send>(
        &self,
        tokens: Vec<Tokens>,
        keep_going: bool,
        per_batch: &PerBatch<'_, T>,
    ) -> Result<Batches<T>> {
        let lengths: Vec<usize> = tokens.iter().map(|t| t.ids.len()).collect();
        let truncated = tokens.iter().filter(|t| t.truncated).count();
        if truncated > 0 {
            tracing::info!(
                truncated,
                max_length = self.spec.max_length,
                "inputs truncated to the model's max length"
            );
        }

        let forward = |replica: &Replica, rows: &[usize]| {
            let rows: Vec<&Tokens> = rows.iter().map(|&i| &tokens[i]).collect();
            let input = batch::pad(&rows, 0, &replica.device)?;
            per_batch(replica, &replica.model.forward(&input)?, &input)
        };
        let batches = batch::plan_batches(&lengths, self.max_batch_tokens);
        let outcome = run_spread(
            &self.replicas,
            &batches,
            &|i| lengths[i],
            &forward,
            keep_going,
        )?;
        Ok(Batches {
            outcome,
            tokens: lengths.iter().sum(),
            truncated,
        })
    }

    /// A batch's hidden states pooled and post-processed: `(B, dim)` in f32.
    pub(crate) fn pool(&self, hidden: &Tensor, input: &ModelInput) -> candle_core::Result<Tensor> {
        let pooled = self.spec.pooling.pool(hidden, &input.lengths)?;
        self.post.apply(&pooled)
    }
}

/// What [`Embedder::run_batches`] does with one batch's hidden states `(B, L, H)` on the replica
/// that computed them: one value per row.
pub(crate) type PerBatch<'a, T> =
    dyn Fn(&Replica, &Tensor, &ModelInput) -> candle_core::Result<Vec<T>> + Sync + 'a;

/// What [`Embedder::run_batches`] produced.
pub(crate) struct Batches<T> {
    pub outcome: Outcome<T>,
    /// Tokens fed to the model (after truncation, before padding).
    pub tokens: usize,
    /// Inputs cut at the max length.
    pub truncated: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedder_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Embedder>();
    }
}
