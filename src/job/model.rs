//! Calling the model so that one bad record never costs the others their vectors.

use crate::{Embedder, Request};

/// Embeds texts: per text, its vector or why it failed; plus tokens and truncations.
///
/// A failure of the whole call (a tokenizer error, say) must not take the batch's good texts
/// with it, so they are then retried one at a time.
pub(crate) fn embed(
    embedder: &Embedder,
    texts: &[&str],
) -> (Vec<Result<Vec<f32>, String>>, u64, u64) {
    match embedder.embed_with(texts, &Request::documents().keep_going(true)) {
        Ok(partial) => {
            let mut results: Vec<Result<Vec<f32>, String>> = partial
                .dense
                .rows()
                .into_iter()
                .map(|row| Ok(row.to_vec()))
                .collect();
            for failure in partial.failures {
                if let Some(result) = results.get_mut(failure.index) {
                    *result = Err(failure.reason);
                }
            }
            (results, partial.tokens as u64, partial.truncated as u64)
        }
        Err(_) if texts.len() > 1 => {
            let (mut results, mut tokens, mut truncated) = (Vec::new(), 0, 0);
            for text in texts {
                let (mut one, t, c) = embed(embedder, &[*text]);
                results.push(one.pop().unwrap_or_else(|| Err("no result".into())));
                tokens += t;
                truncated += c;
            }
            (results, tokens, truncated)
        }
        Err(e) => (vec![Err(e.to_string())], 0, 0),
    }
}
