//! One call's tokens through the network: length-sorted batches within the token budget, spread
//! over the replicas (halving on out-of-memory), each batch's hidden states turned into the
//! outputs asked for, and every input accounted for before anything is returned.

use candle_core::{DType, Tensor};
use ndarray::{Array2, ArrayView1};

use crate::batch::{pad, plan_batches};
use crate::cuda_memory;
use crate::device::{attention_block_elements, memory_to_check, release_after_oom};
use crate::error::{Error, Result};
use crate::halving::{Failure, FailureKind, Outcome};
use crate::memory::forward_bytes;
use crate::models::encoder::ModelInput;
use crate::models::heads::SparseEmbedding;
use crate::models::shape::Shape;
use crate::oom::{estimated_oom, is_oom, under_pressure, SimulatedOom};
use crate::output::Embeddings;
use crate::pooling::{Pooling, PostProcess};
use crate::replicas::{run_spread, Replica};
use crate::tokenize::Tokens;

/// How a call's batches are run and what comes out of each.
pub(crate) struct Plan<'a> {
    pub replicas: &'a [Replica],
    pub pooling: Pooling,
    pub post: PostProcess,
    pub max_batch_tokens: usize,
    pub sparse: bool,
    pub colbert: bool,
    pub keep_going: bool,
    pub simulated_oom: Option<&'a SimulatedOom>,
    /// The network's sizes and the bytes of its compute dtype, for the memory estimate.
    pub shape: Shape,
    pub dtype_bytes: usize,
}

/// One input's outputs.
struct Row {
    dense: Vec<f32>,
    sparse: Option<SparseEmbedding>,
    colbert: Option<Array2<f32>>,
}

/// Runs every input and returns one row per input, in input order. An input that neither came
/// back nor was recorded as failed is an internal error, never a zero row; a vector that is not
/// finite (NaN from f16 overflow or broken weights) is that input's failure, never a result.
pub(crate) fn run(plan: &Plan<'_>, tokens: Vec<Tokens>) -> Result<Embeddings> {
    let count = tokens.len();
    let lengths: Vec<usize> = tokens.iter().map(|t| t.ids.len()).collect();
    let truncated = tokens.iter().filter(|t| t.truncated).count();
    if truncated > 0 {
        tracing::info!(truncated, "inputs truncated to the model's max length");
    }
    let forward = |replica: &Replica, rows: &[usize]| {
        let result = forward_batch(plan, replica, &tokens, rows)
            .map_err(|e| under_pressure(e, cuda_memory::free_fraction(&replica.device)));
        if matches!(&result, Err(e) if is_oom(e)) {
            release_after_oom(&replica.device);
        }
        result
    };
    let batches = plan_batches(&lengths, plan.max_batch_tokens);
    let outcome = run_spread(
        plan.replicas,
        &batches,
        &|i| lengths[i],
        &forward,
        plan.keep_going,
    )?;
    let (rows, failures, splits) = account(outcome, count, &lengths, plan.keep_going)?;

    let dim = plan.post.dim;
    let mut dense = Array2::zeros((count, dim));
    let mut sparse = plan.sparse.then(|| vec![SparseEmbedding::default(); count]);
    let mut colbert = plan.colbert.then(|| vec![Array2::zeros((0, 0)); count]);
    for (index, row) in rows.into_iter().enumerate() {
        let Some(row) = row else { continue };
        dense.row_mut(index).assign(&ArrayView1::from(&row.dense));
        if let (Some(all), Some(one)) = (sparse.as_mut(), row.sparse) {
            all[index] = one;
        }
        if let (Some(all), Some(one)) = (colbert.as_mut(), row.colbert) {
            all[index] = one;
        }
    }
    Ok(Embeddings {
        dense,
        sparse,
        colbert,
        chunks: None,
        failures,
        tokens: lengths.iter().sum(),
        truncated,
        splits,
    })
}

/// One batch on one replica: padded, through the network, pooled and post-processed.
fn forward_batch(
    plan: &Plan<'_>,
    replica: &Replica,
    tokens: &[Tokens],
    rows: &[usize],
) -> candle_core::Result<Vec<Row>> {
    let batch: Vec<&Tokens> = rows.iter().map(|&i| &tokens[i]).collect();
    let input = pad(&batch, 0, &replica.device)?;
    if let Some(simulated) = plan.simulated_oom {
        simulated.check(rows, input.input_ids.elem_count())?;
    }
    let device = &replica.device;
    check_memory(
        &plan.shape,
        plan.dtype_bytes,
        rows.len(),
        input.input_ids.dim(1)?,
        attention_block_elements(device),
        memory_to_check(device),
    )?;
    let hidden = replica.network.forward(&input)?;
    outputs(plan, replica, &hidden, &input)
}

/// Refuses, as out-of-memory, a batch whose estimated peak exceeds the memory the device may
/// use (see [`memory_to_check`]): halving then splits it, and an input too large alone fails
/// with its index instead of aborting the process.
fn check_memory(
    shape: &Shape,
    dtype_bytes: usize,
    rows: usize,
    seq_len: usize,
    block_elements: usize,
    available: Option<u64>,
) -> candle_core::Result<()> {
    let Some(available) = available else {
        return Ok(());
    };
    let needed = forward_bytes(shape, rows, seq_len, dtype_bytes, block_elements);
    if needed > available {
        return Err(estimated_oom(needed, available));
    }
    Ok(())
}

