//! [`CountTokens`]: how the splitter measures text, for a tokenizer or any counting function.

use tokenizers::Tokenizer;

use crate::error::{Error, Result};

/// Counts the tokens a text becomes. Implemented for [`tokenizers::Tokenizer`], for
/// [`TokenCounter`], and for any `Fn(&str) -> usize`, so the splitter needs no model, only a way
/// to count.
pub trait CountTokens {
    /// Number of tokens in `text`.
    fn count_tokens(&self, text: &str) -> Result<usize>;
}

impl CountTokens for Tokenizer {
    /// Tokens without special tokens (`[CLS]`, `<eos>`), so a budget for a model is its max
    /// length minus those; padding is not counted.
    ///
    /// A truncating tokenizer (such as [`crate::Embedder::tokenizer`]) stops counting at its max
    /// length, so a text that reaches it fails with [`Error::InvalidOption`] rather than get a
    /// wrong count: count with [`TokenCounter`] instead.
    fn count_tokens(&self, text: &str) -> Result<usize> {
        let encoding = self.encode(text, false).map_err(|e| Error::Tokenizer {
            model: "token counter".into(),
            reason: e.to_string(),
        })?;
        if let Some(truncation) = self.get_truncation() {
            if encoding.len() >= truncation.max_length {
                return Err(Error::InvalidOption {
                    option: "truncation",
                    reason: format!(
                        "the tokenizer truncates at {} tokens, so it cannot count longer texts; \
                         count with rembed::chunk::TokenCounter",
                        truncation.max_length
                    ),
                });
            }
        }
        Ok(encoding
            .get_attention_mask()
            .iter()
            .filter(|&&m| m != 0)
            .count())
    }
}

/// A copy of a tokenizer with truncation and padding turned off, so it counts texts of any
/// length. Making one clones the tokenizer's vocabulary (milliseconds for a large model), so make
/// it once and reuse it.
#[derive(Debug, Clone)]
pub struct TokenCounter {
    tokenizer: Tokenizer,
}

impl TokenCounter {
    /// Copies `tokenizer` without its truncation and padding.
    pub fn new(tokenizer: &Tokenizer) -> Self {
        let mut tokenizer = tokenizer.clone();
        tokenizer.with_padding(None);
        // Turning truncation off cannot fail: only a stride that does not fit is refused.
        let _ = tokenizer.with_truncation(None);
        Self { tokenizer }
    }
}

impl CountTokens for TokenCounter {
    /// Tokens without special tokens.
    fn count_tokens(&self, text: &str) -> Result<usize> {
        self.tokenizer.count_tokens(text)
    }
}

impl<F: Fn(&str) -> usize> CountTokens for F {
    fn count_tokens(&self, text: &str) -> Result<usize> {
        Ok(self(text))
    }
}
