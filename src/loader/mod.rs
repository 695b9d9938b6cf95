//! Finding a model's files and reading its metadata: a local directory or a Hugging Face repo
//! (through the standard cache, shared with Python tools), in sentence-transformers layout, or a
//! GGUF file (a path, or a model in Ollama's store).
//! [`load`] returns everything an embedder is built from.

mod files;
mod gguf;
mod heads;
mod hub;
mod locate;
mod merge;
mod sentence_transformers;
mod source;
mod weights;

pub(crate) use locate::load;
