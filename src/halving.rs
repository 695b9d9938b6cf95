//! Recursive batch halving on device out-of-memory: a batch that does not fit is split in two
//! and each half retried, down to a single input, which then fails with its index.

use crate::budget::MemoryBudget;
use crate::error::{Error, Result};
use crate::oom::is_oom;

/// An input that could not be embedded, when the caller asked to keep going.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failure {
    /// Position of the input in the caller's slice.
    pub index: usize,
    /// Its token count after truncation.
    pub tokens: usize,
    /// Why it failed, in words.
    pub reason: String,
    /// Why it failed, as a kind.
    pub kind: FailureKind,
}

/// What made an input fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// It did not fit in device memory even alone.
    OutOfMemory,
    /// The model produced a vector that is not finite (NaN or infinity): f16 overflow, or
    /// broken weights.
    NotFinite,
    /// The forward pass of its batch failed otherwise.
    Failed,
}

/// What a run of batches produced.
pub(crate) struct Outcome<T> {
    pub rows: Vec<(usize, T)>,
    pub failures: Vec<Failure>,
    /// How many times a batch was halved.
    pub splits: usize,
}

impl<T> Default for Outcome<T> {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            failures: Vec::new(),
            splits: 0,
        }
    }
}

/// The forward pass of one batch (input indices) in a context (the replica it runs on): one
/// value per row. The one shape a batch has from the embedder down to the device.
pub(crate) type Forward<'a, C, T> = dyn Fn(&C, &[usize]) -> candle_core::Result<Vec<T>> + Sync + 'a;