fn outputs(
    plan: &Plan<'_>,
    replica: &Replica,
    hidden: &Tensor,
    input: &ModelInput,
) -> candle_core::Result<Vec<Row>> {
    let pooled = plan.pooling.pool(hidden, &input.lengths)?;
    let dense = plan.post.apply(&pooled)?.to_vec2::<f32>()?;
    let heads = replica.network.heads();
    let hidden = if plan.sparse || plan.colbert {
        Some(hidden.to_dtype(DType::F32)?)
    } else {
        None
    };
    let mut sparse = match (&hidden, plan.sparse) {
        (Some(h), true) => heads.sparse(h, input)?.into_iter().map(Some).collect(),
        _ => vec![None; dense.len()],
    };
    let mut colbert = match (&hidden, plan.colbert) {
        (Some(h), true) => heads.colbert(h, input)?.into_iter().map(Some).collect(),
        _ => vec![None; dense.len()],
    };
    if sparse.len() != dense.len() || colbert.len() != dense.len() {
        candle_core::bail!("the heads returned a different number of rows than the batch");
    }
    Ok(dense
        .into_iter()
        .enumerate()
        .map(|(b, dense)| Row {
            dense,
            sparse: sparse[b].take(),
            colbert: colbert[b].take(),
        })
        .collect())
}

/// Puts rows in input order and checks that every input is there exactly once, as a row or as
/// a failure; turns rows that are not finite into failures (or the call's error).
#[allow(clippy::type_complexity)]
fn account(
    outcome: Outcome<Row>,
    count: usize,
    lengths: &[usize],
    keep_going: bool,
) -> Result<(Vec<Option<Row>>, Vec<Failure>, usize)> {
    let mut rows: Vec<Option<Row>> = (0..count).map(|_| None).collect();
    let mut seen = vec![false; count];
    let mut twice = Vec::new();
    let mut failures = Vec::new();
    for (index, row) in outcome.rows {
        if std::mem::replace(&mut seen[index], true) {
            twice.push(index);
        }
        if row.dense.iter().all(|v| v.is_finite()) {
            rows[index] = Some(row);
        } else if keep_going {
            failures.push(Failure {
                index,
                tokens: lengths[index],
                reason: NOT_FINITE.into(),
                kind: FailureKind::NotFinite,
            });
        } else {
            return Err(Error::NotFinite {
                index,
                tokens: lengths[index],
            });
        }
    }
    for failure in outcome.failures {
        if std::mem::replace(&mut seen[failure.index], true) {
            twice.push(failure.index);
        }
        failures.push(failure);
    }
    let missing: Vec<usize> = (0..count).filter(|&i| !seen[i]).collect();
    if !missing.is_empty() || !twice.is_empty() {
        return Err(Error::Internal {
            reason: format!(
                "inputs {missing:?} came back from no batch and inputs {twice:?} from two; \
                 no vectors were returned rather than wrong ones"
            ),
        });
    }
    failures.sort_by_key(|f| f.index);
    Ok((rows, failures, outcome.splits))
}

const NOT_FINITE: &str = "the model produced a vector that is not finite (NaN or infinity)";

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome_of(rows: Vec<(usize, Row)>) -> Outcome<Row> {
        Outcome {
            rows,
            failures: Vec::new(),
            splits: 0,
        }
    }

    fn row(v: f32) -> Row {
        Row {
            dense: vec![v, v],
            sparse: None,
            colbert: None,
        }
    }

    #[test]
    fn a_batch_over_the_available_memory_is_refused_as_out_of_memory() {
        // Qwen3-8B's shape in f32 at 32,768 tokens with 1 GiB available: refused, and halving
        // (tested in `halving`) turns a refused single input into `Error::OutOfMemory`.
        let shape = crate::registry::Registry::shape_of("qwen3-embedding-8b");
        let err = check_memory(&shape, 4, 1, 32_768, 1 << 22, Some(1 << 30)).unwrap_err();
        assert!(is_oom(&err), "{err}");
        assert!(err.to_string().contains("1024 MiB available"), "{err}");
        assert!(check_memory(&shape, 4, 1, 32_768, 1 << 22, Some(1 << 40)).is_ok());
        assert!(check_memory(&shape, 4, 1, 32_768, 1 << 22, None).is_ok());
        assert!(check_memory(&shape, 4, 1, 512, 1 << 22, Some(1 << 30)).is_ok());
    }

    #[test]
    fn a_lost_or_doubled_input_is_an_error_never_a_zero_row() {
        let outcome = outcome_of(vec![(0, row(1.0)), (2, row(2.0))]);
        let err = account(outcome, 3, &[1, 1, 1], true).err().unwrap();
        assert!(
            matches!(&err, Error::Internal { reason } if reason.contains("[1]")),
            "{err}"
        );

        let outcome = outcome_of(vec![(0, row(1.0)), (0, row(1.0))]);
        assert!(account(outcome, 1, &[1], true).is_err());
    }

    #[test]
    fn a_non_finite_row_is_that_inputs_failure() {
        let outcome = outcome_of(vec![(1, row(f32::NAN)), (0, row(1.0))]);
        let (rows, failures, _) = account(outcome, 2, &[3, 4], true).unwrap();
        assert!(rows[0].is_some() && rows[1].is_none());
        assert_eq!(failures.len(), 1);
        assert_eq!(
            (failures[0].index, failures[0].kind),
            (1, FailureKind::NotFinite)
        );

        let outcome = outcome_of(vec![(0, row(1.0)), (1, row(f32::INFINITY))]);
        let err = account(outcome, 2, &[3, 4], false).err().unwrap();
        assert!(
            matches!(
                err,
                Error::NotFinite {
                    index: 1,
                    tokens: 4
                }
            ),
            "{err}"
        );
    }
}
