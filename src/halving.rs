//! Recursive batch halving on device out-of-memory: a batch that does not fit is split in two
//! and each half retried, down to a single input, which then fails with its index.

use crate::error::{is_oom, Error, Result};

/// An input that could not be embedded, when the caller asked to keep going.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failure {
    /// Position of the input in the caller's slice.
    pub index: usize,
    /// Its token count after truncation.
    pub tokens: usize,
    /// Why it failed.
    pub reason: String,
    /// Whether it failed because it did not fit in device memory even alone.
    pub out_of_memory: bool,
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

/// Runs `forward` on `batch` (input indices), halving on out-of-memory.
///
/// Other errors are never retried: they are returned, or with `keep_going` recorded as a
/// failure of every input of the batch. A single input that is out of memory gives
/// [`Error::OutOfMemory`], or with `keep_going` a failure, and the other inputs go on.
pub(crate) fn run<T>(
    batch: &[usize],
    tokens: &dyn Fn(usize) -> usize,
    forward: &dyn Fn(&[usize]) -> candle_core::Result<Vec<T>>,
    keep_going: bool,
    outcome: &mut Outcome<T>,
) -> Result<()> {
    let error = match forward(batch) {
        Ok(rows) => {
            outcome.rows.extend(batch.iter().copied().zip(rows));
            return Ok(());
        }
        Err(error) => error,
    };
    if is_oom(&error) && batch.len() > 1 {
        tracing::info!(
            inputs = batch.len(),
            "device out of memory; halving the batch"
        );
        outcome.splits += 1;
        let (first, second) = batch.split_at(batch.len() / 2);
        run(first, tokens, forward, keep_going, outcome)?;
        return run(second, tokens, forward, keep_going, outcome);
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
        out_of_memory,
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    const LIMIT: usize = 100;

    /// Runs the driver over `batch` with a fake forward pass that "runs out of memory" above
    /// `LIMIT` padded tokens and otherwise returns each input's index times ten; also returns
    /// how many forward calls were made.
    fn drive(
        lengths: &[usize],
        batch: &[usize],
        keep_going: bool,
    ) -> (Result<()>, Outcome<usize>, usize) {
        let calls = Cell::new(0);
        let forward = |batch: &[usize]| {
            calls.set(calls.get() + 1);
            let padded = batch.len() * batch.iter().map(|&i| lengths[i]).max().unwrap_or(0);
            if padded > LIMIT {
                Err(candle_core::Error::Msg(
                    "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")".into(),
                ))
            } else {
                Ok(batch.iter().map(|&i| i * 10).collect())
            }
        };
        let mut outcome = Outcome::default();
        let result = run(batch, &|i| lengths[i], &forward, keep_going, &mut outcome);
        (result, outcome, calls.get())
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
            (outcome.failures[0].index, outcome.failures[0].out_of_memory),
            (1, true)
        );
        assert_eq!(outcome.rows.len(), 3);
    }

    #[test]
    fn other_errors_are_never_retried() {
        let calls = Cell::new(0);
        let forward = |_: &[usize]| -> candle_core::Result<Vec<usize>> {
            calls.set(calls.get() + 1);
            Err(candle_core::Error::Msg("shape mismatch".into()))
        };
        let mut outcome = Outcome::default();
        let err = run(&[0, 1, 2, 3], &|_| 5, &forward, false, &mut outcome).unwrap_err();
        assert!(matches!(err, Error::Candle(_)));
        assert_eq!(calls.get(), 1);
    }
}
