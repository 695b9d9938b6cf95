//! [`Inputs`]: what [`Embedder::embed_with`](crate::Embedder::embed_with) embeds: texts, or
//! token ids that are already what the model reads.

use crate::error::{Error, Result};
use crate::tokenize::{TextTokenizer, Tokens};

/// Token ids, special tokens included (as [`Embedder::tokenize`](crate::Embedder::tokenize)
/// returns them): a corpus tokenized once for several runs, or a benchmark's synthetic inputs.
/// They are fed as given: no prompt, no end token. Each must be non-empty, at most the model's
/// max length, with every id inside the vocabulary; otherwise
/// [`Error::InvalidInput`] names the first that is not, before anything reaches a device (where
/// an id out of range would be an illegal memory access).
#[derive(Debug, Clone, Copy)]
pub struct TokenIds<'a>(pub &'a [Vec<u32>]);

/// Texts (`[&str]`, `Vec<String>`, arrays) or [`TokenIds`].
pub trait Inputs: sealed::Tokenize {}

impl<T: sealed::Tokenize + ?Sized> Inputs for T {}

pub(crate) mod sealed {
    use super::*;

    /// How inputs become model tokens; not implementable outside the crate.
    pub trait Tokenize: Sync {
        /// The texts, when the inputs are texts (long-text chunking needs them).
        fn texts(&self) -> Option<Vec<&str>>;
        /// Number of inputs.
        fn count(&self) -> usize;
        /// The tokens the model reads.
        fn tokens(
            &self,
            tokenizer: &TextTokenizer,
            prompt: &str,
            vocab: usize,
        ) -> Result<Vec<Tokens>>;
    }
}

impl<S: AsRef<str> + Sync> sealed::Tokenize for [S] {
    fn texts(&self) -> Option<Vec<&str>> {
        Some(self.iter().map(AsRef::as_ref).collect())
    }

    fn count(&self) -> usize {
        self.len()
    }

    fn tokens(&self, tokenizer: &TextTokenizer, prompt: &str, _: usize) -> Result<Vec<Tokens>> {
        tokenizer.encode_all(self, prompt)
    }
}

impl<S: AsRef<str> + Sync> sealed::Tokenize for Vec<S> {
    fn texts(&self) -> Option<Vec<&str>> {
        self.as_slice().texts()
    }

    fn count(&self) -> usize {
        self.len()
    }

    fn tokens(&self, tokenizer: &TextTokenizer, prompt: &str, vocab: usize) -> Result<Vec<Tokens>> {
        self.as_slice().tokens(tokenizer, prompt, vocab)
    }
}

impl<S: AsRef<str> + Sync, const N: usize> sealed::Tokenize for [S; N] {
    fn texts(&self) -> Option<Vec<&str>> {
        self.as_slice().texts()
    }

    fn count(&self) -> usize {
        N
    }

    fn tokens(&self, tokenizer: &TextTokenizer, prompt: &str, vocab: usize) -> Result<Vec<Tokens>> {
        self.as_slice().tokens(tokenizer, prompt, vocab)
    }
}

impl sealed::Tokenize for TokenIds<'_> {
    fn texts(&self) -> Option<Vec<&str>> {
        None
    }

    fn count(&self) -> usize {
        self.0.len()
    }

    fn tokens(&self, tokenizer: &TextTokenizer, _: &str, vocab: usize) -> Result<Vec<Tokens>> {
        let max_length = tokenizer.max_length();
        self.0
            .iter()
            .enumerate()
            .map(|(index, ids)| {
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
                if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
                    return Err(invalid(format!(
                        "token id {id} is outside the vocabulary of {vocab}"
                    )));
                }
                Ok(Tokens {
                    ids: ids.clone(),
                    truncated: false,
                })
            })
            .collect()
    }
}
