//! From texts to padded batches: parallel tokenization with truncation, length sorting and
//! token-budget batching.

use candle_core::{Device, Tensor};
use rayon::prelude::*;
use tokenizers::Tokenizer;

use crate::error::{Error, Result};
use crate::models::ModelInput;

/// One tokenized input.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    pub ids: Vec<u32>,
    /// Whether the text was cut at the model's max length.
    pub truncated: bool,
}

/// Tokenizes every text in parallel with the tokenizer's truncation (set up at load time), and
/// appends `append_id` where a model needs an end token its tokenizer does not add.
pub(crate) fn tokenize<S: AsRef<str> + Sync>(
    tokenizer: &Tokenizer,
    texts: &[S],
    prompt: &str,
    append_id: Option<u32>,
    model: &str,
) -> Result<Vec<Tokens>> {
    texts
        .par_iter()
        .enumerate()
        .map(|(index, text)| {
            let text: std::borrow::Cow<str> = if prompt.is_empty() {
                text.as_ref().into()
            } else {
                format!("{prompt}{}", text.as_ref()).into()
            };
            let encoding = tokenizer
                .encode(text.as_ref(), true)
                .map_err(|e| Error::Tokenizer {
                    model: model.to_string(),
                    reason: format!("input {index}: {e}"),
                })?;
            let mut ids = encoding.get_ids().to_vec();
            ids.extend(append_id);
            Ok(Tokens {
                truncated: was_truncated(&encoding, &text),
                ids,
            })
        })
        .collect()
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
    text.get(covered..)
        .is_some_and(|rest| !rest.trim().is_empty())
}

/// The id of `token` when the tokenizer's template does not already end every input with it
/// (so rembed must append it), `None` when it does. A model whose last-token pooling reads the
/// end token would otherwise pool an arbitrary word: the check is made once, at load.
pub(crate) fn missing_end_token(
    tokenizer: &Tokenizer,
    token: &str,
    model: &str,
) -> Result<Option<u32>> {
    let id = tokenizer
        .token_to_id(token)
        .ok_or_else(|| Error::Tokenizer {
            model: model.to_string(),
            reason: format!("the vocabulary has no `{token}`, which the model's inputs end with"),
        })?;
    let probe = tokenizer.encode("a", true).map_err(|e| Error::Tokenizer {
        model: model.to_string(),
        reason: e.to_string(),
    })?;
    Ok((probe.get_ids().last() != Some(&id)).then_some(id))
}

/// Groups input indices into batches: longest first, each batch's padded size
/// (`rows × longest row`) within `max_batch_tokens`. An input longer than the budget gets a
/// batch of its own. Sorting keeps padding, and so wasted compute, small.
pub fn plan_batches(lengths: &[usize], max_batch_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        let longest = current
            .first()
            .map_or(lengths[i], |&first| lengths[first])
            .max(1);
        if !current.is_empty() && (current.len() + 1) * longest > max_batch_tokens {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// The right-padded `(B, L)` id tensor of the given inputs.
pub(crate) fn pad(
    tokens: &[&Tokens],
    pad_id: u32,
    device: &Device,
) -> candle_core::Result<ModelInput> {
    let lengths: Vec<usize> = tokens.iter().map(|t| t.ids.len()).collect();
    let seq_len = lengths.iter().copied().max().unwrap_or(0).max(1);
    let mut ids = Vec::with_capacity(tokens.len() * seq_len);
    for t in tokens {
        ids.extend_from_slice(&t.ids);
        ids.extend(std::iter::repeat_n(pad_id, seq_len - t.ids.len()));
    }
    Ok(ModelInput {
        input_ids: Tensor::from_vec(ids, (tokens.len(), seq_len), device)?,
        lengths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_the_budget_and_cover_every_input_once() {
        let lengths = [5, 40, 7, 7, 12, 3, 100, 1];
        let batches = plan_batches(&lengths, 30);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
        for b in &batches {
            let longest = b.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(b.len() == 1 || b.len() * longest <= 30, "{b:?}");
            assert!(b.windows(2).all(|w| lengths[w[0]] >= lengths[w[1]]));
        }
        assert_eq!(batches[0], vec![6]);
        assert_eq!(batches[1], vec![1]);
        assert_eq!(batches[2], vec![4, 2]);
    }

    #[test]
    fn padding_is_on_the_right() {
        let a = Tokens {
            ids: vec![1, 2, 3],
            truncated: false,
        };
        let b = Tokens {
            ids: vec![4],
            truncated: false,
        };
        let input = pad(&[&a, &b], 0, &Device::Cpu).unwrap();
        assert_eq!(
            input.input_ids.to_vec2::<u32>().unwrap(),
            vec![vec![1, 2, 3], vec![4, 0, 0]]
        );
        assert_eq!(input.lengths, vec![3, 1]);
    }
}
