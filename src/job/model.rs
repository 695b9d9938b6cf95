//! Every call the job makes into the [`Embedder`] at run time, in one place: embedding a batch so
//! that one bad record never costs the others their vectors, and the GPU the sampler watches.

use crate::{Device, Embedder, FailureKind, Request};

/// Per text, its vector or why it failed; plus the tokens and truncations of the batch.
pub(crate) type Embedded = (Vec<Result<Vec<f32>, String>>, u64, u64);

/// The start of the reason given for a non-finite vector, by which the job counts them.
pub(crate) const NON_FINITE: &str = "the model gave a non-finite vector";

/// Embeds texts as documents.
///
/// A failure of the whole call (a tokenizer error, say) must not take the batch's good texts
/// with it, so they are then retried one at a time. A vector with a NaN or an infinity (NaN
/// weights, an f16 overflow) is a failure of its text, never a row (the embedder reports it as
/// [`FailureKind::NotFinite`]); a failure is retried by the next run.
pub(crate) fn embed(embedder: &Embedder, texts: &[&str]) -> Embedded {
    let non_finite = || {
        format!(
            "{NON_FINITE} (NaN or infinity); with --dtype f16 or bf16 try f32, else check the \
             weights of {}",
            embedder.spec().name
        )
    };
    embed_each(embedder, texts, &non_finite)
}

fn embed_each(embedder: &Embedder, texts: &[&str], non_finite: &dyn Fn() -> String) -> Embedded {
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
                    *result = Err(match failure.kind {
                        FailureKind::NotFinite => non_finite(),
                        _ => failure.reason,
                    });
                }
            }
            (results, partial.tokens as u64, partial.truncated as u64)
        }
        Err(_) if texts.len() > 1 => {
            let (mut results, mut tokens, mut truncated) = (Vec::new(), 0, 0);
            for text in texts {
                let (mut one, t, c) = embed_each(embedder, &[*text], non_finite);
                results.push(one.pop().unwrap_or_else(|| Err("no result".into())));
                tokens += t;
                truncated += c;
            }
            (results, tokens, truncated)
        }
        Err(e) => (vec![Err(e.to_string())], 0, 0),
    }
}

/// The GPU whose utilization, memory and temperature the progress shows: the embedder's first
/// device when it is a CUDA one. Read from the embedder, so the job holds no device default.
pub(crate) fn sampled_gpu(embedder: &Embedder) -> Option<u32> {
    match embedder.devices().first() {
        Some(&Device::Cuda(ordinal)) => u32::try_from(ordinal).ok(),
        _ => None,
    }
}
