//! rembed turns text into embedding vectors in-process, on CUDA or the CPU, with no server and
//! no Python.
//!
//! How a call to [`Embedder::embed`] runs:
//! 1. Each text gets the model's document prompt (or query prompt, for
//!    [`Embedder::embed_queries`]) and is tokenized, in parallel, truncated at the model's max
//!    length.
//! 2. Inputs are sorted by length and cut into batches whose padded size fits a token budget
//!    ([`Options::with_max_batch_tokens`]).
//! 3. Each batch runs through the network; one that runs out of device memory is halved and
//!    retried, down to a single input, which then fails with [`Error::OutOfMemory`].
//! 4. Hidden states are pooled (CLS, mean or last token) in f32, truncated to the requested
//!    Matryoshka dimension and normalized, checked to be finite, and put back in input order;
//!    every input comes back as a row or as a recorded failure.
//!
//! Everything else goes through [`Embedder::embed_with`] and a [`Request`]: another [`Prompt`]
//! (a Qwen3 task, nomic's `clustering: `), another dimension, keep going past failures,
//! bge-m3's sparse and ColBERT outputs, long texts as chunks ([`LongText`]), or
//! [`TokenIds`] instead of texts.
//!
//! Models are named by registry name or alias (see `models.toml`), Hugging Face repo id, or
//! local directory in sentence-transformers layout.
//!
//! ```
//! # fn main() -> rembed::Result<()> {
//! use rembed::{Embedder, Options, Prompt, Request};
//! let embedder = Embedder::load("all-minilm-l6-v2", Options::default())?;
//! let docs: ndarray::Array2<f32> = embedder.embed(&["first text", "second text"])?;
//! let queries = embedder.embed_queries(&["a question"])?; // applies the model's query prompt
//! assert_eq!(docs.ncols(), embedder.dim());
//! assert_eq!(queries.nrows(), 1);
//!
//! let request = Request::default().with_prompt(Prompt::None).keep_going(true);
//! let out = embedder.embed_with(&["no prompt", "and no stop on a failure"], &request)?;
//! assert!(out.failures.is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! `models.toml` (through `registry`) holds every model fact: entries and per-architecture
//! conventions. `loader` finds a model's files and merges registry, sentence-transformers files
//! and options. `models` holds the typed config (by `model_type`), one file per architecture
//! returning hidden states, and the output heads. `tokenize` joins prompts and truncates;
//! `batch`, `halving`, `replicas` and `run` plan, retry and spread batches and account for every
//! input; `pooling` pools and normalizes; `device` holds every device-dependent default;
//! `embedder` ties them together. Files import downwards only: no two import each other.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod batch;
mod budget;
pub mod chunk;
mod cuda_driver;
mod cuda_errors;
mod cuda_memory;
mod device;
mod embedder;
mod error;
mod flops;
mod gguf;
pub mod gpu_memory;
mod halving;
mod hash;
mod heap_retention;
mod host_memory;
mod inputs;
#[cfg(feature = "job")]
#[cfg_attr(docsrs, doc(cfg(feature = "job")))]
pub mod job;
#[doc(hidden)]
pub mod kernels;
mod layers;
mod loader;
mod long_text;
mod memory;
mod models;
mod oom;
mod options;
mod output;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod pg;
mod pooling;
mod random_weights;
mod registry;
mod replicas;
mod request;
mod run;
mod tokenize;
mod weights;

pub use embedder::Embedder;
pub use error::{Error, OllamaMissing, Result};
pub use flops::FlopCount;
pub use halving::{Failure, FailureKind};
pub use inputs::{Inputs, TokenIds};
pub use models::heads::SparseEmbedding;
pub use models::Architecture;
pub use options::{parse_devices, Device, Options, Precision};
pub use output::{Chunks, Embeddings};
pub use pooling::Pooling;
pub use registry::{Conventions, ModelSpec, Registry};
pub use request::{LongText, Prompt, Request};
