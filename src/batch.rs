//! From tokenized inputs to padded batches: length sorting and token-budget batching.

use candle_core::{Device, Tensor};

use crate::models::encoder::ModelInput;
use crate::tokenize::Tokens;

/// Groups input indices into batches: longest first, each batch's padded size
/// (`rows × longest row`) within `max_batch_tokens`, and its attention (`rows × longest²`,
/// which grows faster than the tokens) within what `max_batch_tokens` tokens of
/// [`ATTENTION_SPAN`]-token inputs would do. Inputs up to that span batch as before; several
/// longer ones are split before they run. An input over either budget gets a batch of its own.
/// Sorting keeps padding, and so wasted compute, small.
pub(crate) fn plan_batches(lengths: &[usize], max_batch_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        let longest = current
            .first()
            .map_or(lengths[i], |&first| lengths[first])
            .max(1);
        let rows = current.len() + 1;
        let over_tokens = rows * longest > max_batch_tokens;
        let over_attention = (rows * longest) as u128 * longest as u128
            > max_batch_tokens as u128 * ATTENTION_SPAN as u128;
        if !current.is_empty() && (over_tokens || over_attention) {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Input length up to which a batch is bounded by its tokens alone; past it, by its attention
/// (`rows × L²`), so that the attention work, and with it a batch's time and its memory on
/// devices without blocked attention, stays what it is at this length.
pub(crate) const ATTENTION_SPAN: usize = 2_048;

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
    fn several_long_inputs_are_split_by_their_attention() {
        // 16,384 tokens allow three 5,000-token inputs, but not their attention.
        let lengths = [5_000, 5_000, 5_000, 1_000, 1_000, 1_000];
        let batches = plan_batches(&lengths, 16_384);
        for b in &batches {
            let longest = b.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(b.len() == 1 || b.len() * longest * longest <= 16_384 * ATTENTION_SPAN);
        }
        assert_eq!(batches[..3], [vec![0], vec![1], vec![2]]);
        assert_eq!(batches[3], vec![3, 4, 5]);
        // Up to the span, tokens alone decide: 8 x 2,048 fit in 16,384.
        assert_eq!(plan_batches(&[2_048; 8], 16_384).len(), 1);
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
