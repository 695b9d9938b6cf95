//! Texts to token ids as the model sees them: the one place where a prompt is joined to a text,
//! inputs are truncated at the max length and a missing end token is appended. Shared by
//! batching and by long texts, so a chunk is measured exactly as it will be embedded.

use std::borrow::Cow;

use rayon::prelude::*;
use tokenizers::{Tokenizer, TruncationParams};

use crate::chunk::CountTokens;
use crate::error::{Error, Result};
use crate::registry::ModelSpec;

/// One tokenized input.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub ids: Vec<u32>,
    /// Whether the text was cut at the model's max length.
    pub truncated: bool,
}

/// A model's tokenizer set up for embedding: truncation at the max length, no padding, and the
/// end token the model needs.
#[derive(Clone)]
pub struct TextTokenizer {
    tokenizer: Tokenizer,
    max_length: usize,
    /// The end token to append to every input, when the model needs one (Qwen3's
    /// `<|endoftext|>`) and its tokenizer's template does not add it.
    append_end: Option<u32>,
    model: String,
}

impl TextTokenizer {
    /// Sets `tokenizer` up for `spec`'s max length and end token. A model whose last-token
    /// pooling reads the end token would otherwise pool an arbitrary word, so whether the
    /// template adds it is checked once, here, and a missing one is appended with a warning.
    pub(crate) fn new(mut tokenizer: Tokenizer, spec: &ModelSpec) -> Result<Self> {
        let model = spec.name.clone();
        let failed = |reason: String| Error::Tokenizer {
            model: model.clone(),
            reason,
        };
        tokenizer.with_padding(None);
        let append_end = match &spec.end_token {
            Some(token) => missing_end_token(&tokenizer, token).map_err(failed)?,
            None => None,
        };
        if let (Some(_), Some(token)) = (append_end, &spec.end_token) {
            tracing::warn!(
                model = %spec.name,
                token = %token,
                "the tokenizer does not end inputs with the model's end token; rembed appends it"
            );
        }
        // The template's special tokens (and an appended end token) take room no text can use.
        let special = tokenizer
            .encode("", true)
            .map_err(|e| failed(e.to_string()))?
            .len()
            + usize::from(append_end.is_some());
        if spec.max_length <= special {
            return Err(Error::InvalidOption {
                option: "max_length",
                reason: format!(
                    "{} tokens leave no room for text: `{}` puts {special} special tokens around every input",
                    spec.max_length, spec.name
                ),
            });
        }
        tokenizer
            .with_truncation(Some(TruncationParams {
                // The appended end token counts toward the max length, as a template's would.
                max_length: spec.max_length - usize::from(append_end.is_some()),
                ..Default::default()
            }))
            .map_err(|e| failed(e.to_string()))?;
        Ok(Self {
            tokenizer,
            max_length: spec.max_length,
            append_end,
            model,
        })
    }

    /// The tokenizer, with truncation at the max length and no padding.
    pub(crate) fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Tokens per input, special tokens included, beyond which inputs are cut.
    pub(crate) fn max_length(&self) -> usize {
        self.max_length
    }

    /// A text with its prompt in front.
    pub(crate) fn join<'t>(prompt: &str, text: &'t str) -> Cow<'t, str> {
        if prompt.is_empty() {
            text.into()
        } else {
            format!("{prompt}{text}").into()
        }
    }

    /// Tokenizes every text (with `prompt` in front) in parallel, truncated at the max length.
    pub(crate) fn encode_all<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        prompt: &str,
    ) -> Result<Vec<Tokens>> {
        texts
            .par_iter()
            .enumerate()
            .map(|(index, text)| {
                let text = Self::join(prompt, text.as_ref());
                let encoding =
                    self.tokenizer
                        .encode(text.as_ref(), true)
                        .map_err(|e| Error::Tokenizer {
                            model: self.model.clone(),
                            reason: format!("input {index}: {e}"),
                        })?;
                let mut ids = encoding.get_ids().to_vec();
                ids.extend(self.append_end);
                Ok(Tokens {
                    truncated: was_truncated(&encoding, &text),
                    ids,
                })
            })
            .collect()
    }

    /// A counter that measures texts as they will be embedded with `prompt`, for cutting long
    /// texts into chunks that fit.
    pub(crate) fn counter<'a>(&'a self, prompt: &'a str) -> PromptedCounter<'a> {
        PromptedCounter {
            tokenizer: self,
            prompt,
        }
    }
}

/// Counts a chunk as the embedder will see it: prompt, text, special tokens and any appended end
/// token. Only "fits or not" matters: an encoding shorter than the max length was not truncated
/// and its count is exact; one that reaches the max length may have been cut (a truncating
/// tokenizer stops there, and one without special tokens leaves no trace of the cut), so it is
/// reported as over. That costs at most one token of room and spares cloning the tokenizer.
pub(crate) struct PromptedCounter<'a> {
    tokenizer: &'a TextTokenizer,
    prompt: &'a str,
}

impl CountTokens for PromptedCounter<'_> {
    fn count_tokens(&self, text: &str) -> Result<usize> {
        let TextTokenizer {
            tokenizer,
            max_length,
            append_end,
            model,
        } = self.tokenizer;
        let encoding = tokenizer
            .encode(TextTokenizer::join(self.prompt, text), true)
            .map_err(|e| Error::Tokenizer {
                model: model.clone(),
                reason: e.to_string(),
            })?;
        let length = encoding.len() + usize::from(append_end.is_some());
        if encoding.get_overflowing().is_empty() && length < *max_length {
            Ok(length)
        } else {
            Ok(max_length + 1)
        }
    }
}

/// Whether truncation cut `text`. The overflow alone does not tell: tokenizers stops early at
/// the truncation length and may report no overflow, notably when the template adds no special
/// tokens. So the text must also be covered up to its last non-blank character by the offsets
/// of the encoding's non-special tokens.
fn was_truncated(encoding: &tokenizers::Encoding, text: &str) -> bool {
    if !encoding.get_overflowing().is_empty() {
        return true;
    }
    let covered = encoding
        .get_offsets()
        .iter()
        .zip(encoding.get_special_tokens_mask())
        .filter(|(_, &special)| special == 0)
        .map(|(&(_, end), _)| end)
        .max()
        .unwrap_or(0);
    // What the tokenizer drops (whitespace, control characters such as NUL) was not cut.
    text.get(covered..)
        .is_some_and(|rest| rest.chars().any(|c| !c.is_whitespace() && !c.is_control()))
}

/// The id of `token` when the tokenizer's template does not already end every input with it
/// (so it must be appended), `None` when it does.
fn missing_end_token(
    tokenizer: &Tokenizer,
    token: &str,
) -> std::result::Result<Option<u32>, String> {
    let id = tokenizer.token_to_id(token).ok_or_else(|| {
        format!("the vocabulary has no `{token}`, which the model's inputs end with")
    })?;
    let probe = tokenizer.encode("a", true).map_err(|e| e.to_string())?;
    Ok((probe.get_ids().last() != Some(&id)).then_some(id))
}