/// Runs `forward` on `batch` (input indices), halving on out-of-memory. A batch at least as
/// large (in padded tokens) as one that already ran out of memory on this device (`budget`) is
/// split before it runs.
///
/// Other errors are never retried: they are returned, or with `keep_going` recorded as a
/// failure of every input of the batch. A single input that is out of memory gives
/// [`Error::OutOfMemory`], or with `keep_going` a failure, and the other inputs go on.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<C, T>(
    context: &C,
    budget: &MemoryBudget,
    batch: &[usize],
    tokens: &dyn Fn(usize) -> usize,
    forward: &Forward<'_, C, T>,
    keep_going: bool,
    outcome: &mut Outcome<T>,
) -> Result<()> {
    let padded = batch.len() * batch.iter().map(|&i| tokens(i)).max().unwrap_or(0);
    let halve = |outcome: &mut Outcome<T>| {
        outcome.splits += 1;
        let (first, second) = batch.split_at(batch.len() / 2);
        run(context, budget, first, tokens, forward, keep_going, outcome)?;
        run(
            context, budget, second, tokens, forward, keep_going, outcome,
        )
    };
    if batch.len() > 1 && !budget.allows(padded) {
        return halve(outcome);
    }
    let error = match forward(context, batch) {
        Ok(rows) => {
            outcome.rows.extend(batch.iter().copied().zip(rows));
            return Ok(());
        }
        Err(error) => error,
    };
    if is_oom(&error) {
        budget.failed(padded);
    }
    if is_oom(&error) && batch.len() > 1 {
        tracing::info!(
            inputs = batch.len(),
            padded_tokens = padded,
            "device out of memory; halving the batch"
        );
        return halve(outcome);
    }
    let out_of_memory = is_oom(&error);
    if !keep_going {
        return Err(if out_of_memory {
            Error::OutOfMemory {
                index: batch[0],
                tokens: tokens(batch[0]),
                reason: error.to_string(),
            }
        } else {
            Error::Candle(error)
        });
    }
    let reason = error.to_string();
    outcome.failures.extend(batch.iter().map(|&index| Failure {
        index,
        tokens: tokens(index),
        reason: reason.clone(),
        kind: if out_of_memory {
            FailureKind::OutOfMemory
        } else {
            FailureKind::Failed
        },
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 100;

    /// Runs the driver over `batch` with a fake forward pass that "runs out of memory" above
    /// `LIMIT` padded tokens and otherwise returns each input's index times ten; also returns
    /// how many forward calls were made.
    fn drive(
        lengths: &[usize],
        batch: &[usize],
        keep_going: bool,
    ) -> (Result<()>, Outcome<usize>, usize) {
        drive_with(&MemoryBudget::default(), lengths, batch, keep_going)
    }

    /// [`drive`] with a budget that lasts across calls, as a replica's does.
    fn drive_with(
        budget: &MemoryBudget,
        lengths: &[usize],
        batch: &[usize],
        keep_going: bool,
    ) -> (Result<()>, Outcome<usize>, usize) {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let forward = |_: &(), batch: &[usize]| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let padded = batch.len() * batch.iter().map(|&i| lengths[i]).max().unwrap_or(0);
            if padded > LIMIT {
                Err(crate::oom::simulated_for_test())
            } else {
                Ok(batch.iter().map(|&i| i * 10).collect())
            }
        };
        let mut outcome = Outcome::default();
        let result = run(
            &(),
            budget,
            batch,
            &|i| lengths[i],
            &forward,
            keep_going,
            &mut outcome,
        );
        (result, outcome, calls.into_inner())
    }

    #[test]
    fn a_size_that_ran_out_of_memory_is_split_before_it_runs_again() {
        let budget = MemoryBudget::default();
        let batch: Vec<usize> = (0..8).collect();
        let (result, first, calls) = drive_with(&budget, &[20; 8], &batch, false);
        result.unwrap();
        assert_eq!((first.splits, calls), (1, 3), "fails once, then two halves");
        let (result, second, calls) = drive_with(&budget, &[20; 8], &batch, false);
        result.unwrap();
        assert_eq!(
            (second.splits, calls),
            (1, 2),
            "split first: no failed attempt"
        );
        assert_eq!(second.rows.len(), 8);
    }

    #[test]
    fn halves_until_it_fits_and_matches_the_unconstrained_run() {
        // 8 x 20 = 160 padded tokens: one halving to 4 x 20 = 80.
        let (result, outcome, calls) = drive(&[20; 8], &(0..8).collect::<Vec<_>>(), false);
        result.unwrap();
        assert_eq!((outcome.splits, calls), (1, 3));
        let mut rows = outcome.rows;
        rows.sort_unstable();
        assert_eq!(rows, (0..8).map(|i| (i, i * 10)).collect::<Vec<_>>());
    }

    #[test]
    fn splits_recursively() {
        // 240 -> 120 -> 60: two levels, 1 + 2 splits.
        let (result, outcome, _) = drive(&[30; 8], &(0..8).collect::<Vec<_>>(), false);
        result.unwrap();
        assert_eq!(outcome.splits, 3);
        assert_eq!(outcome.rows.len(), 8);
    }

    #[test]
    fn single_input_that_cannot_fit_names_its_index() {
        let lengths = [10, 500, 10, 10];
        let (result, _, _) = drive(&lengths, &[1, 0, 2, 3], false);
        let err = result.unwrap_err();
        assert!(
            matches!(
                err,
                Error::OutOfMemory {
                    index: 1,
                    tokens: 500,
                    ..
                }
            ),
            "{err}"
        );

        // Keep going: the other inputs are still embedded.
        let (result, outcome, _) = drive(&lengths, &[1, 0, 2, 3], true);
        result.unwrap();
        assert_eq!(outcome.failures.len(), 1);
        assert_eq!(
            (outcome.failures[0].index, outcome.failures[0].kind),
            (1, FailureKind::OutOfMemory)
        );
        assert_eq!(outcome.rows.len(), 3);
    }

    #[test]
    fn other_errors_are_never_retried() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let forward = |_: &(), _: &[usize]| -> candle_core::Result<Vec<usize>> {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(candle_core::Error::Msg("shape mismatch".into()))
        };
        let mut outcome = Outcome::default();
        let budget = MemoryBudget::default();
        let err = run(
            &(),
            &budget,
            &[0, 1, 2, 3],
            &|_| 5,
            &forward,
            false,
            &mut outcome,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Candle(_)));
        assert_eq!(calls.into_inner(), 1);
    }
}
